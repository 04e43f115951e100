"""The admin's product table: one page of products filtered by text, category, state and stock level,
sorted by a column (``ProductAdminList``, a mixin of ``ProductService``).

Read through advanced-alchemy's ``get_many_and_count`` with a ``LimitOffset`` filter: the page and the
number of products matching the filters (two statements, so a page past the end still knows the total).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advanced_alchemy.filters import LimitOffset
from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.orm import selectinload

from webshop.catalog.query import MAX_QUERY_LENGTH, descendant_ids
from webshop.catalog.rules import ADMIN_STOCK_LEVELS
from webshop.catalog.search import escape_like
from webshop.db.folding import fold, folded
from webshop.db.models import Category, Product, Variant

if TYPE_CHECKING:
    from collections.abc import Sequence


class ProductAdminList:
    """``ProductService``'s admin product table (a mixin: it uses the service's repository)."""

    repository: Any

    if TYPE_CHECKING:

        async def get_many_and_count(self, *filters: Any, **kwargs: Any) -> tuple[Sequence[Product], int]:
            """advanced-alchemy's ``SQLAlchemyAsyncRepositoryService.get_many_and_count``."""
            ...

    async def admin_search(
        self,
        *,
        q: str = "",
        category_id: int | None = None,
        state: str = "active",
        stock_level: str | None = None,
        sort: str = "name",
        page: int = 1,
        page_size: int = 25,
        shop_ids: frozenset[int] | None = None,
        with_details: bool = False,
    ) -> tuple[list[Product], int]:
        """One page of the admin product table.

        Args:
            q: Text matched case-insensitively against name, slug and the variants' SKUs.
            category_id: Only products in this category or below it.
            state: ``active`` (not soft-deleted; the default), ``deleted`` or ``all`` (see ``ADMIN_STATES``).
            stock_level: ``out``, ``critical``, ``low``, ``medium`` or ``healthy``: products with at least one variant
                at that level (``webshop.stock.service.stock_level_expression``); ``None`` for any.
            sort: A key of ``ADMIN_SORTS`` (unknown values sort by name).
            page: 1-based page number.
            page_size: Rows per page.
            shop_ids: Only these shops' products (a shop member's table, ``webshop.shops.scope``);
                ``None`` for every shop's (a platform admin's).
            with_details: Load the facets, category and shop too (what ``product_out`` reads: the API).

        Returns:
            ``(products, total)``: the page's products (variants and photos loaded) and the number of
            products matching the filters.
        """
        from webshop.stock.service import stock_level_expression

        session = self.repository.session
        conditions: list[Any] = []
        if shop_ids is not None:
            conditions.append(Product.shop_id.in_(shop_ids or {0}))
        if state == "deleted":
            conditions.append(Product.deleted_at.is_not(None))
        elif state != "all":
            conditions.append(Product.deleted_at.is_(None))
        text = (q or "").strip()[:MAX_QUERY_LENGTH]
        if text:
            pattern = f"%{escape_like(fold(text))}%"
            conditions.append(
                or_(
                    folded(Product.name).like(pattern, escape="\\"),
                    folded(Product.slug).like(pattern, escape="\\"),
                    Product.id.in_(select(Variant.product_id).where(folded(Variant.sku).like(pattern, escape="\\"))),
                )
            )
        if category_id is not None:
            categories = list(await session.scalars(select(Category)))
            conditions.append(Product.category_id.in_(descendant_ids(categories, category_id)))
        if stock_level in ADMIN_STOCK_LEVELS:
            conditions.append(Product.id.in_(select(Variant.product_id).where(stock_level_expression() == stock_level)))
        stats = _variant_stats()
        order = _sort_order(sort, stats)
        rows, total = await self.get_many_and_count(
            and_(true(), *conditions),
            LimitOffset(limit=page_size, offset=(max(page, 1) - 1) * page_size),
            statement=select(Product).outerjoin(stats, stats.c.product_id == Product.id).order_by(*order),
            load=[
                selectinload(Product.variants),
                selectinload(Product.images),
                *(
                    (selectinload(Product.facets), selectinload(Product.category), selectinload(Product.shop))
                    if with_details
                    else ()
                ),
            ],
            execution_options={"populate_existing": True},
            count_with_window_function=False,
        )
        return list(rows), total


def _variant_stats() -> Any:
    """Per product: lowest and highest variant price and total stock (a subquery to sort by)."""
    return (
        select(
            Variant.product_id.label("product_id"),
            func.min(Variant.price).label("min_price"),
            func.max(Variant.price).label("max_price"),
            func.sum(Variant.stock).label("stock"),
        )
        .group_by(Variant.product_id)
        .subquery()
    )


def _sort_order(sort: str, stats: Any) -> list[Any]:
    """The ORDER BY for a key of ``ADMIN_SORTS`` (unknown keys sort by name), ties broken by id."""
    orders: dict[str, list[Any]] = {
        "-name": [Product.name.desc(), Product.id.desc()],
        "newest": [Product.created_at.desc(), Product.id.desc()],
        "updated": [Product.updated_at.desc(), Product.id.desc()],
        "price": [func.coalesce(stats.c.min_price, 0).asc(), Product.name.asc(), Product.id.asc()],
        "-price": [func.coalesce(stats.c.max_price, 0).desc(), Product.name.asc(), Product.id.asc()],
        "stock": [func.coalesce(stats.c.stock, 0).asc(), Product.name.asc(), Product.id.asc()],
        "-stock": [func.coalesce(stats.c.stock, 0).desc(), Product.name.asc(), Product.id.asc()],
    }
    return orders.get(sort, [Product.name.asc(), Product.id.asc()])
