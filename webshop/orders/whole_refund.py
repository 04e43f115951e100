"""A cancelled or wholly refunded paid order's refund: step 2 of ``webshop.orders.service``.

After the status change has committed what the order owes (``refund_amount``), the payment provider is
asked, with no transaction open, for that amount with the order's one idempotency key
(``refund_idempotency_key``), so however often it is asked (the cancel, an admin's Retry, the worker's
``webshop.orders.refund_retries``) the money moves once. Its answer is recorded conditionally:

- **made**: ``refund_reference``/``refunded_at`` (``WHERE refunded_at IS NULL``: the first answer
  recorded stands), an ``order``/``refund`` audit event, and, for an invoiced order, a ``Refund`` of the
  amount with its credit note (EU VAT Directive 2006/112/EC, art. 219);
- **refused** (the provider answered no: the payment was refunded another way, it is disputed...):
  ``refund_failure`` keeps its reason and an ``order``/``refund_failed`` audit event says so; the worker
  does not ask for a refused refund again (asking again would be refused again): the admin's page shows
  the reason and an admin's Retry asks once more;
- **unanswered** (the provider could not be reached): nothing; the refund stays pending for the worker.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from webshop.db.models import Invoice, InvoiceKind, Order, OrderStatus, Refund, RefundStatus, User, WebhookEvent
from webshop.invoices.numbering import issue_credit_note
from webshop.money import format_money
from webshop.orders.refunding import refund_idempotency_key
from webshop.webhooks.events import queue_refund

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.audit.service import AuditService
    from webshop.orders.refunding import Refunder
    from webshop.payments.provider import RefundResult

logger = logging.getLogger("webshop.orders")

REFUSED_ATTEMPTS = 1000
"""The worker's attempts a refused refund is given: ``WEBSHOP_REFUND_MAX_ATTEMPTS``'s largest value, so the
worker never takes it (``webshop.orders.refund_retries``); an admin's Retry starts them again."""


async def make_whole_refund(
    session: AsyncSession,
    audit: AuditService,
    order: Order,
    provider: Refunder,
    *,
    actor: User | None,
    credit_note_prefix: str,
) -> Order:
    """Ask ``provider`` for what ``order`` owes and record its answer (the module docstring); committed.

    Args:
        session: The service's session, with no transaction waiting on the provider (the caller committed).
        audit: The audit trail on ``session``.
        order: The order, read after the status change; nothing happens unless ``refund_pending``.
        provider: Who gives the money back: the payment provider that took it, or ``SHOP_RETURNS`` for an
            order paid another way (``refunding.refunder_for``).
        actor: Who asked (``None``: the shop itself: the cancel's request, the worker).
        credit_note_prefix: The number prefix of the credit note an invoiced order's refund gets.

    Returns:
        ``order`` as recorded: ``refunded_at`` set when the refund was made, ``refund_failure`` when refused.
    """
    if not order.refund_pending:
        return order
    try:
        result = await provider.refund(
            reference=order.payment_reference,
            amount=order.refund_amount,
            currency=order.currency,
            idempotency_key=refund_idempotency_key(order),
        )
    except Exception:  # the provider could not be reached: the order stays cancelled, the refund pending
        logger.exception("refund of order %s failed; it stays pending", order.number)
        return order
    if not result.ok:
        return await _record_refused(session, audit, order, result, actor)
    return await _record_made(session, audit, order, result, actor, credit_note_prefix)


async def _record_made(
    session: AsyncSession,
    audit: AuditService,
    order: Order,
    result: RefundResult,
    actor: User | None,
    credit_note_prefix: str,
) -> Order:
    """The refund was made: record it once (the first answer recorded stands), audit and document it."""
    now = datetime.now(UTC)
    recorded = await _set_if_owed(
        session, order.id, refund_reference=result.reference, refunded_at=now, refund_failure="", updated_at=now
    )
    if recorded:
        amount = format_money(order.refund_amount, order.currency)
        card = f" to the card ending {order.card_last4}" if order.card_last4 else ""
        summary = f"Order {order.number}: refunded {amount}{card} ({result.reference})"
        if order.paid_another_way:
            summary = f"Order {order.number}: refunded {amount}, returned by the shop (the order was paid another way)"
        audit.record(
            actor,
            "order",
            order.id,
            "refund",
            summary=summary,
            changes={"refund_reference": [None, result.reference]},
        )
        await _document(session, order, result.reference, now, actor, credit_note_prefix)
    await session.commit()
    if recorded:
        # Shown by the page being rendered now, without another read (and another transaction).
        for name, value in (("refund_reference", result.reference), ("refunded_at", now), ("refund_failure", "")):
            set_committed_value(order, name, value)
        set_committed_value(order, "updated_at", now)
    return order


