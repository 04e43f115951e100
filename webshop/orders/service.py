"""Order rules after placement: who may see an order, and the status state machine.

``TRANSITIONS`` is the one place that says which status may follow which. A status change is one
conditional ``UPDATE orders SET status = :new WHERE id = :id AND status = :current``: when two
requests race (two cancels posted at once), exactly one wins, so stock comes back exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import selectinload

from webshop.audit.service import AuditService
from webshop.db.models import Order, OrderStatus, StockReason, User
from webshop.errors import InvalidTransition, NotFound
from webshop.mail.outbox import queue_order_email
from webshop.stock.service import return_stock

S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    S.PENDING: frozenset({S.PAID, S.CANCELLED}),
    S.PAID: frozenset({S.SHIPPED, S.CANCELLED, S.REFUNDED}),
    S.SHIPPED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset({S.REFUNDED}),
    S.CANCELLED: frozenset(),
    S.REFUNDED: frozenset(),
}
# Moving into these from a status whose goods have not left the warehouse puts the stock back.
RESTOCKING = frozenset({S.CANCELLED, S.REFUNDED})
NOT_YET_SHIPPED = frozenset({S.PENDING, S.PAID})
# What a shopper may do to their own order.
SHOPPER_CANCELLABLE = NOT_YET_SHIPPED


@dataclass(frozen=True)
class AdminOrderRow:
    """One row of the admin order list: the order and who placed it."""

    order: Order
    customer_email: str
    customer_name: str


def can_transition(current: str, target: str) -> bool:
    """True when ``TRANSITIONS`` allows ``current`` → ``target``."""
    try:
        return OrderStatus(target) in TRANSITIONS[OrderStatus(current)]
    except ValueError:
        return False


class OrderService(SQLAlchemyAsyncRepositoryService[Order]):
    """Orders for shoppers and admins."""

    class Repo(SQLAlchemyAsyncRepository[Order]):
        """Order repository."""

        model_type = Order

    repository_type = Repo

    async def list_for_user(self, user_id: int, *, limit: int = 20, offset: int = 0) -> tuple[list[Order], int]:
        """The user's orders, newest first, and how many there are in all."""
        session = self.repository.session
        total = await session.scalar(select(func.count()).select_from(Order).where(Order.user_id == user_id)) or 0
        rows = await session.scalars(
            select(Order)
            .where(Order.user_id == user_id)
            .options(selectinload(Order.lines))
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows), total

    async def get_for(self, order_id: int, *, user_id: int | None = None) -> Order:
        """The order with ``order_id``; with ``user_id``, only if it is that user's.

        Raises:
            NotFound: no such order, or it belongs to someone else (the same answer either way).
        """
        statement = select(Order).where(Order.id == order_id).options(selectinload(Order.lines))
        if user_id is not None:
            statement = statement.where(Order.user_id == user_id)
        order = await self.repository.session.scalar(statement.execution_options(populate_existing=True))
        if order is None:
            raise NotFound("There is no such order.")
        return order

    async def search(
        self,
        *,
        user_id: int | None = None,
        status: OrderStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 20,
        before_id: int | None = None,
    ) -> tuple[list[Order], int | None]:
        """Orders newest first, filtered; keyset pages by order id.

        Args:
            user_id: Only this customer's orders (``None``: everyone's, for admins).
            status: Only orders in this status.
            created_from / created_to: Placed at or after / before these instants (UTC).
            limit: Orders per page (1-100).
            before_id: The previous page's ``next_cursor`` (orders with a smaller id).

        Returns:
            ``(orders, next_before_id)``; the second is ``None`` on the last page.
        """
        statement = select(Order).options(selectinload(Order.lines)).order_by(Order.id.desc()).limit(limit + 1)
        if user_id is not None:
            statement = statement.where(Order.user_id == user_id)
        if status is not None:
            statement = statement.where(Order.status == status.value)
        if created_from is not None:
            statement = statement.where(Order.created_at >= created_from)
        if created_to is not None:
            statement = statement.where(Order.created_at < created_to)
        if before_id is not None:
            statement = statement.where(Order.id < before_id)
        orders = list(await self.repository.session.scalars(statement))
        more = len(orders) > limit
        orders = orders[:limit]
        return orders, (orders[-1].id if more and orders else None)

    async def change_status(self, order_id: int, target: OrderStatus, *, actor: User | None = None) -> Order:
        """An admin moves an order along ``TRANSITIONS`` (restocking as ``transition`` says); committed.

        Args:
            order_id: The order's id.
            target: The status to move to.
            actor: The admin making the change, recorded in the audit trail (``None``: the command line).

        Raises:
            NotFound: no such order.
            InvalidTransition: the state machine does not allow it (or the order changed meanwhile).
        """
        session = self.repository.session
        async with session.begin_nested():
            order = await self.get_for(order_id)
            order = await self.transition(order, target, actor=actor)
        await session.commit()
        return order

    async def get_by_number(self, number: str, *, user_id: int | None = None) -> Order:
        """The order ``number``; with ``user_id``, only if it is that user's.

        Raises:
            NotFound: no such order, or it belongs to someone else (the same answer, so order
                numbers of others cannot be probed).
        """
        statement = select(Order).where(Order.number == number).options(selectinload(Order.lines))
        if user_id is not None:
            statement = statement.where(Order.user_id == user_id)
        order = await self.repository.session.scalar(statement.execution_options(populate_existing=True))
        if order is None:
            raise NotFound("We could not find that order.")
        return order

    async def transition(
        self, order: Order, target: OrderStatus, *, reference: str = "", actor: User | None = None
    ) -> Order:
        """Move ``order`` to ``target`` if ``TRANSITIONS`` allows it; restock when it was not shipped.

        The change is a conditional update on the status the order had when read; if another request
        changed it first, this one fails with ``InvalidTransition`` and changes nothing. A successful
        change records an ``order``/``status`` audit event (with ``actor``) in the same transaction.

        Raises:
            InvalidTransition: not allowed from the current status (or it changed meanwhile).
        """
        current = OrderStatus(order.status)
        if target not in TRANSITIONS[current]:
            raise InvalidTransition(f"Order {order.number} is {current.value}; it cannot become {target.value}.")
        now = datetime.now(UTC)
        values: dict[str, object] = {"status": target.value, "updated_at": now}
        if target == S.CANCELLED:
            values["cancelled_at"] = now
        if target == S.PAID:
            values["paid_at"] = now
        session = self.repository.session
        result = await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == current.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise InvalidTransition(f"Order {order.number} was changed by someone else. Reload and try again.")
        if target in RESTOCKING and current in NOT_YET_SHIPPED:
            reason = StockReason.CANCELLATION
            for line in order.lines:
                if line.variant_id is not None:
                    await return_stock(
                        session, line.variant_id, line.quantity, reason=reason, reference=reference or order.number
                    )
        restocked = " (stock returned)" if target in RESTOCKING and current in NOT_YET_SHIPPED else ""
        AuditService(session=session).record(
            actor,
            "order",
            order.id,
            "status",
            summary=f"Order {order.number}: {current.value} → {target.value}{restocked}",
            changes={"status": [current.value, target.value]},
        )
        if target == S.SHIPPED:
            # The shipping notification joins the outbox in this transaction (sent once it commits).
            await queue_order_email(session, order, "order_shipped")
        await session.flush()
        return await self.get_by_number(order.number)

    async def cancel_by_shopper(self, number: str, user_id: int) -> Order:
        """The shopper cancels their own order (allowed until it ships); stock comes back once.

        Commits explicitly, so a response never reports a cancel that did not happen.

        Raises:
            NotFound: not this user's order.
            InvalidTransition: already shipped, cancelled or refunded.
        """
        session = self.repository.session
        async with session.begin_nested():
            order = await self.get_by_number(number, user_id=user_id)
            if OrderStatus(order.status) not in SHOPPER_CANCELLABLE:
                raise InvalidTransition(f"Order {order.number} is {order.status} and can no longer be cancelled.")
            order = await self.transition(order, S.CANCELLED, actor=await session.get(User, user_id))
        await session.commit()
        return order

    async def search_for_admin(
        self,
        *,
        status: OrderStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        customer: str = "",
        limit: int = 25,
        offset: int = 0,
    ) -> tuple[list[AdminOrderRow], int]:
        """Every customer's orders for the admin list, newest first, filtered, one page at a time.

        Args:
            status: Only orders in this status.
            created_from / created_to: Placed at or after / before these instants (UTC).
            customer: Part of the customer's e-mail address or name (case-insensitive).
            limit: Rows per page.
            offset: Rows to skip (``(page - 1) * limit``).

        Returns:
            ``(rows, total)``: this page's rows and how many orders match in all.
        """
        conditions = []
        if status is not None:
            conditions.append(Order.status == status.value)
        if created_from is not None:
            conditions.append(Order.created_at >= created_from)
        if created_to is not None:
            conditions.append(Order.created_at < created_to)
        if customer.strip():
            needle = customer.strip().lower()
            conditions.append(
                or_(
                    func.lower(User.email).contains(needle, autoescape=True),
                    func.lower(User.name).contains(needle, autoescape=True),
                )
            )
        session = self.repository.session
        total = (
            await session.scalar(
                select(func.count()).select_from(Order).join(User, User.id == Order.user_id).where(*conditions)
            )
            or 0
        )
        rows = await session.execute(
            select(Order, User.email, User.name)
            .join(User, User.id == Order.user_id)
            .where(*conditions)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return [AdminOrderRow(order, email, name) for order, email, name in rows.all()], total

    async def status_counts(self) -> dict[OrderStatus, int]:
        """How many orders are in each status (one grouped query); every status present."""
        rows = await self.repository.session.execute(select(Order.status, func.count()).group_by(Order.status))
        counts = dict.fromkeys(OrderStatus, 0)
        for status, count in rows.all():
            counts[OrderStatus(status)] = int(count)
        return counts
