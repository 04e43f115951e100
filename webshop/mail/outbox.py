"""The transactional outbox: an e-mail is a row written in the same transaction as what caused it.

``queue_email`` adds an ``OutboundEmail`` to the caller's session; nothing is sent yet. If the
transaction rolls back (a declined card), the row disappears with the order and nothing is sent; once
it commits, the row is durable and ``MailSender`` will send it even if the process dies right after.
(The "transactional outbox" pattern: Richardson, *Microservices Patterns*, ch. 3.)

After a commit that queued mail, the session's ``after_commit`` hook wakes every sender running in
this process, so a message usually leaves within milliseconds instead of at the next poll.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import false, or_, select
from sqlalchemy.orm import Session

from webshop.checkout.guest_links import order_link
from webshop.db.after_commit import call_after_commit
from webshop.db.engine import SETTINGS_INFO_KEY
from webshop.db.models import Fulfilment, Order, OrderLine, OutboundEmail, Refund, RefundLine, RefundStatus, User
from webshop.mail.render import render_email

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import Settings

logger = logging.getLogger("webshop.mail")

_QUEUED_KEY = "webshop_mail_queued"
_wakers: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Event]] = {}
_wakers_lock = threading.Lock()


def settings_of(session: AsyncSession | Session) -> Settings:
    """The app settings a session was made with (``create_alchemy_config`` puts them in ``session.info``).

    Raises:
        RuntimeError: the session was not made by ``create_alchemy_config``.
    """
    settings = session.info.get(SETTINGS_INFO_KEY)
    if settings is None:
        raise RuntimeError("this database session has no settings; create it with create_alchemy_config()")
    return settings  # type: ignore[no-any-return]


def queue_email(session: AsyncSession, *, to: str, kind: str, context: dict[str, Any]) -> OutboundEmail:
    """Render the ``kind`` e-mail for ``to`` and add it to the outbox in ``session``'s transaction.

    Args:
        session: The session of the work that causes the mail; the caller commits.
        to: Recipient address.
        kind: Template name under ``templates/email/`` (also stored on the row, for the logs).
        context: Template variables; ``shop_url`` (from the settings) is added.

    Returns:
        The pending ``OutboundEmail`` (added to the session, not flushed).
    """
    settings = settings_of(session)
    rendered = render_email(kind, {**context, "shop_url": settings.shop.base_url})
    row = OutboundEmail(
        to_address=to,
        subject=rendered.subject[:200],
        text_body=rendered.text,
        html_body=rendered.html,
        kind=kind,
        status="pending",
        attempts=0,
    )
    session.add(row)
    mark_queued(session)
    return row


def mark_queued(session: AsyncSession) -> None:
    """Have the background senders in this process woken once ``session``'s transaction commits
    (e-mail and webhook senders share the wake-up: a round with nothing due costs one query)."""
    session.info[_QUEUED_KEY] = True


@dataclass(frozen=True)
class Recipient:
    """Who an order's e-mails go to: the account (``User``) or, for a guest's order, its ``email``
    with the shipping name."""

    name: str
    email: str


async def customer_of(session: AsyncSession, order: Order) -> User | Recipient:
    """The order's customer: its account, or a guest ``Recipient`` (``order.email``, ``order.ship_name``).

    Raises:
        RuntimeError: an account order whose user is gone (the foreign key forbids it).
    """
    if order.user_id is None:
        return Recipient(name=order.ship_name, email=order.email)
    user = await session.get(User, order.user_id)
    if user is None:  # the foreign key forbids it; a clear error beats an AttributeError
        raise RuntimeError(f"order {order.number} has no customer")
    return user


async def queue_order_email(session: AsyncSession, order: Order, kind: str) -> OutboundEmail:
    """Queue an order e-mail (``order_confirmation``, ``order_shipped``, ``order_cancelled``) to the order's
    customer; ``shipments`` in its context are the parts with a carrier or tracking number
    (``(shop_name, carrier, tracking_number)`` rows), ``not_shipped`` the ``(units, line)`` refunded so
    far (before it shipped, when it ships: those units do not come; a part all of whose units were refunded
    was closed unshipped: ``webshop.orders.fulfilment.close_refunded_parts``).

    Reads the order's lines, parts and the customer from ``session`` (so it sees rows flushed in this
    transaction) and renders them as they are now.
    """
    user = await customer_of(session, order)
    lines = list(await session.scalars(select(OrderLine).where(OrderLine.order_id == order.id).order_by(OrderLine.id)))
    # Read as columns, not objects: a part marked shipped in this transaction by a bulk update is seen.
    shipments = (
        await session.execute(
            select(Fulfilment.shop_name, Fulfilment.carrier, Fulfilment.tracking_number)
            .where(Fulfilment.order_id == order.id, (Fulfilment.carrier != "") | (Fulfilment.tracking_number != ""))
            .order_by(Fulfilment.id)
        )
    ).all()
    context, refunded = await _lines_context(session, order, user, lines)
    context["shipments"] = shipments
    context["not_shipped"] = [(refunded[line.id], line) for line in lines if refunded.get(line.id)]
    context["address_lines"] = order.shipping_address_lines()
    return queue_email(session, to=user.email, kind=kind, context=context)


async def _lines_context(
    session: AsyncSession, order: Order, user: Any, lines: list[OrderLine]
) -> tuple[dict[str, Any], dict[int, int]]:
    """What an e-mail about the order's ``lines`` starts its context with (``user``, ``order``, ``lines``,
    ``order_url``), and the units refunded so far per line id (``units_refunded``)."""
    context = {"user": user, "order": order, "lines": lines, "order_url": order_link(settings_of(session), order)}
    return context, await _refunded_unsent(session, order.id, lines)


async def _refunded_unsent(session: AsyncSession, order_id: int, lines: list[OrderLine]) -> dict[int, int]:
    """``{order line id: units}`` refunded (by refunds that did not fail) before the line's part shipped,
    or while it has not: units that are not in its parcel. A unit refunded after its parcel left (a
    return) was sent, and is not counted."""
    # Read as columns, not objects: a part marked shipped in this transaction by a bulk update is seen.
    parts = (
        await session.execute(
            select(Fulfilment.shop_id, Fulfilment.shop_name, Fulfilment.shipped_at).where(
                Fulfilment.order_id == order_id
            )
        )
    ).all()
    rows = await session.execute(
        select(RefundLine.order_line_id, RefundLine.quantity, Refund.created_at)
        .join(Refund, Refund.id == RefundLine.refund_id)
        .where(Refund.order_id == order_id, Refund.status != RefundStatus.FAILED.value)
    )
    by_id = {line.id: line for line in lines}
    unsent: dict[int, int] = {}
    for line_id, units, refunded_at in rows.all():
        line = by_id.get(line_id)
        shipped = next((at for shop_id, name, at in parts if line is not None and _holds(shop_id, name, line)), None)
        if shipped is None or refunded_at < shipped:
            unsent[line_id] = unsent.get(line_id, 0) + int(units)
    return unsent


async def queue_part_shipped_email(
    session: AsyncSession, order: Order, shop_ids: list[int | None], *, carrier: str, tracking_number: str
) -> OutboundEmail:
    """Queue ``order_part_shipped`` to the customer: the lines of the shops ``shop_ids`` have shipped
    (with ``carrier`` and ``tracking_number``, either may be empty) while other parts are still to come;
    ``coming`` gives each line's units less those refunded before it shipped.

    The order's last part is announced by ``order_shipped`` (the order's own status change) instead.
    """
    user = await customer_of(session, order)
    lines = list(
        await session.scalars(
            select(OrderLine)
            .where(
                OrderLine.order_id == order.id,
                or_(
                    OrderLine.shop_id.in_([i for i in shop_ids if i is not None]),
                    # a part whose shop was deleted since (its lines' shop_id was set to NULL with it)
                    OrderLine.shop_id.is_(None) if None in shop_ids else false(),
                ),
            )
            .order_by(OrderLine.id)
        )
    )
    context, refunded = await _lines_context(session, order, user, lines)
    context["coming"] = {line.id: line.quantity - refunded.get(line.id, 0) for line in lines}
    context["shop_names"] = sorted({line.shop_name for line in lines if line.shop_name})
    context["carrier"], context["tracking_number"] = carrier, tracking_number
    return queue_email(session, to=user.email, kind="order_part_shipped", context=context)


async def queue_refund_email(session: AsyncSession, order: Order, refund: Refund, *, credit_note: str) -> None:
    """Queue ``order_refund`` to the order's customer (a guest's order: its ``email``) in the caller's
    transaction: what was refunded, for which lines, and whether the order is now refunded in full."""
    user = await session.get(User, order.user_id) if order.user_id is not None else None
    to = user.email if user is not None else order.email
    if not to:
        logger.warning("order %s has no e-mail address; refund %s not mailed", order.number, refund.id)
        return
    lines = {line.id: line for line in order.lines}
    settings = settings_of(session)
    queue_email(
        session,
        to=to,
        kind="order_refund",
        context={
            "user": user,
            "name": user.name if user is not None else order.ship_name,
            "order": order,
            "refund": refund,
            "refund_lines": [(lines[rl.order_line_id], rl) for rl in refund.lines if rl.order_line_id in lines],
            "credit_note": credit_note,
            "order_url": order_link(settings, order),
        },
    )


def register_waker(loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> int:
    """Have ``wake`` set (on ``loop``) whenever a transaction that queued mail or a webhook commits;
    returns a handle."""
    with _wakers_lock:
        handle = id(wake)
        _wakers[handle] = (loop, wake)
    return handle


def unregister_waker(handle: int) -> None:
    """Stop waking the event registered as ``handle``."""
    with _wakers_lock:
        _wakers.pop(handle, None)


def wake_senders() -> None:
    """Wake every sender in this process (thread-safe; a closed loop is skipped)."""
    with _wakers_lock:
        targets = list(_wakers.values())
    for loop, wake in targets:
        try:
            loop.call_soon_threadsafe(wake.set)
        except RuntimeError:  # that loop has closed; its sender is gone
            continue


# A transaction that queued mail or a webhook (``mark_queued``) wakes the senders once it commits.
call_after_commit(_QUEUED_KEY, wake_senders)


def _holds(shop_id: int | None, shop_name: str, line: OrderLine) -> bool:
    """``Fulfilment.holds`` for a part read as columns."""
    return line.shop_id == shop_id and (shop_id is not None or line.shop_name == shop_name)
