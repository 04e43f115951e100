"""Refunds of paid orders, whole or in part, through the payment provider, exactly once.

An admin refunds chosen lines and units of an order (their share of what was paid: ``refund_rules.refund_share``)
or a plain amount, never more than what is left of the payment: ``total - refunded_total -
refund_amount`` (``refund_amount`` is what an old-style cancel or whole refund of the order owes,
``OrderService``). Each refund is a ``Refund`` row (with its ``RefundLine`` rows) and goes in three steps,
so that no transaction waits for the provider:

1. **Claim** (one short transaction): the order row is locked (``SELECT ... FOR UPDATE``: PostgreSQL's row
   lock, SQLite's write lock through ``webshop.db.engine``), the units already refunded are read under
   the lock, then ONE conditional ``UPDATE orders SET refunded_total = refunded_total + :a WHERE id = :id
   AND status IN ('paid', 'shipped', 'delivered') AND refunded_total + refund_amount + :a <= total``
   claims the amount and the ``Refund`` is inserted ``pending`` with its unique ``idempotency_key``;
   commit. Concurrent requests take turns on the lock, so together they never claim more than was paid
   nor more units of a line than were bought; the same idempotency key again returns the first refund.
2. **Ask** the provider, with no transaction open, under the refund's own key (``provider_key``); if the
   provider cannot be reached the refund stays ``pending`` and ``RefundService.retry`` asks again with the
   same key (the worker's ``webshop.orders.refund_retries``, or an admin's Retry), so the money moves once.
3. **Record** (one transaction): succeeded → the provider's reference, ``refunded_at``, a credit note
   number (``webshop.invoices.numbering``), the refunded units back in stock if asked (``refund`` ledger
   movements), the shopper's ``order_refund`` e-mail and an audit event; once the refunds reach the
   order's total (and none is pending) the order becomes ``refunded`` (a conditional status update, with
   the ``order.refunded`` webhook; the items are not restocked by it, unlike ``OrderService.transition``);
   otherwise a shop's part whose every unit is now refunded is closed unshipped, which may ship the order
   (``webshop.orders.fulfilment.close_refunded_parts``), and the refund of its parcel's shipping is claimed
   (``pending``, ``is_shipping``) in the same transaction, then asked for like this one
   (``RefundService._claim_parcels``).
   Refused by the provider → ``failed`` with its reason, and the claimed amount is given back (a
   conditional update). Each record is conditional on the refund still being ``pending``, so a retry
   racing the first answer records it once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.audit.service import Audited
from webshop.catalog.summaries import refresh_product_summaries
from webshop.checkout.promotion_uses import release_promotion_uses
from webshop.db.models import (
    Fulfilment,
    Invoice,
    Order,
    OrderLine,
    OrderStatus,
    Refund,
    RefundLine,
    RefundStatus,
    StockReason,
    User,
    WebhookEvent,
)
from webshop.db.repository import repository_for
from webshop.errors import Conflict, NotFound, ValidationFailed
from webshop.invoices.numbering import issue_credit_note
from webshop.mail.outbox import queue_refund_email
from webshop.mail.shop_emails import queue_shop_cancel_emails, queue_shop_refund_emails
from webshop.money import format_money
from webshop.orders.fulfilment import close_refunded_parts
from webshop.orders.refund_rules import (
    REASON_MAX,
    REFUNDABLE,
    LineLeft,
    RefundRow,
    amount_left,
    check_input,
    parcel_shipping_paid,
    plan_lines,
    refund_summary,
    refundable_problem,
    same_refund,
)
from webshop.orders.refunding import Refunding, provider_key, refunder_for, units_refunded
from webshop.orders.transition_effects import lock_order
from webshop.stock.service import return_stock
from webshop.webhooks.events import queue_order_change, queue_refund

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.payments.provider import RefundResult

logger = logging.getLogger("webshop.orders")


_Asked = tuple[dict[int, int] | None, int | None, bool, str]
"""A refund request as ``same_refund`` compares it: lines wanted, amount, restock, reason."""


class RefundService(Refunding, Audited, SQLAlchemyAsyncRepositoryService[Refund]):
    """Refunds of paid orders (see the module docstring)."""

    repository_type = repository_for(Refund)

    @property
    def session(self) -> AsyncSession:
        """The service's session."""
        return self.repository.session  # type: ignore[no-any-return]

    async def _rows_changed(self, statement: Any) -> int:
        """Run an ``UPDATE`` (``synchronize_session=False``) and return how many rows it changed."""
        result = await self.session.execute(statement)
        return cast("CursorResult[Any]", result).rowcount

    # -- reads ------------------------------------------------------------------------------------

    async def for_order(self, order: Order, *, refund_id: int | None = None) -> list[RefundRow]:
        """``order``'s refunds (only ``refund_id`` when given), oldest first, with their credit note
        numbers (``order.lines`` loaded)."""
        only = [Refund.id == refund_id] if refund_id is not None else []
        refunds = list(
            await self.session.scalars(
                select(Refund)
                .where(Refund.order_id == order.id, *only)
                .order_by(Refund.id)
                .execution_options(populate_existing=True)
            )
        )
        if not refunds:
            return []
        rows = await self.session.execute(
            select(Invoice.refund_id, Invoice.number, Invoice.id).where(Invoice.refund_id.in_([r.id for r in refunds]))
        )
        notes: dict[int | None, tuple[str, int]] = {refund_id: (number, id_) for refund_id, number, id_ in rows.all()}
        by_id = {line.id: line for line in order.lines}
        return [
            RefundRow(
                r,
                notes[r.id][0] if r.id in notes else "",
                [(by_id.get(rl.order_line_id), rl) for rl in r.lines],
                notes[r.id][1] if r.id in notes else None,
            )
            for r in refunds
        ]

    async def lines_left(self, order: Order) -> list[LineLeft]:
        """Each line of ``order`` (its ``lines`` loaded) with the units refunded so far (not failed)."""
        refunded = await units_refunded(self.session, order.id)
        return [LineLeft(line, refunded.get(line.id, 0)) for line in order.lines]

    async def get_refund(self, refund_id: int, *, order_id: int | None = None) -> Refund:
        """The refund ``refund_id`` (of order ``order_id`` when given), read afresh.

        Raises:
            NotFound: no such refund (of that order).
        """
        refund = await self.session.scalar(
            select(Refund).where(Refund.id == refund_id).execution_options(populate_existing=True)
        )
        if refund is None or (order_id is not None and refund.order_id != order_id):
            raise NotFound("There is no such refund.")
        return refund

    async def credit_note_number(self, refund_id: int) -> str:
        """The credit note number of the refund (empty while it has none)."""
        return await self.session.scalar(select(Invoice.number).where(Invoice.refund_id == refund_id)) or ""

    async def _by_key(self, idempotency_key: str) -> Refund | None:
        return await self.session.scalar(
            select(Refund).where(Refund.idempotency_key == idempotency_key).execution_options(populate_existing=True)
        )

    async def _order(self, order_id: int, *, lock: bool = False) -> Order:
        """The order, read afresh with its lines; with ``lock``, its row locked first (see the module
        docstring; on SQLite the statement takes the write lock and the transaction's reads start anew).

        Raises:
            NotFound: no such order.
        """
        if lock:
            await lock_order(self.session, order_id)
        order = await self.session.scalar(
            select(Order)
            .where(Order.id == order_id)
            .options(selectinload(Order.lines), selectinload(Order.fulfilments))
            .execution_options(populate_existing=True)
        )
        if order is None:
            raise NotFound("There is no such order.")
        return order

    # -- the verbs --------------------------------------------------------------------------------

    async def refund(
        self,
        order_id: int,
        *,
        lines: Sequence[tuple[int, int]] | None = None,
        amount: int | None = None,
        restock: bool = False,
        reason: str = "",
        actor: User | None,
        idempotency_key: str,
    ) -> Refund:
        """Refund part or all of a paid order through the provider, once per ``idempotency_key``.

        Args:
            order_id: The order (paid, shipped or delivered, its payment succeeded).
            lines: ``[(order line id, units)]`` to refund: their share of the payment (``refund_share``).
                Units of 0 are ignored; a line may appear once.
            amount: Or a plain amount, minor units of the order's currency (without ``lines``).
            restock: Put the refunded units back in stock once the refund succeeded (``lines`` only).
            reason: Why, for the records, the customer's e-mail and the credit note (at most 300 characters).
            actor: The admin refunding (``None``: the command line).
            idempotency_key: Unique per refund the admin means (at most 120 characters): the same key
                with the same request again returns the first refund and changes nothing; with another
                request it is refused (422).

        Returns:
            The refund as it is now: ``succeeded``; ``failed`` (``failure_reason``: the provider
            refused, nothing was refunded); or ``pending`` (the provider could not be reached: ``retry``).

        Raises:
            NotFound: no such order.
            ValidationFailed: neither or both of lines and amount, an unknown line, more units than are
                left of a line, more than is left of the payment (field ``amount``, or ``lines``), restock
                without lines, a reason too long, the key already used for another refund (of this order or
                another, 422).
            InvalidTransition: the order is not paid, shipped or delivered, or its payment did not succeed (409).
            Conflict: the order changed meanwhile (409).
        """
        session = self.session
        if not idempotency_key or len(idempotency_key) > 120:
            raise ValidationFailed("An idempotency key of 1 to 120 characters is required.")
        wanted = check_input(lines, amount, restock, reason)
        asked = (wanted, amount, restock, reason)
        existing = await self._by_key(idempotency_key)
        await session.commit()  # end the read
        if existing is not None:
            return self._replay(existing, order_id, asked)

        # 1. Claim, under the order's lock, in a savepoint: a refusal undoes only what it did (the
        # request's other objects, such as the signed-in user, stay loaded), then the commit ends the
        # transaction and its lock either way.
        existing = None
        try:
            async with session.begin_nested():
                claim = await self._claim(order_id, wanted, amount, idempotency_key)
                if isinstance(claim, Refund):  # made meanwhile (a double submit that won the lock first)
                    existing = claim
                else:
                    order, refund_lines, total = claim
                    refund = Refund(
                        order_id=order.id,
                        amount=total,
                        currency=order.currency,
                        reason=reason.strip(),
                        restock=restock,
                        status=RefundStatus.PENDING.value,
                        idempotency_key=idempotency_key,
                        actor_id=actor.id if actor else None,
                        lines=refund_lines,
                    )
                    session.add(refund)
                    await session.flush()
        except IntegrityError:
            # The same key from another worker's transaction (PostgreSQL, where the key check ran before
            # that one committed): the first refund is the answer.
            await session.commit()
            existing = await self._by_key(idempotency_key)
            if existing is None:
                raise
        finally:
            await session.commit()
        if existing is not None:
            return self._replay(existing, order_id, asked)

        # 2. and 3. Ask the provider (no transaction open) and record its answer.
        return await self._ask(refund, order, actor)

    async def _claim(
        self, order_id: int, wanted: dict[int, int] | None, amount: int | None, idempotency_key: str
    ) -> Refund | tuple[Order, list[RefundLine], int]:
        """Lock the order, check the refund against it and claim its amount (the caller inserts the
        ``Refund`` and commits, or rolls back on an exception).

        Returns:
            The refund already made with ``idempotency_key``, or ``(order, refund lines, amount claimed)``.

        Raises:
            As ``refund``.
        """
        order = await self._order(order_id, lock=True)
        existing = await self._by_key(idempotency_key)
        if existing is not None:
            return existing
        problem = refundable_problem(order)
        if problem is not None:
            raise problem
        refund_lines = plan_lines(order, wanted, await units_refunded(self.session, order.id)) if wanted else []
        total = sum(rl.amount for rl in refund_lines) if wanted else int(amount or 0)
        left = amount_left(order)
        if total > left:  # a request for more than is left (422, as too many units of a line are)
            message = (
                f"That is {format_money(total, order.currency)}, more than the "
                f"{format_money(left, order.currency)} left to refund of order {order.number}."
            )
            raise ValidationFailed(message, field_errors={"lines" if wanted else "amount": message})
        if not await self._claim_amount(order.id, total):  # the lock makes this a last line of defence
            raise Conflict(f"Order {order.number} changed meanwhile. Reload it and try again.")
        return order, refund_lines, total

    async def _claim_amount(self, order_id: int, amount: int) -> bool:
        """Add ``amount`` to the order's ``refunded_total`` if it is refundable and that stays within its
        total: one conditional ``UPDATE`` (the module docstring's claim). True when it was claimed."""
        claimed = await self._rows_changed(
            update(Order)
            .where(
                Order.id == order_id,
                Order.status.in_([s.value for s in REFUNDABLE]),
                Order.refunded_total + Order.refund_amount + amount <= Order.total,
            )
            .values(refunded_total=Order.refunded_total + amount, updated_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        return claimed == 1

    async def parcels_of(self, refund: Refund) -> list[Refund]:
        """The refunds of parcels' shipping made after ``refund`` on its order: those of the parts it
        closed, when asked right after it (for the admin's notice; ``_claim_parcels``)."""
        rows = await self.session.scalars(
            select(Refund)
            .where(Refund.order_id == refund.order_id, Refund.is_shipping.is_(True), Refund.id > refund.id)
            .order_by(Refund.id)
        )
        return list(rows)

    async def retry(self, refund_id: int, *, actor: User | None = None, order_id: int | None = None) -> Refund:
        """Ask the provider again for a refund still ``pending``, with the same key (a no-op otherwise);
        asked by a person (``actor``), the worker's attempts start again too.

        Raises:
            NotFound: no such refund (of order ``order_id`` when given).
        """
        refund = await self.get_refund(refund_id, order_id=order_id)
        order = await self._order(refund.order_id)
        if actor is not None:  # a person asks: the worker's attempts start again (``refund_retries``)
            refund.retry_attempts, refund.next_retry_at = 0, None
        await self.session.commit()  # no transaction waits for the provider
        if refund.status != RefundStatus.PENDING.value:
            return refund
        return await self._ask(refund, order, actor)

    def _replay(
        self, existing: Refund, order_id: int, asked: tuple[dict[int, int] | None, int | None, bool, str]
    ) -> Refund:
        """The refund already made with the request's key, when the request is the same one again.

        Raises:
            ValidationFailed: (422, field ``Idempotency-Key``) the key was used for another request: a refund
                of another order, or another refund of this one (other lines or units, another amount,
                restock or reason). The IETF's Idempotency-Key draft (§2.7) answers a key reused with
                another payload with 422, as checkout does.
        """
        if existing.order_id != order_id:
            raise ValidationFailed(
                "This idempotency key was already used for a refund of another order; this refund needs a new key.",
                field_errors={"Idempotency-Key": "Used for a refund of another order."},
            )
        if not same_refund(existing, *asked):
            raise ValidationFailed(
                "This idempotency key was already used for a different refund of this order; "
                "another refund needs a new key (on the order's page: reload it).",
                field_errors={"Idempotency-Key": "Used with a different refund."},
            )
        return existing

    async def _ask(self, refund: Refund, order: Order, actor: User | None) -> Refund:
        """Ask the provider for ``refund`` (outside any transaction) and record the answer."""
        try:
            result = await refunder_for(order, self._provider()).refund(
                reference=order.payment_reference,
                amount=refund.amount,
                currency=refund.currency,
                idempotency_key=provider_key(refund, order),
            )
        except Exception:  # unreachable (ProviderUnavailable) or broken: the refund stays pending, retry later
            logger.exception(
                "refund %s of order %s: the provider did not answer; it stays pending", refund.id, order.number
            )
            return refund
        parcels: list[Refund] = []
        if result.ok:
            parcels = await self._record_success(refund, order.id, result, actor)
        else:
            await self._record_failure(refund, order.id, result, actor)
        for parcel in parcels:  # claimed with the parts' closing: asked now, or retried while pending
            try:
                await self._ask(parcel, order, actor)
            except Exception:  # the refund asked for stands; the parcel's stays pending, for "Retry"
                await self.session.commit()
                logger.exception("order %s: could not ask for the shipping refund %s", order.number, parcel.id)
        refreshed = await self.get_refund(refund.id)
        await self.session.commit()
        return refreshed

    async def _record_success(
        self, refund: Refund, order_id: int, result: RefundResult, actor: User | None
    ) -> list[Refund]:
        """Record a refund the provider made (step 3 of the module docstring) and commit. Returns the
        refunds of the shipping of the parts it closed (``_claim_parcels``), pending, for the caller to ask."""
        session = self.session
        order = await self._order(order_id, lock=True)
        now = datetime.now(UTC)
        recorded = await self._rows_changed(
            update(Refund)
            .where(Refund.id == refund.id, Refund.status == RefundStatus.PENDING.value)
            .values(status=RefundStatus.SUCCEEDED.value, reference=result.reference, refunded_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if recorded != 1:  # another request recorded it first
            await session.commit()
            return []
        refund = await self.get_refund(refund.id)
        note = await issue_credit_note(session, refund, prefix=self.credit_note_prefix, now=now)
        by_id = {line.id: line for line in order.lines}
        refunded_lines = [(by_id[rl.order_line_id], rl) for rl in refund.lines if rl.order_line_id in by_id]
        if refund.restock:
            await self._restock(order, refunded_lines, note.number)
        before = OrderStatus(order.status)
        became_refunded = await self._refunded_when_complete(order)
        self.audit.record(
            actor,
            "order",
            order.id,
            "refund",
            summary=refund_summary(order, refund, refunded_lines, note.number, result.reference),
            changes={"refund": [RefundStatus.PENDING.value, RefundStatus.SUCCEEDED.value]},
        )
        if became_refunded:
            order = await self._order(order.id)
            self.audit.record(
                actor,
                "order",
                order.id,
                "status",
                summary=f"Order {order.number}: {before.value} → refunded (refunds reached the total)",
                changes={"status": [before.value, OrderStatus.REFUNDED.value]},
            )
            await queue_order_change(session, order, before, OrderStatus.REFUNDED)  # the order.refunded webhook
            await release_promotion_uses(session, order.id)  # a fully refunded order gives its uses back
        await queue_refund_email(session, order, refund, credit_note=note.number)
        await queue_refund(session, order, refund, note.number)
        parcels: list[Refund] = []
        if not became_refunded:  # a shop's part refunded in full has nothing left to ship
            parcels = await self._close_refunded_parts(order, actor)
        await self._tell_shops(order, before, became_refunded, [(line, rl.quantity) for line, rl in refunded_lines])
        await session.commit()
        return parcels

    async def _restock(
        self, order: Order, refunded_lines: list[tuple[OrderLine, RefundLine]], credit_note: str
    ) -> None:
        """Put the refunded units of ``refunded_lines`` back in stock (the ledger's reason ``refund``,
        referenced by ``credit_note``), variant rows in id order, and refresh the products' summaries:
        returned stock can turn a product's "in stock" flag back on (catalog filters and caches)."""
        restocked = sorted(
            ((line.variant_id, line, rl) for line, rl in refunded_lines if line.variant_id is not None),
            key=lambda row: row[0],
        )
        for variant_id, _, rl in restocked:
            await return_stock(
                self.session,
                variant_id,
                rl.quantity,
                reason=StockReason.REFUND,
                reference=f"{order.number} refund {credit_note}",
            )
        await refresh_product_summaries(self.session, [line.product_id for _, line, _ in restocked])

    async def _tell_shops(
        self, order: Order, before: OrderStatus, became_refunded: bool, refunded: list[tuple[OrderLine, int]]
    ) -> None:
        """The shops that have not sent their part of a paid order hear what not to send
        (``webshop.mail.shop_emails``): all of it when this refund completed the order's refunds, else the
        units it covered. Nothing for an order cancelled while the refund was pending (its shops heard
        then). In a savepoint, as ``_close_refunded_parts``: the refund is recorded even if this fails."""
        if before != OrderStatus.PAID:
            return
        try:
            async with self.session.begin_nested():
                if became_refunded:
                    await queue_shop_cancel_emails(self.session, order, refunded)
                elif refunded:
                    await queue_shop_refund_emails(self.session, order, refunded)
        except Exception:
            logger.exception("order %s: could not write to its shops about a refund; it is recorded", order.number)

    async def _close_refunded_parts(self, order: Order, actor: User | None) -> list[Refund]:
        """``close_refunded_parts`` and ``_claim_parcels`` in a savepoint: the refund the provider made is
        recorded even if closing a part (or shipping the order it completes) fails; the part then stays
        pending, for an admin to ship or cancel, and the failure is logged. Returns the parcels' refunds."""
        try:
            async with self.session.begin_nested():
                closed = await close_refunded_parts(self.session, order, self.audit, actor)
                return await self._claim_parcels(order, closed, actor)
        except Exception:
            logger.exception("order %s: could not close its refunded parts; the refund is recorded", order.number)
            return []

    async def _claim_parcels(self, order: Order, closed: list[Fulfilment], actor: User | None) -> list[Refund]:
        """Claim, under the order's lock and in the transaction that closes them, a refund of each closed
        part's shipping (``parcel_shipping_paid``): a parcel that will not be sent is not paid for, as when a
        whole order is cancelled. Each is ``pending`` (``is_shipping``) until the caller asks the provider
        after the commit; if that never happens, it is retried like any pending refund. Once per part (its
        idempotency key names it), never more than is left of the payment. None when an amount was refunded
        by hand before: that may have been this shipping, so the admin decides (an audit event says so)."""
        if not closed:
            return []
        by_hand = await self.session.scalar(
            select(func.count())
            .select_from(Refund)
            .where(
                Refund.order_id == order.id,
                Refund.status != RefundStatus.FAILED.value,
                Refund.is_shipping.is_(False),
                ~Refund.lines.any(),
            )
        )
        if by_hand:
            names = ", ".join(part.shop_name for part in closed)
            summary = f"Order {order.number}: the shipping of the closed part of {names} is left to the admin"
            self.audit.record(actor, "order", order.id, "shipping", summary=summary + " (an amount was refunded)")
            return []
        claimed: list[Refund] = []
        for part in closed:
            left = await self.session.scalar(
                select(Order.total - Order.refunded_total - Order.refund_amount).where(Order.id == order.id)
            )
            amount = min(parcel_shipping_paid(order, part), int(left or 0))
            if amount <= 0 or not await self._claim_amount(order.id, amount):
                continue
            from_shop = f" from {part.shop_name}" if part.shop_name else ""
            parcel = Refund(
                order_id=order.id,
                amount=amount,
                currency=order.currency,
                reason=f"Shipping of the items{from_shop}: nothing is left to send",
                is_shipping=True,
                status=RefundStatus.PENDING.value,
                idempotency_key=f"parcel-shipping-{part.id}",
                actor_id=actor.id if actor else None,
            )
            self.session.add(parcel)
            claimed.append(parcel)
        await self.session.flush()
        return claimed

    async def _refunded_when_complete(self, order: Order) -> bool:
        """Move ``order`` (read under its lock) to ``refunded`` when its refunds reach its total and none
        is pending; a conditional update on the status read. True when it moved."""
        if order.refunded_total < order.total or OrderStatus(order.status) not in REFUNDABLE:
            return False
        pending = await self.session.scalar(
            select(func.count())
            .select_from(Refund)
            .where(Refund.order_id == order.id, Refund.status == RefundStatus.PENDING.value)
        )
        if pending:
            return False
        moved = await self._rows_changed(
            update(Order)
            .where(Order.id == order.id, Order.status == order.status, Order.refunded_total >= Order.total)
            .values(status=OrderStatus.REFUNDED.value, updated_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        return moved == 1

    async def _record_failure(self, refund: Refund, order_id: int, result: RefundResult, actor: User | None) -> None:
        session = self.session
        order = await self._order(order_id, lock=True)
        now = datetime.now(UTC)
        reason = (result.failure_reason or "The payment provider refused the refund.")[:REASON_MAX]
        recorded = await self._rows_changed(
            update(Refund)
            .where(Refund.id == refund.id, Refund.status == RefundStatus.PENDING.value)
            .values(status=RefundStatus.FAILED.value, failure_reason=reason, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if recorded != 1:
            await session.commit()
            return
        refund = await self.get_refund(refund.id)
        # Give the claimed amount back: what is left to refund grows again.
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.refunded_total >= refund.amount)
            .values(refunded_total=Order.refunded_total - refund.amount, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        logger.warning("refund %s of order %s refused: %s", refund.id, order.number, reason)
        self.audit.record(
            actor,
            "order",
            order.id,
            "refund_failed",
            summary=f"Order {order.number}: refund of {format_money(refund.amount, refund.currency)} refused: {reason}",
            changes={"refund": [RefundStatus.PENDING.value, RefundStatus.FAILED.value]},
        )
        await queue_refund(session, await self._order(order.id), refund, None, WebhookEvent.REFUND_FAILED)
        await session.commit()
