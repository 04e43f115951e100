"""Fulfilment: each shop ships its part of an order (issue 16).

Checkout makes one ``Fulfilment`` per shop among an order's lines. A shop's owners and staff (and
platform admins) mark their part shipped with a carrier and a tracking number; when the last part is
shipped the order becomes ``shipped`` (``OrderService.transition``, which sends the shipping e-mail).
Only a paid order ships. Marking a part shipped is one conditional ``UPDATE ... WHERE status =
'pending'``, so two members shipping the same part at once ship it once. A part whose every unit was
refunded before it left is closed instead (``cancelled``: ``close_refunded_parts``), and no longer holds
the order back from ``shipped``.

Who sees what of an order (``ShopView``): its customer and admins see all of it; a member of a shop
that sold some of its lines sees those lines, that shop's part, and totals of those lines only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.exceptions import NotFoundError
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, select, update

from webshop.audit.service import Audited, AuditService
from webshop.db.models import Fulfilment, FulfilmentStatus, Order, OrderLine, OrderStatus, User
from webshop.db.repository import repository_for
from webshop.errors import InvalidTransition, PermissionDenied, ValidationFailed
from webshop.mail.outbox import queue_part_shipped_email
from webshop.orders.refunding import units_refunded
from webshop.orders.service import AdminOrderRow, OrderService
from webshop.orders.transition_effects import lock_order
from webshop.shops.service import ShopAccess, ShopService

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class ShopView:
    """An order as one viewer may see it.

    Attributes:
        order: The order (all lines loaded; never mutate its collections).
        shops: ``None`` when the viewer sees the whole order (its customer, an admin); else the ids of
            the viewer's shops among the order's, whose lines and parts alone they see.
    """

    order: Order
    shops: frozenset[int] | None = None

    @property
    def lines(self) -> list[OrderLine]:
        """The lines the viewer sees."""
        return [line for line in self.order.lines if self.shops is None or line.shop_id in self.shops]

    @property
    def fulfilments(self) -> list[Fulfilment]:
        """The parts (one per shop) the viewer sees."""
        return [f for f in self.order.fulfilments if self.shops is None or f.shop_id in self.shops]

    @property
    def subtotal(self) -> int:
        """Minor units: the order's subtotal, or the seen lines' sum."""
        return self.order.subtotal if self.shops is None else sum(line.line_total for line in self.lines)

    @property
    def discount(self) -> int:
        """Minor units: the order's discount, or the seen lines' discounts."""
        return self.order.discount_total if self.shops is None else sum(line.discount for line in self.lines)

    @property
    def tax(self) -> int:
        """Minor units: the order's tax, or the seen lines' and parts' shipping tax."""
        if self.shops is None:
            return self.order.tax_total
        return sum(line.tax_amount for line in self.lines) + sum(f.shipping_tax for f in self.fulfilments)

    @property
    def shipping(self) -> int:
        """Minor units: the order's shipping, or the seen parts' shipping."""
        return self.order.shipping_total if self.shops is None else sum(f.shipping_amount for f in self.fulfilments)

    @property
    def total(self) -> int:
        """``subtotal - discount + shipping (+ tax unless prices include it)`` of what the viewer sees."""
        if self.shops is None:
            return self.order.total
        tax = 0 if self.order.prices_include_tax else self.tax
        return self.subtotal - self.discount + self.shipping + tax


@dataclass(frozen=True)
class ShopOrderRow:
    """One row of the admin order list: the order, who placed it, and what of it the viewer sees.

    Attributes:
        row: The order and its customer (``OrderService.search_for_admin``).
        view: ``None`` for a platform admin (the whole order); else the viewer's shops' lines and totals.
    """

    row: AdminOrderRow
    view: ShopView | None = None

    @property
    def order(self) -> Order:
        """The order."""
        return self.row.order

    @property
    def customer_name(self) -> str:
        """The customer's name."""
        return self.row.customer_name

    @property
    def customer_email(self) -> str:
        """The customer's e-mail address."""
        return self.row.customer_email

    @property
    def total(self) -> int:
        """Minor units: the order's total, or the total of the viewer's shops' lines and parts."""
        return self.row.order.total if self.view is None else self.view.total


def shop_groups(order: Order) -> list[tuple[Fulfilment | None, list[OrderLine]]]:
    """The order's lines grouped by the shop that sold them, each with that shop's part (in the
    order of the parts; lines of no part, as of orders older than shops, come last with ``None``)."""
    groups: list[tuple[Fulfilment | None, list[OrderLine]]] = []
    for part in order.fulfilments:
        groups.append((part, [line for line in order.lines if part.holds(line)]))
    rest = [line for line in order.lines if not any(part.holds(line) for part in order.fulfilments)]
    if rest:
        groups.append((None, rest))
    return groups


