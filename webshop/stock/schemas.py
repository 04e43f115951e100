"""JSON shapes of the stock-health API (``GET /api/stock/health``); a listed variant is a
``webshop.stock.service.StockRow``."""

from __future__ import annotations

from typing import Literal

import msgspec

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
