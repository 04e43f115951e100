"""The catalog as the import's CSV (``export_catalog``): cells that a spreadsheet would run as a formula
are quoted (OWASP "CSV Injection") and the importer reads them back unchanged.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, TextIO

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webshop.db.models import Category, Product, Shop
from webshop.money import exponent

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.csv.parse import (
    CATEGORY_FACET,
    COLUMNS,
    SHOP_COLUMN,
    VARIANT_EXTRA_COLUMNS,
    protect_cell,
)

# --------------------------------------------------------------------------------------------- export


@dataclass
class ExportReport:
    """What ``export_catalog`` wrote: product and variant rows, and the products it had to leave out.

    Attributes:
        products: Products written.
        variants: Variant rows written (a product's first variant shares its product row).
        skipped: ``(slug, reason)`` for each product the CSV format cannot carry faithfully.
    """

    products: int = 0
    variants: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


async def export_catalog(
    session: AsyncSession, handle: TextIO, *, currency: str = "USD", shop_ids: frozenset[int] | None = None
) -> ExportReport:
    """Write the shop's catalog to ``handle`` as a ``products.csv`` that ``import_catalog`` reads back unchanged.

    Every product that is not soft-deleted is written in id order: its first variant on the product
    row, the others on variant rows; its category as ``category:`` facet values from the top-level
    category down, its other facets after them; its photos (in order) as the file names of their stored
    originals (``{key}.{ext}``, see ``stored_asset``); stock as ``stockOnHand`` (which an import only uses
    for new variants); each variant's weight and low-stock threshold as ``weightGrams`` and
    ``lowStockThreshold``. Importing the file into the same shop changes nothing.

    A product the format cannot carry faithfully is left out and listed in ``ExportReport.skipped``:
    no variants; a ``|`` in a facet value, option or category name (the format's separator); a ``:`` in a
    facet name; a variant priced in a currency other than ``currency``.

    Text cells a spreadsheet would run as a formula get a ``'`` in front (``protect_cell``, OWASP "CSV
    Injection"); the parser takes it off again (``unprotect_cell``), so the file still reads back exactly.
    Prices and stock are written as plain non-negative numbers, which no spreadsheet runs as a formula.

    With more than one shop, a last ``shop`` column names each product's shop by slug (on its product
    row), so the file imports back into the same shops; with one shop the file is as it always was.

    Args:
        session: A session to read with.
        handle: A text stream opened with ``newline=""`` (the ``csv`` module writes ``\\r\\n`` line ends).
        currency: The shop's currency (``WEBSHOP_CURRENCY``); prices are written in its major units.
        shop_ids: Only these shops' products (a shop member's export); ``None`` for every shop's.

    Returns:
        Counts of rows written and the products left out.
    """
    categories = {category.id: category for category in await session.scalars(select(Category))}
    products = await session.scalars(
        select(Product)
        .where(Product.deleted_at.is_(None), *([] if shop_ids is None else [Product.shop_id.in_(shop_ids or {0})]))
        .order_by(Product.id)
        .options(selectinload(Product.variants), selectinload(Product.images), selectinload(Product.facets))
        .execution_options(populate_existing=True)
    )
    shop_slugs = dict((await session.execute(select(Shop.id, Shop.slug).where(Shop.deleted_at.is_(None)))).all())
    several = len(shop_slugs) > 1
    writer = csv.writer(handle)
    writer.writerow(export_columns(several))
    report = ExportReport()
    for product in products:
        path = _category_path(categories, product.category_id)
        problem = _unexportable(product, path, currency)
        if problem:
            report.skipped.append((product.slug, problem))
            continue
        facets = [f"{CATEGORY_FACET}:{name}" for name in path]
        facets += [f"{facet.facet}:{facet.value}" for facet in product.facets]
        for index, variant in enumerate(product.variants):
            product_cells = (
                [
                    product.name,
                    product.slug,
                    product.description,
                    "|".join(f"{image.key}.{image.ext}" for image in product.images),
                    "|".join(facets),
                    "|".join(product.option_groups or []),
                ]
                if index == 0
                else [""] * 6
            )
            writer.writerow(
                [
                    *(protect_cell(cell) for cell in product_cells),
                    protect_cell("|".join(variant.option_values or [])),
                    protect_cell(variant.sku),
                    format_major(variant.price, currency),
                    protect_cell(variant.tax_category),
                    str(variant.stock),
                    "",
                    "",
                    "",
                    str(variant.weight_grams),
                    str(variant.low_stock_threshold),
                    *([shop_slugs.get(product.shop_id, "") if index == 0 else ""] if several else []),
                ]
            )
            report.variants += 1
        report.products += 1
    return report


def export_columns(several_shops: bool = False) -> tuple[str, ...]:
    """The export's header: the import's ``COLUMNS``, then ``weightGrams`` and ``lowStockThreshold``, then
    ``shop`` when the shop has ``several_shops``."""
    return (*COLUMNS, *VARIANT_EXTRA_COLUMNS, *((SHOP_COLUMN,) if several_shops else ()))


def format_major(amount: int, currency: str = "USD") -> str:
    """Minor units as the CSV's decimal in major units: ``format_major(129900) == "1299.00"``."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def _category_path(categories: dict[int, Category], category_id: int | None) -> list[str]:
    """Names from the top-level category down to ``category_id`` (empty for none)."""
    path: list[str] = []
    seen: set[int] = set()
    while category_id is not None and category_id in categories and category_id not in seen:
        seen.add(category_id)
        category = categories[category_id]
        path.insert(0, category.name)
        category_id = category.parent_id
    return path


def _unexportable(product: Product, path: list[str], currency: str) -> str | None:
    """Why ``product`` cannot be written faithfully, or ``None``."""
    if not product.variants:
        return "it has no variants"
    texts = [*path, *(product.option_groups or [])]
    texts += [value for variant in product.variants for value in variant.option_values or []]
    texts += [facet.value for facet in product.facets]
    if any("|" in text for text in texts):
        return "a category, facet value or option contains “|”, the format's separator"
    if any(":" in facet.facet or "|" in facet.facet for facet in product.facets):
        return "a facet name contains “:” or “|”"
    if any(variant.currency != currency for variant in product.variants):
        return f"a variant is priced in another currency than {currency}"
    if any(len(variant.option_values or []) != len(product.option_groups or []) for variant in product.variants):
        return "a variant does not have one option value per option group"
    return None
