"""Checkout's three steps (reserve and commit, charge with no transaction open, settle), on both engines.

The payment provider here is a probe with the provider interface: while it "charges", it writes the
ordered variant's row from a connection of its own with a short lock timeout, which succeeds only
when checkout holds no lock on that row (PostgreSQL) and not SQLite's write lock.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from tests.shopper import SUCCESS_CARD, ready_to_pay
from webshop.checkout.payments import ChargeResult, RefundResult, TestPaymentProvider
from webshop.checkout.service import AddressInput, CheckoutService
from webshop.config import Settings
from webshop.db.models import AuditEvent, CartLine, Order, OrderStatus, OutboundEmail, StockMovement, User, Variant
from webshop.errors import PaymentDeclined
from webshop.orders.service import OrderService

ADDRESS = AddressInput(name="Ada", line1="1 Way", city="London", postal_code="N1", country="GB")
NO_TAX = Settings.from_flat(
    database_url="sqlite+aiosqlite://", secret_key="k" * 32, media_dir=Path("."), tax_rates={}
).shop
"""The shop's settings for these orders: no tax, so the amounts charged are the prices and shipping."""


async def write_elsewhere(db_url: str, sku: str) -> None:
    """Touch ``sku``'s row from another connection, failing fast if a lock on it (or SQLite's write
    lock) is held: ``sqlite3.OperationalError`` or ``asyncpg.LockNotAvailableError``."""
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        connection = sqlite3.connect(url.database or "", timeout=0.2, isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("UPDATE variants SET stock = stock WHERE sku = ?", (sku,))
            connection.execute("COMMIT")
        finally:
            connection.close()
        return
    connection = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await connection.execute("SET lock_timeout = '200ms'")
        await connection.execute("UPDATE variants SET stock = stock WHERE sku = $1", sku)
    finally:
        await connection.close()


class ProbeProvider:
    """Charges like the test provider after proving no lock is held; or cannot be reached at all."""

    name = "test"

    def __init__(self, db_url: str, sku: str, *, reachable: bool = True) -> None:
        self.db_url, self.sku, self.reachable = db_url, sku, reachable
        self.charges = 0
        self.inner = TestPaymentProvider()

    async def charge(self, *, amount: int, currency: str, card_number: str, idempotency_key: str) -> ChargeResult:
        self.charges += 1
        await write_elsewhere(self.db_url, self.sku)
        if not self.reachable:
            raise ConnectionError("the payment provider did not answer")
        return await self.inner.charge(
            amount=amount, currency=currency, card_number=card_number, idempotency_key=idempotency_key
        )

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        return await self.inner.refund(
            reference=reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )


async def place(alchemy, provider, token: str, card: str = SUCCESS_CARD) -> tuple[Order, bool]:
    async with alchemy.get_session() as session:
        user_id = await session.scalar(select(User.id).where(User.email == "buyer@example.com"))
        return await CheckoutService(session=session, shop=NO_TAX).place_order(
            user_id=user_id,
            address=ADDRESS,
            shipping_code="standard",
            card_number=card,
            checkout_token=token,
            provider=provider,
        )


async def figures(alchemy, sku: str) -> dict[str, object]:
    async with alchemy.get_session() as session:
        return {
            "stock": await session.scalar(select(Variant.stock).where(Variant.sku == sku)),
            "orders": list((await session.execute(select(Order.status))).scalars()),
            "cart units": await session.scalar(select(func.coalesce(func.sum(CartLine.quantity), 0))),
            "movements": await session.scalar(select(func.count()).select_from(StockMovement)),
            "e-mails": await session.scalar(select(func.count()).select_from(OutboundEmail)),
        }


async def test_the_card_is_charged_with_no_lock_held(client, alchemy, skus, db_url):
    await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 2)
    before = await figures(alchemy, "DC-1")
    provider = ProbeProvider(db_url, "DC-1")
    order, created = await place(alchemy, provider, "probe-token-0000000001")
    assert (created, order.status, provider.charges) == (True, "paid", 1)
    after = await figures(alchemy, "DC-1")
    assert after["stock"] == before["stock"] - 2
    assert after["orders"] == ["paid"]
    assert after["cart units"] == 0
    assert after["e-mails"] == before["e-mails"] + 1


