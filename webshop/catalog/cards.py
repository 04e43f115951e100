"""The catalog's product cards, read as plain columns for a page of product ids (the grid, the API list).

Two statements built once at import time: the page's products with their variants aggregated and
their shop's name and slug, then their photos. Callers cache the cards per catalog version
(``webshop.catalog.browse``), which every change a card shows moves (a shop's new name included).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.query import CardImage, ProductCard
from webshop.db.models import Product, ProductImage, Shop, Variant

_CARDS = (
    select(
        Product.id,
        Product.slug,
        Product.name,
        func.min(Variant.price).label("min_price"),
        func.max(Variant.price).label("max_price"),
        func.max(Variant.stock).label("max_stock"),
        func.count(Variant.id).label("variant_count"),
        func.min(Variant.currency).label("currency"),
        func.min(Variant.id).label("variant_id"),
        func.min(Variant.sku).label("sku"),
        Product.shop_id,
        Shop.name.label("shop_name"),
        Shop.slug.label("shop_slug"),
    )
    .join(Variant, Variant.product_id == Product.id)
    .join(Shop, Shop.id == Product.shop_id)
    .where(Product.id.in_(bindparam("ids", expanding=True)))
    .group_by(Product.id, Product.slug, Product.name, Product.shop_id, Shop.name, Shop.slug)
)
_IMAGES = (
    select(
        ProductImage.product_id,
        ProductImage.id,
        ProductImage.key,
        ProductImage.alt,
        ProductImage.width,
        ProductImage.height,
    )
    .where(ProductImage.product_id.in_(bindparam("ids", expanding=True)))
    .order_by(ProductImage.product_id, ProductImage.position, ProductImage.id)
)


async def read_cards(session: AsyncSession, ids: Sequence[int]) -> list[ProductCard]:
    """Cards of ``ids`` in that order: their variants aggregated, their shop, their first photo (two queries).

    Args:
        session: A reading session.
        ids: Product ids, in the order to show them.

    Returns:
        One card per product that has a variant (a product without one has nothing to sell).
    """
    if not ids:
        return []
    rows = {row.id: row for row in await session.execute(_CARDS, {"ids": list(ids)})}
    images: dict[int, CardImage] = {}
    for product_id, image_id, key, alt, width, height in await session.execute(_IMAGES, {"ids": list(ids)}):
        images.setdefault(product_id, CardImage(image_id, key, alt, width, height))
    cards = []
    for pid in ids:
        row = rows.get(pid)
        if row is None:  # no variant (or removed since the order was cached): nothing to sell
            continue
        single = row.variant_count == 1
        cards.append(
            ProductCard(
                id=row.id,
                slug=row.slug,
                name=row.name,
                min_price=row.min_price,
                max_price=row.max_price,
                currency=row.currency,
                in_stock=row.max_stock > 0,
                variant_count=row.variant_count,
                image=images.get(pid),
                sku=row.sku if single else None,
                variant_id=row.variant_id if single else None,
                shop_id=row.shop_id,
                shop_name=row.shop_name,
                shop_slug=row.shop_slug,
            )
        )
    return cards
