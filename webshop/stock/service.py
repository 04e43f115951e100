"""Stock rules: the only ways stock changes, each written to the ledger in the same transaction.

Stock never goes below zero: a decrement is one conditional statement
(``UPDATE variants SET stock = stock - :n WHERE id = :id AND stock >= :n``) whose row count says
whether it happened, so two shoppers can never both take the last unit, on SQLite or PostgreSQL,
in one process or many. A CHECK constraint (``stock >= 0``) is the last line of defence.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.db.models import StockMovement, StockReason, Variant


async def take_stock(
    session: AsyncSession, variant_id: int, quantity: int, *, reason: StockReason, reference: str
) -> bool:
    """Decrement ``variant_id``'s stock by ``quantity`` units if that many are on hand.

    Returns:
        True when the stock was taken (and a movement of ``-quantity`` written); False when there
        were fewer than ``quantity`` units, in which case nothing changed.
    """
    result = await session.execute(
        update(Variant)
        .where(Variant.id == variant_id, Variant.stock >= quantity)
        .values(stock=Variant.stock - quantity)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    session.add(StockMovement(variant_id=variant_id, delta=-quantity, reason=reason.value, reference=reference))
    return True


async def return_stock(
    session: AsyncSession, variant_id: int, quantity: int, *, reason: StockReason, reference: str
) -> None:
    """Increment ``variant_id``'s stock by ``quantity`` units and record the movement."""
    await session.execute(
        update(Variant)
        .where(Variant.id == variant_id)
        .values(stock=Variant.stock + quantity)
        .execution_options(synchronize_session=False)
    )
    session.add(StockMovement(variant_id=variant_id, delta=quantity, reason=reason.value, reference=reference))


async def find_ledger_mismatches(session: AsyncSession) -> list[tuple[str, int, int]]:
    """Return ``[(sku, stock, sum of movements)]`` for every variant whose stock disagrees with its ledger."""
    ledger = (
        select(StockMovement.variant_id, func.sum(StockMovement.delta).label("total"))
        .group_by(StockMovement.variant_id)
        .subquery()
    )
    rows = await session.execute(
        select(Variant.sku, Variant.stock, func.coalesce(ledger.c.total, 0))
        .outerjoin(ledger, ledger.c.variant_id == Variant.id)
        .where(Variant.stock != func.coalesce(ledger.c.total, 0))
        .order_by(Variant.sku)
    )
    return [(sku, stock, int(total)) for sku, stock, total in rows.all()]
