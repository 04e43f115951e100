"""Order rules after placement: who may see an order, the status state machine, and refunds.

``TRANSITIONS`` (``webshop.orders.status_rules``) is the one place that says which status may follow
which. A status change is one
conditional ``UPDATE orders SET status = :new WHERE id = :id AND status = :current``: when two
requests race (two cancels posted at once), exactly one wins, so stock comes back exactly once.

Cancelling or refunding a paid order happens in two steps, so that no transaction waits for the
payment provider: (1) the status change, the stock coming back, ``refund_amount`` (what is owed) and
the customer's e-mail commit together; (2) after that commit the provider is asked to refund, with an
idempotency key derived from the order id, and ``refund_reference``/``refunded_at`` are recorded by a
conditional update (``WHERE refunded_at IS NULL``). Only the request that won step 1 gets to step 2,
and a retry of step 2 (``settle_refund``: an admin's Retry, or the worker's ``webshop.orders.refund_retries``)
reuses the key, so an order is never refunded twice. A paid order is not cancelled or refunded whole while
one of its refunds waits for the provider's answer (``refunds_pending``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.filters import LimitOffset
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import selectinload

from webshop.audit.service import Audited
from webshop.catalog.thumbnails import Thumbnail, product_thumbnails
from webshop.checkout.promotion_uses import release_promotion_uses
from webshop.db.folding import fold, folded
from webshop.db.models import (
    Fulfilment,
    FulfilmentStatus,
    Order,
    OrderLine,
    OrderStatus,
    StockReason,
    User,
)
from webshop.db.repository import repository_for
from webshop.errors import InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from webshop.mail.outbox import queue_order_email
from webshop.mail.shop_emails import queue_shop_cancel_emails
from webshop.orders.open_payments import close_for_manual_payment, close_unpaid_payment, record_payment_status
from webshop.orders.refunding import Refunding, refunder_for
from webshop.orders.status_rules import (
    NOT_YET_SHIPPED,
    RESTOCKING,
    SHOPPER_CANCELLABLE,
    TRANSITIONS,
    refund_owed,
)
from webshop.orders.transition_effects import (
    announce_payment,
    refuse_blocked,
    return_unshipped_stock,
    ship_every_part,
)
from webshop.orders.whole_refund import make_whole_refund
from webshop.payments.provider import PaymentProvider
from webshop.text import address_search_forms
from webshop.webhooks.events import queue_order_change

if TYPE_CHECKING:
    pass

logger = logging.getLogger("webshop.orders")

S = OrderStatus
ORDER_LOAD = (selectinload(Order.lines), selectinload(Order.fulfilments))
"""What every read of an order loads with it: its lines and its shops' parts (``Fulfilment``)."""


async def adopt_guest_orders(session: Any, user: User) -> int:
    """Give ``user`` the guest orders placed with their e-mail address (case-insensitive), in the caller's
    transaction; returns how many. Call it only once the address is proven the user's (a verification,
    password-reset or e-mail-change link followed): an account registered with someone else's address
    must not see their orders (OWASP Authorization Cheat Sheet). One conditional ``UPDATE ... WHERE
    user_id IS NULL``, so an order adopted meanwhile (its link's "Create an account") is left alone."""
    adopted = await session.execute(
        update(Order)
        .where(Order.user_id.is_(None), Order.email != "", folded(Order.email) == fold(user.email))
        .values(user_id=user.id, updated_at=datetime.now(UTC))
        .execution_options(synchronize_session=False)
    )
    return int(adopted.rowcount or 0)


@dataclass(frozen=True)
class AdminOrderRow:
    """One row of the admin order list: the order and who placed it (``guest``: no account, the
    order's own e-mail address and shipping name)."""

    order: Order
    customer_email: str
    customer_name: str
    guest: bool = False


def _with_lines_of(shop_ids: frozenset[int] | None) -> list[Any]:
    """The condition "the order has a line of one of ``shop_ids``" (none for ``None``: every order)."""
    if shop_ids is None:
        return []
    return [Order.id.in_(select(OrderLine.order_id).where(OrderLine.shop_id.in_(shop_ids or {0})))]


def _to_ship(shop_ids: frozenset[int] | None) -> list[Any]:
    """The condition "the order is paid and a part of ``shop_ids`` (any shop for ``None``) waits to be
    sent": what a seller still has to ship. An order stays ``paid`` until every part has shipped, so a
    member whose part has left sees it no more."""
    parts = select(Fulfilment.order_id).where(Fulfilment.status == FulfilmentStatus.PENDING.value)
    if shop_ids is not None:
        parts = parts.where(Fulfilment.shop_id.in_(shop_ids or {0}))
    return [Order.status == OrderStatus.PAID.value, Order.id.in_(parts)]


