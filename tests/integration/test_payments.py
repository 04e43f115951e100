"""Payments as intents (issue 18): the outcome arrives by the shopper's return, the provider's signed
webhook and the expiry worker, in any order, duplicated or at once, and is acted on exactly once.

The test provider is the real one (``webshop.payments.testing``); its hosted page's work is done by
``pay_with_card`` here (the page itself is tested in test_test_provider.py and through ``place``)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update

from tests.api_user import assert_problem, bearer, bearer_of, token_pair
from tests.factories import ledger_ok, make_user, stock
from tests.shopper import add_to_cart, choose_address_and_shipping, path_of, post, register, review, sign_in, text_of
from webshop.db.engine import write_session
from webshop.db.models import Invoice, Order, OutboundEmail, PaymentEvent, TestPaymentEvent, UserRole
from webshop.payments.service import EXPIRED, PaymentService
from webshop.payments.testing import CARD_DELAYED, CARD_PAYS, sign, webhook_secret

WEBHOOK = "/api/payments/webhooks/test"
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}


async def pending_order(client: Any, email: str, variant_id: int, quantity: int = 1) -> tuple[str, str]:
    # (the order's number is read from the test provider's own database: the same one here)
    """A shopper places an order through the pages and is sent to the hosted page: ``(number, intent)``."""
    await register(client, email)
    await add_to_cart(client, variant_id, quantity)
    await choose_address_and_shipping(client)
    form = await review(client)
    placed = await client.post("/checkout/place", data=form, follow_redirects=False)
    assert placed.status_code == 303, placed.text[:300]
    reference = placed.headers["location"].rsplit("/", 1)[1]
    assert reference.startswith("tpi_")
    async with write_session(client.app.state.payment_provider.alchemy) as session:
        number = await session.scalar(select(Order.number).where(Order.payment_reference == reference))
    return number, reference


async def events_of(alchemy: Any, reference: str, event_type: str) -> list[bytes]:
    """The bodies of the test provider's queued events of ``event_type`` about ``reference``."""
    async with write_session(alchemy) as session:
        rows = await session.scalars(select(TestPaymentEvent).where(TestPaymentEvent.event_type == event_type))
        return [json.dumps(r.payload).encode() for r in rows if r.payload["data"]["object"]["id"] == reference]


def signed(settings: Any, body: bytes, *, age: int = 0) -> dict[str, str]:
    secret = webhook_secret(settings.security.secret_key)
    return {"Test-Signature": sign(secret, body, int(time.time()) - age), "Content-Type": "application/json"}


async def trail(client: Any, alchemy: Any, number: str) -> list[str]:
    """The order's history as an admin reads it (``GET /api/orders/{id}/history``), oldest first:
    each event's actor (or "system") and summary. Call it once a test (it makes the admin)."""
    await make_user(alchemy, "auditor@example.com", UserRole.ADMIN, name="Auditor")
    headers = {"Authorization": f"Bearer {(await token_pair(client, 'auditor@example.com'))['access_token']}"}
    async with write_session(alchemy) as session:
        order_id = await session.scalar(select(Order.id).where(Order.number == number))
    events = (await client.get(f"/api/orders/{order_id}/history", headers=headers)).json()
    return [f"{e['actor_email'] or 'system'}: {e['summary']}" for e in reversed(events)]


async def counts(alchemy: Any, number: str) -> tuple[str, int, int]:
    """The order's status, its confirmation e-mails and its invoices."""
    async with write_session(alchemy) as session:
        order = await session.scalar(select(Order).where(Order.number == number))
        mails = await session.scalar(
            select(func.count())
            .select_from(OutboundEmail)
            .where(OutboundEmail.kind == "order_confirmation", OutboundEmail.subject.contains(number))
        )
        invoices = await session.scalar(select(func.count()).select_from(Invoice).where(Invoice.order_id == order.id))
        return order.status, mails, invoices


