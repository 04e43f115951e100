"""An order's payment: acting on what the provider says, exactly once, whoever says it first.

The outcome of a payment reaches the shop by three roads that may arrive in any order, twice, or at the
same moment: the shopper's **return** from the hosted page (the shop then asks the provider, server to
server), the provider's signed **webhook**, and the **background worker** (asking about orders whose
payment time ran out). All three end in ``PaymentService.apply(order_id, intent)``, and every change it
makes is one conditional ``UPDATE orders ... WHERE status = 'pending'``, so exactly one caller wins on
both engines (PostgreSQL's row lock; SQLite's single writer):

* **succeeded** → the order becomes paid; in the same transaction it gets its invoice number (gap-free,
  ``webshop.invoices.numbering``), the confirmation e-mail and the shops' e-mails join the outbox, and
  the ``order.paid`` and ``stock.low`` webhooks are queued. So: paid once, one e-mail, one number.
* **failed** or **cancelled** → the order is cancelled and its stock returned (a ``cancellation``
  movement), once (``OrderService.transition``); an account's cart gets the lines back.
* a payment that succeeds for an order **already cancelled** (it expired, or an admin cancelled it,
  while the shopper was paying) → the whole amount is recorded as owed and refunded at once through the
  provider, and the shopper is told by e-mail (``refund_amount`` is claimed by a conditional update, so
  this too happens once).
* anything else (``requires_action``, ``processing``) is only recorded for the order's page.

The provider is never called inside a transaction (no lock or SQLite write turn waits for the network).
Webhook events are also remembered by id (``PaymentEvent``), so a duplicate is ignored before any work.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.audit.service import Audited
from webshop.cart.service import CartOwner, CartService
from webshop.db.models import Order, OrderStatus, PaymentEvent, PaymentStatus
from webshop.db.repository import repository_for
from webshop.errors import InvalidTransition
from webshop.mail.outbox import queue_order_email
from webshop.money import format_money
from webshop.orders.open_payments import CLOSING_FOR_MANUAL_PAYMENT
from webshop.orders.service import OrderService
from webshop.orders.transition_effects import announce_payment
from webshop.payments.provider import (
    CANCELLED_BY_SHOPPER,
    EXPIRED,
    Intent,
    PaymentProvider,
    ProviderEvent,
    ProviderUnavailable,
)
from webshop.webhooks.events import queue_order_change

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import InvoiceSettings, PaymentSettings

logger = logging.getLogger("webshop.payments")

EXPIRY_BATCH = 50
"""Orders one round of the background worker looks at, at most."""


def _card(order: Order) -> str:
    """The order trail's ", card ending 4242" (nothing when the provider named no card)."""
    return f", card ending {order.card_last4}" if order.card_last4 else ""