async def test_a_declined_card_gives_back_stock_and_cart_with_no_lock_held(client, alchemy, skus, db_url):
    await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 2)
    before = await figures(alchemy, "DC-1")
    provider = ProbeProvider(db_url, "DC-1")
    try:
        await place(alchemy, provider, "probe-token-0000000002", card="4000000000000002")
    except PaymentDeclined as exc:
        assert "declined" in str(exc)
    else:
        raise AssertionError("a declined card placed an order")
    after = await figures(alchemy, "DC-1")
    assert (after["stock"], after["orders"], after["cart units"]) == (before["stock"], [], 2)
    assert after["e-mails"] == before["e-mails"]
    assert after["movements"] == before["movements"] + 2  # the sale and its return, in the ledger


async def test_an_unreachable_provider_leaves_a_pending_order_that_the_same_token_resumes(
    client, alchemy, skus, db_url
):
    await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 1)
    before = await figures(alchemy, "DC-1")
    try:
        await place(alchemy, ProbeProvider(db_url, "DC-1", reachable=False), "probe-token-0000000003")
    except ConnectionError:
        pass
    else:
        raise AssertionError("the charge did not fail")
    stalled = await figures(alchemy, "DC-1")
    assert stalled["orders"] == ["pending"]  # never lost: the stock stays reserved for it
    assert stalled["stock"] == before["stock"] - 1
    assert stalled["e-mails"] == before["e-mails"]
    # The shopper resubmits the same form (or the API client retries its Idempotency-Key).
    provider = ProbeProvider(db_url, "DC-1")
    order, created = await place(alchemy, provider, "probe-token-0000000003")
    assert (created, order.status, provider.charges) == (False, "paid", 1)
    again, _ = await place(alchemy, provider, "probe-token-0000000003")
    assert (again.id, provider.charges) == (order.id, 1)  # a paid order is not charged again
    after = await figures(alchemy, "DC-1")
    assert (after["orders"], after["stock"]) == (["paid"], before["stock"] - 1)
    assert after["e-mails"] == before["e-mails"] + 1  # one confirmation


class CancellingProvider(ProbeProvider):
    """While it charges, an admin cancels the pending order from a session of their own; the refund
    can be made to fail, as when the provider is down."""

    def __init__(self, db_url: str, sku: str, alchemy, *, refunds_work: bool = True) -> None:
        super().__init__(db_url, sku)
        self.alchemy, self.refunds_work, self.refunds = alchemy, refunds_work, 0

    async def charge(self, *, amount: int, currency: str, card_number: str, idempotency_key: str) -> ChargeResult:
        async with self.alchemy.get_session() as session:
            order_id = await session.scalar(select(Order.id).where(Order.checkout_token == idempotency_key))
            await OrderService(session=session).change_status(order_id, OrderStatus.CANCELLED)
        return await super().charge(
            amount=amount, currency=currency, card_number=card_number, idempotency_key=idempotency_key
        )

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        self.refunds += 1
        if not self.refunds_work:
            raise ConnectionError("the payment provider did not answer")
        return await super().refund(
            reference=reference, amount=amount, currency=currency, idempotency_key=idempotency_key
        )


async def test_an_order_cancelled_while_it_is_charged_is_refunded_and_the_refund_recorded(
    client, alchemy, skus, db_url
):
    await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 1)
    provider = CancellingProvider(db_url, "DC-1", alchemy)
    shown, _ = await place(alchemy, provider, "probe-token-0000000004")
    assert shown.status == "cancelled"  # the shopper lands on their order: cancelled, and refunded
    async with alchemy.get_session() as session:
        order = await session.scalar(select(Order).where(Order.id == shown.id))
        events = list(await session.scalars(select(AuditEvent.action).where(AuditEvent.entity_id == order.id)))
    assert (order.status, order.refund_amount, provider.refunds) == ("cancelled", order.total, 1)
    assert order.payment_reference and order.refund_reference and order.refunded_at is not None
    assert not order.refund_pending
    assert "refund" in events


async def test_when_that_refund_fails_it_stays_pending_for_the_admin_to_retry(client, alchemy, skus, db_url):
    await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 1)
    provider = CancellingProvider(db_url, "DC-1", alchemy, refunds_work=False)
    shown, _ = await place(alchemy, provider, "probe-token-0000000005")
    assert shown.status == "cancelled" and shown.refund_pending  # the money owed is on record
    assert shown.payment_reference and shown.refund_amount == shown.total
    async with alchemy.get_session() as session:
        provider.refunds_work = True
        settled = await OrderService(session=session).settle_refund(shown.id, provider=provider)
    assert not settled.refund_pending and settled.refund_reference
    assert provider.refunds == 2