async def test_return_and_duplicate_webhooks_at_once_pay_once(client, alchemy, settings, skus):
    """For each payment: the shopper's return and 1 to 3 copies of the webhook, started together in a
    shuffled order → paid once, one confirmation e-mail, one invoice number."""
    provider = client.app.state.payment_provider
    for copies in (1, 2, 3):
        number, reference = await pending_order(client, f"racer{copies}@example.com", skus["EP-1"])
        await provider.pay_with_card(reference, "4242 4242 4242 4242")
        [body] = await events_of(alchemy, reference, "payment_intent.succeeded")
        calls = [client.get(f"/checkout/return/{number}", follow_redirects=False)]
        calls += [client.post(WEBHOOK, content=body, headers=signed(settings, body)) for _ in range(copies)]
        random.shuffle(calls)
        answers = await asyncio.gather(*calls)
        assert all(a.status_code in (200, 303) for a in answers), [a.text[:200] for a in answers]
        assert await counts(alchemy, number) == ("paid", 1, 1)
        webhook_answers = [a.json() for a in answers if a.status_code == 200]
        assert all(a["received"] for a in webhook_answers)
        assert sum(a["acted"] for a in webhook_answers) <= 1  # the event id is acted on once at most
    async with write_session(alchemy) as session:
        numbers = list(await session.scalars(select(Invoice.sequence).order_by(Invoice.sequence)))
    assert numbers == [1, 2, 3]  # consecutive, one per paid order
    assert await ledger_ok(alchemy)


async def test_return_shows_the_paid_order_and_the_card_s_last_digits(client, alchemy, skus):
    number, reference = await pending_order(client, "ada@example.com", skus["EP-1"])
    await client.app.state.payment_provider.pay_with_card(reference, "4242424242424242")
    back = await client.get(f"/checkout/return/{number}", follow_redirects=False)
    assert back.headers["location"] == f"/orders/{number}?placed=1"
    page = await client.get(back.headers["location"])
    assert "card ending 4242" in page.text


async def test_a_bad_signature_or_an_old_event_changes_nothing_and_a_replay_is_ignored(client, alchemy, settings, skus):
    number, reference = await pending_order(client, "ada@example.com", skus["EP-1"])
    await client.app.state.payment_provider.pay_with_card(reference, "4242424242424242")
    [body] = await events_of(alchemy, reference, "payment_intent.succeeded")
    forged = {**signed(settings, body), "Test-Signature": f"t={int(time.time())},v1={'0' * 64}"}
    assert_problem(await client.post(WEBHOOK, content=body, headers=forged), 400)
    assert_problem(await client.post(WEBHOOK, content=body, headers=signed(settings, body, age=3600)), 400)
    tampered = body.replace(b'"succeeded"', b'"canceled"')
    assert_problem(await client.post(WEBHOOK, content=tampered, headers=signed(settings, body)), 400)
    assert_problem(await client.post(WEBHOOK, content=b"{}", headers=signed(settings, b"{}")), 400)
    assert (await counts(alchemy, number))[0] == "pending"  # nothing changed
    first = await client.post(WEBHOOK, content=body, headers=signed(settings, body))
    assert first.json() == {"received": True, "acted": True}
    again = await client.post(WEBHOOK, content=body, headers=signed(settings, body))
    assert again.json() == {"received": True, "acted": False}
    assert await counts(alchemy, number) == ("paid", 1, 1)
    assert_problem(
        await client.post("/api/payments/webhooks/stripe", content=body, headers=signed(settings, body)), 404
    )
    async with write_session(alchemy) as session:
        assert await session.scalar(select(func.count()).select_from(PaymentEvent)) == 1


async def test_a_declined_card_keeps_the_order_waiting_and_another_card_pays(client, alchemy, skus):
    number, reference = await pending_order(client, "ada@example.com", skus["EP-1"])
    provider = client.app.state.payment_provider
    await provider.pay_with_card(reference, "4000000000000002")
    back = await client.get(f"/checkout/return/{number}", follow_redirects=False)
    assert back.headers["location"] == f"/orders/{number}"
    assert (await counts(alchemy, number))[0] == "pending"
    await provider.pay_with_card(reference, "4242424242424242")
    assert (
        (await client.get(f"/checkout/return/{number}", follow_redirects=False))
        .headers["location"]
        .endswith("?placed=1")
    )
    # The order's trail starts with the shopper placing it and says when and how it was paid.
    placed, paid = await trail(client, alchemy, number)
    assert placed.startswith(f"ada@example.com: Order {number}: placed, $") and placed.endswith(
        "waiting for the payment"
    )
    assert paid.startswith(f"system: Order {number}: pending → paid, $")
    assert paid.endswith(f"({reference}, card ending 4242)")


