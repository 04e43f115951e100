"""JSON shapes of the stock API: stock health (``GET /api/stock/health``; a listed variant is a
``webshop.stock.service.StockRow``) and a variant's stock ledger (``GET /api/variants/{id}/stock-movements``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, cast

import msgspec

from webshop.stock.history import Movement
from webshop.stock.service import StockHealth, StockLevel, StockRow

BandName = Literal["out", "critical", "low", "medium", "healthy"]
"""A stock band (``webshop.stock.service.StockLevel``)."""


class StockBandOut(msgspec.Struct, frozen=True):
    """One band: how many variants are in it (``count``) and the first of them, lowest stock first."""

    band: BandName
    count: int
    variants: list[StockRow]


class StockHealthOut(msgspec.Struct, frozen=True):
    """The report: ``counts`` of every band, and the listed ``bands`` (all five, or the one asked for).

    Bands against each variant's ``low_stock_threshold`` t, with s units on hand: ``out`` s = 0;
    ``critical`` 2s <= t; ``low`` s <= t; ``medium`` s <= 2t; ``healthy`` above.
    """

    counts: dict[str, int]
    bands: list[StockBandOut]
    limit: int
    offset: int


def stock_health_out(health: StockHealth, *, limit: int, offset: int) -> StockHealthOut:
    """``StockHealthOut`` of a ``StockService.health`` report."""
    bands = [StockBandOut(band=level.value, count=health.counts[level], variants=rows) for level, rows in health.bands]
    return StockHealthOut(
        counts={level.value: health.counts[level] for level in StockLevel}, bands=bands, limit=limit, offset=offset
    )


MovementReason = Literal["sale", "cancellation", "refund", "adjustment", "import"]
"""Why stock changed (``webshop.db.models.StockReason``)."""


class StockMovementOut(msgspec.Struct, frozen=True):
    """One change of a variant's stock: ``delta`` units (signed) for a ``reason``, what caused it
    (``reference``: an order number, a credit note, an admin's reason and note, an import), and the units on
    hand it left (``level_after``)."""

    id: int
    delta: int
    reason: MovementReason
    reference: str
    level_after: int
    created_at: datetime


class StockMovementPage(msgspec.Struct, frozen=True):
    """A page of a variant's stock ledger, newest first; pass ``next_cursor`` as ``cursor`` for older
    movements (``null`` on the last page)."""

    variant_id: int
    sku: str
    stock: int
    items: list[StockMovementOut]
    next_cursor: str | None


def movement_out(movement: Movement) -> StockMovementOut:
    """``StockMovementOut`` of a ledger row (``webshop.stock.history.Movement``)."""
    return StockMovementOut(
        id=movement.id,
        delta=movement.delta,
        reason=cast("MovementReason", movement.reason),  # a StockReason value, as the column holds
        reference=movement.reference,
        level_after=movement.level_after,
        created_at=movement.created_at,
    )
