"""Effects of an order's status change (``OrderService.transition``, which also releases promotion uses,
audits, and queues the e-mail and the webhook): a cancelled or wholly refunded order's unshipped stock
goes back, a shipped order ships every shop's part, and a paid order is invoiced and announced (also
when its payment arrives: ``webshop.payments.service``).

All run in the caller's transaction, so they commit or roll back with the status change itself.
"""

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.summaries import refresh_product_summaries
from webshop.db.models import Fulfilment, FulfilmentStatus, Order, OrderStatus, Refund, RefundStatus, StockReason
from webshop.errors import InvalidTransition
from webshop.invoices.numbering import issue_invoice
from webshop.mail.outbox import queue_order_email
from webshop.mail.shop_emails import queue_shop_order_emails
from webshop.orders.refunding import units_refunded
from webshop.orders.status_rules import NOT_YET_SHIPPED, RESTOCKING
from webshop.stock.service import return_stock
from webshop.webhooks.events import queue_stock_lows_of_sale


async def announce_payment(session: AsyncSession, order: Order, *, invoice_prefix: str, now: datetime) -> None:
    """What an order's payment brings, in the transaction that marks it paid (so all of it happens once,
    or none): its invoice, numbered now (gap-free, ``webshop.invoices.numbering``), the shopper's
    confirmation e-mail, each shop's e-mail about its part, and the ``stock.low`` webhooks of the sale (queue
    ``order.paid`` first: receivers hear of the payment, then of the stock it took). Whether the provider said
    so (``PaymentService``) or an admin marked it paid (``OrderService.transition``)."""
    await issue_invoice(session, order, prefix=invoice_prefix, now=now)
    await queue_order_email(session, order, "order_confirmation")
    await queue_shop_order_emails(session, order)
    await queue_stock_lows_of_sale(session, order)


async def refuse_blocked(session: AsyncSession, order: Order, current: OrderStatus, target: OrderStatus) -> None:
    """Refuse a status change ``TRANSITIONS`` allows but the order's parts or refunds do not, read with
    the order's row locked (``lock_order``), so a part shipping or a refund claimed meanwhile is seen.

    Raises:
        InvalidTransition: a cancel or whole refund of an unshipped order one shop has sent its part of
            (those goods are on their way: their stock must not come back); a cancel or whole refund while a
            refund waits for the provider (``refunds_pending``); shipping an order every part of which was
            closed unshipped (``nothing_to_ship``); shipping in one go an order of several shops' parts
            with one still to send (``several_parts_message``): only a single-part order ships in one go.
    """
    if target in RESTOCKING and current in NOT_YET_SHIPPED and await parts_shipped(session, order.id):
        raise InvalidTransition(f"Part of order {order.number} has shipped; it can no longer be cancelled.")
    if target in RESTOCKING and await refunds_pending(session, order.id):
        raise InvalidTransition(
            f"A refund of order {order.number} is still waiting for the payment provider's answer; the order "
            "can be cancelled or refunded in full once it has one. Please try again later."
        )
    if target == OrderStatus.SHIPPED and await nothing_to_ship(session, order.id):
        raise InvalidTransition(f"Every item of order {order.number} was refunded; there is nothing to ship.")
    waiting = await parts_pending(session, order.id) if target == OrderStatus.SHIPPED else 0
    if waiting > 1 or (waiting and await parts_shipped(session, order.id)):
        raise InvalidTransition(several_parts_message(order.number, waiting))


def several_parts_message(number: str, waiting: int) -> str:
    """Why an order with ``waiting`` shops' parts still to send does not ship in one go: each shop sends
    its own parcel, with its own carrier and tracking number (and one click must not tell the shopper a
    parcel left that a seller has not sent)."""
    if waiting == 1:
        return (
            f"Order {number} has one shop's part still to ship (the others have shipped): mark that part "
            "shipped on its own, with its carrier and tracking number."
        )
    return (
        f"Order {number} has parts from {waiting} shops still to ship: mark each part shipped on its own, "
        "with its carrier and tracking number."
    )


