"""Gap-free invoice and credit-note numbers, safe under concurrency on PostgreSQL and SQLite.

Many countries require invoice numbers to form one unbroken sequence (EU VAT Directive 2006/112/EC,
art. 226(2): "a sequential number ... which uniquely identifies the invoice"). A database sequence
leaves gaps (a rolled-back transaction burns its value), so the number comes from a counter row
(``InvoiceCounter``, one per kind and year) bumped by a conditional ``UPDATE ... SET last = last + 1``
inside the transaction that issues the invoice: the row lock (PostgreSQL) or the write lock (SQLite,
``BEGIN IMMEDIATE``) makes concurrent issuers take turns, and a rollback gives the number back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.db.models import Invoice, InvoiceCounter, InvoiceKind, Order, Refund
from webshop.invoices.credits import credited_by, storable, tax_to_credit

DEFAULT_INVOICE_PREFIX = "INV"
"""The invoice prefix of a service made without the invoice settings (``WEBSHOP_INVOICE_PREFIX``'s default)."""
DEFAULT_CREDIT_NOTE_PREFIX = "CN"
"""The credit note prefix of a service made without the invoice settings (``WEBSHOP_CREDIT_NOTE_PREFIX``'s default)."""

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def invoice_number(prefix: str, year: int, sequence: int) -> str:
    """``INV-2026-000042``: the prefix, the year and the sequence in six digits (more when it outgrows them)."""
    return f"{prefix}-{year}-{sequence:06d}"


async def next_sequence(session: AsyncSession, kind: InvoiceKind, year: int) -> int:
    """Take the next number of ``kind`` in ``year`` in the caller's transaction (see the module docstring).

    The year's counter row is created on first use (a concurrent creator's insert loses on the unique
    index inside a savepoint and this one then bumps the winner's row).
    """
    for _ in range(2):
        bumped = await session.execute(
            update(InvoiceCounter)
            .where(InvoiceCounter.kind == kind.value, InvoiceCounter.year == year)
            .values(last=InvoiceCounter.last + 1, updated_at=datetime.now(UTC))
            .returning(InvoiceCounter.last)
            .execution_options(synchronize_session=False)
        )
        value = bumped.scalar_one_or_none()
        if value is not None:
            return int(value)
        try:
            async with session.begin_nested():
                session.add(InvoiceCounter(kind=kind.value, year=year, last=0))
        except IntegrityError:
            pass  # another transaction created it first: bump theirs
    raise RuntimeError(f"no invoice counter for {kind.value} {year}")


async def issue_invoice(session: AsyncSession, order: Order, *, prefix: str, now: datetime | None = None) -> Invoice:
    """The order's invoice, numbered now in the caller's transaction; the existing one if it has one.

    Call it in the transaction that marks the order paid, so paid orders and invoice numbers match
    one to one (``total`` is the order's total, minor units of its currency).
    """
    existing = await session.scalar(
        select(Invoice).where(Invoice.order_id == order.id, Invoice.kind == InvoiceKind.INVOICE.value)
    )
    if existing is not None:
        return existing
    return await _numbered(
        session, InvoiceKind.INVOICE, prefix, now, order_id=order.id, total=order.total, currency=order.currency
    )


async def issue_credit_note(
    session: AsyncSession, refund: Refund, *, prefix: str, now: datetime | None = None
) -> Invoice:
    """The credit note of a refund (``total`` = the refund's amount), numbered in the caller's
    transaction; the existing one if it has one. Call it in the transaction that records the refund
    as succeeded.

    The note keeps the tax it credits per rate (``Invoice.credited_tax``), worked out now from the
    order's invoice and the notes issued before it (``webshop.invoices.credits.tax_to_credit``), so it
    never credits more of a rate than is left and always draws the same.
    """
    existing = await session.scalar(select(Invoice).where(Invoice.refund_id == refund.id))
    if existing is not None:
        return existing
    note = await _numbered(
        session,
        InvoiceKind.CREDIT_NOTE,
        prefix,
        now,
        order_id=refund.order_id,
        refund_id=refund.id,
        total=refund.amount,
        currency=refund.currency,
    )
    order = await session.scalar(select(Order).where(Order.id == refund.order_id).options(selectinload(Order.lines)))
    refunded = await session.scalar(select(Refund).where(Refund.id == refund.id).options(selectinload(Refund.lines)))
    if order is None or refunded is None:  # pragma: no cover - both rows are in the caller's transaction
        raise LookupError("The refund or its order is gone.")
    earlier = [(row.Invoice, row.Refund) for row in await session.execute(notes_before(note))]
    lines = list(order.lines)
    note.credited_tax = storable(
        tax_to_credit(
            refunded,
            order,
            lines,
            credited_before=credited_by(earlier, order, lines),
            refunded_before=sum(before.amount for _note, before in earlier),
        )
    )
    await session.flush()
    return note


def notes_before(note: Invoice) -> Any:
    """``SELECT`` the credit notes of ``note``'s order issued before it, each with its refund (its lines
    loaded), in the order they were issued."""
    return (
        select(Invoice, Refund)
        .join(Refund, Invoice.refund_id == Refund.id)
        .where(
            Invoice.order_id == note.order_id,
            Invoice.kind == InvoiceKind.CREDIT_NOTE.value,
            Invoice.id < note.id,
        )
        .options(selectinload(Refund.lines))
        .order_by(Invoice.id)
    )


async def _numbered(
    session: AsyncSession, kind: InvoiceKind, prefix: str, now: datetime | None, **fields: Any
) -> Invoice:
    """A new ``kind`` document with ``fields`` (order, refund, total, currency), issued ``now`` (default:
    the current time) under the next number of its kind and year; flushed in the caller's transaction."""
    issued = now or datetime.now(UTC)
    sequence = await next_sequence(session, kind, issued.year)
    document = Invoice(
        kind=kind.value,
        year=issued.year,
        sequence=sequence,
        number=invoice_number(prefix, issued.year, sequence),
        issued_at=issued,
        **fields,
    )
    session.add(document)
    await session.flush()
    return document
