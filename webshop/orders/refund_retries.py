"""Refunds the payment provider did not answer are asked for again by the background worker.

A refund is asked for after the commit that claims it (``webshop.orders.refunds``; a cancelled or wholly
refunded order's refund: ``OrderService``). A provider that cannot be reached leaves it pending, money
the shop owes its customer. Each round of the worker (``webshop.payments.worker``) asks again for the
pending refunds that are due, with their own idempotency keys, so the money moves once however often
it is asked (Stripe, "Idempotent requests"):

1. **Due**: never asked again and made at least ``refund_retry_seconds`` ago (a ``Refund``'s
   ``created_at``; an order's ``updated_at``, set by the cancel), so the request that made it has
   finished asking; or its ``next_retry_at`` has passed. Fewer than ``refund_max_attempts`` attempts.
2. **Claimed**: one conditional ``UPDATE ... SET attempts = attempts + 1, next = :then WHERE id = :id
   AND attempts = :read AND <still pending>``, committed: of two workers looking at once, one asks. The
   next try waits ``refund_retry_seconds`` × 2^(attempts-1), at most 6 h (``webshop.db.outbox_sender.backoff``).
3. **Asked** with no transaction open, and the answer recorded conditionally, as the admin's "Retry"
   does (``RefundService.retry``, ``OrderService.settle_refund``). An ask still unanswered ends the
   round: the provider is down, and the other refunds wait for the next round rather than each for
   its timeout now. A refund the provider refused is answered: a ``Refund`` row fails (its claim goes
   back), an order's whole refund keeps the reason and is left to an admin (``webshop.orders.whole_refund``).

Past the last attempt (about three days with the defaults) the refund stays pending, logged as an error,
and the admin's pages say the shop no longer asks by itself; an admin's Retry starts the attempts again.
Refunds already pending when this came (migration ``a9d4c1e7b352``) were left to the admins before, who
may have refunded them another way, so they start past the last attempt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import and_, or_, select, update

from webshop.audit.service import AuditService
from webshop.db.models import Order, Refund, RefundStatus
from webshop.db.models.orders import REFUND_OWED
from webshop.db.models.payments import REFUND_PENDING
from webshop.db.outbox_sender import backoff
from webshop.orders.refunds import RefundService
from webshop.orders.service import OrderService

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config.settings import InvoiceSettings, PaymentSettings
    from webshop.payments.provider import PaymentProvider

logger = logging.getLogger("webshop.orders")

BATCH = 20
"""Refunds, and orders' refunds, one round reads at the most (each kind); the rest wait for the next round."""


@dataclass(frozen=True)
class RetryRound:
    """What one round asked the provider for again: ``refunds`` (``Refund`` rows) and ``orders`` (whole-order
    refunds). Each was claimed by this round; the answers are on the rows."""

    refunds: int = 0
    orders: int = 0


@dataclass(frozen=True)
class _Pending:
    """Where one kind of pending refund lives: its name (for the logs), its model, its pending condition,
    its attempts, its next try and the time it was made (before any attempt)."""

    name: str
    model: Any
    pending: Any
    attempts: Any
    next_at: Any
    made_at: Any

    def label(self, row_id: int) -> str:
        """How the logs name row ``row_id``'s refund: ``refund 5``, ``order 7's refund``."""
        return f"{self.name} {row_id}" if self.model is Refund else f"{self.name} {row_id}'s refund"


REFUNDS = _Pending("refund", Refund, REFUND_PENDING, Refund.retry_attempts, Refund.next_retry_at, Refund.created_at)
ORDERS = _Pending(
    "order", Order, REFUND_OWED, Order.refund_retry_attempts, Order.refund_next_retry_at, Order.updated_at
)


