"""Cancelling an order over HTTP on both engines: asked first, refunded once, told by e-mail (issue 12).

The shopper's "Cancel this order" leads to a page that says what happens to their money and changes
nothing; its form cancels. A paid order is refunded through the payment provider (the built-in test
provider) and the refund shows on the shopper's and the admin's order pages. Orders are placed through
the real checkout, so they carry a real (test) charge.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from tests.conftest import BASE_URL
from tests.factories import make_order, make_user, stock
from tests.shopper import PASSWORD, csrf, place, post, ready_to_pay, sign_in, text_of
from webshop.db.engine import write_session
from webshop.db.models import Order, OrderStatus, OutboundEmail, TestPaymentRefund, UserRole
from webshop.orders.refunding import refund_idempotency_key

BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
REFUNDED_ON = re.compile(r"Refunded (\$[\d,.]+) to your card ending 4242 on \d{2} \w{3} \d{4}\.")


async def buy(client: Any, email: str, variant_id: int, quantity: int) -> str:
    """Register, check out with the test card, and return the new order's number."""
    form = await ready_to_pay(client, email, variant_id, quantity)
    response = await place(client, form)
    assert response.status_code == 303, response.text[:500]
    return response.headers["location"].split("/")[2].split("?")[0]


async def order_row(alchemy: Any, number: str) -> Order:
    async with alchemy.get_session() as session:
        order = await session.scalar(select(Order).where(Order.number == number))
        assert order is not None
        return order


async def mails(alchemy: Any, kind: str) -> list[OutboundEmail]:
    async with alchemy.get_session() as session:
        rows = await session.scalars(select(OutboundEmail).where(OutboundEmail.kind == kind).order_by(OutboundEmail.id))
        return list(rows)


async def provider_refunds(alchemy: Any, order: Order) -> list[tuple[str, int, str, str]]:
    """What the test payment service recorded for this order's refund key ([] or one refund): the
    payment refunded, the amount, the currency and the refund's reference."""
    async with write_session(alchemy) as session:
        rows = await session.scalars(
            select(TestPaymentRefund).where(TestPaymentRefund.idempotency_key == refund_idempotency_key(order))
        )
        return [(r.intent_reference, r.amount, r.currency, r.reference) for r in rows]


async def test_shopper_confirms_first_then_the_paid_order_is_cancelled_refunded_and_mailed(client, alchemy, skus):
    number = await buy(client, "buyer@example.com", skus["DC-1"], 4)
    assert await stock(alchemy, "DC-1") == 8
    placed = await order_row(alchemy, number)
    total = text_of((await client.get(f"/orders/{number}")).text).split("Total ")[-1].split()[0]

    # The order page links to a confirmation page; opening it changes nothing.
    page = await client.get(f"/orders/{number}")
    assert f'href="/orders/{number}/cancel"' in page.text
    confirm = await client.get(f"/orders/{number}/cancel")
    assert confirm.status_code == 200
    text = text_of(confirm.text)
    assert f"Cancel order {number}?" in text
    assert f"Your payment of {total} will be refunded to your card ending 4242." in text
    assert "the items go back to stock" in text
    assert "Yes, cancel this order" in text
    assert f'href="/orders/{number}" class="button secondary">Keep my order</a>' in confirm.text
    assert f'action="/orders/{number}/cancel" method="post"' in confirm.text
    assert (await order_row(alchemy, number)).status == "paid"
    assert await stock(alchemy, "DC-1") == 8
    assert await mails(alchemy, "order_cancelled") == []
    # The confirmation's address typed on the paid order says nothing false.
    assert "Your order was cancelled." not in text_of((await client.get(f"/orders/{number}?cancelled=1")).text)

    # "Yes, cancel this order": cancelled, stock back, refunded once, e-mail queued.
    response = await post(client, f"/orders/{number}/cancel", token_from=f"/orders/{number}/cancel")
    assert response.status_code == 303
    assert response.headers["location"] == f"/orders/{number}?cancelled=1"
    text = text_of((await client.get(response.headers["location"])).text)
    assert "Your order was cancelled." in text and f"Your payment of {total} goes back to your card." in text
    assert "Status: Cancelled" in text
    refunded = REFUNDED_ON.search(text)
    assert refunded and refunded.group(1) == total, text
    assert "Cancel this order" not in text
    assert await stock(alchemy, "DC-1") == 12

    order = await order_row(alchemy, number)
    assert order.refund_amount == placed.total
    assert order.refunded_at is not None and order.refund_reference.startswith("tre_")
    assert await provider_refunds(alchemy, order) == [
        (placed.payment_reference, placed.total, "USD", order.refund_reference)
    ]

    [mail] = await mails(alchemy, "order_cancelled")
    assert mail.to_address == "buyer@example.com"
    assert mail.subject == f"Order {number} is cancelled"
    assert f"Your order {number} is cancelled: nothing will be shipped." in mail.text_body
    assert f"Your payment of {total} goes back to your card ending 4242." in mail.text_body
    assert f"{BASE_URL}/orders/{number}" in mail.text_body
    assert "Delta Chair" in mail.html_body

    # Once cancelled, the confirmation page says it can no longer be cancelled; posting again is refused.
    again = await client.get(f"/orders/{number}/cancel")
    assert f"Order {number} can no longer be cancelled" in text_of(again.text)
    assert "Yes, cancel this order" not in again.text
    repeat = await post(client, f"/orders/{number}/cancel", token_from=f"/orders/{number}")
    assert repeat.status_code == 409 and "can no longer be cancelled" in repeat.text
    # The refusal shows the whole order page again, with the documents the cancellation issued.
    page = await client.get(f"/orders/{number}")
    refused = text_of(repeat.text)
    assert f"Order {number} is cancelled and can no longer be cancelled." in refused
    assert refused.replace(f"Order {number} is cancelled and can no longer be cancelled. ", "") == text_of(page.text)
    assert "Credit note CN-" in refused
    assert await stock(alchemy, "DC-1") == 12
    assert len(await mails(alchemy, "order_cancelled")) == 1
    assert (await order_row(alchemy, number)).refund_reference == order.refund_reference