class PaymentService(Audited, SQLAlchemyAsyncRepositoryService[Order]):
    """Applies what the provider says about orders' payments (see the module docstring).

    Args:
        session: The session to work in; this service commits its own transactions.
        provider: The app's payment provider.
        payments: ``WEBSHOP_PAYMENT_*`` settings (the payment time limit).
        invoices: Invoice settings (the invoice number prefix).
    """

    repository_type = repository_for(Order)

    def __init__(
        self,
        session: AsyncSession,
        *,
        provider: PaymentProvider,
        payments: PaymentSettings,
        invoices: InvoiceSettings,
        **repo_kwargs: Any,
    ) -> None:
        super().__init__(session=session, **repo_kwargs)
        self.provider = provider
        self.payments = payments
        self.invoices = invoices

    def expires_at(self, now: datetime | None = None) -> datetime:
        """When an order placed ``now`` is cancelled if still unpaid (``WEBSHOP_PAYMENT_TIMEOUT_MINUTES``)."""
        return (now or datetime.now(UTC)) + timedelta(minutes=self.payments.timeout_minutes)

    async def _load(self, order_id: int) -> Order:
        session = self.repository.session
        order: Order | None = await session.scalar(
            select(Order)
            .where(Order.id == order_id)
            .options(selectinload(Order.lines), selectinload(Order.fulfilments))
            .execution_options(populate_existing=True)
        )
        if order is None:
            raise LookupError(f"no order {order_id}")
        return order

    async def record_intent(self, order: Order, intent: Intent) -> Order:
        """Keep the intent the provider made for ``order`` (its reference and hosted page), then
        ``apply`` what it says. Committed."""
        session = self.repository.session
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == OrderStatus.PENDING.value)
            .values(payment_reference=intent.reference, payment_url=intent.redirect_url, updated_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        return await self.apply(order.id, intent)

    async def apply(self, order_id: int, intent: Intent) -> Order:
        """Act on ``intent``'s status for the order ``order_id``, exactly once (module docstring).

        Returns:
            The order as committed afterwards (its lines and parts loaded).
        """
        status = intent.status
        if status == PaymentStatus.SUCCEEDED:
            return await self._paid(order_id, intent)
        if status in (PaymentStatus.FAILED, PaymentStatus.CANCELLED):
            return await self._failed(order_id, intent)
        session = self.repository.session
        values: dict[str, Any] = {
            "payment_status": status.value,
            "payment_failure": intent.failure_reason,
            "updated_at": datetime.now(UTC),
        }
        if intent.redirect_url:
            values["payment_url"] = intent.redirect_url
        await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == OrderStatus.PENDING.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        return await self._load(order_id)

    async def _paid(self, order_id: int, intent: Intent) -> Order:
        session = self.repository.session
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "status": OrderStatus.PAID.value,
            "paid_at": now,
            "payment_status": PaymentStatus.SUCCEEDED.value,
            "payment_reference": intent.reference,
            "payment_url": "",
            "payment_failure": "",
            "updated_at": now,
        }
        if intent.card_last4:
            values["card_last4"] = intent.card_last4[-4:]
        settled = await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == OrderStatus.PENDING.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        order = await self._load(order_id)
        if settled.rowcount == 1:
            # All in this transaction: paid, on the order's trail, numbered, announced; or none of it.
            paid = f"pending → paid, {format_money(order.total, order.currency)} ({intent.reference}{_card(order)})"
            self.audit.on_order(None, order, "payment", paid, {"status": [OrderStatus.PENDING.value, order.status]})
            await queue_order_change(session, order, OrderStatus.PENDING, OrderStatus.PAID)  # order.paid, then
            await announce_payment(session, order, invoice_prefix=self.invoices.invoice_prefix, now=now)  # stock.low
            await session.commit()
            return order
        if order.status == OrderStatus.CANCELLED.value and order.payment_status != PaymentStatus.SUCCEEDED.value:
            return await self._paid_after_cancel(order, intent)
        await session.commit()
        return order

    async def _paid_after_cancel(self, order: Order, intent: Intent) -> Order:
        """The payment succeeded for an order cancelled meanwhile: record it and what is owed (the whole
        total, once: a conditional update), tell the shopper, and refund it through the provider."""
        session = self.repository.session
        now = datetime.now(UTC)
        before = order.payment_status
        claimed = await session.execute(
            update(Order)
            .where(
                Order.id == order.id,
                Order.status == OrderStatus.CANCELLED.value,
                Order.payment_status != PaymentStatus.SUCCEEDED.value,
                Order.refund_amount == 0,
            )
            .values(
                payment_status=PaymentStatus.SUCCEEDED.value,
                payment_reference=intent.reference,
                card_last4=intent.card_last4[-4:] if intent.card_last4 else order.card_last4,
                refund_amount=Order.total,
                paid_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            await session.commit()
            return await self._load(order.id)
        order = await self._load(order.id)
        late = f"paid {format_money(order.total, order.currency)} after it was cancelled"
        late += f" ({intent.reference}{_card(order)}); the payment is refunded"
        self.audit.on_order(None, order, "payment", late, {"payment_status": [before, order.payment_status]})
        await queue_order_email(session, order, "order_cancelled")  # says the payment goes back
        await session.commit()
        logger.warning("order %s was paid after it was cancelled; refunding %s", order.number, order.total)
        orders = OrderService(session=session, provider=self.provider, invoices=self.invoices)
        return await orders.settle_refund(order.id)

    async def _failed(self, order_id: int, intent: Intent) -> Order:
        session = self.repository.session
        order = await self._load(order_id)
        closing = order.payment_failure == CLOSING_FOR_MANUAL_PAYMENT and intent.failure_reason != EXPIRED
        if order.status != OrderStatus.PENDING.value or (intent.status == PaymentStatus.CANCELLED and closing):
            await session.commit()  # settled already; or the shop cancelled this payment to mark the order paid
            return order
        if intent.status == PaymentStatus.CANCELLED:
            # A cancelled intent may still carry an earlier attempt's decline ("Try another card."), which is
            # not why the order is cancelled (QA); the time running out is.
            reason = EXPIRED if intent.failure_reason == EXPIRED else "The payment was cancelled."
        else:
            reason = intent.failure_reason or "The payment failed."
        # A shopper who cancelled the payment is sent back to the shop, which says so: no e-mail about an
        # order never confirmed to them (QA). A decline or the time running out may reach them elsewhere.
        told = intent.failure_reason != CANCELLED_BY_SHOPPER
        orders = OrderService(session=session, provider=self.provider, invoices=self.invoices)
        try:
            async with session.begin_nested():
                await session.execute(
                    update(Order)
                    .where(Order.id == order.id, Order.status == OrderStatus.PENDING.value)
                    .values(payment_status=intent.status.value, payment_failure=reason, payment_url="")
                    .execution_options(synchronize_session=False)
                )
                order.payment_status = intent.status.value  # no refund is owed: nothing was paid
                await orders.transition(
                    order,
                    OrderStatus.CANCELLED,
                    reference=f"{order.number} {intent.status}",
                    why=reason,
                    tell_customer=told,
                )
                lines = [(line.variant_id, line.quantity) for line in order.lines if line.variant_id is not None]
                owner = CartOwner(user_id=order.user_id, token=order.guest_cart_token)  # the account's first
                code = next((p["code"] for p in order.promotions or [] if p.get("code")), None)
                if owner.user_id is not None or owner.token:
                    await CartService(session=session).restore_lines(owner, lines, promotion_code=code)
        except InvalidTransition:  # another road cancelled or paid it first
            pass
        await session.commit()
        return await self._load(order_id)

    async def sync(self, order: Order) -> Order:
        """Ask the provider how the order's payment stands (server to server) and ``apply`` it: the
        shopper's return from the hosted page lands here. An order with no intent yet, or a provider that
        cannot be reached, is returned as it is."""
        if order.status != OrderStatus.PENDING.value or not order.payment_reference:
            return order
        session = self.repository.session
        if session.in_transaction():
            await session.commit()
        try:
            intent = await self.provider.retrieve_intent(order.payment_reference)
        except (ProviderUnavailable, LookupError):
            logger.warning("could not ask %s about the payment of order %s", self.provider.name, order.number)
            return order
        return await self.apply(order.id, intent)

    async def handle_event(self, event: ProviderEvent) -> bool:
        """Act on a verified webhook event once (``PaymentEvent`` remembers its id).

        Returns:
            False when the event was seen before (or concerns no order of this shop); True otherwise.
        """
        session = self.repository.session
        seen = await session.scalar(
            select(PaymentEvent.id).where(
                PaymentEvent.provider == self.provider.name, PaymentEvent.event_id == event.id
            )
        )
        if seen is not None:
            await session.commit()
            return False
        order_id = None
        if event.intent_reference and event.status is not None:
            order_id = await session.scalar(
                select(Order.id).where(
                    Order.payment_reference == event.intent_reference,
                    Order.payment_provider == self.provider.name,
                )
            )
        await session.commit()
        if order_id is not None and event.status is not None:
            intent = Intent(
                reference=event.intent_reference,
                status=event.status,
                amount=0,
                currency="",
                failure_reason=event.failure_reason,
                card_last4=event.card_last4,
            )
            await self.apply(order_id, intent)
        try:
            async with session.begin_nested():
                session.add(
                    PaymentEvent(
                        provider=self.provider.name,
                        event_id=event.id,
                        event_type=event.type[:60],
                        reference=event.intent_reference[:100],
                    )
                )
            await session.commit()
        except IntegrityError:  # the same event, delivered twice at once: the other copy recorded it
            await session.rollback()
            return False
        return order_id is not None

    async def expire_due(self, now: datetime | None = None) -> int:
        """The background worker's round: cancel the pending orders whose payment time ran out.

        Each is first cancelled at the provider (which answers ``succeeded`` if the shopper paid at the
        last moment: the order is then paid, not cancelled), then ``apply``'d. An order whose provider
        cannot be reached waits for the next round.

        Returns:
            How many orders were looked at.
        """
        session = self.repository.session
        moment = now or datetime.now(UTC)
        due = list(
            (
                await session.execute(
                    select(Order.id, Order.payment_reference)
                    .where(Order.status == OrderStatus.PENDING.value, Order.payment_expires_at <= moment)
                    .order_by(Order.payment_expires_at)
                    .limit(EXPIRY_BATCH)
                )
            ).all()
        )
        await session.commit()
        for order_id, reference in due:
            expired = Intent(reference=reference, status=PaymentStatus.CANCELLED, amount=0, currency="")
            if reference:
                try:
                    expired = await self.provider.cancel_intent(reference)
                except LookupError:
                    pass  # the provider never heard of it: nothing was paid
                except Exception:
                    logger.exception("could not cancel the payment of order %s; trying again later", order_id)
                    continue
            if expired.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.FAILED):
                expired = replace(expired, status=PaymentStatus.CANCELLED, failure_reason=EXPIRED)
            await self.apply(order_id, expired)
        return len(due)