async def test_cancelling_on_the_hosted_page_cancels_the_order_and_gives_back_stock_and_cart(client, alchemy, skus):
    before = await stock(alchemy, "EP-1")
    number, reference = await pending_order(client, "ada@example.com", skus["EP-1"], 2)
    assert await stock(alchemy, "EP-1") == before - 2  # held while the shopper pays
    page = f"/test-payments/pay/{reference}"
    back = await post(client, f"{page}/cancel", {}, token_from=page)  # "Cancel payment and return to the shop"
    assert back.status_code == 303 and f"/checkout/return/{number}?" in back.headers["location"]
    await client.get(f"/checkout/return/{number}", follow_redirects=False)
    await client.get(f"/checkout/return/{number}", follow_redirects=False)  # twice: returned once
    assert (await counts(alchemy, number))[0] == "cancelled"
    assert await stock(alchemy, "EP-1") == before
    assert 'value="2"' in (await client.get("/cart")).text  # the two units are back in the cart
    assert await ledger_ok(alchemy)
    # The order's page says what happened and where the items are (QA: it said "Cancelled" only).
    page = await client.get(f"/orders/{number}")
    assert (
        "This order was cancelled because its payment did not go through: The payment was cancelled. "
        "Nothing was charged. Its items are back in your cart"
    ) in text_of(page.text)
    assert '<a href="/cart">your cart</a>' in page.text
    async with alchemy.get_session() as session:  # they cancelled it and are back in the shop: no e-mail (QA)
        kinds = list(await session.scalars(select(OutboundEmail.kind).where(OutboundEmail.kind == "order_cancelled")))
    assert kinds == []


async def test_a_payment_cancelled_after_a_declined_card_says_it_was_cancelled(client, alchemy, skus):
    """QA: the order said it was cancelled because "Your card was declined. Try another card.", the
    earlier attempt's reason, when the shopper had cancelled the payment."""
    number, reference = await pending_order(client, "ada@example.com", skus["EP-1"], 1)
    provider = client.app.state.payment_provider
    await provider.pay_with_card(reference, "4000000000000002")
    await provider.cancel_intent(reference)
    await client.get(f"/checkout/return/{number}", follow_redirects=False)
    text = text_of((await client.get(f"/orders/{number}")).text)
    assert "its payment did not go through: The payment was cancelled. Nothing was charged." in text
    assert "Try another card" not in text


