"""Refunds the payment provider did not answer, on both engines: the background worker asks again for
them when due, backing off, until the provider answers or the attempts run out
(``webshop.orders.refund_retries``); and an order with such a refund cannot be cancelled or refunded in
full meanwhile (its whole refund would leave out the pending one's amount if the provider then refused it).

The provider is the built-in test provider (it refunds what it took, once per key) or ``Unreachable``
(every refund raises ``ProviderUnavailable``). Rounds are run at chosen times (``now``).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from tests.api_user import assert_problem, token_pair
from tests.conftest import app_client
from tests.factories import make_user
from tests.integration.test_refunds import (
    CUSTOMER,
    Unreachable,
    admin_api,
    paid_order,
    read,
    refunded_by_provider,
)
from tests.shopper import post, sign_in, text_of
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import (
    Order,
    OrderStatus,
    OutboundEmail,
    Refund,
    RefundStatus,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from webshop.errors import DomainError
from webshop.money import format_money
from webshop.orders.refund_retries import RetryRound, retry_due_refunds
from webshop.orders.refunds import RefundService
from webshop.orders.service import OrderService
from webshop.payments.provider import RefundResult
from webshop.payments.registry import build_provider


def rounds(alchemy: ShopAlchemyConfig, settings: Settings, start: datetime) -> Any:
    """``round_at(seconds, provider, payments=…)``: one worker round ``seconds`` after ``start``."""

    async def round_at(seconds: float, provider: Any, payments: Any = None) -> RetryRound:
        async with write_session(alchemy) as session:
            return await retry_due_refunds(
                session,
                provider,
                payments or settings.payments,
                settings.invoices,
                now=start + timedelta(seconds=seconds),
            )

    return round_at


async def pending_refund(alchemy: ShopAlchemyConfig, order_id: int, amount: int, key: str) -> Refund:
    """A refund of ``amount`` claimed while the provider could not be reached: it stays pending."""
    async with write_session(alchemy) as session:
        refund = await RefundService(session=session, provider=Unreachable()).refund(  # type: ignore[arg-type]
            order_id, amount=amount, actor=None, idempotency_key=key
        )
    assert refund.status == RefundStatus.PENDING.value
    return refund


async def test_the_worker_asks_again_for_an_unanswered_refund_when_due_backing_off_until_it_is_made_once(
    admin, alchemy, settings, skus
):
    assert (settings.payments.refund_retry_seconds, settings.payments.refund_max_attempts) == (60, 20)
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR1", {"BC-1": 1})
    refund = await pending_refund(alchemy, order.id, 10000, "rr1")
    round_at = rounds(alchemy, settings, refund.created_at)
    down, real = Unreachable(), build_provider(settings, alchemy)

    assert await round_at(0, down) == RetryRound()  # just made: the request that made it may still be asking
    assert await round_at(61, down) == RetryRound(refunds=1)  # a minute on: asked again, still no answer
    [row] = await read(alchemy, Refund, Refund.id == refund.id)
    assert (row.status, row.retry_attempts) == ("pending", 1)
    assert await round_at(61 + 59, down) == RetryRound()  # the next try waits a minute ...
    assert await round_at(61 + 61, down) == RetryRound(refunds=1)
    assert await round_at(61 + 61 + 119, down) == RetryRound()  # ... then two
    listed = text_of((await admin.get(f"/admin/orders/{order.id}")).text)
    assert "Being processed The shop asks the provider again by itself (2 times so far). Retry" in listed
    assert "Mark as shipped" in listed and "Cancel order" not in listed and "Refund the whole order" not in listed
    asked = text_of((await admin.get(f"/admin/orders/{order.id}/status?status=cancelled")).text)
    assert "Order WS-RR1 cannot become cancelled yet" in asked and "Yes, cancel order" not in asked
    used_up = replace(settings.payments, refund_max_attempts=2)
    assert await round_at(61 + 61 + 121, real, used_up) == RetryRound()  # past the last attempt: the admin's
    assert await round_at(61 + 61 + 121, real) == RetryRound(refunds=1)

    [done] = await read(alchemy, Refund, Refund.id == refund.id)
    assert (done.status, done.retry_attempts) == ("succeeded", 3) and done.reference
    assert await refunded_by_provider(alchemy, order.payment_reference) == 10000
    assert len(await read(alchemy, OutboundEmail, OutboundEmail.kind == "order_refund")) == 1
    assert await round_at(10**6, real) == RetryRound()  # answered: never asked again
    assert await refunded_by_provider(alchemy, order.payment_reference) == 10000


async def test_a_round_stops_at_the_first_unanswered_ask_and_the_next_takes_the_rest(alchemy, settings, skus):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR6", {"BC-1": 1})
    first = await pending_refund(alchemy, order.id, 1000, "rr6a")
    await pending_refund(alchemy, order.id, 2000, "rr6b")
    round_at = rounds(alchemy, settings, first.created_at)
    assert await round_at(61, Unreachable()) == RetryRound(refunds=1)  # still down: the other waits
    assert await round_at(62, build_provider(settings, alchemy)) == RetryRound(refunds=1)  # its turn
    assert await round_at(122, build_provider(settings, alchemy)) == RetryRound(refunds=1)  # the first's
    assert {r.status for r in await read(alchemy, Refund, Refund.order_id == order.id)} == {"succeeded"}
    assert await refunded_by_provider(alchemy, order.payment_reference) == 3000


async def test_past_the_last_attempt_the_admin_is_told_to_check_and_a_retry_starts_again(
    admin, admin_id, alchemy, settings, skus, caplog
):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR7", {"BC-1": 1})
    refund = await pending_refund(alchemy, order.id, 1000, "rr7")
    round_at, down, hours = rounds(alchemy, settings, refund.created_at), Unreachable(), 7 * 3600
    for attempt in range(1, 21):  # the back-off is six hours at most: one round every seven hours
        assert await round_at(attempt * hours, down) == RetryRound(refunds=1)
    assert await round_at(21 * hours, down) == RetryRound()
    assert f"refund {refund.id} is still unanswered after 20 attempts: the worker stops" in caplog.text
    page = text_of((await admin.get(f"/admin/orders/{order.id}")).text)
    assert "The shop does not ask again by itself: check at the payment provider that it was not refunded" in page
    assert f"The payment provider did not answer for refund {refund.id} after 20 attempts" in page  # its history

    # An admin's Retry (the provider still down) hands it back to the worker, which asks again at once.
    async with write_session(alchemy) as session:
        person = await session.get(User, admin_id)
        again = await RefundService(session=session, provider=down).retry(refund.id, actor=person)  # type: ignore[arg-type]
    assert (again.status, again.retry_attempts, again.next_retry_at) == ("pending", 0, None)
    assert await round_at(21 * hours, build_provider(settings, alchemy)) == RetryRound(refunds=1)
    [done] = await read(alchemy, Refund, Refund.id == refund.id)
    assert done.status == "succeeded"


async def test_the_running_apps_worker_makes_a_pending_refund(alchemy, settings, skus):
    """The same through the app's own background task (``webshop.payments.worker``), polling fast."""
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR5", {"BC-1": 1})
    refund = await pending_refund(alchemy, order.id, 2500, "rr5")
    async with app_client(settings, alchemy, payment_poll_seconds=0.05, refund_retry_seconds=0.05):
        for _ in range(300):  # up to 15 s on a busy machine; done in a few rounds
            [row] = await read(alchemy, Refund, Refund.id == refund.id)
            if row.status != RefundStatus.PENDING.value:
                break
            await asyncio.sleep(0.05)
    assert (row.status, row.retry_attempts) == ("succeeded", 1)
    assert await refunded_by_provider(alchemy, order.payment_reference) == 2500


