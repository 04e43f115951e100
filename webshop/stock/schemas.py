"""JSON shapes of the stock-health API (``GET /api/stock/health``)."""

from __future__ import annotations

from typing import Literal

import msgspec

from webshop.stock.service import StockHealth, StockLevel, StockRow

BandName = Literal["out", "critical", "low", "medium", "healthy"]
"""A stock band (``webshop.stock.service.StockLevel``)."""


class StockVariantOut(msgspec.Struct, frozen=True):
    """One variant in a band: its stock on hand and the threshold it is measured against (units)."""

    variant_id: int
    sku: str
    product_id: int
    product_name: str
    option_values: list[str]
    stock: int
    low_stock_threshold: int


class StockBandOut(msgspec.Struct, frozen=True):
    """One band: how many variants are in it (``count``) and the first of them, lowest stock first."""

    band: BandName
    count: int
    variants: list[StockVariantOut]


class StockHealthOut(msgspec.Struct, frozen=True):
    """The report: ``counts`` of every band, and the listed ``bands`` (all five, or the one asked for).

    Bands against each variant's ``low_stock_threshold`` t, with s units on hand: ``out`` s = 0;
    ``critical`` 2s <= t; ``low`` s <= t; ``medium`` s <= 2t; ``healthy`` above.
    """

    counts: dict[str, int]
    bands: list[StockBandOut]
    limit: int
    offset: int


def _variant_out(row: StockRow) -> StockVariantOut:
    return StockVariantOut(
        variant_id=row.variant_id,
        sku=row.sku,
        product_id=row.product_id,
        product_name=row.product_name,
        option_values=row.option_values,
        stock=row.stock,
        low_stock_threshold=row.threshold,
    )


def stock_health_out(health: StockHealth, *, limit: int, offset: int) -> StockHealthOut:
    """``StockHealthOut`` of a ``StockService.health`` report."""
    counts = {level.value: health.counts[level] for level in StockLevel}
    bands = [
        StockBandOut(band=level.value, count=health.counts[level], variants=[_variant_out(row) for row in rows])
        for level, rows in health.bands
    ]
    return StockHealthOut(counts=counts, bands=bands, limit=limit, offset=offset)
