"""Catalog rules: what a shopper may see, how it is filtered, counted, sorted and paged.

``ProductService.browse`` is the one query behind the catalog page (and later the API): filters by
category (a category includes its subcategories), facet values and a search text, counts facet
values disjunctively (a facet's counts ignore that facet's own selection, as faceted search usually
does), sorts and pages.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import selectinload

from webshop.db.models import Category, Product, ProductFacet, ProductImage, Variant
from webshop.errors import NotFound, ValidationFailed

FILTER_FACETS = ("brand", "color")
SORTS = {
    "name": "Name: A to Z",
    "-name": "Name: Z to A",
    "price": "Price: low to high",
    "-price": "Price: high to low",
    "newest": "Newest",
}
DEFAULT_SORT = "name"
MAX_QUERY_LENGTH = 100


@dataclass(frozen=True)
class CatalogQuery:
    """What the shopper asked for; built from the URL's query string, so it is shareable.

    Attributes:
        q: Search text (matched case-insensitively against name and description).
        category: Category slug, or ``None`` for all.
        facets: ``{"brand": ("Nikon",), "color": ("blue", "pink")}``; values within a facet are ORed,
            facets are ANDed.
        sort: One of ``SORTS``.
        page: 1-based page number.
    """

    q: str = ""
    category: str | None = None
    facets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sort: str = DEFAULT_SORT
    page: int = 1

    @classmethod
    def from_params(
        cls,
        *,
        q: str | None,
        category: str | None,
        brand: list[str] | None,
        color: list[str] | None,
        sort: str | None,
        page: int | None,
    ) -> CatalogQuery:
        """Normalise raw query parameters: trim, drop blanks, fall back to defaults for unknown values."""
        facets = {
            name: tuple(sorted({v.strip() for v in values if v and v.strip()}))
            for name, values in (("brand", brand or []), ("color", color or []))
        }
        return cls(
            q=(q or "").strip()[:MAX_QUERY_LENGTH],
            category=(category or "").strip() or None,
            facets={k: v for k, v in facets.items() if v},
            sort=sort if sort in SORTS else DEFAULT_SORT,
            page=max(1, page or 1),
        )

    def params(self, **changes: Any) -> dict[str, Any]:
        """Query parameters for a link to this query with ``changes`` applied (``None`` drops one)."""
        base: dict[str, Any] = {"q": self.q or None, "category": self.category, "sort": self.sort}
        base.update({name: list(values) for name, values in self.facets.items()})
        if base["sort"] == DEFAULT_SORT:
            base["sort"] = None
        base["page"] = self.page if self.page > 1 else None
        base.update(changes)
        return {k: v for k, v in base.items() if v not in (None, "", [])}

    @property
    def is_filtered(self) -> bool:
        """True when any search text, category or facet narrows the catalog."""
        return bool(self.q or self.category or self.facets)


@dataclass(frozen=True)
class ProductCard:
    """One product in the catalog grid.

    Prices are minor units of ``currency``: ``min_price == max_price`` for single-price products.
    ``sku`` is set when the product has exactly one variant (it can go in the cart from the grid).
    """

    id: int
    slug: str
    name: str
    min_price: int
    max_price: int
    currency: str
    in_stock: bool
    variant_count: int
    image: ProductImage | None
    sku: str | None
    variant_id: int | None


@dataclass(frozen=True)
class FacetValue:
    """A facet value with the number of products it would show, and whether it is selected."""

    value: str
    count: int
    selected: bool


@dataclass(frozen=True)
class CategoryNode:
    """A category with its children, for navigation; ``active`` marks the current one or its parent."""

    id: int
    name: str
    slug: str
    children: list[CategoryNode]
    active: bool = False


@dataclass(frozen=True)
class CatalogPage:
    """A page of results: ``items``, ``total`` matches, ``pages``, facet counts and the category tree."""

    query: CatalogQuery
    items: list[ProductCard]
    total: int
    page: int
    pages: int
    page_size: int
    facets: dict[str, list[FacetValue]]
    categories: list[CategoryNode]
    category: Category | None


def visible_products() -> Any:
    """SQL condition for products a shopper may see: active and not soft-deleted."""
    return and_(Product.is_active.is_(True), Product.deleted_at.is_(None))


class CategoryService(SQLAlchemyAsyncRepositoryService[Category]):
    """Category tree: reading it for navigation and resolving a slug to itself and its descendants."""

    class Repo(SQLAlchemyAsyncRepository[Category]):
        """Category repository."""

        model_type = Category

    repository_type = Repo

    async def all_categories(self) -> list[Category]:
        """Return every category ordered by position and name."""
        rows = await self.repository.session.scalars(select(Category).order_by(Category.position, Category.name))
        return list(rows)

    async def tree(self, active_slug: str | None = None) -> list[CategoryNode]:
        """Return the category tree (roots first), marking ``active_slug`` and its ancestors active."""
        return build_tree(await self.all_categories(), active_slug)

    async def get_by_slug(self, slug: str) -> Category:
        """Return the category with ``slug``.

        Raises:
            NotFound: no category has that slug.
        """
        category = await self.repository.session.scalar(select(Category).where(Category.slug == slug))
        if category is None:
            raise NotFound(f"There is no category “{slug}”.")
        return category


def build_tree(categories: list[Category], active_slug: str | None = None) -> list[CategoryNode]:
    """Turn a flat list of categories into nested ``CategoryNode`` trees (any depth)."""
    by_parent: dict[int | None, list[Category]] = {}
    for category in categories:
        by_parent.setdefault(category.parent_id, []).append(category)

    def build(parent_id: int | None) -> list[CategoryNode]:
        nodes = []
        for category in by_parent.get(parent_id, []):
            children = build(category.id)
            active = category.slug == active_slug or any(child.active for child in children)
            nodes.append(CategoryNode(category.id, category.name, category.slug, children, active))
        return nodes

    return build(None)


def descendant_ids(categories: list[Category], root_id: int) -> set[int]:
    """Return ``root_id`` and the ids of every category below it."""
    ids = {root_id}
    changed = True
    while changed:
        changed = False
        for category in categories:
            if category.parent_id in ids and category.id not in ids:
                ids.add(category.id)
                changed = True
    return ids


class ProductService(SQLAlchemyAsyncRepositoryService[Product]):
    """Products as the shop shows them: browsing, and one product with its variants and photos."""

    class Repo(SQLAlchemyAsyncRepository[Product]):
        """Product repository."""

        model_type = Product

    repository_type = Repo

    async def browse(self, query: CatalogQuery, *, page_size: int = 24) -> CatalogPage:
        """Return one page of the catalog for ``query``.

        Args:
            query: Filters, sort and page (see ``CatalogQuery``).
            page_size: Products per page.

        Returns:
            A ``CatalogPage``; a page past the end has no items (the caller shows an empty state).

        Raises:
            NotFound: ``query.category`` names no category.
        """
        session = self.repository.session
        categories = list(await session.scalars(select(Category).order_by(Category.position, Category.name)))
        category, conditions, facet_conditions = self._conditions(query, categories)
        where = and_(*conditions, *facet_conditions.values())
        total = await session.scalar(select(func.count()).select_from(Product).where(where)) or 0
        pages = max(1, math.ceil(total / page_size))

        stats = _variant_stats()
        statement: Select[Any] = (
            select(Product.id, Product.slug, Product.name, stats)
            .join(stats, stats.c.product_id == Product.id)
            .where(where)
        )
        statement = statement.order_by(*_order_by(query.sort, stats)).limit(page_size)
        statement = statement.offset((query.page - 1) * page_size)
        rows = (await session.execute(statement)).all()
        items = await self._cards(rows)

        facets = {}
        for name in FILTER_FACETS:
            others = [cond for other, cond in facet_conditions.items() if other != name]
            facets[name] = await self._facet_counts(name, and_(*conditions, *others), query.facets.get(name, ()))
        return CatalogPage(
            query=query,
            items=items,
            total=total,
            page=query.page,
            pages=pages,
            page_size=page_size,
            facets=facets,
            categories=build_tree(categories, query.category),
            category=category,
        )

    async def search(
        self,
        query: CatalogQuery,
        *,
        limit: int,
        cursor: str | None = None,
        price_min: int | None = None,
        price_max: int | None = None,
    ) -> tuple[list[ProductCard], str | None]:
        """One page of products for the API, with keyset (cursor) pagination.

        Args:
            query: Search text, category, facets and sort (``query.page`` is ignored).
            limit: Products per page (1-100).
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first page.
            price_min / price_max: Only products with a variant priced in this range (minor units).

        Returns:
            ``(cards, next_cursor)``; ``next_cursor`` is ``None`` on the last page.

        Raises:
            NotFound: ``query.category`` names no category.
            ValidationFailed: the cursor is not one this endpoint issued for this sort.
        """
        session = self.repository.session
        categories = list(await session.scalars(select(Category)))
        _, conditions, facet_conditions = self._conditions(query, categories)
        if price_min is not None or price_max is not None:
            priced = select(Variant.product_id)
            if price_min is not None:
                priced = priced.where(Variant.price >= price_min)
            if price_max is not None:
                priced = priced.where(Variant.price <= price_max)
            conditions.append(Product.id.in_(priced))
        stats = _variant_stats()
        keys = _sort_keys(query.sort, stats)
        if cursor:
            conditions.append(_after(keys, _decode_cursor(cursor, query.sort, len(keys))))
        statement = (
            select(Product.id, Product.slug, Product.name, Product.created_at, stats)
            .join(stats, stats.c.product_id == Product.id)
            .where(and_(*conditions, *facet_conditions.values()))
            .order_by(*(column.desc() if descending else column.asc() for column, descending in keys))
            .limit(limit + 1)
        )
        rows = (await session.execute(statement)).all()
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more and rows:
            last = rows[-1]
            first_key = {"price": last.min_price, "-price": last.max_price, "newest": last.created_at}
            next_cursor = _encode_cursor(query.sort, [first_key.get(query.sort, last.name), last.id])
        return await self._cards(rows), next_cursor

    async def get_visible(self, product_id: int) -> Product:
        """The visible product with ``product_id``, with variants, photos, facets and category.

        Raises:
            NotFound: no visible product has that id (soft-deleted and inactive ones included).
        """
        product = await self.repository.session.scalar(
            select(Product)
            .where(Product.id == product_id, visible_products())
            .options(selectinload(Product.variants), selectinload(Product.images), selectinload(Product.facets))
        )
        if product is None:
            raise NotFound("There is no such product.")
        return product

    @staticmethod
    def _conditions(
        query: CatalogQuery, categories: list[Category]
    ) -> tuple[Category | None, list[Any], dict[str, Any]]:
        """SQL conditions for a query: ``(category, conditions, {facet: condition})``.

        Raises:
            NotFound: ``query.category`` names no category.
        """
        category = None
        conditions: list[Any] = [visible_products()]
        if query.category:
            category = next((c for c in categories if c.slug == query.category), None)
            if category is None:
                raise NotFound(f"There is no category “{query.category}”.")
            conditions.append(Product.category_id.in_(descendant_ids(categories, category.id)))
        if query.q:
            pattern = f"%{_escape_like(query.q)}%"
            conditions.append(
                or_(Product.name.ilike(pattern, escape="\\"), Product.description.ilike(pattern, escape="\\"))
            )
        facet_conditions = {
            name: Product.id.in_(
                select(ProductFacet.product_id).where(ProductFacet.facet == name, ProductFacet.value.in_(values))
            )
            for name, values in query.facets.items()
        }
        return category, conditions, facet_conditions

    async def _cards(self, rows: list[Any]) -> list[ProductCard]:
        session = self.repository.session
        ids = [row.id for row in rows]
        images: dict[int, ProductImage] = {}
        singles: dict[int, Variant] = {}
        if ids:
            for image in await session.scalars(
                select(ProductImage)
                .where(ProductImage.product_id.in_(ids))
                .order_by(ProductImage.product_id, ProductImage.position)
            ):
                images.setdefault(image.product_id, image)
            single_ids = [row.id for row in rows if row.variant_count == 1]
            if single_ids:
                for variant in await session.scalars(select(Variant).where(Variant.product_id.in_(single_ids))):
                    singles[variant.product_id] = variant
        return [
            ProductCard(
                id=row.id,
                slug=row.slug,
                name=row.name,
                min_price=row.min_price,
                max_price=row.max_price,
                currency=row.currency,
                in_stock=row.max_stock > 0,
                variant_count=row.variant_count,
                image=images.get(row.id),
                sku=singles[row.id].sku if row.id in singles else None,
                variant_id=singles[row.id].id if row.id in singles else None,
            )
            for row in rows
        ]

    async def _facet_counts(self, facet: str, where: Any, selected: tuple[str, ...]) -> list[FacetValue]:
        statement = (
            select(ProductFacet.value, func.count(func.distinct(ProductFacet.product_id)))
            .join(Product, Product.id == ProductFacet.product_id)
            .where(ProductFacet.facet == facet, where)
            .group_by(ProductFacet.value)
            .order_by(ProductFacet.value)
        )
        counts = {value: count for value, count in (await self.repository.session.execute(statement)).all()}
        # A selected value stays listed (with 0) so the shopper can untick it.
        for value in selected:
            counts.setdefault(value, 0)
        return [FacetValue(v, counts[v], v in selected) for v in sorted(counts, key=str.casefold)]

    async def get_visible_by_slug(self, slug: str) -> Product:
        """Return the visible product with ``slug``, its variants, photos, facets and category loaded.

        Raises:
            NotFound: no visible product has that slug (soft-deleted and inactive ones included).
        """
        product = await self.repository.session.scalar(
            select(Product)
            .where(Product.slug == slug, visible_products())
            .options(selectinload(Product.variants), selectinload(Product.images), selectinload(Product.facets))
        )
        if product is None:
            raise NotFound("We could not find that product. It may have been removed.")
        return product

    async def variant_with_product(self, *, variant_id: int | None = None, sku: str | None = None) -> Variant | None:
        """The variant with ``variant_id`` (or ``sku``) and its product, visible or not; ``None`` if unknown."""
        if variant_id is None and not sku:
            return None
        condition = Variant.id == variant_id if variant_id is not None else Variant.sku == sku
        return await self.repository.session.scalar(
            select(Variant).where(condition).options(selectinload(Variant.product))
        )


def choose_variant(product: Product, chosen: dict[str, str], sku: str | None = None) -> Variant | None:
    """Pick the variant the shopper chose.

    ``sku`` wins when it names one of the product's variants; otherwise the variant whose option
    values match ``chosen`` (``{group: value}``) on the most groups, preferring one in stock; with no
    choice at all, the first variant in stock (or the first).
    """
    variants = list(product.variants)
    if not variants:
        return None
    if sku:
        for variant in variants:
            if variant.sku == sku:
                return variant
    groups = product.option_groups or []

    def score(variant: Variant) -> tuple[int, int, int]:
        options = variant.options(groups)
        matches = sum(1 for g, v in chosen.items() if options.get(g) == v)
        return (matches, 1 if variant.stock > 0 else 0, -variants.index(variant))

    return max(variants, key=score)


def option_choices(product: Product) -> list[tuple[str, list[str]]]:
    """Return ``[(group, [values in first-seen order])]`` for the variant picker."""
    groups = product.option_groups or []
    choices: list[tuple[str, list[str]]] = []
    for index, group in enumerate(groups):
        values: list[str] = []
        for variant in product.variants:
            if index < len(variant.option_values) and variant.option_values[index] not in values:
                values.append(variant.option_values[index])
        choices.append((group, values))
    return choices


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _variant_stats() -> Any:
    """Per product: lowest and highest price, most stock of a variant, number of variants, currency."""
    return (
        select(
            Variant.product_id.label("product_id"),
            func.min(Variant.price).label("min_price"),
            func.max(Variant.price).label("max_price"),
            func.max(Variant.stock).label("max_stock"),
            func.count(Variant.id).label("variant_count"),
            func.min(Variant.currency).label("currency"),
        )
        .group_by(Variant.product_id)
        .subquery()
    )


def _sort_keys(sort: str, stats: Any) -> list[tuple[Any, bool]]:
    """``[(column, descending)]`` of a sort for keyset pagination; the product id breaks ties."""
    if sort == "-name":
        return [(Product.name, True), (Product.id, True)]
    if sort == "price":
        return [(stats.c.min_price, False), (Product.id, False)]
    if sort == "-price":
        return [(stats.c.max_price, True), (Product.id, False)]
    if sort == "newest":
        return [(Product.created_at, True), (Product.id, True)]
    return [(Product.name, False), (Product.id, False)]


def _after(keys: list[tuple[Any, bool]], values: list[Any]) -> Any:
    """Rows after ``values`` in the order of ``keys``: (k1 > v1) OR (k1 = v1 AND k2 > v2) ..."""
    clauses = []
    for index, (column, descending) in enumerate(keys):
        equal = [keys[i][0] == values[i] for i in range(index)]
        beyond = column < values[index] if descending else column > values[index]
        clauses.append(and_(*equal, beyond))
    return or_(*clauses)


def _encode_cursor(sort: str, values: list[Any]) -> str:
    raw = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    payload = json.dumps({"s": sort, "v": raw}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, size: int) -> list[Any]:
    """The sort values a cursor carries.

    Raises:
        ValidationFailed: the cursor is malformed or was issued for another sort.
    """
    problem = ValidationFailed("The cursor is not valid for this query.", field_errors={"cursor": "Invalid cursor."})
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values = data["v"]
    except (ValueError, TypeError, KeyError) as exc:
        raise problem from exc
    if not isinstance(data, dict) or data.get("s") != sort or not isinstance(values, list) or len(values) != size:
        raise problem
    if not isinstance(values[-1], int) or isinstance(values[-1], bool):
        raise problem
    first = values[0]
    if sort == "newest":
        try:
            first = datetime.fromisoformat(first)
        except (TypeError, ValueError) as exc:
            raise problem from exc
    elif sort in {"price", "-price"}:
        if not isinstance(first, int) or isinstance(first, bool):
            raise problem
    elif not isinstance(first, str):
        raise problem
    return [first, values[-1]]


def _order_by(sort: str, stats: Any) -> list[Any]:
    if sort == "-name":
        return [Product.name.desc(), Product.id.desc()]
    if sort == "price":
        return [stats.c.min_price.asc(), Product.name.asc(), Product.id.asc()]
    if sort == "-price":
        return [stats.c.max_price.desc(), Product.name.asc(), Product.id.asc()]
    if sort == "newest":
        return [Product.created_at.desc(), Product.id.desc()]
    return [Product.name.asc(), Product.id.asc()]