async def test_a_cancelled_orders_unanswered_refund_is_made_by_the_worker_once(admin, alchemy, settings, skus):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR2", {"BC-1": 1})
    async with write_session(alchemy) as session:
        cancelled = await OrderService(session=session).change_status(
            order.id, OrderStatus.CANCELLED, provider=Unreachable()
        )
    assert cancelled.refund_pending and cancelled.refund_amount == order.total
    round_at = rounds(alchemy, settings, datetime.now(UTC))
    real = build_provider(settings, alchemy)

    assert await round_at(0, real) == RetryRound()
    assert await round_at(61, Unreachable()) == RetryRound(orders=1)
    owed = text_of((await admin.get(f"/admin/orders/{order.id}")).text)
    assert "has not confirmed it. The shop asks again by itself (asked 1 time so far); you can also retry now." in owed
    assert await round_at(61 + 61, real) == RetryRound(orders=1)
    [done] = await read(alchemy, Order, Order.id == order.id)
    assert (done.status, done.refund_pending, done.refund_retry_attempts) == ("cancelled", False, 2)
    assert done.refund_reference and done.refunded_at is not None
    assert await round_at(10**6, real) == RetryRound()
    assert await refunded_by_provider(alchemy, order.payment_reference) == order.total


async def test_an_order_with_an_unanswered_refund_is_cancelled_only_once_it_is_answered(
    client, alchemy, settings, skus
):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR3", {"BC-1": 1})
    refund = await pending_refund(alchemy, order.id, 10000, "rr3")

    # The shopper's page offers no cancel; one posted anyway is refused with the reason; the API's is 409.
    await sign_in(client, CUSTOMER)
    assert "Cancel this order" not in (await client.get("/orders/WS-RR3")).text
    asked = text_of((await client.get("/orders/WS-RR3/cancel")).text)
    assert "Order WS-RR3 cannot be cancelled right now" in asked and "Yes, cancel this order" not in asked
    refused = await post(client, "/orders/WS-RR3/cancel", token_from="/orders/WS-RR3/cancel")
    assert refused.status_code == 409
    assert "is still waiting for the payment provider's answer" in text_of(refused.text)
    headers = {"Authorization": f"Bearer {(await token_pair(client, CUSTOMER))['access_token']}"}
    problem = assert_problem(await client.post(f"/api/orders/{order.id}/cancel", headers=headers), 409)
    assert "still waiting for the payment provider" in problem["detail"]
    [still] = await read(alchemy, Order, Order.id == order.id)
    assert (still.status, still.refund_amount, still.refunded_total) == ("paid", 0, 10000)

    # The worker gets the refund made; then the cancel refunds the rest, and all of it came back once.
    real = build_provider(settings, alchemy)
    assert await rounds(alchemy, settings, refund.created_at)(61, real) == RetryRound(refunds=1)
    assert "Cancel this order" in (await client.get("/orders/WS-RR3")).text
    cancelled = await post(client, "/orders/WS-RR3/cancel", token_from="/orders/WS-RR3/cancel")
    assert cancelled.status_code == 303, cancelled.text
    [done] = await read(alchemy, Order, Order.id == order.id)
    assert (done.status, done.refund_amount, done.refund_pending) == ("cancelled", order.total - 10000, False)
    assert await refunded_by_provider(alchemy, order.payment_reference) == order.total