async def _record_refused(
    session: AsyncSession, audit: AuditService, order: Order, result: RefundResult, actor: User | None
) -> Order:
    """The provider refused: keep its reason, stop the worker's attempts, audit it (unless a refund was
    recorded meanwhile: then nothing)."""
    reason = (result.failure_reason or "The payment provider refused the refund.")[:300]
    logger.warning("refund of order %s refused: %s", order.number, reason)
    now = datetime.now(UTC)
    recorded = await _set_if_owed(
        session, order.id, refund_failure=reason, refund_retry_attempts=REFUSED_ATTEMPTS, updated_at=now
    )
    if recorded:
        audit.record(
            actor,
            "order",
            order.id,
            "refund_failed",
            summary=f"Order {order.number}: the payment provider refused the refund of "
            f"{format_money(order.refund_amount, order.currency)}: {reason}",
        )
        refused = _whole_refund(order, RefundStatus.FAILED, actor, failure_reason=reason)  # not stored (``_document``)
        await queue_refund(session, order, refused, None, WebhookEvent.REFUND_FAILED)
    await session.commit()
    if recorded:
        for name, value in (("refund_failure", reason), ("refund_retry_attempts", REFUSED_ATTEMPTS)):
            set_committed_value(order, name, value)
        set_committed_value(order, "updated_at", now)
    return order


def _whole_refund(
    order: Order,
    status: RefundStatus,
    actor: User | None,
    *,
    reference: str = "",
    refunded_at: datetime | None = None,
    failure_reason: str = "",
) -> Refund:
    """``order``'s whole refund as a ``Refund`` row, not added to the session: its ``refund_amount``, no
    lines and no restock (the stock moved with the status), the reason "Order cancelled" or "Order refunded"."""
    return Refund(
        order_id=order.id,
        amount=order.refund_amount,
        currency=order.currency,
        reason="Order cancelled" if order.status == OrderStatus.CANCELLED.value else "Order refunded",
        restock=False,
        is_shipping=False,
        status=status.value,
        idempotency_key=refund_idempotency_key(order),
        reference=reference,
        failure_reason=failure_reason,
        actor_id=actor.id if actor is not None else None,
        refunded_at=refunded_at,
        lines=[],
    )


async def _set_if_owed(session: AsyncSession, order_id: int, **values: Any) -> bool:
    """Set ``values`` on the order while its refund is still owed (``refunded_at IS NULL``); True if it was."""
    result = cast(
        "CursorResult[Any]",
        await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.refunded_at.is_(None))
            .values(**values)
            .execution_options(synchronize_session=False)
        ),
    )
    return result.rowcount == 1


async def _document(
    session: AsyncSession, order: Order, reference: str, now: datetime, actor: User | None, credit_note_prefix: str
) -> None:
    """Record the whole-order refund just made as a ``Refund`` of an amount (no lines: the stock moved
    with the status) and give it a credit note, in the caller's transaction, when the order was
    invoiced: every refund of an invoiced sale is documented by a credit note (EU VAT Directive
    2006/112/EC, art. 219). An order paid after it was cancelled has no invoice and gets none."""
    invoiced = await session.scalar(
        select(Invoice.id).where(Invoice.order_id == order.id, Invoice.kind == InvoiceKind.INVOICE.value)
    )
    if invoiced is None:
        return
    refund = _whole_refund(order, RefundStatus.SUCCEEDED, actor, reference=reference, refunded_at=now)
    session.add(refund)
    await session.flush()
    note = await issue_credit_note(session, refund, prefix=credit_note_prefix, now=now)
    await queue_refund(session, order, refund, note.number)