async def parts_pending(session: AsyncSession, order_id: int) -> int:
    """How many shops' parts of the order are still to ship, counted once the order's row is locked."""
    return await _count_locked(session, order_id, Fulfilment, FulfilmentStatus.PENDING.value)


async def lock_order(session: AsyncSession, order_id: int) -> None:
    """Lock the order's row until the caller's transaction ends (``SELECT … FOR UPDATE``; on SQLite the
    writer's lock, taken by ``BEGIN IMMEDIATE``, does it): shipping a part, cancelling and refunding take
    it first, so they happen one after the other and each reads what the one before did."""
    await session.execute(select(Order.id).where(Order.id == order_id).with_for_update())


async def parts_shipped(session: AsyncSession, order_id: int) -> int:
    """How many shops' parts of the order have shipped, read after the order's row is locked (``FOR UPDATE``;
    SQLite's writer lock does the same), so a part that ships meanwhile (``FulfilmentService.ship`` takes the
    same lock first) is seen: a cancel or refund that would put shipped goods back in stock is refused."""
    return await _count_locked(session, order_id, Fulfilment, FulfilmentStatus.SHIPPED.value)


async def refunds_pending(session: AsyncSession, order_id: int) -> int:
    """How many refunds of the order the payment provider has not answered yet (``pending``), read after
    the order's row is locked, as ``parts_shipped``: a refund being claimed meanwhile
    (``webshop.orders.refunds`` takes the same lock first) is seen. A cancel or whole refund waits for them,
    because the whole refund is what no refund has claimed, and a pending one that the provider then
    refuses would give its claim back to nobody."""
    return await _count_locked(session, order_id, Refund, RefundStatus.PENDING.value)


async def _count_locked(session: AsyncSession, order_id: int, model: type[Fulfilment | Refund], status: str) -> int:
    """How many ``model`` rows (a shop's part, a refund) of the order have ``status``, counted once the
    order's row is locked (``lock_order``)."""
    await lock_order(session, order_id)
    count = await session.scalar(
        select(func.count()).select_from(model).where(model.order_id == order_id, model.status == status)
    )
    return int(count or 0)


async def nothing_to_ship(session: AsyncSession, order_id: int) -> bool:
    """True when the order has shops' parts and every one is closed unshipped (each unit refunded:
    ``webshop.orders.fulfilment.close_refunded_parts``), so it cannot become ``shipped``; read with the
    order's row locked, as ``parts_shipped``."""
    await lock_order(session, order_id)
    statuses = set(await session.scalars(select(Fulfilment.status).where(Fulfilment.order_id == order_id)))
    return statuses == {FulfilmentStatus.CANCELLED.value}


async def return_unshipped_stock(
    session: AsyncSession, order: Order, reference: str, *, reason: StockReason = StockReason.CANCELLATION
) -> None:
    """Put a cancelled (or wholly refunded) order's unshipped units back in stock, in the caller's
    transaction, with ``reason`` (``refund`` for a whole-order refund) and ``reference`` in the stock
    ledger; units a partial refund covered went back to stock with it (or were meant to stay out) and are
    not returned twice."""
    refunded = await units_refunded(session, order.id)
    for line in order.lines:
        units = line.quantity - refunded.get(line.id, 0)
        if line.variant_id is not None and units > 0:
            await return_stock(session, line.variant_id, units, reason=reason, reference=reference)
    # Returned stock can turn a product's "in stock" flag back on (catalog filters and caches).
    await refresh_product_summaries(session, [line.product_id for line in order.lines])


async def ship_every_part(session: AsyncSession, order: Order, now: datetime) -> None:
    """The whole order ships: every shop's part still pending ships with it (issue 16)."""
    await session.execute(
        update(Fulfilment)
        .where(Fulfilment.order_id == order.id, Fulfilment.status == FulfilmentStatus.PENDING.value)
        .values(status=FulfilmentStatus.SHIPPED.value, shipped_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
