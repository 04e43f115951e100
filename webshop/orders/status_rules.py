"""The order state machine, without the database: which status may follow which (``TRANSITIONS``),
which moves return stock or money, and what a shopper may cancel. ``OrderService.transition`` applies it."""

from __future__ import annotations

from webshop.db.models import FulfilmentStatus, Order, OrderStatus

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.SHIPPED, S.CANCELLED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED, S.REFUNDED}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
# Moving into these from a status whose goods have not left the warehouse puts the stock back.
RESTOCKING = frozenset({S.CANCELLED, S.REFUNDED})
NOT_YET_SHIPPED = frozenset({S.PENDING, S.PAID})
# What a shopper may do to their own order.
SHOPPER_CANCELLABLE = NOT_YET_SHIPPED
# Moving into RESTOCKING from these gives a charged customer their money back.
REFUNDING_FROM = frozenset({S.PAID, S.SHIPPED, S.DELIVERED})


def refund_owed(order: Order, target: OrderStatus) -> int:
    """Minor units the customer gets back when ``order`` (in its current status) moves to ``target``.

    What is left of the total after the refunds already made (``refunded_total``), when the move cancels
    or refunds an order that was paid (through the provider, or another way: ``Order.paid_another_way``)
    and nothing is owed for it yet; else 0 (a pending order was never charged).
    """
    if target not in RESTOCKING or OrderStatus(order.status) not in REFUNDING_FROM:
        return 0
    if not order.money_received:
        return 0
    if order.refund_amount or order.refunded_at is not None:
        return 0
    return max(order.total - (order.refunded_total or 0), 0)


def shopper_may_cancel(order: Order) -> bool:
    """True while the shopper may cancel ``order``: not shipped yet, not even one shop's part of it
    (its parts loaded; the rule ``cancel_by_shopper`` and ``transition`` enforce)."""
    return OrderStatus(order.status) in SHOPPER_CANCELLABLE and not any(part.shipped for part in order.fulfilments)


def can_transition(current: str, target: str) -> bool:
    """True when ``TRANSITIONS`` allows ``current`` → ``target``."""
    try:
        return OrderStatus(target) in TRANSITIONS[OrderStatus(current)]
    except ValueError:
        return False


def moves_from(order: Order) -> frozenset[OrderStatus]:
    """The statuses ``order`` may move to now (its parts loaded): ``TRANSITIONS``, less cancelling or
    refunding it whole with its stock put back once a shop has shipped its part, and shipping it when
    every part was closed because all its items were refunded or when a part is still to send of an order
    of several shops' parts, each with its own parcel (as ``OrderService.transition`` refuses all three)."""
    allowed = TRANSITIONS[OrderStatus(order.status)]
    shipped = any(part.shipped for part in order.fulfilments)
    if OrderStatus(order.status) in NOT_YET_SHIPPED and shipped:
        allowed = allowed - RESTOCKING
    waiting = sum(part.status == FulfilmentStatus.PENDING.value for part in order.fulfilments)
    if nothing_left_to_ship(order) or waiting > 1 or (waiting and shipped):
        allowed = allowed - {S.SHIPPED}
    return allowed


def nothing_left_to_ship(order: Order) -> bool:
    """True when every shop's part of ``order`` (its parts loaded) was closed unshipped because all its
    items were refunded (``webshop.orders.fulfilment.close_refunded_parts``): it cannot ship."""
    return bool(order.fulfilments) and all(part.closed for part in order.fulfilments)