class OrderService(Refunding, Audited, SQLAlchemyAsyncRepositoryService[Order]):
    """Orders for shoppers and admins; a verb's own ``provider`` argument wins over the app's."""

    repository_type = repository_for(Order)

    async def list_for_user(self, user_id: int, *, limit: int = 20, offset: int = 0) -> tuple[list[Order], int]:
        """The user's orders, newest first, and how many there are in all."""
        rows, total = await self.get_many_and_count(
            Order.user_id == user_id,
            LimitOffset(limit=limit, offset=offset),
            order_by=[(Order.created_at, True), (Order.id, True)],
            load=list(ORDER_LOAD),
            count_with_window_function=False,  # two statements: a page past the end still knows the total
        )
        return list(rows), total

    async def thumbnails(self, orders: Iterable[Order]) -> dict[int, Thumbnail]:
        """``{product id: Thumbnail}`` (photo and current link) for every line of ``orders``; one query."""
        product_ids = (line.product_id for order in orders for line in order.lines)
        return await product_thumbnails(self.repository.session, product_ids)

    async def get_for(self, order_id: int, *, user_id: int | None = None) -> Order:
        """The order with ``order_id``; with ``user_id``, only if it is that user's.

        Raises:
            NotFoundError: (advanced-alchemy's, answered as ``NotFound``) no such order, or it belongs
                to someone else (the same answer either way).
        """
        return await self._one(Order.id == order_id, user_id, "There is no such order.")

    # -- who may see and cancel which order: one policy for the pages and the API ------------------

    async def visible_to(self, viewer: User, order_id: int) -> Order:
        """The order with ``order_id`` if ``viewer`` may see it: admins see every order, customers
        their own.

        Raises:
            NotFound: no such order, or another customer's (one answer, so ids reveal nothing;
                OWASP Authorization Cheat Sheet, "prefer 404 for unauthorized object references").
        """
        return await self.get_for(order_id, user_id=None if viewer.is_admin else viewer.id)

    async def cancel_for(self, viewer: User, order_id: int) -> Order:
        """Cancel the order with ``order_id`` as ``viewer``: an admin along the state machine
        (``change_status``), a customer only their own and only until it ships
        (``cancel_by_shopper``); committed, stock back once, refund when paid.

        Raises:
            NotFound: as ``visible_to``.
            InvalidTransition: the order can no longer be cancelled.
        """
        if viewer.is_admin:
            return await self.change_status(order_id, OrderStatus.CANCELLED, actor=viewer)
        order = await self.visible_to(viewer, order_id)
        return await self.cancel_by_shopper(order.number, viewer.id)

    async def search_visible_to(
        self, viewer: User, *, customer_id: int | None = None, own: bool = False, **filters: Any
    ) -> tuple[list[Order], int | None]:
        """``search`` within what ``viewer`` may see: a customer's own orders; for admins everyone's,
        or ``customer_id``'s, or with ``own`` their own purchases.

        Raises:
            PermissionDenied: a customer asked for another customer's orders (``customer_id``; their own id
                lists their own).
            ValidationFailed: ``own`` and ``customer_id`` both (the API's ``view=mine`` with ``customer_id``).
        """
        if customer_id is not None and customer_id != viewer.id and not viewer.is_admin:
            raise PermissionDenied("Only administrators can list other customers' orders.")
        if own and customer_id is not None:
            message = "view=mine lists your own orders; leave customer_id out."
            raise ValidationFailed(message, field_errors={"customer_id": message})
        user_id = customer_id if viewer.is_admin and not own else viewer.id
        return await self.search(user_id=user_id, **filters)

    async def search(
        self,
        *,
        user_id: int | None = None,
        status: OrderStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 20,
        before_id: int | None = None,
        shop_ids: frozenset[int] | None = None,
        to_ship: bool = False,
    ) -> tuple[list[Order], int | None]:
        """Orders newest first, filtered; keyset pages by order id.

        Args:
            user_id: Only this customer's orders (``None``: everyone's, for admins).
            status: Only orders in this status.
            created_from / created_to: Placed at or after / before these instants (UTC).
            limit: Orders per page (1-100).
            before_id: The previous page's ``next_cursor`` (orders with a smaller id).
            shop_ids: Only orders with lines of these shops (a shop member's list); ``None``: every order.
            to_ship: Only paid orders with a part of ``shop_ids`` (any part for ``None``) still to send.

        Returns:
            ``(orders, next_before_id)``; the second is ``None`` on the last page.
        """
        statement = (
            select(Order)
            .options(*ORDER_LOAD)
            .where(*_with_lines_of(shop_ids), *(_to_ship(shop_ids) if to_ship else []))
            .order_by(Order.id.desc())
            .limit(limit + 1)
        )
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

    async def change_status(
        self,
        order_id: int,
        target: OrderStatus,
        *,
        actor: User | None = None,
        provider: PaymentProvider | None = None,
    ) -> Order:
        """An admin moves an order along ``TRANSITIONS`` (restocking as ``transition`` says); committed.

        Marking a pending order paid first closes its open payment at ``provider`` (``close_for_manual_payment``);
        the paid order is invoiced and announced as one the provider reports paid (``announce_payment``).
        Cancelling an unpaid order closes its payment after the commit (``close_unpaid_payment``).
        Cancelling or refunding a paid order then asks ``provider`` for the refund, after the commit
        (see the module docstring); if the provider fails, the order stays cancelled with the refund
        pending (``Order.refund_pending``), to be retried with ``settle_refund``.

        Args:
            order_id: The order's id.
            target: The status to move to.
            actor: The admin making the change, recorded in the audit trail (``None``: the command line).
            provider: The payment provider that refunds a paid order.

        Returns:
            The order as committed (with its refund, when one was made).

        Raises:
            NotFound: no such order.
            InvalidTransition: the state machine does not allow it (or the order changed meanwhile); the
                provider could not be reached to close the payment of an order being marked paid.
        """
        session = self.repository.session
        payment = None
        if target == S.PAID:  # paid another way: the provider must not take the money as well
            payment = await close_for_manual_payment(session, await self.get_for(order_id), self._provider(provider))
        async with session.begin_nested():
            order = await self.get_for(order_id)
            order = await self.transition(order, target, actor=actor)
            if payment is not None:
                await record_payment_status(session, order, payment)
        await session.commit()
        return await self._after_cancel(order, self._provider(provider), actor)

    async def settle_refund(
        self, order_id: int, *, actor: User | None = None, provider: PaymentProvider | None = None
    ) -> Order:
        """Ask ``provider`` again for a refund that is still pending (it failed or was interrupted).

        Safe to call any number of times: the provider sees the order's one idempotency key, and the
        refund is recorded only while none is (nothing happens for an order that owes nothing). Asked by
        a person (``actor``), the worker's attempts (``webshop.orders.refund_retries``) start again and an
        earlier refusal is forgotten.

        Returns:
            The order; ``refund_pending`` is False when the refund went through; ``refund_failure`` is the
            provider's reason when it refused (``webshop.orders.whole_refund``).

        Raises:
            NotFound: no such order.
        """
        session = self.repository.session
        order = await self.get_for(order_id)
        if actor is not None and order.refund_pending:  # a person asks: the worker's attempts start again
            order.refund_retry_attempts, order.refund_next_retry_at, order.refund_failure = 0, None, ""
        await session.commit()  # end the read: no transaction (nor SQLite's write lock) waits for the provider
        return await self._refund(order, self._provider(provider), actor)

    async def _after_cancel(self, order: Order, provider: PaymentProvider, actor: User | None) -> Order:
        """After a status change's commit (no transaction open): an order cancelled unpaid has its payment
        closed at the provider (``close_unpaid_payment``); one that was paid is refunded (``_refund``)."""
        order = await close_unpaid_payment(self.repository.session, order, provider)
        return await self._refund(order, provider, actor)

    async def _refund(self, order: Order, provider: PaymentProvider, actor: User | None) -> Order:
        """Refund what ``order`` owes (outside any transaction) and record the answer
        (``webshop.orders.whole_refund``); unanswered, it stays pending."""
        return await make_whole_refund(
            self.repository.session,
            self.audit,
            order,
            refunder_for(order, provider),
            actor=actor,
            credit_note_prefix=self.credit_note_prefix,
        )

    async def get_by_number(self, number: str, *, user_id: int | None = None) -> Order:
        """The order ``number``; with ``user_id``, only if it is that user's.

        Raises:
            NotFoundError: (answered as ``NotFound``) no such order, or it belongs to someone else (the
                same answer, so order numbers of others cannot be probed).
        """
        return await self._one(Order.number == number, user_id, "We could not find that order.")

    async def _one(self, condition: Any, user_id: int | None, missing: str) -> Order:
        """The order matching ``condition`` (and ``user_id``), its lines loaded and refreshed.

        Raises:
            advanced_alchemy.exceptions.NotFoundError: none (``missing`` is its detail; the exception
                handler answers it as ``NotFound``).
        """
        owner = [Order.user_id == user_id] if user_id is not None else []
        return await self.get_one(
            condition,
            *owner,
            load=list(ORDER_LOAD),
            execution_options={"populate_existing": True},
            error_messages={"not_found": missing},
        )

    async def transition(
        self,
        order: Order,
        target: OrderStatus,
        *,
        reference: str = "",
        actor: User | None = None,
        why: str = "",
        tell_customer: bool = True,
    ) -> Order:
        """Move ``order`` to ``target`` if ``TRANSITIONS`` allows it; restock when it was not shipped.

        The change is a conditional update on the status the order had when read; if another request
        changed it first, this one fails with ``InvalidTransition`` and changes nothing. A successful
        change records an ``order``/``status`` audit event (with ``actor``, and ``why`` after its
        summary: the payment's failure, for instance) in the same transaction. A cancel or refund
        e-mails the customer unless ``tell_customer`` is False (they cancelled the payment themselves and
        are back in the shop, which says so).

        Raises:
            InvalidTransition: not allowed from the current status (or it changed meanwhile), or
                refused by the order's parts or refunds (``transition_effects.refuse_blocked``: a cancel
                after a part shipped or while a refund is pending, shipping an order with nothing to ship).
        """
        current = OrderStatus(order.status)
        if target not in TRANSITIONS[current]:
            raise InvalidTransition(f"Order {order.number} is {current.value}; it cannot become {target.value}.")
        session = self.repository.session
        await refuse_blocked(session, order, current, target)
        now = datetime.now(UTC)
        values: dict[str, object] = {"status": target.value, "updated_at": now}
        if target == S.CANCELLED:
            values["cancelled_at"] = now
        if refund_owed(order, target):
            # What no partial refund has claimed, as the row has it when this update runs (a refund
            # claimed since the order was read is not owed twice).
            values["refund_amount"] = Order.total - Order.refunded_total
        if target == S.PAID:
            values["paid_at"] = now
        result = await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == current.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise InvalidTransition(f"Order {order.number} was changed by someone else. Reload and try again.")
        if target in RESTOCKING and current in NOT_YET_SHIPPED:
            reason = StockReason.REFUND if target == S.REFUNDED else StockReason.CANCELLATION
            await return_unshipped_stock(session, order, reference or order.number, reason=reason)
        if target in RESTOCKING:
            await release_promotion_uses(session, order.id)  # a cancelled or refunded order's uses come back once
        restocked = " (stock returned)" if target in RESTOCKING and current in NOT_YET_SHIPPED else ""
        self.audit.record(
            actor,
            "order",
            order.id,
            "status",
            summary=f"Order {order.number}: {current.value} → {target.value}{restocked}" + (f": {why}" if why else ""),
            changes={"status": [current.value, target.value]},
        )
        if target == S.SHIPPED:
            await ship_every_part(session, order, now)
            # The shipping notification joins the outbox in this transaction (sent once it commits).
            await queue_order_email(session, order, "order_shipped")
        await session.flush()
        changed = await self.get_by_number(order.number)
        await queue_order_change(session, changed, current, target)  # webhooks: order.paid, .shipped, .cancelled...
        if target == S.PAID:  # marked paid by an admin (a payment the provider reports: PaymentService)
            await announce_payment(session, changed, invoice_prefix=self.invoice_prefix, now=now)
        if target in RESTOCKING and tell_customer:
            # The customer hears what happened and what happens to their money (the order as it is now).
            await queue_order_email(session, changed, "order_cancelled")
        if target in RESTOCKING and current == S.PAID:  # the shops were told to send their parts: now not to
            await queue_shop_cancel_emails(session, changed)
        return changed

    async def cancel_by_shopper(self, number: str, user_id: int, *, provider: PaymentProvider | None = None) -> Order:
        """The shopper cancels their own order (allowed until it ships); stock comes back once.

        Commits explicitly, so a response never reports a cancel that did not happen; a paid order is
        then refunded through ``provider`` (see ``change_status``), and the customer gets an
        ``order_cancelled`` e-mail queued with the cancel.

        Returns:
            The cancelled order (with its refund, when one was made).

        Raises:
            NotFound: not this user's order.
            InvalidTransition: already shipped, cancelled or refunded.
        """
        session = self.repository.session
        async with session.begin_nested():
            order = await self.get_by_number(number, user_id=user_id)
            actor = await session.get(User, user_id)
            order = await self._cancel_for_shopper(order, actor)
        await session.commit()
        return await self._after_cancel(order, self._provider(provider), actor)

    async def cancel_by_guest(self, number: str, *, provider: PaymentProvider | None = None) -> Order:
        """A guest cancels their order by its signed link (``webshop.checkout.guest_links``, checked by the
        caller): the same rule and steps as ``cancel_by_shopper``, with no account as the actor.

        Raises:
            NotFound: no such order, or it belongs to an account now (its owner cancels it signed in).
            InvalidTransition: already shipped, cancelled or refunded.
        """
        session = self.repository.session
        async with session.begin_nested():
            order = await self.get_by_number(number)
            if order.user_id is not None:
                raise NotFound("We could not find that order.")
            order = await self._cancel_for_shopper(order, None)
        await session.commit()
        return await self._after_cancel(order, self._provider(provider), None)

    async def _cancel_for_shopper(self, order: Order, actor: User | None) -> Order:
        """``transition`` to cancelled under the shopper's rule (``shopper_may_cancel``), in the caller's
        transaction."""
        if OrderStatus(order.status) not in SHOPPER_CANCELLABLE:
            raise InvalidTransition(f"Order {order.number} is {order.status} and can no longer be cancelled.")
        return await self.transition(order, S.CANCELLED, actor=actor)

    async def search_for_admin(
        self,
        *,
        status: OrderStatus | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        customer: str = "",
        limit: int = 25,
        offset: int = 0,
        shop_ids: frozenset[int] | None = None,
        to_ship: bool = False,
    ) -> tuple[list[AdminOrderRow], int]:
        """Every customer's orders for the admin list, newest first, filtered, one page at a time.

        Args:
            status: Only orders in this status.
            to_ship: Only paid orders with a part of ``shop_ids`` (any part for ``None``) still to send.
            created_from / created_to: Placed at or after / before these instants (UTC).
            customer: Part of the customer's e-mail address or name (case-insensitive); a guest's order
                matches by its e-mail address and shipping name.
            limit: Rows per page.
            offset: Rows to skip (``(page - 1) * limit``).
            shop_ids: Only orders with lines of these shops (a shop member's list); ``None``: every order.

        Returns:
            ``(rows, total)``: this page's rows and how many orders match in all.
        """
        conditions = _with_lines_of(shop_ids) + (_to_ship(shop_ids) if to_ship else [])
        if status is not None:
            conditions.append(Order.status == status.value)
        if created_from is not None:
            conditions.append(Order.created_at >= created_from)
        if created_to is not None:
            conditions.append(Order.created_at < created_to)
        # A guest's order has no account: its own e-mail address and shipping name stand in (outer join).
        email = func.coalesce(User.email, Order.email)
        name = func.coalesce(User.name, Order.ship_name)
        if customer.strip():
            needle = fold(customer.strip())
            conditions.append(
                or_(
                    *(folded(email).contains(form, autoescape=True) for form in address_search_forms(customer)),
                    folded(name).contains(needle, autoescape=True),
                )
            )
        session = self.repository.session
        total = (
            await session.scalar(
                select(func.count()).select_from(Order).outerjoin(User, User.id == Order.user_id).where(*conditions)
            )
            or 0
        )
        rows = await session.execute(
            select(Order, email, name)
            .outerjoin(User, User.id == Order.user_id)
            .where(*conditions)
            .order_by(Order.created_at.desc(), Order.id.desc())
            .limit(limit)
            .offset(offset)
            # A member's list shows each order's totals of their lines: its lines and parts come with it.
            .options(*(ORDER_LOAD if shop_ids is not None else ()))
        )
        found = [
            AdminOrderRow(order, email or "", name or "", guest=order.user_id is None)
            for order, email, name in rows.all()
        ]
        return found, total

    async def to_ship_count(self, *, shop_ids: frozenset[int] | None = None) -> int:
        """How many paid orders have a part of ``shop_ids`` (any part for ``None``) still to send (the
        dashboard's "paid, to ship"; ``search_for_admin(to_ship=True)`` lists them)."""
        return int(await self.repository.session.scalar(select(func.count(Order.id)).where(*_to_ship(shop_ids))) or 0)

    async def status_counts(self, *, shop_ids: frozenset[int] | None = None) -> dict[OrderStatus, int]:
        """How many orders are in each status (one grouped query); every status present. Only orders with
        lines of shops ``shop_ids`` are counted unless it is ``None`` (every order)."""
        rows = await self.repository.session.execute(
            select(Order.status, func.count()).where(*_with_lines_of(shop_ids)).group_by(Order.status)
        )
        counts = dict.fromkeys(OrderStatus, 0)
        for status, count in rows.all():
            counts[OrderStatus(status)] = int(count)
        return counts
