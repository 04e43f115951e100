"""The photo and product link a cart line or an order line shows, looked up for many products at once.

Order lines keep a snapshot of the product's name and SKU but not its photo, and the product's slug
may have changed (or the product may be hidden) since; ``product_thumbnails`` reads what is current.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.query import visible_products
from webshop.db.models import Product, ProductImage


@dataclass(frozen=True)
class Thumbnail:
    """A product as a line shows it: its first photo's media key, and its slug while shoppers may see it.

    ``slug`` is ``None`` for a hidden or soft-deleted product (its page would be a 404, so no link);
    ``image_key`` is ``None`` for a product without photos.
    """

    slug: str | None
    image_key: str | None


async def product_thumbnails(session: AsyncSession, product_ids: Iterable[int | None]) -> dict[int, Thumbnail]:
    """``{product id: Thumbnail}`` for ``product_ids`` (``None`` and unknown ids are left out); one query.

    The photo is the product's first by position, the one the catalog card shows.
    """
    ids = sorted({product_id for product_id in product_ids if product_id is not None})
    if not ids:
        return {}
    first_image = (
        select(ProductImage.key)
        .where(ProductImage.product_id == Product.id)
        .order_by(ProductImage.position, ProductImage.id)
        .limit(1)
        .correlate(Product)
        .scalar_subquery()
    )
    visible = visible_products()
    rows = await session.execute(
        select(Product.id, Product.slug, visible.label("visible"), first_image.label("image_key")).where(
            Product.id.in_(ids)
        )
    )
    return {row.id: Thumbnail(slug=row.slug if row.visible else None, image_key=row.image_key) for row in rows}
