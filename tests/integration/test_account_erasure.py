"""Erasing an account from the pages (issue 17, GDPR art. 17), as a browser without JavaScript does it,
on both engines: "Delete my account" with the password on the account page, "Erase this account" with a
confirmation box on the admin user page. The personal data goes, the orders stay whole.
"""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from tests.api_user import bearer
from tests.conftest import BASE_URL
from tests.factories import audit_events, make_user
from tests.integration.conftest import ADMIN_EMAIL
from tests.integration.test_api_account_emails import link, mails
from tests.shopper import PASSWORD, place, post, ready_to_pay, sign_in, text_of
from webshop.db.engine import write_session
from webshop.db.models import Address, AuthSession, Order, OutboundEmail, User, WebhookDelivery, WebhookEndpoint


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
    assert wrong.status_code == 422
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


async def test_erasure_also_forgets_the_addresses_and_names_the_account_had_before(client, alchemy, admin_headers):
    """An admin's rename and a confirmed e-mail change are on the account's trail (the change by the
    account itself); erasing it then leaves none of its names or addresses, old or current, in its own
    trail, in a shop's (its membership), or in the outbox."""
    api = await bearer(client, "ada@example.com")
    ada = (await client.get("/api/users/me", headers=api)).json()["id"]
    renamed = await client.patch(f"/api/users/{ada}", json={"name": "Ada Lovelace"}, headers=admin_headers)
    assert renamed.status_code == 200, renamed.text
    shop = (await client.post("/api/shops", json={"name": "Ada's Attic"}, headers=admin_headers)).json()
    joined = await client.post(
        f"/api/shops/{shop['id']}/members", json={"user_id": ada, "role": "staff"}, headers=admin_headers
    )
    assert joined.status_code == 201, joined.text
    asked = await client.post(
        "/api/users/me/email-change", json={"new_email": "ada@new.example", "password": PASSWORD}, headers=api
    )
    assert asked.status_code == 202, asked.text
    [message] = await mails(alchemy, "change_email")
    changed = await client.post("/api/auth/confirm-email-change", json={"token": link(message)[1]})
    assert changed.status_code == 200, changed.text

    trail = (await client.get(f"/api/users/{ada}/history", headers=admin_headers)).json()
    assert [(e["action"], e["actor_email"]) for e in trail][:2] == [
        ("email", "ada@new.example"),
        ("rename", ADMIN_EMAIL),
    ]
    assert trail[0]["changes"] == {"email": ["ada@example.com", "ada@new.example"]}

    assert (await client.delete(f"/api/users/{ada}", headers=admin_headers)).status_code == 204
    seen = str((await client.get(f"/api/users/{ada}/history", headers=admin_headers)).json())
    seen += str((await client.get(f"/api/shops/{shop['id']}/history", headers=admin_headers)).json())
    for personal in ("ada@example.com", "ada@new.example", "Ada Lovelace", "'Ada'"):
        assert personal not in seen, personal
    assert f"deleted-{ada}@invalid" in seen and "Deleted user" in seen
    async with alchemy.get_session() as session:
        left = await session.scalars(select(OutboundEmail.to_address))
        assert not {"ada@example.com", "ada@new.example"} & set(left)