async def test_a_cancel_racing_a_refund_never_leaves_a_cancelled_order_with_a_pending_refund(alchemy, settings, skus):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    for attempt in range(4):
        order = await paid_order(alchemy, settings, customer, f"WS-RR4{attempt}", {"EP-1": 1})

        async def refund(order_id: int = order.id, key: str = f"race-{attempt}") -> Any:
            async with write_session(alchemy) as session:
                return await RefundService(session=session, provider=Unreachable()).refund(  # type: ignore[arg-type]
                    order_id, amount=1000, actor=None, idempotency_key=key
                )

        async def cancel(order_id: int = order.id) -> Any:
            async with write_session(alchemy) as session:
                return await OrderService(session=session).change_status(
                    order_id, OrderStatus.CANCELLED, provider=Unreachable()
                )

        outcomes = await asyncio.gather(refund(), cancel(), return_exceptions=True)
        assert sum(not isinstance(outcome, BaseException) for outcome in outcomes) == 1, outcomes
        assert all(isinstance(o, DomainError) or not isinstance(o, BaseException) for o in outcomes), outcomes
        async with alchemy.get_session() as session:
            status = await session.scalar(select(Order.status).where(Order.id == order.id))
            pending = await session.scalar(
                select(func.count()).select_from(Refund).where(Refund.order_id == order.id, Refund.status == "pending")
            )
        assert (status, pending) in {("paid", 1), ("cancelled", 0)}


