"""Erasing an account from the pages (issue 17, GDPR art. 17), as a browser without JavaScript does it,
on both engines: "Delete my account" with the password on the account page, "Erase this account" with a
confirmation box on the admin user page. The personal data goes, the orders stay whole.
"""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from tests.conftest import BASE_URL
from tests.factories import audit_events, make_user
from tests.integration.conftest import ADMIN_EMAIL
from tests.shopper import PASSWORD, place, post, ready_to_pay, sign_in, text_of
from webshop.db.engine import write_session
from webshop.db.models import Address, AuthSession, Order, User, WebhookDelivery, WebhookEndpoint


async def test_a_customer_deletes_their_account_with_their_password(client, app, alchemy, skus, admin_id):
    async with write_session(alchemy) as session:  # an integration hears of the order (with the customer)
        session.add(WebhookEndpoint(url="http://127.0.0.1:9/hooks", secret="s" * 24, events=["order.placed"]))
        await session.commit()
    form = await ready_to_pay(client, "buyer@example.com", skus["AL-13"], 2)
    placed = await place(client, form)
    number = re.match(r"/orders/(WS-[0-9A-Z]{8})", placed.headers["location"]).group(1)
    assert "Delete my account" in (await client.get("/account")).text
    async with write_session(alchemy) as session:  # a note to the seller (free text: personal data)
        await session.execute(update(Order).where(Order.number == number).values(customer_note="Ring me on 0123"))
        await session.commit()

    wrong = await post(client, "/account/delete", {"password": "not my password"}, token_from="/account")
    assert wrong.status_code == 403
    # What happened above the form, which field is wrong beside it (each said once).
    assert "This is not your password: your account was not deleted." in text_of(wrong.text)
    assert wrong.text.count("This is not your password") == 2
    assert '<p class="field-error" id="password-error">This is not your password.</p>' in wrong.text
    assert (await client.get("/account", follow_redirects=False)).status_code == 200  # still signed in

    done = await post(client, "/account/delete", {"password": PASSWORD}, token_from="/account")
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert "Your account was deleted and you are signed out." in (await client.get("/")).text
    gone = await client.get("/account", follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"].startswith("/account/sign-in")
    assert (await sign_in(client, "buyer@example.com")).status_code == 400
    async with alchemy.get_session() as session:
        user = await session.scalar(select(User).join(Order).where(Order.number == number))
        assert (user.email, user.name, user.is_active) == (f"deleted-{user.id}@invalid", "Deleted user", False)
        assert await session.scalar(select(func.count()).where(Address.user_id == user.id)) == 0
        assert await session.scalar(select(func.count()).where(User.email.ilike("buyer@%"))) == 0
        assert await session.scalar(select(Order.customer_note).where(Order.number == number)) == ""
        [payload] = list(await session.scalars(select(WebhookDelivery.payload)))
        assert payload["data"]["customer"] == {"id": user.id, "email": user.email, "name": "Deleted user"}
        assert "buyer@example.com" not in str(payload)

    # The order stays whole for the shop: its lines, the ship-to snapshot and the totals.
    async with AsyncTestClient(app=app, base_url=BASE_URL) as admin:
        await sign_in(admin, ADMIN_EMAIL)
        order_id = int(re.search(r'href="/admin/orders/(\d+)"', (await admin.get("/admin/orders")).text).group(1))
        page = text_of((await admin.get(f"/admin/orders/{order_id}")).text)
        assert number in page and "Alpha Laptop" in page and "$3,123.60" in page and "12 Analytical Way" in page
        assert "buyer@example.com" not in page and f"deleted-{user.id}@invalid" in page
        assert "buyer@example.com" not in (await admin.get("/admin/users?q=buyer")).text


async def test_an_admin_erases_an_account_after_ticking_the_box(admin, app, alchemy, admin_id):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    page = f"/admin/users/{ada}"
    assert "Erase this account" in (await admin.get(page)).text
    async with AsyncTestClient(app=app, base_url=BASE_URL) as browser:
        assert (await sign_in(browser, "ada@example.com")).status_code == 303

        unticked = await post(admin, f"{page}/erase", {}, token_from=page)
        assert unticked.status_code == 422 and "Tick the box to confirm the erasure" in unticked.text
        assert "ada@example.com" in (await admin.get(page)).text

        done = await post(admin, f"{page}/erase", {"confirm": "yes"}, token_from=page)
        assert done.status_code == 303 and done.headers["location"] == page
        shown = text_of((await admin.get(page)).text)
        assert "The account was erased: its personal data is gone, its orders are kept." in shown
        assert f"deleted-{ada}@invalid" in shown and "Deleted user" in shown and "Erased" in shown
        assert "ada@example.com" not in shown and "Erase this account" not in shown
        assert "Promote to admin" not in shown  # an erased account cannot be changed
        refused = await post(admin, f"{page}/reactivate", {}, token_from=page)
        assert refused.status_code == 409 and "This account was erased" in refused.text
        again = await post(admin, f"{page}/erase", {"confirm": "yes"}, token_from=page)
        assert again.status_code == 303  # a second erasure (a double submit) changes nothing
        # Ada's browser is signed out at once.
        signed_out = await browser.get("/account", follow_redirects=False)
        assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/account/sign-in")
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).where(AuthSession.user_id == ada)) == 0
    assert [(e.action, e.actor_email) for e in await audit_events(alchemy, "user", ada)] == [("erase", ADMIN_EMAIL)]

    # The shop's last active admin cannot erase their own account.
    own = f"/admin/users/{admin_id}"
    refused = await post(admin, f"{own}/erase", {"confirm": "yes"}, token_from=own)
    assert refused.status_code == 409 and "at least one active administrator" in refused.text
    assert (await admin.get("/admin")).status_code == 200