async def test_expiry_cancels_once_and_a_payment_arriving_then_is_refunded_and_the_shopper_told(
    client, alchemy, settings, skus
):
    before = await stock(alchemy, "EP-1")
    number, reference = await pending_order(client, "ada@example.com", skus["EP-1"])
    provider = client.app.state.payment_provider
    async with write_session(alchemy) as session:
        await session.execute(
            update(Order)
            .where(Order.number == number)
            .values(payment_expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        await session.commit()
    # The shopper types the card as the order expires: the intent pays, its webhook and two expiry rounds race.
    await provider.pay_with_card(reference, "4242424242424242")
    [body] = await events_of(alchemy, reference, "payment_intent.succeeded")

    async def expire() -> int:
        async with write_session(alchemy) as session:
            service = PaymentService(
                session=session, provider=provider, payments=settings.payments, invoices=settings.invoices
            )
            return await service.expire_due()

    await asyncio.gather(expire(), expire(), client.post(WEBHOOK, content=body, headers=signed(settings, body)))
    async with write_session(alchemy) as session:
        order = await session.scalar(select(Order).where(Order.number == number))
    # The provider said "succeeded" when the worker asked to cancel, so the order is paid, not cancelled.
    assert order.status == "paid" and await stock(alchemy, "EP-1") == before - 1
    assert await ledger_ok(alchemy)


async def test_an_order_expired_before_its_payment_is_refunded_when_the_payment_arrives(
    client, alchemy, settings, skus
):
    before = await stock(alchemy, "EP-1")
    number, reference = await pending_order(client, "ada@example.com", skus["EP-1"])
    provider = client.app.state.payment_provider
    async with write_session(alchemy) as session:
        await session.execute(
            update(Order).where(Order.number == number).values(payment_expires_at=datetime.now(UTC) - timedelta(1))
        )
        await session.commit()
        service = PaymentService(
            session=session, provider=provider, payments=settings.payments, invoices=settings.invoices
        )
        # The worker cancels it (the provider had not been paid), and again: returned once.
        assert await service.expire_due() == 1
        assert await service.expire_due() == 0
    assert (await counts(alchemy, number))[0] == "cancelled" and await stock(alchemy, "EP-1") == before
    # A payment the provider still takes then (a slow bank) arrives by webhook: refunded at once.
    async with write_session(alchemy) as session:
        from webshop.db.models import TestPaymentIntent

        await session.execute(
            update(TestPaymentIntent).where(TestPaymentIntent.reference == reference).values(status="requires_payment")
        )
        await session.commit()
    await provider.pay_with_card(reference, "4242424242424242")
    [body] = await events_of(alchemy, reference, "payment_intent.succeeded")
    await asyncio.gather(*(client.post(WEBHOOK, content=body, headers=signed(settings, body)) for _ in range(2)))
    async with write_session(alchemy) as session:
        order = await session.scalar(select(Order).where(Order.number == number))
        told = await session.scalar(
            select(func.count()).select_from(OutboundEmail).where(OutboundEmail.kind == "order_cancelled")
        )
    assert (order.status, order.payment_status, order.refund_amount) == ("cancelled", "succeeded", order.total)
    assert order.refunded_at is not None and order.refund_reference.startswith("tre_")
    assert told == 2  # the cancellation, then "your payment goes back"
    # The trail says why it was cancelled and that the late payment is refunded (and by whom: the refund).
    events = await trail(client, alchemy, number)
    assert events[0].startswith(f"ada@example.com: Order {number}: placed, $")
    assert events[1] == f"system: Order {number}: pending → cancelled (stock returned): {EXPIRED}"
    assert events[2].startswith(f"system: Order {number}: paid $") and events[2].endswith(
        f"after it was cancelled ({reference}, card ending 4242); the payment is refunded"
    )
    assert await stock(alchemy, "EP-1") == before  # the stock came back once
    assert await ledger_ok(alchemy)


async def test_api_checkout_without_a_token_waits_for_the_hosted_page(client, alchemy, settings, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "hosted-1"}
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    body = {"shipping_address": ADDRESS, "shipping_method": "standard"}
    placed = await client.post("/api/checkout", json=body, headers=headers)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    payment = order["payment"]
    assert (order["status"], payment["status"], payment["provider"]) == ("pending", "requires_payment", "test")
    assert "/test-payments/pay/tpi_" in payment["redirect_url"] and payment["expires_at"]
    again = await client.post("/api/checkout", json=body, headers=headers)  # the same key: the same order
    assert again.json()["number"] == order["number"]
    reference = payment["redirect_url"].rsplit("/", 1)[1]
    await client.app.state.payment_provider.pay_with_card(reference, "4242424242424242")
    async with write_session(alchemy) as session:
        service = PaymentService(
            session=session,
            provider=client.app.state.payment_provider,
            payments=settings.payments,
            invoices=settings.invoices,
        )
        await service.sync(await session.get(Order, order["id"]))
    shown = (await client.get(f"/api/orders/{order['id']}", headers=headers)).json()
    assert (shown["status"], shown["payment"]["status"], shown["payment"]["redirect_url"]) == (
        "paid",
        "succeeded",
        None,
    )


async def waiting_order(client: Any, key: str) -> tuple[dict[str, str], dict[str, Any], str]:
    """A shopper's order placed by the API without a payment token: it waits for the provider's page.
    Returns the shopper's headers, the order as answered and its payment's reference."""
    headers = {**(await bearer(client)), "Idempotency-Key": key}
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    body = {"shipping_address": ADDRESS, "shipping_method": "standard"}
    order = (await client.post("/api/checkout", json=body, headers=headers)).json()
    return headers, order, order["payment"]["redirect_url"].rsplit("/", 1)[1]


async def test_cancelling_an_unpaid_order_closes_its_payment_so_its_page_takes_no_card(client, alchemy, skus):
    headers, order, reference = await waiting_order(client, "hosted-cancel")
    cancelled = await client.post(f"/api/orders/{order['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    payment = cancelled.json()["payment"]
    assert (cancelled.json()["status"], payment["status"], payment["redirect_url"]) == ("cancelled", "cancelled", None)
    provider = client.app.state.payment_provider
    assert (await provider.pay_with_card(reference, "4242424242424242")).status == "cancelled"  # nothing is taken
    assert (await client.get(f"/api/orders/{order['id']}", headers=headers)).json()["payment"]["status"] == "cancelled"
    async with write_session(alchemy) as session:
        mail = await session.scalar(select(OutboundEmail.text_body).where(OutboundEmail.kind == "order_cancelled"))
    assert "You were not charged for this order." in mail and "return your payment" not in mail
    assert await ledger_ok(alchemy)


async def test_an_order_an_admin_marks_paid_is_invoiced_announced_and_cannot_be_paid_again(
    client, alchemy, settings, skus
):
    headers, order, reference = await waiting_order(client, "paid-by-transfer")
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    boss = {"Authorization": f"Bearer {(await token_pair(client, 'boss@example.com'))['access_token']}"}
    assert (await sign_in(client, "boss@example.com")).status_code in (200, 303)
    waiting = text_of((await client.get(f"/admin/orders/{order['id']}")).text)  # browser QA: it said nothing
    assert "Mark as paid when the customer paid another way (a bank transfer, cash)" in waiting
    paid = await client.patch(f"/api/orders/{order['id']}", json={"status": "paid"}, headers=boss)
    assert paid.status_code == 200, paid.text
    assert (paid.json()["status"], paid.json()["payment"]["status"]) == ("paid", "cancelled")  # closed at the provider
    invoice = await client.get(f"/api/orders/{order['id']}/invoice", headers=headers)
    assert invoice.status_code == 200 and invoice.headers["content-type"] == "application/pdf"
    assert await counts(alchemy, order["number"]) == ("paid", 1, 1)  # one confirmation e-mail, one invoice
    provider = client.app.state.payment_provider
    assert (await provider.pay_with_card(reference, "4242424242424242")).status == "cancelled"  # not charged twice
    assert (await client.get(f"/api/orders/{order['id']}", headers=headers)).json()["refund"] is None
    # The provider's "cancelled" event about that payment leaves the paid order alone.
    for body in await events_of(alchemy, reference, "payment_intent.canceled"):
        assert (await client.post(WEBHOOK, content=body, headers=signed(settings, body))).status_code == 200
    assert (await client.get(f"/api/orders/{order['id']}", headers=headers)).json()["status"] == "paid"

    # Paid another way, it is refunded by the shop: no provider is asked, the refund is made at once and
    # documented by its credit note, and the customer is told the shop returns the money.
    refunds = f"/api/orders/{order['id']}/refunds"
    part = await client.post(refunds, json={"amount": 100}, headers={**boss, "Idempotency-Key": "by-hand-1"})
    assert part.status_code == 201, part.text
    assert (part.json()["status"], part.json()["reference"]) == ("succeeded", "returned by the shop")
    assert part.json()["credit_note"]
    async with write_session(alchemy) as session:
        refund_mail = await session.scalar(select(OutboundEmail.text_body).where(OutboundEmail.kind == "order_refund"))
    assert "We have refunded $1.00" in refund_mail and "We return it to you the way you paid it." in refund_mail
    assert "card" not in refund_mail
    # Cancelled later: what is left is owed back and recorded as refunded by the shop, with a credit note.
    cancelled = await client.patch(f"/api/orders/{order['id']}", json={"status": "cancelled"}, headers=boss)
    assert cancelled.status_code == 200, cancelled.text
    shown = (await client.get(f"/api/orders/{order['id']}", headers=headers)).json()
    left = order["total"]["amount"] - 100
    assert shown["payment"]["paid_another_way"] is True
    assert shown["refund"]["amount"]["amount"] == left and shown["refund"]["pending"] is False
    assert (
        shown["refund"]["reference"] == "returned by the shop"
        and shown["refunded_total"]["amount"] == order["total"]["amount"]
    )
    async with write_session(alchemy) as session:
        notes = list(
            await session.scalars(
                select(Invoice.total)
                .where(Invoice.order_id == order["id"], Invoice.kind == "credit_note")
                .order_by(Invoice.id)
            )
        )
        mail = await session.scalar(select(OutboundEmail.text_body).where(OutboundEmail.kind == "order_cancelled"))
    assert notes == [100, left]
    money = f"${left // 100:,}.{left % 100:02d}"
    # $1.00 went back before: "your payment of" would be the whole of it (browser QA)
    assert f"We will return the rest of your payment, {money}, to you the way you paid it." in mail
    assert "not charged" not in mail and "card" not in mail
    assert (await provider.pay_with_card(reference, "4242424242424242")).status == "cancelled"  # still nothing taken


async def test_an_order_being_paid_at_the_provider_is_not_marked_paid_by_hand(client, alchemy, skus):
    headers, order, reference = await waiting_order(client, "paying-now")
    await client.app.state.payment_provider.pay_with_card(reference, CARD_PAYS)  # paid there, not heard of here yet
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    boss = {"Authorization": f"Bearer {(await token_pair(client, 'boss@example.com'))['access_token']}"}
    refused = assert_problem(
        await client.patch(f"/api/orders/{order['id']}", json={"status": "paid"}, headers=boss), 409
    )
    assert "The customer has just paid order" in refused["detail"]
    assert (await client.get(f"/api/orders/{order['id']}", headers=headers)).json()["status"] == "pending"


async def test_a_waiting_order_s_page_links_its_payment_page(client, skus):
    number, reference = await pending_order(client, "waiting@example.com", skus["DC-1"])
    page = await client.get(f"/orders/{number}")
    assert f'/test-payments/pay/{reference}" hx-boost="false">Pay for this order</a>' in page.text
    assert "This order waits for its payment until" in text_of(page.text)


async def test_api_checkout_refuses_card_numbers(client, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "card-1"}
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    body = {"shipping_address": ADDRESS, "shipping_method": "standard", "payment": {"card_number": "4242424242424242"}}
    assert_problem(await client.post("/api/checkout", json=body, headers=headers), 422)
    body["payment"] = {"token": "tok_threeDSecureRequired"}
    needs = await client.post("/api/checkout", json=body, headers={**headers, "Idempotency-Key": "card-2"})
    assert needs.status_code == 201, needs.text
    assert needs.json()["payment"]["status"] == "requires_action"
    assert "/test-payments/authenticate/" in needs.json()["payment"]["redirect_url"]
    assert path_of(needs.json()["payment"]["redirect_url"]).startswith("/test-payments/")


async def test_no_card_number_reaches_the_shop_its_logs_database_or_e_mails(client, alchemy, skus):
    """A full purchase through the pages and the hosted payment page, with every log line captured (SQL and
    its parameters too): the card number goes in one request only, to the payment service's own page, and
    appears in no request to the shop, no log line, no table and no e-mail."""
    import logging

    from advanced_alchemy.base import orm_registry

    from tests.shopper import place, ready_to_pay
    from webshop.observability.logging import log_formatter

    requests: list[tuple[str, bytes]] = []

    async def record(request: Any) -> None:
        requests.append((request.url.path, request.read()))

    client.event_hooks["request"].append(record)
    buffer = __import__("io").StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(log_formatter("json"))
    root, sql = logging.getLogger(), logging.getLogger("sqlalchemy.engine")
    level = sql.level
    root.addHandler(handler)
    sql.setLevel(logging.INFO)
    try:
        form = await ready_to_pay(client, "ada@example.com", skus["EP-1"])
        placed = await place(client, form, card="4242 4242 4242 4242")
        assert placed.status_code == 303 and placed.headers["location"].endswith("?placed=1")
        assert "card ending 4242" in (await client.get(placed.headers["location"])).text
    finally:
        sql.setLevel(level)
        root.removeHandler(handler)
        client.event_hooks["request"].remove(record)
    forms = ("4242424242424242", "4242 4242 4242 4242", "4242+4242+4242+4242", "4242%204242%204242%204242")

    def has_card(text: str) -> bool:
        return any(number in text for number in forms)

    carrying = [path for path, body in requests if has_card(body.decode("latin-1"))]
    assert len(carrying) == 1 and carrying[0].startswith("/test-payments/pay/")  # the provider's page only
    assert "INSERT INTO orders" in buffer.getvalue() and not has_card(buffer.getvalue())
    tables = orm_registry.metadata.sorted_tables
    assert {"orders", "test_payment_intents", "test_payment_events", "outbound_emails"} <= {t.name for t in tables}
    async with write_session(alchemy) as session:
        for table in tables:
            for row in (await session.execute(select(table))).all():
                assert not has_card(repr(tuple(row))), table.name
        mails = list(await session.scalars(select(OutboundEmail)))
    assert mails and not any(has_card(f"{m.subject}{m.text_body}{m.html_body}") for m in mails)


async def test_a_processing_payment_s_page_asks_until_it_is_answered_then_loads_again(client, skus):
    """The notice polls its own page: 204 (nothing to swap) while the bank processes the payment, then
    ``HX-Refresh`` once it is paid, so the whole page, with anything typed on it, loads once."""
    number, reference = await pending_order(client, "processing@example.com", skus["EP-1"])
    provider = client.app.state.payment_provider
    await provider.pay_with_card(reference, CARD_DELAYED)
    await client.get(f"/checkout/return/{number}", follow_redirects=False)
    page = await client.get(f"/orders/{number}")
    assert 'id="order-payment"' in page.text and 'hx-trigger="every 3s"' in page.text
    assert f'hx-get="/orders/{number}"' in page.text and 'hx-swap="none"' in page.text
    poll = {"HX-Request": "true", "HX-Trigger": "order-payment"}
    asked = await client.get(f"/orders/{number}", headers=poll)
    assert (asked.status_code, asked.content, asked.headers.get("HX-Refresh")) == (204, b"", None)
    assert await provider.settle_due(datetime.now(UTC) + timedelta(seconds=3600)) == 1
    await client.get(f"/checkout/return/{number}", follow_redirects=False)  # the shop hears of it
    answered = await client.get(f"/orders/{number}", headers=poll)
    assert answered.status_code == 200 and answered.headers["HX-Refresh"] == "true"
    assert ">Paid<" in (await client.get(f"/orders/{number}")).text  # and the page itself, without the poll
    assert 'hx-trigger="every 3s"' not in (await client.get(f"/orders/{number}")).text


async def test_a_shopper_with_three_unpaid_orders_places_no_fourth_until_one_is_paid_or_cancelled(
    client, alchemy, skus
):
    """An unpaid order holds its stock until its payment time runs out: without a cap one account could
    hold all of it ("denial of inventory", OWASP OAT-021). The fourth order waiting for its payment is
    refused, on the page and in the API, and nothing of it is written; cancelling one makes room."""
    message = (
        "You have 3 orders waiting for their payment: pay for one of them or cancel it (under Your orders)"
        " before you place another."
    )
    numbers = [(await pending_order(client, "ada@example.com", skus["EP-1"]))[0]]
    for _ in range(2):
        await add_to_cart(client, skus["EP-1"])
        await choose_address_and_shipping(client)
        placed = await client.post("/checkout/place", data=await review(client), follow_redirects=False)
        assert placed.status_code == 303, placed.text[:300]
    held = await stock(alchemy, "EP-1")
    await add_to_cart(client, skus["EP-1"])
    await choose_address_and_shipping(client)
    refused = await client.post("/checkout/place", data=await review(client))
    assert refused.status_code == 409
    assert message in text_of(refused.text)
    headers = {**(await bearer_of(client, "ada@example.com")), "Idempotency-Key": "unpaid-fourth"}
    body = {"shipping_address": ADDRESS, "shipping_method": "standard"}
    assert assert_problem(await client.post("/api/checkout", json=body, headers=headers), 409)["detail"] == message
    async with write_session(alchemy) as session:
        assert await session.scalar(select(func.count(Order.id))) == 3
    assert await stock(alchemy, "EP-1") == held  # the cart's item is not held by a fourth order
    assert (await client.get("/api/cart", headers=headers)).json()["lines"][0]["sku"] == "EP-1"

    async with write_session(alchemy) as session:
        first = await session.scalar(select(Order.id).where(Order.number == numbers[0]))
    assert (await client.post(f"/api/orders/{first}/cancel", headers=headers)).status_code == 200
    placed = await client.post("/api/checkout", json=body, headers=headers)
    assert placed.status_code == 201, placed.text
    assert placed.json()["status"] == "pending"