class Refusing:
    """A provider that answers every refund with no (the payment was disputed)."""

    name = "test"

    async def refund(self, **_: Any) -> RefundResult:
        return RefundResult(ok=False, failure_reason="The charge is disputed.")


async def test_a_refused_whole_refund_keeps_the_reason_is_left_to_the_admins_and_their_retry_makes_it_once(
    admin, client, alchemy, settings, skus
):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR8", {"BC-1": 1})
    async with write_session(alchemy) as session:
        cancelled = await OrderService(session=session).change_status(
            order.id, OrderStatus.CANCELLED, provider=Unreachable()
        )
    assert cancelled.refund_pending
    round_at = rounds(alchemy, settings, datetime.now(UTC))
    assert await round_at(61, Refusing()) == RetryRound(orders=1)  # answered: no
    [refused] = await read(alchemy, Order, Order.id == order.id)
    assert (refused.refund_pending, refused.refund_failure) == (True, "The charge is disputed.")
    assert await round_at(10**6, build_provider(settings, alchemy)) == RetryRound()  # never asked again by itself
    page = text_of((await admin.get(f"/admin/orders/{order.id}")).text)
    assert "is owed to the customer, but the payment provider refused it: The charge is disputed." in page
    assert "The shop does not ask again by itself: check the payment at the provider" in page
    total = format_money(order.total, order.currency)
    assert f"the payment provider refused the refund of {total}: The charge is disputed." in page  # its history

    # An admin retries through the API: made once, however often asked; others may not ask.
    headers = await admin_api(client, alchemy)
    url = f"/api/orders/{order.id}/whole-refund/retry"
    customer_headers = {"Authorization": f"Bearer {(await token_pair(client, CUSTOMER))['access_token']}"}
    assert_problem(await client.post(url, headers=customer_headers), 403)
    made = await client.post(url, headers=headers)
    assert made.status_code == 200, made.text
    body = made.json()
    assert (body["pending"], body["failure_reason"], body["amount"]["amount"]) == (False, "", order.total)
    assert body["reference"] and body["refunded_at"]
    assert (await client.post(url, headers=headers)).json() == body
    assert await refunded_by_provider(alchemy, order.payment_reference) == order.total
    assert "Refunded" in text_of((await admin.get(f"/admin/orders/{order.id}")).text)
    assert_problem(await client.post("/api/orders/999999/whole-refund/retry", headers=headers), 404)
    paid = await paid_order(alchemy, settings, customer, "WS-RR9", {"BC-1": 1})
    owes_nothing = await client.post(f"/api/orders/{paid.id}/whole-refund/retry", headers=headers)
    assert "owes no refund" in assert_problem(owes_nothing, 409)["detail"]


async def test_an_admins_retry_on_the_page_shows_a_refusal_and_forgets_it_when_the_provider_does_not_answer(
    admin_id, alchemy, settings, skus
):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR10", {"BC-1": 1})
    async with write_session(alchemy) as session:
        refused = await OrderService(session=session).change_status(
            order.id, OrderStatus.CANCELLED, provider=Refusing()
        )
    assert (refused.refund_failure, refused.refund_retry_attempts) == ("The charge is disputed.", 1000)
    async with write_session(alchemy) as session:
        person = await session.get(User, admin_id)
        again = await OrderService(session=session).settle_refund(order.id, actor=person, provider=Unreachable())
    assert (again.refund_pending, again.refund_failure, again.refund_retry_attempts) == (True, "", 0)
    assert await rounds(alchemy, settings, datetime.now(UTC))(61, build_provider(settings, alchemy)) == RetryRound(
        orders=1
    )
    [done] = await read(alchemy, Order, Order.id == order.id)
    assert not done.refund_pending and done.refund_failure == ""


