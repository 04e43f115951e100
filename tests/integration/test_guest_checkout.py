"""Guest checkout (issue 18): a shopper buys with an e-mail address and no account, reaches the order by
its signed link (page and invoice), and may turn it into an account afterwards; the checkout's rules
(here: no oversell) hold for guests as for accounts."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from tests.conftest import BASE_URL
from tests.factories import ledger_ok, stock
from tests.shopper import (
    ADDRESS,
    PASSWORD,
    add_to_cart,
    as_guest,
    confirm_address,
    forged,
    guest_ready_to_pay,
    path_of,
    place,
    post,
    register,
    text_of,
)
from webshop.checkout.guest_links import guest_order_token
from webshop.db.engine import write_session
from webshop.db.models import Address, Order, OutboundEmail, User

GUEST_LINK_RE = re.compile(r"/orders/guest/([A-Za-z0-9_.\-]+)")


async def rows(alchemy: Any, statement: Any) -> list[Any]:
    async with write_session(alchemy) as session:
        return list((await session.execute(statement)).all())


async def test_a_guest_buys_opens_the_order_by_its_link_and_creates_an_account(client, alchemy, skus, settings):
    form = await guest_ready_to_pay(client, "Guest.Shopper@Example.COM", skus["DC-1"], 2)
    assert "Confirmation to Guest.Shopper@example.com" in text_of((await client.get("/checkout/review")).text)
    response = await place(client, form)  # the review form, the hosted payment page, and back
    assert response.status_code == 303, response.text[:300]
    confirmation_path = response.headers["location"]
    assert confirmation_path.startswith("/orders/guest/") and confirmation_path.endswith("?placed=1")
    page = await client.get(confirmation_path)
    assert page.status_code == 200 and page.headers["cache-control"] == "private, no-store"
    number = re.search(r"Your order (WS-[0-9A-Z]{8}) is placed and paid", text_of(page.text)).group(1)
    [(order_id, user_id, email)] = await rows(alchemy, select(Order.id, Order.user_id, Order.email))
    assert (user_id, email) == (None, "Guest.Shopper@example.com")
    assert await rows(alchemy, select(Address.id)) == []  # a guest has no address book
    assert await stock(alchemy, "DC-1") == 10 and await ledger_ok(alchemy)

    # The confirmation e-mail goes to the guest, with the signed link; the link opens the order and its invoice.
    [(text_body, html_body)] = await rows(
        alchemy,
        select(OutboundEmail.text_body, OutboundEmail.html_body).where(
            OutboundEmail.kind == "order_confirmation", OutboundEmail.to_address == "Guest.Shopper@example.com"
        ),
    )
    token = GUEST_LINK_RE.search(text_body).group(1)
    assert f"/orders/guest/{token}" in html_body
    by_link = await client.get(f"/orders/guest/{token}")
    assert by_link.status_code == 200 and number in by_link.text
    invoice_path = f"/orders/guest/{token}/invoice.pdf"
    assert invoice_path in by_link.text
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as elsewhere:  # another browser, no session
        opened = await elsewhere.get(f"/orders/guest/{token}")
        assert opened.status_code == 200 and number in opened.text
        pdf = await elsewhere.get(invoice_path)
        assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        # An altered link is unknown; an expired one is gone; neither shows the order.
        altered = await elsewhere.get(f"/orders/guest/{forged(token)}")
        assert altered.status_code == 404 and "not valid" in altered.text and number not in altered.text
        old = guest_order_token(settings.security.secret_key, number, issued_at=time.time() - 31 * 86400)
        expired = await elsewhere.get(f"/orders/guest/{old}")
        assert expired.status_code == 410 and "has expired" in expired.text and number not in expired.text
        assert (await elsewhere.get(f"/orders/guest/{old}/invoice.pdf")).status_code == 410

    # "Create an account" on the confirmation page: the password only, registration's rules.
    account_path = f"/account/register/order/{GUEST_LINK_RE.search(confirmation_path).group(1)}"
    assert f'action="{account_path}"' in page.text  # the page's own link (the e-mail's may be a second older)
    short = await post(client, account_path, {"password": "short"}, token_from=confirmation_path)
    assert short.status_code == 422 and "at least 8 characters" in text_of(short.text)
    created = await post(client, account_path, {"password": PASSWORD}, token_from=confirmation_path)
    assert created.status_code == 303 and created.headers["location"] == f"/orders/{number}"
    assert "Your account is ready" in (await client.get(created.headers["location"])).text
    assert number in (await client.get("/orders")).text  # signed in, the order among theirs
    [(account_id,)] = await rows(alchemy, select(User.id).where(User.email == "Guest.Shopper@example.com"))
    assert await rows(alchemy, select(Order.user_id).where(Order.id == order_id)) == [(account_id,)]
    # The guest link now leads to the account's page.
    after = await client.get(f"/orders/guest/{token}", follow_redirects=False)
    assert after.status_code == 303 and after.headers["location"] == f"/orders/{number}"


async def test_a_guest_is_told_about_a_bad_email_address_on_the_form(client, skus):
    await add_to_cart(client, skus["DC-1"], 1)
    signed_out = await client.get("/checkout/address", follow_redirects=False)
    assert signed_out.headers["location"] == "/account/sign-in?next=/checkout/address"  # not chosen: sign in
    response = await as_guest(client, "not-an-address")
    assert response.status_code == 422
    page = text_of(response.text)
    assert "Enter an e-mail address like name@example.com." in page
    assert 'value="Ada Lovelace"' in response.text  # what was typed stays
    assert (await client.get("/checkout/shipping", follow_redirects=False)).headers["location"] == "/checkout/address"


async def test_a_guest_sees_every_problem_of_the_address_step_at_once(client, skus):
    await add_to_cart(client, skus["DC-1"], 1)
    await client.get("/checkout/guest", follow_redirects=False)
    fields = {**ADDRESS, "address_id": "new", "email": "not-an-address", "name": "Ada\x07", "city": " "}
    response = await post(client, "/checkout/address", fields, token_from="/checkout/address")
    assert response.status_code == 422
    # One round: the e-mail address, the character the form refuses and the address's own rule.
    for field in ("email", "name", "city"):
        assert f'id="{field}-error"' in response.text, field
    assert "Enter an e-mail address like name@example.com." in text_of(response.text)
    assert 'value="12 Analytical Way"' in response.text  # what was typed stays


async def test_a_guest_whose_address_has_an_account_is_told_to_sign_in(client, alchemy, skus):
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as member:
        await register(member, "ada@example.com")
    await add_to_cart(client, skus["EP-1"], 1)
    refused = await as_guest(client, "Ada@Example.com")
    assert refused.status_code == 422
    assert "An account uses this e-mail address: sign in to check out with it, or use another address." in text_of(
        refused.text
    )
    assert (await client.get("/checkout/shipping", follow_redirects=False)).headers["location"] == "/checkout/address"
    # An account made with the address after the guest's order: "Create an account" says to sign in.
    form = await guest_ready_to_pay(client, "late@example.com", skus["EP-1"], 1)
    confirmation = (await place(client, form)).headers["location"]
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as member:
        await register(member, "late@example.com")
    token = GUEST_LINK_RE.search(confirmation).group(1)
    taken = await post(client, f"/account/register/order/{token}", {"password": PASSWORD}, token_from=confirmation)
    assert taken.status_code == 409
    assert "An account with this e-mail address already exists. Sign in instead." in text_of(taken.text)
    assert 'id="guest-sign-in"' in taken.text
    assert await rows(alchemy, select(Order.user_id)) == [(None,)]
    assert await rows(alchemy, select(func.count()).select_from(User)) == [(2,)]


async def test_two_guests_racing_for_the_last_units_make_one_order(client, alchemy, skus):
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as other:
        forms = [
            await guest_ready_to_pay(client, "first@example.com", skus["ZS-40"], 2),
            await guest_ready_to_pay(other, "second@example.com", skus["ZS-40"], 2),
        ]
        answers = await asyncio.gather(
            *(
                c.post("/checkout/place", data=f, follow_redirects=False)
                for c, f in zip((client, other), forms, strict=True)
            )
        )
    assert sorted(a.status_code for a in answers) == [303, 409], [a.text[:200] for a in answers]
    refused = next(a for a in answers if a.status_code == 409)
    assert "Insufficient stock." in text_of(refused.text)
    assert await rows(alchemy, select(func.count()).select_from(Order)) == [(1,)]
    assert await stock(alchemy, "ZS-40") == 0 and await ledger_ok(alchemy)
    placed = next(a for a in answers if a.status_code == 303)
    assert "/test-payments/" in path_of(placed.headers["location"])


async def test_a_guest_who_cancels_on_the_payment_page_gets_the_cart_back_once(client, alchemy, skus):
    before = await stock(alchemy, "DC-1")
    form = await guest_ready_to_pay(client, "cancelling.guest@example.com", skus["DC-1"], 2)
    placed = await client.post("/checkout/place", data=form, follow_redirects=False)
    assert placed.status_code == 303, placed.text[:300]
    reference = path_of(placed.headers["location"]).split("/test-payments/pay/")[1].split("?")[0]
    assert await stock(alchemy, "DC-1") == before - 2 and 'value="2"' not in (await client.get("/cart")).text
    [(number,)] = await rows(alchemy, select(Order.number))
    await client.app.state.payment_provider.cancel_intent(reference)
    await client.get(f"/checkout/return/{number}", follow_redirects=False)
    await client.get(f"/checkout/return/{number}", follow_redirects=False)  # twice: the lines come back once
    [(status,)] = await rows(alchemy, select(Order.status))
    assert status == "cancelled"
    assert await stock(alchemy, "DC-1") == before and await ledger_ok(alchemy)
    cart = await client.get("/cart")
    assert 'value="2"' in cart.text and "Check out as a guest" in cart.text  # the two units, in the guest's cart


async def test_a_guest_cancels_a_paid_order_by_its_link_once(client, alchemy, skus):
    before = await stock(alchemy, "DC-1")
    form = await guest_ready_to_pay(client, "cancel.by.link@example.com", skus["DC-1"], 3)
    confirmation = (await place(client, form)).headers["location"]
    link = confirmation.split("?")[0]
    assert await stock(alchemy, "DC-1") == before - 3
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as elsewhere:  # the link, in another browser
        page = await elsewhere.get(link)
        assert f'href="{link}/cancel"' in page.text
        asked = await elsewhere.get(f"{link}/cancel")
        assert asked.status_code == 200 and asked.headers["cache-control"] == "private, no-store"
        assert "will be refunded to your card ending 4242" in text_of(asked.text)
        assert (await stock(alchemy, "DC-1")) == before - 3  # asking changes nothing
        cancelled = await post(elsewhere, f"{link}/cancel", token_from=f"{link}/cancel")
        assert cancelled.status_code == 303 and cancelled.headers["location"] == f"{link}?cancelled=1"
        shown = text_of((await elsewhere.get(cancelled.headers["location"])).text)
        assert "Your order was cancelled. Its items are back in stock." in shown
        assert re.search(r"Credit note CN-[0-9]{4}-[0-9]{6} \(PDF\)", shown)
        again = await post(elsewhere, f"{link}/cancel", token_from=link)
        assert again.status_code == 409 and "can no longer be cancelled" in text_of(again.text)
    [(status, refunded_at)] = await rows(alchemy, select(Order.status, Order.refunded_at))
    assert status == "cancelled" and refunded_at is not None
    assert await stock(alchemy, "DC-1") == before and await ledger_ok(alchemy)
    [(subject,)] = await rows(
        alchemy,
        select(OutboundEmail.subject).where(
            OutboundEmail.kind == "order_cancelled", OutboundEmail.to_address == "cancel.by.link@example.com"
        ),
    )
    assert "cancelled" in subject


async def test_an_account_gets_the_guest_orders_of_its_address_once_the_address_is_confirmed(client, alchemy, skus):
    """The address matches whatever the case of its letters, accented ones too (SQLite's own ``lower``
    folds A-Z only)."""
    form = await guest_ready_to_pay(client, "ÉLODIE.Account@example.com", skus["DC-1"], 1)
    number = re.search(
        r"WS-[0-9A-Z]{8}", text_of((await client.get(path_of((await place(client, form)).headers["location"]))).text)
    )
    assert number
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as account:
        await register(account, "élodie.account@example.com")
        assert number.group(0) not in (await account.get("/orders")).text  # not before the address is proven
        [(text_body,)] = await rows(
            alchemy,
            select(OutboundEmail.text_body).where(
                OutboundEmail.kind == "verify_email", OutboundEmail.to_address == "élodie.account@example.com"
            ),
        )
        link = re.search(r"https?://[^/\s]+(/account/verify-email/\S+)", text_body).group(1)
        assert (await account.get(link)).status_code == 200  # the link's page: opening it adopts nothing
        assert number.group(0) not in (await account.get("/orders")).text
        assert (await confirm_address(account, link)).status_code == 200
        assert number.group(0) in (await account.get("/orders")).text
        assert (await account.get(f"/orders/{number.group(0)}")).status_code == 200
