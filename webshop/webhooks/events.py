"""Queueing webhook events: one ``WebhookDelivery`` per subscribed endpoint, in the caller's transaction.

A domain service calls ``queue_event`` inside the transaction of the change the event reports (an
order placed, a product updated). If that transaction rolls back, the deliveries vanish with it and
nothing is sent; once it commits they are durable, and the background sender
(``webshop.webhooks.sender``) sends them even if the process dies right after (the transactional
outbox pattern, as for e-mail in ``webshop.mail.outbox``).

Every delivery of one event carries the same ``event_id`` (``evt_`` + 32 hex digits), kept across
retries, so a receiver de-duplicates by it (Standard Webhooks: ``webhook-id``).

The active endpoints are read once per transaction and kept in ``session.info`` until it ends (commit
or rollback), so a batch of a CSV import that reports 500 products asks for them once. When no endpoint
listens to an event, its payload is never built: the domain calls below (``queue_order_change``,
``queue_product_events``, ``queue_stock_low``) cost that one cached look-up and nothing more.

Where each event comes from (one service verb each, so pages, API and command line all emit it):

* ``order.placed`` and ``order.paid``: the order becomes paid, in the transaction that settles the
  payment (``CheckoutService._pay``; an admin marking a pending order paid, ``OrderService.transition``).
  A checkout whose stock or card fails leaves no order, so it emits nothing.
* ``order.shipped``, ``order.cancelled``, ``order.refunded``: ``OrderService.transition`` (the admin's
  status change, the shopper's cancel, the last shop part shipped in ``FulfilmentService.ship``, or the
  refund that closes the last unshipped part, ``webshop.orders.fulfilment.close_refunded_parts``).
* ``product.created`` / ``product.updated`` / ``product.deleted``: ``ProductService`` writes (variant
  edits and a restore are ``product.updated``) and each product a CSV import creates or changes. A
  stock level changing alone (a sale, an adjustment) is not ``product.updated``: ``stock.low`` says
  what matters of it.
* ``refund.succeeded``: a refund has been made, once, in the transaction that records it: of lines,
  an amount or a parcel's shipping (``webshop.orders.refunds``), or of a whole cancelled or refunded
  order (``webshop.orders.whole_refund``); an order never invoiced (paid after it was cancelled) has no
  refund row, and its ``order.cancelled`` gives the ``refund_amount``.
* ``refund.failed``: the payment provider refused a refund, in the transaction that records the
  refusal: once per refund of lines, an amount or a parcel's shipping (a refused one is final:
  ``webshop.orders.refunds``), once per refusal of a whole order's refund (an admin's Retry asks again:
  ``webshop.orders.whole_refund``). Not sent while the provider does not answer (the refund stays
  pending and is asked again).
* ``stock.low``: ``webshop.stock.service`` when a decrease takes a variant's stock from above its
  ``low_stock_threshold`` to at or below it (a sale, an adjustment, a level set); not again for
  further sales below it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from itertools import islice
from typing import TYPE_CHECKING, Any

from sqlalchemy import event as orm_event
from sqlalchemy import inspect, select
from sqlalchemy.orm import Session, SessionTransaction

from webshop.db.models import (
    DeliveryStatus,
    Order,
    OrderStatus,
    Product,
    Refund,
    User,
    Variant,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from webshop.webhooks.payloads import order_data, product_data, refund_data, stock_low_data

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

_ENDPOINTS_KEY = "webshop_webhook_endpoints"
"""Key in ``session.info`` of the active endpoints read in the current transaction: ``((id, events), ...)``."""
_CHUNK = 500
"""Products loaded per query when an event concerns many (a CSV import's batch)."""

ORDER_EVENTS: dict[tuple[OrderStatus | None, OrderStatus], tuple[WebhookEvent, ...]] = {
    (None, OrderStatus.PENDING): (WebhookEvent.ORDER_PLACED,),
    (None, OrderStatus.PAID): (WebhookEvent.ORDER_PAID,),
    (None, OrderStatus.SHIPPED): (WebhookEvent.ORDER_SHIPPED,),
    (None, OrderStatus.CANCELLED): (WebhookEvent.ORDER_CANCELLED,),
    (None, OrderStatus.REFUNDED): (WebhookEvent.ORDER_REFUNDED,),
}
"""The events of an order's status change ``(from, to)``; ``(None, to)`` matches any other ``from``.
An order is placed when checkout creates it (pending payment: ``(None, pending)``) and paid when its
payment succeeds; ``delivered`` has no event."""


def new_event_id() -> str:
    """A fresh event id: ``evt_`` and 32 hex digits (a random UUID)."""
    return f"evt_{uuid.uuid4().hex}"


def event_body(event_id: str, event: WebhookEvent | str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body every endpoint receives: ``{"id", "type", "created_at" (RFC 3339, UTC), "data"}``."""
    return {
        "id": event_id,
        "type": str(event),
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }


async def queue_event(session: AsyncSession, event: WebhookEvent, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Add one pending delivery of ``event`` for each active endpoint subscribed to it.

    Args:
        session: The session of the change the event reports; the caller commits (or rolls back,
            and then nothing is sent).
        event: What happened (``WebhookEvent.ORDER_PLACED``...).
        data: The event's object as JSON-ready values (ids, numbers, strings; money in minor units
            with its currency).

    Returns:
        The deliveries added (none when no endpoint listens: the common case costs one small query a
        transaction, see ``subscribers``).
    """
    # Imported here: the mail package imports the templating, which imports the catalog services that
    # import this module.
    from webshop.mail.outbox import mark_queued

    listening = await subscribers(session, event)
    if not listening:
        return []
    event_id = new_event_id()
    body = event_body(event_id, event, data)
    deliveries = [
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event_id=event_id,
            event_type=str(event),
            payload=body,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            last_error="",
        )
        for endpoint_id in listening
    ]
    session.add_all(deliveries)
    mark_queued(session)
    return deliveries


async def subscribers(session: AsyncSession, event: WebhookEvent) -> list[int]:
    """Ids of the active endpoints subscribed to ``event``, in id order.

    The active endpoints are read once per transaction (one query) and kept in ``session.info`` until
    the transaction ends: an endpoint added or switched off meanwhile counts from the next transaction.
    """
    endpoints: tuple[tuple[int, frozenset[str]], ...] | None = session.info.get(_ENDPOINTS_KEY)
    if endpoints is None:
        rows = await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events)
            .where(WebhookEndpoint.is_active.is_(True))
            .order_by(WebhookEndpoint.id)
        )
        endpoints = tuple((endpoint_id, frozenset(events or ())) for endpoint_id, events in rows)
        session.info[_ENDPOINTS_KEY] = endpoints
    return [endpoint_id for endpoint_id, events in endpoints if str(event) in events]