async def test_with_htmx_the_boosted_link_shows_the_same_confirmation_and_the_form_cancels(client, alchemy, skus):
    number = await buy(client, "buyer@example.com", skus["EP-1"], 2)
    confirm = await client.get(f"/orders/{number}/cancel", headers=BOOSTED)
    assert confirm.status_code == 200
    assert "Yes, cancel this order" in confirm.text and "will be refunded to your card ending 4242" in confirm.text
    assert (await order_row(alchemy, number)).status == "paid"
    token = await csrf(client, f"/orders/{number}/cancel")
    response = await client.post(
        f"/orders/{number}/cancel", data={"_csrf_token": token}, headers=BOOSTED, follow_redirects=False
    )
    assert response.status_code == 303
    assert REFUNDED_ON.search(text_of((await client.get(response.headers["location"], headers=BOOSTED)).text))


async def test_two_cancels_at_once_refund_once_and_mail_once(client, alchemy, skus):
    number = await buy(client, "buyer@example.com", skus["DC-1"], 5)
    token = await csrf(client, f"/orders/{number}/cancel")
    responses = await asyncio.gather(
        *(
            client.post(f"/orders/{number}/cancel", data={"_csrf_token": token}, follow_redirects=False)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [303, 409]
    assert await stock(alchemy, "DC-1") == 12
    order = await order_row(alchemy, number)
    assert order.refunded_at is not None
    assert len(await provider_refunds(alchemy, order)) == 1
    assert len(await mails(alchemy, "order_cancelled")) == 1


async def test_an_unpaid_order_says_nothing_is_refunded(client, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    await make_order(alchemy, ada, "W-1", {"EP-1": 1}, status=OrderStatus.PENDING)
    await sign_in(client, "ada@example.com", PASSWORD)
    text = text_of((await client.get("/orders/W-1/cancel")).text)
    assert "You have not been charged for this order, so there is nothing to refund." in text
    assert (await post(client, "/orders/W-1/cancel", token_from="/orders/W-1/cancel")).status_code == 303
    order = await order_row(alchemy, "W-1")
    assert (order.status, order.refund_amount, order.refunded_at) == ("cancelled", 0, None)
    [mail] = await mails(alchemy, "order_cancelled")
    assert "You were not charged for this order." in mail.text_body
    assert "Refunded" not in (await client.get("/orders/W-1")).text


async def test_admin_cancel_and_refund_of_paid_orders_ask_first_and_refund(client, app, alchemy, skus):
    first = await buy(client, "buyer@example.com", skus["DC-1"], 2)
    second = await buy_more(client, skus["EP-1"], 3)
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    async with AsyncTestClient(app=app, base_url=BASE_URL) as admin:
        assert (await sign_in(admin, "boss@example.com")).status_code == 303
        for number, target, label, button in (
            (first, "cancelled", "Cancel order", "Yes, cancel order and refund"),
            (second, "refunded", "Refund the whole order", "Yes, refund"),
        ):
            placed = await order_row(alchemy, number)
            detail = f"/admin/orders/{placed.id}"
            confirm_url = f"{detail}/status?status={target}"
            assert (
                f'href="{confirm_url}" class="button secondary" data-status="{target}">{label}</a>'
                in (await admin.get(detail)).text
            )
            confirm = await admin.get(confirm_url)
            text = text_of(confirm.text)
            amount = re.search(r'id="refund-amount">(\$[\d,.]+)<', confirm.text).group(1)
            assert f"{label} {number}?" in text
            assert f"The payment provider refunds {amount} to the customer's card ending 4242" in text
            assert "go back to stock" in text and "The customer gets an e-mail saying so." in text
            assert f"{button} {amount}" in text
            assert (await order_row(alchemy, number)).status == "paid"

            token = await csrf(admin, confirm_url)
            response = await admin.post(
                f"{detail}/status", data={"status": target, "_csrf_token": token}, follow_redirects=False
            )
            assert response.status_code == 303
            text = text_of((await admin.get(detail)).text)
            order = await order_row(alchemy, number)
            assert f"Order {number} is now {target}. {amount} was refunded to the customer's card." in text
            assert (
                f"Refunded {amount} to the card ending 4242 on {order.refunded_at:%d %b %Y %H:%M} UTC "
                f"(refund reference {order.refund_reference})." in text
            )
            assert f"refunded {amount} to the card ending 4242 ({order.refund_reference})" in text  # audit trail
            assert order.refund_amount == placed.total and len(await provider_refunds(alchemy, order)) == 1
            # The shopper sees it on their order page too, with the credit note of the refund.
            shopper_page = text_of((await client.get(f"/orders/{number}")).text)
            assert REFUNDED_ON.search(shopper_page)
            assert re.search(r"Credit note CN-[0-9]{4}-[0-9]{6} \(PDF\)", shopper_page), shopper_page[-1500:]

    assert await stock(alchemy, "DC-1") == 12 and await stock(alchemy, "EP-1") == 40
    subjects = [m.subject for m in await mails(alchemy, "order_cancelled")]
    assert subjects == [f"Order {first} is cancelled", f"Order {second} is refunded"]


async def buy_more(client: Any, variant_id: int, quantity: int) -> str:
    """A second purchase by the signed-in shopper; returns its order number."""
    from tests.shopper import add_to_cart, choose_address_and_shipping, review

    assert (await add_to_cart(client, variant_id, quantity)).status_code == 303
    await choose_address_and_shipping(client)
    response = await place(client, await review(client))
    assert response.status_code == 303
    return response.headers["location"].split("/")[2].split("?")[0]


async def test_a_refund_the_provider_refuses_shows_why_and_stays_owed_until_a_retry_succeeds(
    client, app, alchemy, skus
):
    number = await buy(client, "buyer@example.com", skus["DC-1"], 1)
    placed = await order_row(alchemy, number)
    # A charge the provider does not know (as after a gateway-side problem): it refuses the refund.
    async with write_session(alchemy) as session:
        await session.execute(update(Order).where(Order.id == placed.id).values(payment_reference="ch_unknown"))
        await session.commit()
    response = await post(client, f"/orders/{number}/cancel", token_from=f"/orders/{number}/cancel")
    assert response.status_code == 303
    text = text_of((await client.get(response.headers["location"])).text)
    assert "Status: Cancelled" in text and "Your refund of" in text and "is being processed." in text
    order = await order_row(alchemy, number)
    assert (order.status, order.refund_amount, order.refunded_at) == ("cancelled", placed.total, None)

    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    async with AsyncTestClient(app=app, base_url=BASE_URL) as admin:
        assert (await sign_in(admin, "boss@example.com")).status_code == 303
        detail = f"/admin/orders/{placed.id}"
        refused = text_of((await admin.get(detail)).text)
        assert "is owed to the customer, but the payment provider refused it: There is no paid payment" in refused
        assert "The shop does not ask again by itself" in refused
        retry = await post(admin, f"{detail}/refund", token_from=detail)
        assert retry.status_code == 303
        assert f"The payment provider refused the refund of order {number}: There is no paid payment" in text_of(
            (await admin.get(detail)).text
        )
        async with write_session(alchemy) as session:  # the gateway finds the charge again
            values = {"payment_reference": placed.payment_reference}
            await session.execute(update(Order).where(Order.id == placed.id).values(**values))
            await session.commit()
        retry = await post(admin, f"{detail}/refund", token_from=detail)
        assert retry.status_code == 303
        text = text_of((await admin.get(detail)).text)
        assert f"Order {number} is refunded." in text and "Retry the refund" not in text
        again = await post(admin, f"{detail}/refund", token_from=detail)  # a no-op now
        assert again.status_code == 303
    order = await order_row(alchemy, number)
    assert order.refunded_at is not None and len(await provider_refunds(alchemy, order)) == 1
    assert REFUNDED_ON.search(text_of((await client.get(f"/orders/{number}")).text))


async def test_api_cancel_of_a_paid_order_refunds_it_too(client, alchemy, skus):
    number = await buy(client, "buyer@example.com", skus["EP-1"], 1)
    order = await order_row(alchemy, number)
    tokens = (await client.post("/api/auth/token", data={"username": "buyer@example.com", "password": PASSWORD})).json()
    response = await client.post(
        f"/api/orders/{order.id}/cancel", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    order = await order_row(alchemy, number)
    assert order.refunded_at is not None and len(await provider_refunds(alchemy, order)) == 1
    assert len(await mails(alchemy, "order_cancelled")) == 1
    shown = await client.get(f"/api/orders/{order.id}", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    refund = shown.json()["refund"]
    assert refund["pending"] is False and refund["reference"] == order.refund_reference
    assert refund["amount"]["amount"] == order.total and refund["refunded_at"]