async def test_the_api_retries_a_pending_refund_of_its_order_once(client, admin_id, alchemy, settings, skus):
    headers = await admin_api(client, alchemy)
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR11", {"BC-1": 1})
    other = await paid_order(alchemy, settings, customer, "WS-RR12", {"BC-1": 1})
    refund = await pending_refund(alchemy, order.id, 1500, "rr11")
    assert_problem(await client.post(f"/api/orders/{other.id}/refunds/{refund.id}/retry", headers=headers), 404)
    url = f"/api/orders/{order.id}/refunds/{refund.id}/retry"
    made = await client.post(url, headers=headers)
    assert made.status_code == 200, made.text
    body = made.json()
    assert (body["id"], body["status"], body["amount"]["amount"]) == (refund.id, "succeeded", 1500)
    assert body["credit_note"].startswith("CN-")
    assert (await client.post(url, headers=headers)).json() == body
    assert await refunded_by_provider(alchemy, order.payment_reference) == 1500
    customer_headers = {"Authorization": f"Bearer {(await token_pair(client, CUSTOMER))['access_token']}"}
    assert_problem(await client.post(url, headers=customer_headers), 403)


async def test_a_refused_refund_tells_the_refund_failed_webhook_once_and_gives_its_amount_back(
    admin_id, alchemy, settings, skus
):
    # An accounting system listening to refunds learns of each refusal (Stripe's ``refund.failed``):
    # a refused refund of an amount (final: once), then each refusal of the cancelled order's whole refund.
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-RR20", {"BC-1": 2})
    async with write_session(alchemy) as session:
        endpoint = WebhookEndpoint(
            url="https://hooks.example.com/refunds", secret="d" * 32, events=["refund.succeeded", "refund.failed"]
        )
        session.add(endpoint)
        await session.commit()
    async with write_session(alchemy) as session:
        refused = await RefundService(session=session, provider=Refusing()).refund(  # type: ignore[arg-type]
            order.id, amount=500, actor=None, idempotency_key="rr20"
        )
    assert (refused.status, refused.failure_reason) == ("failed", "The charge is disputed.")
    async with write_session(alchemy) as session:
        await RefundService(session=session, provider=Refusing()).retry(refused.id)  # final: not asked again
        cancelled = await OrderService(session=session).change_status(
            order.id, OrderStatus.CANCELLED, provider=Refusing()
        )
        person = await session.get(User, admin_id)
        await OrderService(session=session).settle_refund(order.id, actor=person, provider=Refusing())
    assert cancelled.refund_amount == order.total  # the refused $5.00 was given back to what is left

    async with alchemy.get_session() as session:
        deliveries = list(
            await session.scalars(
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id).order_by(WebhookDelivery.id)
            )
        )
    assert [delivery.event_type for delivery in deliveries] == ["refund.failed"] * 3
    amount, whole, again = (delivery.payload["data"] for delivery in deliveries)
    assert amount == {
        "id": refused.id,
        "order_id": order.id,
        "order_number": "WS-RR20",
        "currency": order.currency,
        "amount": 500,
        "reason": "",
        "lines": [],
        "is_shipping": False,
        "restock": False,
        "returned_by_shop": False,
        "reference": "",
        "credit_note": None,
        "refunded_at": None,
        "status": "failed",
        "failure_reason": "The charge is disputed.",
        "order_status": "paid",
        "order_refunded_total": 0,
    }
    assert whole == {
        **amount,
        "id": None,
        "amount": order.total,
        "reason": "Order cancelled",
        "order_status": "cancelled",
        "order_refunded_total": order.total,
    }
    assert again == whole and deliveries[1].event_id != deliveries[2].event_id  # an admin's Retry, refused again
