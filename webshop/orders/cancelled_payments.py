"""The payment of an order cancelled before it was paid: closed at the provider, so that its payment page
takes no card afterwards (``close_unpaid_payment``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from webshop.db.models import Order, OrderStatus, PaymentStatus
from webshop.payments.provider import PaymentProvider

logger = logging.getLogger("webshop.orders")

OPEN_PAYMENT = frozenset({PaymentStatus.REQUIRES_PAYMENT, PaymentStatus.REQUIRES_ACTION, PaymentStatus.PROCESSING})
"""Payment statuses in which the provider may still take the shopper's money."""


async def close_unpaid_payment(session: AsyncSession, order: Order, provider: PaymentProvider) -> Order:
    """Cancel at ``provider`` the open payment of ``order`` once the order was cancelled unpaid, and record
    its ``payment_status`` as ``cancelled`` (committed). Call it with no transaction open: it is a network
    call (the payment expiry worker does the same for orders whose time ran out).

    The provider's payment page then refuses the card (the test provider's page; Stripe's cancelled
    PaymentIntent or expired Checkout Session). A payment that went through meanwhile is left as the
    provider says: its webhook or the shopper's return reaches ``PaymentService.apply``, which refunds a
    paid cancelled order in full. A provider that cannot be reached leaves the status as it was (a later
    payment is refunded the same way).

    Returns:
        ``order``, its ``payment_status`` and ``payment_url`` updated when the payment was closed.
    """
    if (
        order.status != OrderStatus.CANCELLED.value
        or order.payment_status not in OPEN_PAYMENT
        or not order.payment_reference
    ):
        return order
    try:
        intent = await provider.cancel_intent(order.payment_reference)
    except LookupError:
        pass  # the provider never heard of it: nothing can be paid
    except Exception:
        logger.exception("could not cancel the payment of cancelled order %s", order.number)
        return order
    else:
        if intent.status != PaymentStatus.CANCELLED:
            return order  # paid or failed meanwhile: PaymentService.apply hears it from the provider
    now = datetime.now(UTC)
    closed = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.payment_status.in_([status.value for status in OPEN_PAYMENT]))
        .values(payment_status=PaymentStatus.CANCELLED.value, payment_url="", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    if closed.rowcount == 1:  # type: ignore[attr-defined]
        set_committed_value(order, "payment_status", PaymentStatus.CANCELLED.value)
        set_committed_value(order, "payment_url", "")
    return order
