"""The CSV's optional ``shop`` column (issue 16): which shop sells each imported product.

Shared by the import (``webshop.catalog.csv.apply``) and its dry run (``webshop.catalog.csv.plan``), so
both reject the same rows: a shop slug that names no shop (or a deleted one), and a row that would
move an existing product to another shop (a product stays in the shop that made it).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.csv.parse import ProductRow, RowError
from webshop.db.models import Product, Shop


async def resolve_shops(
    session: AsyncSession, rows: Sequence[ProductRow], errors: list[RowError]
) -> tuple[list[ProductRow], dict[str, int]]:
    """The rows whose shop exists, and ``{shop slug: id}`` with ``""`` for the default shop.

    A row naming a shop that does not exist (or is deleted) is left out, with a ``RowError`` added
    to ``errors``. One query.
    """
    wanted = sorted({row.shop for row in rows if row.shop})
    found = await session.execute(
        select(Shop.slug, Shop.id, Shop.is_default).where(
            or_(Shop.slug.in_(wanted), Shop.is_default.is_(True)), Shop.deleted_at.is_(None)
        )
    )
    ids: dict[str, int] = {}
    for slug, shop_id, is_default in found:
        ids[slug] = shop_id
        if is_default:
            ids[""] = shop_id
    kept = []
    for row in rows:
        if row.shop not in ids:
            errors.append(RowError(row.line, f"shop {row.shop!r} does not exist; product skipped"))
        else:
            kept.append(row)
    return kept, ids


def moves_shop(row: ProductRow, product: Product, shop_ids: dict[str, int]) -> RowError | None:
    """A ``RowError`` when ``row`` names a shop other than existing ``product``'s (products stay put)."""
    if row.shop and shop_ids.get(row.shop) != product.shop_id:
        return RowError(row.line, f"product {row.slug!r} belongs to another shop; a product stays in its shop; skipped")
    return None
