"""E-mails to the people who send a shop's part of an order (issue 16): what to send, and what not to.

* ``shop_new_order``: the order is paid; the shop's lines, their share of the discount, its part's
  shipping and the address (``announce_payment``).
* ``shop_order_cancelled``: the order was cancelled, or refunded in full, before the shop sent its part:
  send nothing (``OrderService.transition``, ``RefundService``).
* ``shop_items_refunded``: some of the shop's unsent items were refunded: leave those out, and what is
  still to send (``RefundService``).

Each goes to the shop's active members; a shop without an active member (the default shop of a
single-seller shop, a shop not staffed yet) is run by the administrators, so every active admin gets
its e-mails (``shop_staff``). All are queued in the caller's transaction (``webshop.mail.outbox``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from webshop.db.models import (
    Fulfilment,
    Order,
    OrderLine,
    OutboundEmail,
    ShopMember,
    User,
    UserRole,
)
from webshop.mail.outbox import queue_email, settings_of
from webshop.orders.refunding import units_refunded

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


async def shop_staff(session: AsyncSession, shop_ids: Collection[int]) -> list[tuple[int, User]]:
    """Who hears of the orders of the shops ``shop_ids``: ``[(shop id, user)]``, each shop's active
    members (by account); for a shop without an active member (the default shop of a
    single-seller shop, a shop not staffed yet), every active admin, so each order reaches someone."""
    members: list[tuple[int, User]] = [
        (shop_id, user)
        for shop_id, user in await session.execute(
            select(ShopMember.shop_id, User)
            .join(User, User.id == ShopMember.user_id)
            .where(ShopMember.shop_id.in_(list(shop_ids)), User.is_active.is_(True))
            .order_by(ShopMember.shop_id, User.id)
        )
    ]
    unstaffed = sorted(set(shop_ids) - {shop_id for shop_id, _user in members})
    if unstaffed:
        admins = list(
            await session.scalars(
                select(User).where(User.role == UserRole.ADMIN.value, User.is_active.is_(True)).order_by(User.id)
            )
        )
        members += [(shop_id, admin) for shop_id in unstaffed for admin in admins]
    return members


async def _parts_and_lines(session: AsyncSession, order: Order) -> tuple[dict[int, Fulfilment], list[OrderLine]]:
    """The order's parts by shop id (not those of shops deleted since: ``shop_id`` NULL, no staff to
    tell), and its lines in order."""
    # Read afresh: a part may have been closed by a conditional UPDATE in this transaction.
    fresh = select(Fulfilment).where(Fulfilment.order_id == order.id).execution_options(populate_existing=True)
    parts = {part.shop_id: part for part in await session.scalars(fresh) if part.shop_id is not None}
    lines = list(await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)))
    return parts, lines


def _queue_to_staff(
    session: AsyncSession, staff: Sequence[tuple[int, User]], kind: str, context_of: dict[int, dict[str, Any]]
) -> list[OutboundEmail]:
    """Queue ``kind`` to each of ``staff`` with their shop's context (shops without one are skipped)."""
    queued = []
    for shop_id, member in staff:
        if shop_id in context_of:
            context = {**context_of[shop_id], "user": member}
            queued.append(queue_email(session, to=member.email, kind=kind, context=context))
    return queued


def _part_context(session: AsyncSession, order: Order, part: Fulfilment) -> dict[str, Any]:
    """What every shop e-mail about ``part`` shows: the order, the part, and the link to the order's
    admin page (where the shop's staff see their lines and ship them)."""
    base_url = settings_of(session).shop.base_url
    return {"order": order, "part": part, "order_url": f"{base_url}/admin/orders/{order.id}"}


async def queue_shop_order_emails(session: AsyncSession, order: Order) -> list[OutboundEmail]:
    """Queue ``shop_new_order`` to the staff of each shop that sold lines of the paid ``order``: that
    shop's lines only, their share of the order's discount, its part's shipping and where to send it."""
    parts, lines = await _parts_and_lines(session, order)
    contexts = {}
    for shop_id, part in parts.items():
        theirs = [line for line in lines if part.holds(line)]
        contexts[shop_id] = {
            **_part_context(session, order, part),
            "lines": theirs,
            "subtotal": sum(line.line_total for line in theirs),
            # The order's promotions split over its lines (``OrderLine.discount``): this shop's share.
            "discount": sum(line.discount for line in theirs),
            "address_lines": order.shipping_address_lines(),
        }
    return _queue_to_staff(session, await shop_staff(session, parts), "shop_new_order", contexts)


async def queue_shop_cancel_emails(
    session: AsyncSession, order: Order, refunded_now: Sequence[tuple[OrderLine, int]] = ()
) -> list[OutboundEmail]:
    """Queue ``shop_order_cancelled`` to the staff of each shop whose part of ``order`` (cancelled, or
    refunded in full: ``order.status`` says which) was still to be sent, so nobody sends it. It lists
    ``[(line, units)]`` the units no earlier refund gave back (those were announced by
    ``shop_items_refunded`` as each succeeded); ``refunded_now``: ``[(line, units)]`` of the refund that
    completed the order's refunds, listed here instead. A part with nothing to list is not written to.

    Call it only for an order the shops had been told of (it was paid): parts already shipped or
    closed are not written to."""
    parts, lines = await _parts_and_lines(session, order)
    before = await units_refunded(session, order.id, succeeded_only=True)
    for line, units in refunded_now:
        before[line.id] = before.get(line.id, 0) - units
    contexts = {}
    for shop_id, part in parts.items():
        left = _units_left(part, lines, before)
        if left and not (part.shipped or part.closed):
            contexts[shop_id] = {**_part_context(session, order, part), "lines": left}
    return _queue_to_staff(session, await shop_staff(session, contexts), "shop_order_cancelled", contexts)


async def queue_shop_refund_emails(
    session: AsyncSession, order: Order, refunded: Sequence[tuple[OrderLine, int]]
) -> list[OutboundEmail]:
    """Queue ``shop_items_refunded`` to the staff of each shop that had not sent its part of ``order``
    and has lines in a refund that just succeeded (``refunded``: ``[(line, units)]`` of that refund).
    The e-mail names the units to leave out and what is still to send: the units no refund that has
    not failed covers (nothing, when the refund closed the part:
    ``webshop.orders.fulfilment.close_refunded_parts``)."""
    parts, lines = await _parts_and_lines(session, order)
    done = await units_refunded(session, order.id)
    contexts = {}
    for shop_id, part in parts.items():
        left_out = [(line, units) for line, units in refunded if part.holds(line) and units > 0]
        if part.shipped or not left_out:
            continue
        contexts[shop_id] = {
            **_part_context(session, order, part),
            "left_out": left_out,
            "to_send": _units_left(part, lines, done),
        }
    return _queue_to_staff(session, await shop_staff(session, contexts), "shop_items_refunded", contexts)


def _units_left(part: Fulfilment, lines: Sequence[OrderLine], refunded: dict[int, int]) -> list[tuple[OrderLine, int]]:
    """``[(line, units)]`` of ``part``'s lines with the units no refund covers (``refunded``: units by
    line id), lines with none left out."""
    left = [(line, line.quantity - refunded.get(line.id, 0)) for line in lines if part.holds(line)]
    return [(line, units) for line, units in left if units > 0]
