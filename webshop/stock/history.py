"""A variant's stock ledger read back: its movements, newest first, each with the level it left.

The ledger (``webshop.db.models.stock.StockMovement``) has one signed row for every change of a variant's
stock, so the level after a movement is the stock on hand now minus every later movement's delta. Both
come from one statement (one snapshot): a window sum over the variant's movements, newest first, of the
deltas before each row. Shown on the admin's stock history page and by ``GET /api/variants/{id}/stock-movements``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from webshop.db.models import StockMovement, StockReason, Variant

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

REASON_LABELS = {
    StockReason.SALE.value: "Sale",
    StockReason.CANCELLATION.value: "Cancellation",
    StockReason.REFUND.value: "Refund",
    StockReason.ADJUSTMENT.value: "Adjustment",
    StockReason.IMPORT.value: "Import",
}
"""How the pages name a movement's ``reason`` (``StockReason``)."""


@dataclass(frozen=True, slots=True)
class Movement:
    """One change of a variant's stock.

    Attributes:
        id: The ledger row's id (the API's cursor: a page ends after this row).
        delta: Signed units (``-2``: two sold).
        reason: A ``StockReason`` value (``sale``, ``cancellation``, ``refund``, ``adjustment``, ``import``).
        reference: What caused it: an order number, a refund's credit note, an admin's reason and note, an
            import file.
        level_after: Units on hand once this movement was made.
        created_at: When (UTC).
    """

    id: int
    delta: int
    reason: str
    reference: str
    level_after: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Ledger:
    """A page of a variant's ledger and the stock on hand read in the same statement (``None`` when the
    page is empty), so that the newest row's ``level_after`` is that stock."""

    stock: int | None
    movements: list[Movement]


async def movements(session: AsyncSession, variant_id: int, *, limit: int, before_id: int | None = None) -> Ledger:
    """Up to ``limit`` movements of ``variant_id``, newest first, those older than ``before_id`` when given.

    Args:
        session: A session to read with.
        variant_id: The variant (not checked: ``StockService.history`` checks who may read it).
        limit: How many rows at most (callers ask for one more to know whether there are more).
        before_id: Only movements with a smaller id (the next page of a list that ended with that row).

    Returns:
        The movements with the level each left (none for a variant without any, or no such variant), and
        the stock they were read with.
    """
    later = (
        func.sum(StockMovement.delta).over(order_by=StockMovement.id.desc(), rows=(None, -1)).label("later")
    )  # the deltas of the rows newer than this one (none for the newest: NULL)
    ledger = (
        select(
            StockMovement.id,
            StockMovement.delta,
            StockMovement.reason,
            StockMovement.reference,
            StockMovement.created_at,
            later,
        )
        .where(StockMovement.variant_id == variant_id)
        .subquery()
    )
    statement = (
        select(ledger, Variant.stock, (Variant.stock - func.coalesce(ledger.c.later, 0)).label("level_after"))
        .join(Variant, Variant.id == variant_id)
        .order_by(ledger.c.id.desc())
        .limit(limit)
    )
    if before_id is not None:
        statement = statement.where(ledger.c.id < before_id)
    rows = (await session.execute(statement)).all()
    found = [Movement(r.id, r.delta, r.reason, r.reference, int(r.level_after), r.created_at) for r in rows]
    return Ledger(rows[0].stock if rows else None, found)
