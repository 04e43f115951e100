"""An order's payment still open at the provider when the order stops waiting for it: closed there, so
that the provider takes no money the order no longer expects. After a cancel (``close_unpaid_payment``),
and before an admin marks an order paid another way (``close_for_manual_payment``).

Both call the provider, so both run with no transaction open (no lock or SQLite write turn waits for
the network), as the payment expiry worker does (``webshop.payments.service``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from webshop.db.models import Order, OrderStatus, PaymentStatus
from webshop.errors import InvalidTransition
from webshop.payments.provider import PaymentProvider

logger = logging.getLogger("webshop.orders")

CLOSING_FOR_MANUAL_PAYMENT = "Closed by the shop: the order is paid another way."
"""``payment_failure`` of a pending order whose provider payment is being cancelled because an admin marks it
paid (``close_for_manual_payment``); the provider's "cancelled" event about it leaves the order alone."""

OPEN_PAYMENT = frozenset({PaymentStatus.REQUIRES_PAYMENT, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING})
"""Payment statuses in which the provider may still take the shopper's money."""


async def _cancel_at_provider(order: Order, provider: PaymentProvider) -> PaymentStatus | None:
    """Cancel ``order``'s open payment at ``provider``; the status it has there afterwards (``cancelled``,
    or ``succeeded``/``failed`` when it ended meanwhile); ``None`` when the order has no open payment.

    Raises:
        Exception: whatever the provider's client raises when it cannot be reached.
    """
    if order.payment_status not in OPEN_PAYMENT or not order.payment_reference:
        return None
    try:
        intent = await provider.cancel_intent(order.payment_reference)
    except LookupError:
        return PaymentStatus.CANCELLED  # the provider never heard of it: nothing can be paid
    return intent.status


async def record_payment_status(session: AsyncSession, order: Order, status: PaymentStatus) -> bool:
    """Set ``order``'s ``payment_status`` to ``status`` (and drop its payment page) while it is still
    open, in the caller's transaction; whether it changed. The loaded ``order`` shows it too."""
    changed = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.payment_status.in_([open_status.value for open_status in OPEN_PAYMENT]))
        .values(payment_status=status.value, payment_url="", payment_failure="", updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    if changed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    set_committed_value(order, "payment_status", status.value)
    set_committed_value(order, "payment_url", "")
    return True


async def close_unpaid_payment(session: AsyncSession, order: Order, provider: PaymentProvider) -> Order:
    """Cancel at ``provider`` the open payment of ``order`` once the order was cancelled unpaid, and record
    its ``payment_status`` as ``cancelled`` (committed).

    The provider's payment page then refuses the card (the test provider's page; Stripe's cancelled
    PaymentIntent or expired Checkout Session). A payment that went through meanwhile is left as the
    provider says: its webhook or the shopper's return reaches ``PaymentService.apply``, which refunds a
    paid cancelled order in full. A provider that cannot be reached leaves the status as it was (a later
    payment is refunded the same way).

    Returns:
        ``order``, its ``payment_status`` and ``payment_url`` updated when the payment was closed.
    """
    if order.status != OrderStatus.CANCELLED.value:
        return order
    try:
        status = await _cancel_at_provider(order, provider)
    except Exception:
        logger.exception("could not cancel the payment of cancelled order %s", order.number)
        return order
    if status == PaymentStatus.CANCELLED:  # paid or failed meanwhile: PaymentService.apply hears it
        await record_payment_status(session, order, status)
        await session.commit()
    return order


async def _mark(session: AsyncSession, order_id: int, failure: str) -> None:
    """Set a pending order's ``payment_failure`` (``CLOSING_FOR_MANUAL_PAYMENT`` or ``""``); committed."""
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status == OrderStatus.PENDING.value)
        .values(payment_failure=failure)
        .execution_options(synchronize_session=False)
    )
    await session.commit()


async def close_for_manual_payment(
    session: AsyncSession, order: Order, provider: PaymentProvider
) -> PaymentStatus | None:
    """Before an admin marks ``order`` paid (paid another way: a bank transfer, cash at the counter), its
    open payment at ``provider`` is cancelled, so the shopper cannot pay it there as well: a customer is
    not charged twice. Ends the caller's read transaction first (the provider is called outside one).

    The order is marked first (``CLOSING_FOR_MANUAL_PAYMENT``), so the provider's "cancelled" event about
    this very payment does not cancel the order meanwhile (``PaymentService._failed``).

    Returns:
        The payment status to record with the paid order (``record_payment_status``): ``cancelled`` or
        ``failed``; ``None`` when the order has no open payment.

    Raises:
        InvalidTransition: the provider could not be reached, or the customer's payment cannot be
            cancelled any more (it is being processed, waits for their bank, or went through): the order
            stays as it was (409: look again in a moment).
    """
    number = order.number
    if order.payment_status not in OPEN_PAYMENT or not order.payment_reference:
        await session.commit()
        return None
    await _mark(session, order.id, CLOSING_FOR_MANUAL_PAYMENT)
    try:
        status = await _cancel_at_provider(order, provider)
    except Exception as error:
        logger.exception("could not cancel the payment of order %s before marking it paid", number)
        await _mark(session, order.id, "")
        raise InvalidTransition(
            f"Order {number}'s payment could not be closed at the payment provider, so it was not marked paid "
            "(the customer could still pay it there). Try again in a moment."
        ) from error
    if status in (None, PaymentStatus.CANCELLED, PaymentStatus.FAILED):
        return status
    await _mark(session, order.id, "")
    if status == PaymentStatus.SUCCEEDED:
        raise InvalidTransition(
            f"The customer has just paid order {number} at the payment provider, so it was not marked paid by "
            "hand: it becomes paid as the provider reports it. Look again in a moment."
        )
    raise InvalidTransition(
        f"The customer is paying order {number} at the payment provider right now ({status.value}), so it was "
        "not marked paid. Look again in a moment: the order follows what the provider says."
    )