class FulfilmentService(Audited, SQLAlchemyAsyncRepositoryService[Fulfilment]):
    """Shops' parts of orders: who sees which part, and shipping a part."""

    repository_type = repository_for(Fulfilment)

    async def _access(self, viewer: Any) -> ShopAccess:
        return await ShopService(session=self.repository.session).access(viewer)

    async def view(self, viewer: Any, order_id: int) -> ShopView:
        """Order ``order_id`` as ``viewer`` may see it (see ``ShopView``).

        Raises:
            NotFoundError: no such order, or ``viewer`` is neither its customer, an admin, nor a member
                of a shop that sold some of its lines (one answer, so ids reveal nothing).
        """
        order = await OrderService(session=self.repository.session).get_for(order_id)
        if viewer.is_admin or order.user_id == viewer.id:
            return ShopView(order)
        access = await self._access(viewer)
        mine = frozenset(line.shop_id for line in order.lines if line.shop_id is not None and access.runs(line.shop_id))
        if not mine:
            raise NotFoundError("There is no such order.")
        return ShopView(order, mine)

    async def as_customer_or_admin(
        self, viewer: Any, order_id: int, *, doing: str = "cancel it or see its refunds"
    ) -> Order:
        """Order ``order_id`` for what only its customer or an admin may do (``doing``, for the message:
        cancel it, list its refunds, download its invoice).

        Raises:
            NotFoundError: as ``view``: ``viewer`` may not see the order at all.
            PermissionDenied: ``viewer`` sees it only as a member of a shop that sold some of its lines
                (403, not 404: they know the order exists; RFC 9110, 15.5.4).
        """
        seen = await self.view(viewer, order_id)
        if seen.shops is not None:
            raise PermissionDenied(f"Only the customer who placed this order, or an administrator, can {doing}.")
        return seen.order

    async def view_for_shops(self, viewer: Any, order_id: int) -> ShopView:
        """Order ``order_id`` as the admin pages show it to ``viewer``: whole to a platform admin, and to
        a shop member only their shops' lines and parts, even when they placed the order themselves.

        Raises:
            NotFoundError: no such order, or none of its lines is of a shop ``viewer`` runs.
        """
        order = await OrderService(session=self.repository.session).get_for(order_id)
        access = await self._access(viewer)
        if access.everything:
            return ShopView(order)
        mine = frozenset(line.shop_id for line in order.lines if line.shop_id is not None and access.runs(line.shop_id))
        if not mine:
            raise NotFoundError("There is no such order.")
        return ShopView(order, mine)

    async def search_for_admin(
        self, viewer: Any, *, shop_ids: frozenset[int] | None = None, **filters: Any
    ) -> tuple[list[ShopOrderRow], int]:
        """The admin order list as ``viewer`` may see it (``OrderService.search_for_admin``'s filters and
        pages): every order to a platform admin; to a shop member, the orders with lines of their shops
        (narrowed to ``shop_ids`` within them), each with only those lines' totals.

        Returns:
            ``(rows, total)``: this page's rows and how many orders match in all.
        """
        access = await self._access(viewer)
        mine = access.shop_ids
        if mine is not None and shop_ids is not None:
            mine = mine & shop_ids
        orders = OrderService(session=self.repository.session)
        rows, total = await orders.search_for_admin(shop_ids=mine, **filters)
        if mine is None:
            return [ShopOrderRow(row) for row in rows], total
        return [
            ShopOrderRow(row, ShopView(row.order, mine.intersection(ln.shop_id for ln in row.order.lines)))
            for row in rows
        ], total

    async def search_for_shops(
        self,
        viewer: Any,
        *,
        status: OrderStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 20,
        before_id: int | None = None,
        to_ship: bool = False,
    ) -> tuple[list[ShopView], int | None]:
        """Orders with lines of the shops ``viewer`` runs, newest first, keyset-paged by id; each seen
        as ``ShopView`` (only those shops' lines). An admin sees every order whole. ``to_ship``: only paid
        orders with a part of those shops still to send (``OrderService.search``).

        Returns:
            ``(views, next_before_id)``; the second is ``None`` on the last page.
        """
        access = await self._access(viewer)
        orders, next_id = await OrderService(session=self.repository.session).search(
            status=status,
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            before_id=before_id,
            shop_ids=access.shop_ids,
            to_ship=to_ship,
        )
        mine = access.shop_ids
        if mine is None:
            return [ShopView(order) for order in orders], next_id
        return [ShopView(order, mine.intersection(ln.shop_id for ln in order.lines)) for order in orders], next_id

    async def ship(
        self,
        actor: Any,
        order_id: int,
        *,
        shop_id: int | None = None,
        carrier: str = "",
        tracking_number: str = "",
    ) -> ShopView:
        """Mark a shop's part of a paid order shipped; when no part is left, the order ships; committed.

        Args:
            actor: A member of the shop, or an admin (``None``: the command line).
            order_id: The order.
            shop_id: Whose part; may be left out when the actor runs exactly one shop of the order, or
                by an admin when one part is still to ship (the command line's ``None`` ships every one).
            carrier / tracking_number: Shown to the shopper (trimmed; at most 80 / 100 characters).

        Returns:
            The order as the actor sees it, after the change.

        Raises:
            NotFoundError: no such order, or not one the actor may see.
            ValidationFailed: a member of several of the order's shops, or an admin of an order with several
                parts still to ship, left ``shop_id`` out, or it names no part of the order they may ship; a
                field is too long.
            InvalidTransition: the order is not paid, or that part has shipped already, or every item of
                it was refunded (the part is closed: nothing to ship).
        """
        carrier, tracking_number = shipment_fields(carrier, tracking_number)
        session = self.repository.session
        # The order's row is locked first, as a cancel's is (``OrderService.transition``): a part shipping
        # and the order being cancelled at the same moment are one after the other, and the second sees
        # what the first did (a shipped part: no cancel; a cancelled order: nothing ships).
        await lock_order(session, order_id)
        view, pending = await self._parts_to_ship(actor, order_id, shop_id)
        order = view.order
        for part in pending:
            await self._mark_shipped(actor, order, part, carrier, tracking_number)
        left = await session.scalar(
            select(func.count())
            .select_from(Fulfilment)
            .where(Fulfilment.order_id == order.id, Fulfilment.status == FulfilmentStatus.PENDING.value)
        )
        orders = OrderService(session=session)
        if left:  # the shopper hears of each part as it leaves; the last one ships the order (its own e-mail)
            await queue_part_shipped_email(
                session, order, [part.shop_id for part in pending], carrier=carrier, tracking_number=tracking_number
            )
        else:
            await orders.transition(
                await orders.get_for(order.id), OrderStatus.SHIPPED, actor=actor if isinstance(actor, User) else None
            )
        await session.commit()
        fresh = await orders.get_for(order.id)
        return ShopView(fresh, view.shops)

    async def _mark_shipped(
        self, actor: Any, order: Order, part: Fulfilment, carrier: str, tracking_number: str
    ) -> None:
        """Mark ``part`` shipped if it is still pending, with an audit event; the caller commits.

        Raises:
            InvalidTransition: another request shipped it since it was read (the transaction is rolled back).
        """
        session = self.repository.session
        number, now = order.number, datetime.now(UTC)  # read before a rollback expires the order
        result = await session.execute(
            update(Fulfilment)
            .where(Fulfilment.id == part.id, Fulfilment.status == FulfilmentStatus.PENDING.value)
            .values(
                status=FulfilmentStatus.SHIPPED.value,
                carrier=carrier,
                tracking_number=tracking_number,
                shipped_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            await session.rollback()
            raise InvalidTransition(f"This part of order {number} was shipped by someone else meanwhile.")
        tracking = f" ({carrier} {tracking_number})".rstrip() if carrier or tracking_number else ""
        self.audit.record(
            actor if isinstance(actor, User) else None,
            "order",
            order.id,
            "ship",
            summary=f"Order {order.number}: {part.shop_name}'s part shipped{tracking}",
            changes={"fulfilment": [part.shop_name, FulfilmentStatus.SHIPPED.value]},
        )

    async def _parts_to_ship(self, actor: Any, order_id: int, shop_id: int | None) -> tuple[ShopView, list[Fulfilment]]:
        """The order as ``actor`` sees it and its pending parts ``ship`` would mark (see ``ship``).

        Raises:
            NotFoundError: not an order of the actor's shops.
            ValidationFailed: the order has no part of ``shop_id`` that the actor may ship (422, as any unknown id
                in the body), or a member of several of the order's shops gave no ``shop_id``.
            InvalidTransition: the order is not paid, or the part has shipped already.
        """
        everything = actor is None or actor.is_admin
        view = (
            ShopView(await OrderService(session=self.repository.session).get_for(order_id))
            if actor is None
            else await self.view(actor, order_id)
        )
        order = view.order
        parts = view.fulfilments if not everything or view.shops is not None else order.fulfilments
        if not everything and view.shops is None:  # the actor's own purchase, not their shop's part
            access = await self._access(actor)
            parts = [part for part in order.fulfilments if access.runs(part.shop_id)]
            if not parts:
                raise NotFoundError("There is no such order.")
        if shop_id is not None:
            parts = [part for part in parts if part.shop_id == shop_id]
            if not parts:
                theirs = any(part.shop_id == shop_id for part in order.fulfilments)  # another shop's to ship
                message = "That shop's part is not yours to ship." if theirs else "This order has no part of that shop."
                raise ValidationFailed(message, field_errors={"shop_id": message})
        elif not everything and len(parts) > 1:
            message = "Say which of your shops' parts has shipped."
            raise ValidationFailed(message, field_errors={"shop_id": message})
        elif (
            actor is not None and (waiting := sum(part.status == FulfilmentStatus.PENDING.value for part in parts)) > 1
        ):
            message = f"Order {order.number} has parts from {waiting} shops still to ship: say which one has shipped."
            raise ValidationFailed(message, field_errors={"shop_id": message})
        if OrderStatus(order.status) != OrderStatus.PAID:
            raise InvalidTransition(f"Order {order.number} is {order.status}; only a paid order ships.")
        pending = [part for part in parts if part.status == FulfilmentStatus.PENDING.value]
        if not pending and all(part.closed for part in parts):
            raise InvalidTransition(
                f"Every item of this part of order {order.number} was refunded; there is nothing left to ship."
            )
        if not pending:
            raise InvalidTransition(f"This part of order {order.number} has shipped already.")
        return view, pending


async def close_refunded_parts(
    session: AsyncSession, order: Order, audit: AuditService, actor: User | None
) -> list[Fulfilment]:
    """Close the parts of a paid ``order`` that have nothing left to ship; when that leaves no part
    pending and one has shipped, the order ships (``OrderService.transition``: its e-mail and webhook).

    A part is closed (``cancelled``, never shown a "Mark shipped" form again) when every unit of its
    lines has been refunded by refunds that succeeded: the shopper was paid back for all of it, so no
    parcel is coming. Called by ``RefundService`` in the transaction that records a refund, with the
    order's row locked and ``order`` read under that lock (``lines`` and ``fulfilments`` loaded); a
    conditional ``UPDATE ... WHERE status = 'pending'`` closes each part once. Commits nothing.

    Returns:
        The parts it closed (their ``status`` as read before: the caller gives back their shipping).
    """
    if OrderStatus(order.status) != OrderStatus.PAID:
        return []
    refunded = await units_refunded(session, order.id, succeeded_only=True)
    now = datetime.now(UTC)
    closed: list[Fulfilment] = []
    for part in order.fulfilments:
        lines = [line for line in order.lines if part.holds(line)]
        if part.status != FulfilmentStatus.PENDING.value or not lines:
            continue
        if any(refunded.get(line.id, 0) < line.quantity for line in lines):
            continue
        result = await session.execute(
            update(Fulfilment)
            .where(Fulfilment.id == part.id, Fulfilment.status == FulfilmentStatus.PENDING.value)
            .values(status=FulfilmentStatus.CANCELLED.value, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if cast("CursorResult[Any]", result).rowcount == 1:
            closed.append(part)
            audit.record(
                actor,
                "order",
                order.id,
                "close",
                summary=f"Order {order.number}: the part of {part.shop_name} will not ship (every item was refunded)",
                changes={"fulfilment": [part.shop_name, FulfilmentStatus.CANCELLED.value]},
            )
    if not closed:
        return []
    statuses = set(await session.scalars(select(Fulfilment.status).where(Fulfilment.order_id == order.id)))
    if FulfilmentStatus.SHIPPED.value in statuses and FulfilmentStatus.PENDING.value not in statuses:
        orders = OrderService(session=session)
        await orders.transition(await orders.get_for(order.id), OrderStatus.SHIPPED, actor=actor)
    return closed


def shipment_fields(carrier: str, tracking_number: str) -> tuple[str, str]:
    """A shipment's carrier and tracking number with their white space folded (``" DHL  Express "`` →
    ``"DHL Express"``).

    Raises:
        ValidationFailed: the carrier is over 80 characters or the tracking number over 100 (field errors
            ``carrier`` / ``tracking_number``).
    """
    carrier, tracking_number = " ".join(carrier.split()), " ".join(tracking_number.split())
    errors = {}
    if len(carrier) > 80:
        errors["carrier"] = "The carrier can be at most 80 characters."
    if len(tracking_number) > 100:
        errors["tracking_number"] = "The tracking number can be at most 100 characters."
    if errors:
        raise ValidationFailed("The shipment was not saved.", field_errors=errors)
    return carrier, tracking_number
