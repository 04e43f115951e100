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
        .values(payment_status=status.value, payment_url="", updated_at=datetime.now(UTC))
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


async def close_for_manual_payment(
    session: AsyncSession, order: Order, provider: PaymentProvider
) -> PaymentStatus | None:
    """Before an admin marks ``order`` paid (paid another way: a bank transfer, cash at the counter), its
    open payment at ``provider`` is cancelled, so the shopper cannot pay it there as well: a customer is
    never charged twice. Ends the caller's read transaction first (the provider is called outside one).

    Returns:
        The payment status to record with the paid order (``record_payment_status``): ``cancelled``, or
        what the payment became meanwhile (``succeeded`` when the shopper paid at the provider after all);
        ``None`` when the order has no open payment.

    Raises:
        InvalidTransition: the provider could not be reached; the order stays as it is (409: try again).
    """
    await session.commit()
    try:
        return await _cancel_at_provider(order, provider)
    except Exception as error:
        logger.exception("could not cancel the payment of order %s before marking it paid", order.number)
        raise InvalidTransition(
            f"Order {order.number}'s payment could not be closed at the payment provider, so it was not "
            "marked paid (the customer could still pay it there). Try again in a moment."
        ) from error