@orm_event.listens_for(Session, "after_transaction_end")
def _forget_endpoints(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended (committed, rolled back or closed; a savepoint's end is not it):
    # the next one reads the endpoints afresh.
    if transaction.parent is None:
        session.info.pop(_ENDPOINTS_KEY, None)


async def queue_order_change(
    session: AsyncSession, order: Order, before: OrderStatus | str | None, after: OrderStatus | str
) -> None:
    """Queue the events of ``order`` moving from status ``before`` to ``after`` (``ORDER_EVENTS``).

    Call it in the transaction of the change, after the change is written, with the order as it is
    now: its ``lines`` and ``fulfilments`` loaded (they are loaded here otherwise). Every event's
    ``data`` is ``payloads.order_data``; nothing is built when no endpoint listens.
    """
    events = ORDER_EVENTS.get((OrderStatus(before) if before else None, OrderStatus(after))) or ORDER_EVENTS.get(
        (None, OrderStatus(after)), ()
    )
    wanted = [event for event in events if await subscribers(session, event)]
    if not wanted:
        return
    unloaded = inspect(order).unloaded
    if "lines" in unloaded or "fulfilments" in unloaded:
        await session.refresh(order, ["lines", "fulfilments"])
    data = order_data(order, await session.get(User, order.user_id) if order.user_id is not None else None)
    for event in wanted:
        await queue_event(session, event, data)


async def queue_refund(
    session: AsyncSession,
    order: Order,
    refund: Refund,
    credit_note: str | None,
    event: WebhookEvent = WebhookEvent.REFUND_SUCCEEDED,
) -> None:
    """Queue ``refund.succeeded`` (or ``event``: ``refund.failed``) for ``refund`` of ``order``
    (``payloads.refund_data``: the refund's lines loaded, and the order's when it has any), in the
    transaction that records it as made (or refused)."""
    if await subscribers(session, event):
        await queue_event(session, event, refund_data(refund, order, credit_note))


async def queue_product_events(session: AsyncSession, event: WebhookEvent, product_ids: Iterable[int]) -> None:
    """Queue ``event`` (a ``product.*`` one) for each product of ``product_ids``, each with its own
    ``data`` (``payloads.product_data``) and event id.

    Call it in the transaction of the change, once it is written (pending changes are flushed by the
    reads). Nothing is read when no endpoint listens; otherwise two queries per 500 products (the
    products, then their variants read fresh: stock moves by updates the ORM does not track).
    """
    if not await subscribers(session, event):
        return
    ids = iter(dict.fromkeys(product_ids))
    while chunk := list(islice(ids, _CHUNK)):
        products = list(await session.scalars(select(Product).where(Product.id.in_(chunk)).order_by(Product.id)))
        variants: dict[int, list[Variant]] = {}
        for variant in await session.scalars(
            select(Variant)
            .where(Variant.product_id.in_(chunk))
            .order_by(Variant.product_id, Variant.position, Variant.id)
            .execution_options(populate_existing=True)
        ):
            variants.setdefault(variant.product_id, []).append(variant)
        for product in products:
            await queue_event(session, event, product_data(product, variants.get(product.id, [])))


def crossed_low(before: int, after: int, threshold: int) -> bool:
    """True when stock going from ``before`` to ``after`` units crosses ``threshold`` downwards: it was
    above it and is now at or below it (a sale already below it is no new news)."""
    return before > threshold >= after


async def queue_stock_low(session: AsyncSession, variant_id: int, before: int, after: int, threshold: int) -> None:
    """Queue ``stock.low`` for ``variant_id`` if its stock, changed from ``before`` to ``after`` units in
    this transaction, crossed its ``threshold`` downwards (``crossed_low``); ``data`` is
    ``payloads.stock_low_data``. Costs nothing when it did not cross or no endpoint listens.
    """
    if not crossed_low(before, after, threshold) or not await subscribers(session, WebhookEvent.STOCK_LOW):
        return
    row = (
        await session.execute(
            select(Variant, Product.name)
            .join(Product, Product.id == Variant.product_id)
            .where(Variant.id == variant_id)
            .execution_options(populate_existing=True)
        )
    ).first()
    if row is not None:
        variant, product_name = row
        await queue_event(session, WebhookEvent.STOCK_LOW, stock_low_data(variant, product_name))


async def queue_stock_lows_of_sale(session: AsyncSession, order: Order) -> None:
    """Queue ``stock.low`` for each variant a settled sale took to or below its threshold: a variant
    whose level now is at or below it and was above it before ``order``'s units left crossed it
    (``crossed_low``). One query, and none when no endpoint listens.
    """
    units: dict[int, int] = {}
    for line in order.lines:
        if line.variant_id is not None:
            units[line.variant_id] = units.get(line.variant_id, 0) + line.quantity
    if not units or not await subscribers(session, WebhookEvent.STOCK_LOW):
        return
    rows = await session.execute(
        select(Variant.id, Variant.stock, Variant.low_stock_threshold).where(Variant.id.in_(list(units)))
    )
    for variant_id, stock, threshold in rows.all():
        await queue_stock_low(session, variant_id, stock + units[variant_id], stock, threshold)