async def retry_due_refunds(
    session: AsyncSession,
    provider: PaymentProvider,
    payments: PaymentSettings,
    invoices: InvoiceSettings,
    *,
    now: datetime | None = None,
) -> RetryRound:
    """One round: ask ``provider`` again for the pending refunds due at ``now`` (the module docstring).

    The round ends early when an answer does not come (the provider is still down: the others wait for
    the next round instead of each waiting for its timeout now). A row that fails otherwise is logged
    and skipped. A claim that uses the last attempt and still leaves the refund pending is logged as an
    error: an admin must look at it (its page says so).

    Args:
        session: A write session of the worker's own; committed after each step.
        provider: The payment provider that refunds.
        payments: ``refund_retry_seconds`` and ``refund_max_attempts``.
        invoices: The credit note prefix a refund made now numbers its credit note with.
        now: The round's time (tests move it forward); without it, the time of each step.

    Returns:
        How many refunds and orders' refunds this round claimed and asked for.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: reading what is due failed; the worker logs it and tries next round.
    """
    if payments.refund_max_attempts <= 0:
        return RetryRound()
    moment = now or datetime.now(UTC)
    due = [(REFUNDS, row) for row in await _due(session, REFUNDS, moment, payments)]
    due += [(ORDERS, row) for row in await _due(session, ORDERS, moment, payments)]
    await session.commit()
    asked = {REFUNDS.name: 0, ORDERS.name: 0}
    for kind, (row_id, attempts) in due:
        at = now or datetime.now(UTC)
        try:
            if not await _claim(session, kind, row_id, attempts, at, payments.refund_retry_seconds):
                continue
            asked[kind.name] += 1
            logger.info("asking again for %s (attempt %s)", kind.label(row_id), attempts + 1)
            answered, order_id = await _ask(session, kind, row_id, provider, invoices)
        except Exception:  # this row only: a broken one must not stop the others for good
            await session.rollback()
            logger.exception("asking again for %s failed", kind.label(row_id))
            continue
        if answered:
            continue
        if attempts + 1 >= payments.refund_max_attempts:
            await _give_up(session, kind, row_id, order_id, attempts + 1)
        break  # the provider does not answer: the rest wait for the next round
    return RetryRound(refunds=asked[REFUNDS.name], orders=asked[ORDERS.name])


async def _ask(
    session: AsyncSession, kind: _Pending, row_id: int, provider: PaymentProvider, invoices: InvoiceSettings
) -> tuple[bool, int]:
    """Ask ``provider`` for row ``row_id``'s refund (step 3 of the module docstring): ``(answered, order
    id)``, answered True when it has an answer now (made or refused), False when it is still pending."""
    if kind is REFUNDS:
        refund = await RefundService(session=session, provider=provider, invoices=invoices).retry(row_id)
        return refund.status != RefundStatus.PENDING.value, refund.order_id
    order = await OrderService(session=session, provider=provider, invoices=invoices).settle_refund(row_id)
    return not order.refund_pending or bool(order.refund_failure), order.id


async def _give_up(session: AsyncSession, kind: _Pending, row_id: int, order_id: int, attempts: int) -> None:
    """The last attempt found no answer: log it as an error and tell the admins in the order's history
    (an ``order``/``refund_retries`` audit event, by the shop itself); committed."""
    what = kind.label(row_id)
    logger.error(
        "%s is still unanswered after %s attempts: the worker stops; an admin must check it at the payment "
        "provider and retry it",
        what,
        attempts,
    )
    AuditService(session=session).record(
        None,
        "order",
        order_id,
        "refund_retries",
        summary=f"The payment provider did not answer for {what} after {attempts} attempts; the shop no longer "
        "asks by itself: check it at the provider, then retry it",
    )
    await session.commit()


def _is_due(kind: _Pending, moment: datetime, retry_seconds: float) -> Any:
    """The condition "pending and due at ``moment``" for ``kind`` (step 1 of the module docstring)."""
    first = moment - timedelta(seconds=retry_seconds)
    return and_(
        kind.pending,
        or_(and_(kind.next_at.is_(None), kind.made_at <= first), kind.next_at <= moment),
    )


async def _due(
    session: AsyncSession, kind: _Pending, moment: datetime, payments: PaymentSettings
) -> list[tuple[int, int]]:
    """``[(id, attempts)]`` of ``kind``'s pending refunds due at ``moment``, the oldest (lowest id) first."""
    rows = await session.execute(
        select(kind.model.id, kind.attempts)
        .where(_is_due(kind, moment, payments.refund_retry_seconds), kind.attempts < payments.refund_max_attempts)
        .order_by(kind.model.id)
        .limit(BATCH)
    )
    return [(int(row_id), int(attempts)) for row_id, attempts in rows.all()]


async def _claim(
    session: AsyncSession, kind: _Pending, row_id: int, attempts: int, moment: datetime, retry_seconds: float
) -> bool:
    """Take the next attempt of row ``row_id`` of ``kind`` (step 2 of the module docstring); committed.
    False when another worker took it, or it was answered, since it was read."""
    taken = cast(
        "CursorResult[Any]",
        await session.execute(
            update(kind.model)
            .where(kind.model.id == row_id, kind.attempts == attempts, _is_due(kind, moment, retry_seconds))
            .values({kind.attempts: attempts + 1, kind.next_at: moment + backoff(retry_seconds, attempts + 1)})
            .execution_options(synchronize_session=False)
        ),
    )
    await session.commit()
    return taken.rowcount == 1
