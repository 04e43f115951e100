"""The CSV's optional ``shop`` column (issue 16): which shop sells each imported product.

Shared by the import (``webshop.catalog.csv.apply``) and its dry run (``webshop.catalog.csv.plan``), so
both reject the same rows: a shop slug that names no shop (or a deleted one), a shop the importing
member does not run, and a row for an existing product of another shop (a product stays in the shop
that made it; a member changes only their shops' products).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.csv.parse import ProductRow, RowError
from webshop.db.models import Product, Shop
from webshop.shops.service import ShopAccess


@dataclass(frozen=True)
class ImportShops:
    """Whose import it is, as far as shops go.

    Attributes:
        allowed: The shops the importer runs (a member's); ``None`` for every shop (an admin, the
            command line).
        home: Where a row without a shop puts a new product: a member's (chosen) shop; ``None``: the
            default shop for an admin, and for a member of several shops a row error.
    """

    allowed: frozenset[int] | None = None
    home: int | None = None

    @classmethod
    def of(cls, access: ShopAccess) -> ImportShops:
        """The import of a user with ``access``: every shop for an admin; a member's shops otherwise,
        new rows without a shop going to their shop when they run exactly one."""
        if access.shop_ids is None:
            return cls()
        mine = access.shop_ids
        return cls(allowed=mine, home=next(iter(mine)) if len(mine) == 1 else None)


EVERY_SHOP = ImportShops()
"""An admin's or the command line's import: any shop, the default one for rows without a shop."""


async def resolve_shops(
    session: AsyncSession, rows: Sequence[ProductRow], errors: list[RowError], who: ImportShops = EVERY_SHOP
) -> tuple[list[ProductRow], dict[str, int]]:
    """The rows whose shop may be imported into, and ``{shop slug: id}`` with ``""`` for rows without one.

    A row naming a shop that does not exist (or is deleted), or one ``who`` does not run, is left out
    with a ``RowError`` added to ``errors``; so is a row without a shop when ``who`` has no home shop
    but is limited to some shops. One query.
    """
    wanted = sorted({row.shop for row in rows if row.shop})
    found = (
        await session.execute(
            select(Shop.slug, Shop.id, Shop.is_default).where(
                or_(Shop.slug.in_(wanted), Shop.is_default.is_(True)), Shop.deleted_at.is_(None)
            )
        )
    ).all()
    ids: dict[str, int] = {}
    for slug, shop_id, is_default in found:
        if who.allowed is None or shop_id in who.allowed:
            ids[slug] = shop_id
        if is_default and who.allowed is None:
            ids[""] = shop_id
    if who.home is not None:
        ids[""] = who.home
    kept = []
    for row in rows:
        if row.shop in ids:
            kept.append(row)
        elif not row.shop:
            errors.append(RowError(row.line, "say in the shop column which of your shops sells it; product skipped"))
        elif who.allowed is not None and any(slug == row.shop for slug, _id, _default in found):
            errors.append(RowError(row.line, f"shop {row.shop!r} is not one of your shops; product skipped"))
        else:
            errors.append(RowError(row.line, f"shop {row.shop!r} does not exist; product skipped"))
    return kept, ids


def moves_shop(
    row: ProductRow, product: Product, shop_ids: dict[str, int], who: ImportShops = EVERY_SHOP
) -> RowError | None:
    """A ``RowError`` when ``row`` would change existing ``product`` of another shop: it names a shop
    other than the product's, or the product's shop is not one ``who`` runs."""
    if may_update(row, product.shop_id, shop_ids, who):
        return None
    return RowError(row.line, f"product {row.slug!r} belongs to another shop; a product stays in its shop; skipped")


def may_update(row: ProductRow, shop_id: int | None, shop_ids: dict[str, int], who: ImportShops = EVERY_SHOP) -> bool:
    """Whether ``row`` may change the existing product of shop ``shop_id``: its shop is one ``who`` runs,
    and the row names no other shop (``moves_shop``'s rule)."""
    foreign = who.allowed is not None and shop_id not in who.allowed
    return not (foreign or (row.shop and shop_ids.get(row.shop) != shop_id))
