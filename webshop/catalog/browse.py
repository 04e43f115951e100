"""The shopper's and the API's catalog reads: filters, sorts, pages, cards and facet counts.

A request costs about the same whatever the catalog's size and the page's depth:

* **Ordering on one table.** Sorting and the price and stock filters use summary columns of
  ``products`` (``min_price``, ``max_price``, ``in_stock``), kept by ``refresh_product_summaries`` in
  the same transaction as every variant, price or stock change. Nothing aggregates the variants of
  the whole catalog.
* **Page first, then the page's rows.** The page's product ids are chosen first; only those 24 (or
  ``limit``) products' variants and photos are read, as plain columns into ``ProductCard`` rows (no
  ORM entities), with statements built once at import time.
* **Counts and orders cached by catalog version.** ``catalog_state.version`` goes up in every
  transaction that changes the catalog (``catalog_changed`` marks the session; the bump is the last
  statement before its commit). Each request reads the version once and keys a per-process cache
  with it: the category tree, the ordered ids of a filter set (so the total is their number and
  page 400 is a slice, as cheap as page 1), the facet counts and search plans. After a write, every
  worker's next request sees the new version, so no worker serves counts older than one request.
* **Keyset pages for the API.** ``api_page`` walks ``(sort column, id)`` indexes with a row-value
  comparison; the relevance order of a search is a slice of the cached ranking.

Faceted counts are disjunctive: a facet's counts ignore that facet's own selection.
"""

from __future__ import annotations

import base64
import json
import math
from array import array
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, event, func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from webshop.catalog import search
from webshop.catalog.version import read_catalog_version
from webshop.db.models import CatalogState, Category, Product, ProductFacet, ProductImage, Variant
from webshop.errors import NotFound, ValidationFailed
from webshop.money import exponent, parse_major

FILTER_FACETS = ("brand", "color")
RELEVANCE = "relevance"
SORTS = {
    "name": "Name: A to Z",
    "-name": "Name: Z to A",
    "price": "Price: low to high",
    "-price": "Price: high to low",
    "newest": "Newest",
}
"""Sorts of the catalog without a search text."""
SEARCH_SORTS = {RELEVANCE: "Best match", **SORTS}
"""Sorts with a search text; ``relevance`` is the default then."""
DEFAULT_SORT = "name"
MAX_QUERY_LENGTH = 100
MAX_PRICE = 2**31 - 1


# --- what is asked, and what is shown ------------------------------------------------------------


@dataclass(frozen=True)
class CatalogQuery:
    """What the shopper asked for; built from the URL's query string, so it is shareable.

    Attributes:
        q: Search text (see ``webshop.catalog.search``).
        category: Category slug, or ``None`` for all.
        facets: ``{"brand": ("Nikon",), "color": ("blue", "pink")}``; values within a facet are ORed,
            facets are ANDed.
        sort: One of ``SORTS`` (or ``SEARCH_SORTS`` with a search text).
        page: 1-based page number.
        price_min / price_max: Only products with a variant priced in this range (minor units).
        in_stock: Only products with a variant in stock.
        currency: The shop's currency, to show ``price_min``/``price_max`` in major units.
    """

    q: str = ""
    category: str | None = None
    facets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    sort: str = DEFAULT_SORT
    page: int = 1
    price_min: int | None = None
    price_max: int | None = None
    in_stock: bool = False
    currency: str = "USD"

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
        price_min: int | None = None,
        price_max: int | None = None,
        in_stock: bool | None = False,
        currency: str = "USD",
    ) -> CatalogQuery:
        """Normalise raw query parameters: trim, drop blanks, fall back to defaults for unknown values.

        The sort defaults to ``relevance`` with a search text and to ``name`` without; a price range
        given upside down is turned round; prices are clamped to 0..``MAX_PRICE`` minor units.
        """
        facets = {
            name: tuple(sorted({v.strip() for v in values if v and v.strip()}))
            for name, values in (("brand", brand or []), ("color", color or []))
        }
        text = (q or "").strip()[:MAX_QUERY_LENGTH]
        low = None if price_min is None else max(0, min(price_min, MAX_PRICE))
        high = None if price_max is None else max(0, min(price_max, MAX_PRICE))
        if low is not None and high is not None and low > high:
            low, high = high, low
        allowed = SEARCH_SORTS if text else SORTS
        return cls(
            q=text,
            category=(category or "").strip() or None,
            facets={k: v for k, v in facets.items() if v},
            sort=sort if sort in allowed else _default_sort(text),
            page=max(1, page or 1),
            price_min=low,
            price_max=high,
            in_stock=bool(in_stock),
            currency=currency,
        )

    @property
    def sorts(self) -> dict[str, str]:
        """The sorts that apply: ``SEARCH_SORTS`` with a search text, else ``SORTS``."""
        return SEARCH_SORTS if self.q else SORTS

    @property
    def price_min_text(self) -> str:
        """``price_min`` in major units for a form field (``"12.50"``), or ``""``."""
        return _major(self.price_min, self.currency)

    @property
    def price_max_text(self) -> str:
        """``price_max`` in major units for a form field, or ``""``."""
        return _major(self.price_max, self.currency)

    def params(self, **changes: Any) -> dict[str, Any]:
        """Query parameters for a link to this query with ``changes`` applied (``None`` drops one)."""
        base: dict[str, Any] = {
            "q": self.q or None,
            "category": self.category,
            "sort": self.sort,
            "price_min": self.price_min_text or None,
            "price_max": self.price_max_text or None,
            "in_stock": "1" if self.in_stock else None,
        }
        base.update({name: list(values) for name, values in self.facets.items()})
        base["page"] = self.page if self.page > 1 else None
        base.update(changes)
        if base.get("sort") == _default_sort(base.get("q") or "") or (
            base.get("sort") == RELEVANCE and not base.get("q")
        ):
            base["sort"] = None
        return {k: v for k, v in base.items() if v not in (None, "", [])}

    @property
    def is_filtered(self) -> bool:
        """True when any search text, category, facet, price bound or the stock filter narrows the catalog."""
        return (
            bool(self.q or self.category or self.facets or self.price_min is not None or self.price_max is not None)
            or self.in_stock
        )

    @property
    def filter_key(self) -> tuple[Any, ...]:
        """Everything that decides which products match (not the sort or the page): a cache key."""
        facets = tuple(sorted(self.facets.items()))
        return (self.q, self.category, facets, self.price_min, self.price_max, self.in_stock)


def _default_sort(text: str) -> str:
    return RELEVANCE if text else DEFAULT_SORT


def _major(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    places = exponent(currency)
    return f"{amount // 10**places}.{amount % 10**places:0{places}d}" if places else str(amount)


def parse_price(text: str | None, currency: str = "USD") -> int | None:
    """A price typed in major units (``"12.5"``) as minor units, or ``None`` when blank or not a price."""
    if not text or not text.strip():
        return None
    try:
        return min(parse_major(text, currency), MAX_PRICE)
    except ValueError:
        return None


@dataclass(frozen=True)
class CardImage:
    """The first photo of a product, as the cards and the API summaries show it."""

    id: int
    key: str
    alt: str
    width: int
    height: int


@dataclass(frozen=True)
class ProductCard:
    """One product in the catalog grid.

    Prices are minor units of ``currency``: ``min_price == max_price`` for single-price products.
    ``sku`` and ``variant_id`` are set when the product has exactly one variant (it can go in the
    cart from the grid).
    """

    id: int
    slug: str
    name: str
    min_price: int
    max_price: int
    currency: str
    in_stock: bool
    variant_count: int
    image: CardImage | None
    sku: str | None
    variant_id: int | None


@dataclass(frozen=True)
class FacetValue:
    """A facet value with the number of products it would show, and whether it is selected."""

    value: str
    count: int
    selected: bool


@dataclass(frozen=True)
class CategoryInfo:
    """A category's own columns (``parent_id`` ``None`` at the top)."""

    id: int
    name: str
    slug: str
    parent_id: int | None
    position: int


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
    """A page of results: ``items``, ``total`` matches, ``pages``, facet counts and the category tree.

    ``suggestion`` is a corrected search text when the search found nothing ("Did you mean ...?").
    """

    query: CatalogQuery
    items: list[ProductCard]
    total: int
    page: int
    pages: int
    page_size: int
    facets: dict[str, list[FacetValue]]
    categories: list[CategoryNode]
    category: CategoryInfo | None
    suggestion: str | None = None
    cache_key: Any = None
    """``(cache scope, query key)`` while the catalog version is known: the key of this page's rendered
    HTML in the per-process cache (``webshop.web.templating.cached_fragment``); ``None`` otherwise."""


def visible_products() -> Any:
    """SQL condition for products a shopper may see: active and not soft-deleted.

    ``is_active = true`` rather than ``IS TRUE``: an equality, which PostgreSQL can use as the first
    column of the ``(is_active, sort column, id)`` indexes.
    """
    return and_(Product.is_active == True, Product.deleted_at.is_(None))  # noqa: E712


def build_tree(categories: Sequence[Any], active_slug: str | None = None) -> list[CategoryNode]:
    """Turn a flat list of categories (``id``, ``parent_id``, ``name``, ``slug``) into nested trees."""
    by_parent: dict[int | None, list[Any]] = {}
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


def descendant_ids(categories: Sequence[Any], root_id: int) -> set[int]:
    """Return ``root_id`` and the ids of every category below it."""
    children: dict[int | None, list[int]] = {}
    for category in categories:
        children.setdefault(category.parent_id, []).append(category.id)
    ids, todo = {root_id}, [root_id]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in ids:
                ids.add(child)
                todo.append(child)
    return ids


# --- the catalog version and the derived data every write keeps ------------------------------------

_CHANGED = "webshop.catalog_changed"
_BUMP = update(CatalogState.__table__).where(CatalogState.__table__.c.id == 1).values(version=CatalogState.version + 1)


def mark_catalog_changed(session: AsyncSession | Session) -> None:
    """Make the session's next commit bump ``catalog_state.version`` (as its last statement)."""
    session.info[_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _bump_catalog_version(session: Session) -> None:
    """The bump is the transaction's last statement: on PostgreSQL the version row stays locked only
    between it and the commit, and no other lock is taken after it (no lock-order deadlocks)."""
    if session.info.pop(_CHANGED, False):
        session.execute(_BUMP)


_products = Product.__table__
_SUMMARY_UPDATE = (
    update(_products)
    .where(_products.c.id == bindparam("pid"))
    .values(
        min_price=bindparam("low"),
        max_price=bindparam("high"),
        in_stock=bindparam("stocked"),
        updated_at=_products.c.updated_at,  # derived data: not an edit of the product
    )
)


async def refresh_product_summaries(session: AsyncSession, product_ids: Iterable[int | None]) -> bool:
    """Recompute ``min_price``, ``max_price`` and ``in_stock`` of ``product_ids`` from their variants.

    Call it after statements that change variants' prices or stock, or add or remove variants, in the
    same transaction (once, after all of them). On PostgreSQL the products are first locked
    (``SELECT ... FOR NO KEY UPDATE`` in id order) and then read again in a new statement, so two
    checkouts selling the last units of two variants of one product cannot both miss the other's
    sale. Products whose summary is unchanged are not written; a change marks the catalog changed.

    Args:
        session: The writing session.
        product_ids: Product ids (``None`` and repeats ignored; unknown ids are skipped).

    Returns:
        True when any summary changed.
    """
    ids = sorted({pid for pid in product_ids if pid is not None})
    if not ids:
        return False
    await session.flush()
    rows = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        stored = {
            pid: (low, high, bool(stocked))
            for pid, low, high, stocked in await session.execute(
                select(Product.id, Product.min_price, Product.max_price, Product.in_stock)
                .where(Product.id.in_(chunk))
                .order_by(Product.id)
                .with_for_update(key_share=True)
            )
        }
        fresh = {
            pid: (low, high, bool(stocked))
            for pid, low, high, stocked in await session.execute(_fresh_summaries(chunk))
        }
        for pid, before in stored.items():
            after = fresh.get(pid, (0, 0, False))
            if after != before:
                rows.append({"pid": pid, "low": after[0], "high": after[1], "stocked": after[2]})
    if rows:
        await session.execute(_SUMMARY_UPDATE, rows)
        mark_catalog_changed(session)
    return bool(rows)


def _fresh_summaries(product_ids: Sequence[int] | None = None) -> Any:
    statement = select(
        Variant.product_id, func.min(Variant.price), func.max(Variant.price), func.max(Variant.stock) > 0
    ).group_by(Variant.product_id)
    if product_ids is not None:
        statement = statement.where(Variant.product_id.in_(product_ids))
    return statement


Summary = tuple[int, int, bool]
"""A product's ``(min_price, max_price, in_stock)``."""


async def find_summary_mismatches(session: AsyncSession) -> list[tuple[str, Summary, Summary]]:
    """``[(slug, stored, fresh)]`` for every product whose summary columns disagree with its variants.

    ``stored`` and ``fresh`` are ``(min_price, max_price, in_stock)``; a product without variants
    should have ``(0, 0, False)``. For ``webshop check-stock``.
    """
    fresh = {pid: (low, high, bool(stocked)) for pid, low, high, stocked in await session.execute(_fresh_summaries())}
    rows = await session.execute(
        select(Product.id, Product.slug, Product.min_price, Product.max_price, Product.in_stock).order_by(Product.id)
    )
    problems = []
    for pid, slug, low, high, stocked in rows:
        stored = (low, high, bool(stocked))
        expected = fresh.get(pid, (0, 0, False))
        if stored != expected:
            problems.append((slug, stored, expected))
    return problems


async def catalog_changed(
    session: AsyncSession, product_ids: Iterable[int | None] = (), *, search_index: bool = True
) -> None:
    """Keep the catalog's derived data in step with a write, in the writer's transaction.

    Refreshes the products' summaries, then (``search_index``) their search documents, and marks the
    session so its commit bumps the catalog version. Every catalog write path calls this once,
    after its own statements and before committing: products, variants, prices, stock set by an
    admin, facets, visibility, categories (with the products of a renamed or moved subtree), imports.

    Args:
        session: The writing session.
        product_ids: Products whose data changed (may be empty, e.g. a new category).
        search_index: False when nothing a search matches can have changed (stock only).
    """
    ids = sorted({pid for pid in product_ids if pid is not None})
    await refresh_product_summaries(session, ids)
    if search_index:
        await search.reindex_products(session, ids)
    mark_catalog_changed(session)


# --- the per-process cache ----------------------------------------------------------------------------

_MISS = object()
MISS = _MISS
"""What ``CACHE.get`` answers for a key it does not hold."""


class _Cache:
    """A least-recently-used map with a total weight budget (weights: ids held, facet values...)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.weight = 0

    def get(self, key: Any) -> Any:
        item = self.items.get(key)
        if item is None:
            return _MISS
        self.items.move_to_end(key)
        return item[0]

    def put(self, key: Any, value: Any, weight: int) -> None:
        weight = max(1, weight)
        old = self.items.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self.items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.budget and len(self.items) > 1:
            _, (_, dropped) = self.items.popitem(last=False)
            self.weight -= dropped

    def clear(self) -> None:
        self.items.clear()
        self.weight = 0


CACHE = _Cache(budget=2_000_000)
"""This process's cache of derived reads (about 8 bytes per cached product id: 16 MB at most)."""

_CATEGORIES = select(Category.id, Category.name, Category.slug, Category.parent_id, Category.position).order_by(
    Category.position, Category.name, Category.id
)
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
    )
    .join(Variant, Variant.product_id == Product.id)
    .where(Product.id.in_(bindparam("ids", expanding=True)))
    .group_by(Product.id, Product.slug, Product.name)
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
_ORDERS = {
    "name": (Product.name.asc(), Product.id.asc()),
    "-name": (Product.name.desc(), Product.id.desc()),
    "price": (Product.min_price.asc(), Product.name.asc(), Product.id.asc()),
    "-price": (Product.max_price.desc(), Product.name.asc(), Product.id.asc()),
    "newest": (Product.created_at.desc(), Product.id.desc()),
}
_KEYS: dict[str, tuple[tuple[Any, Any], bool]] = {
    "name": ((Product.name, Product.id), False),
    "-name": ((Product.name, Product.id), True),
    "price": ((Product.min_price, Product.id), False),
    "-price": ((Product.max_price, Product.id), True),
    "newest": ((Product.created_at, Product.id), True),
}
"""API keyset order per sort: ``((column, id), descending)``, one direction so a row value compares."""


@dataclass
class _Reader:
    """One request's reads: the session, its engine, and the cache scope (database, catalog version)."""

    session: AsyncSession
    dialect: str
    scope: tuple[str, int] | None

    @classmethod
    async def open(cls, session: AsyncSession) -> _Reader:
        bind = session.get_bind()
        version = await read_catalog_version(session)
        scope = None if version is None else (bind.url.render_as_string(hide_password=True), version)
        return cls(session, bind.dialect.name, scope)

    async def cached(
        self, key: Any, compute: Callable[[], Awaitable[Any]], weight: Callable[[Any], int] = lambda _: 1
    ) -> Any:
        if self.scope is None:
            return await compute()
        full = (self.scope, key)
        value = CACHE.get(full)
        if value is _MISS:
            value = await compute()
            CACHE.put(full, value, weight(value))
        return value

    async def categories(self) -> tuple[CategoryInfo, ...]:
        async def compute() -> tuple[CategoryInfo, ...]:
            return tuple(CategoryInfo(*row) for row in await self.session.execute(_CATEGORIES))

        return await self.cached("categories", compute, len)  # type: ignore[no-any-return]

    async def plan(self, text: str) -> search.SearchPlan:
        async def compute() -> search.SearchPlan:
            return await search.plan_search(self.session, text)

        return await self.cached(("plan", text), compute)  # type: ignore[no-any-return]


def _category(query: CatalogQuery, categories: Sequence[CategoryInfo]) -> CategoryInfo | None:
    """The category the query names.

    Raises:
        NotFound: ``query.category`` names no category.
    """
    if not query.category:
        return None
    category = next((c for c in categories if c.slug == query.category), None)
    if category is None:
        raise NotFound(f"There is no category “{query.category}”.")
    return category


@dataclass
class _Where:
    """A query's SQL conditions: the common ones, one per selected facet, and the search plan."""

    conditions: list[Any]
    facets: dict[str, Any]
    plan: search.SearchPlan | None
    dialect: str

    def match(self) -> list[Any]:
        """The search text's condition (empty without one)."""
        if self.plan is None:
            return []
        return [Product.id.in_(select(self.plan.ranked(self.dialect).c.product_id))]

    def all(self, *, without: str | None = None) -> Any:
        others = [condition for name, condition in self.facets.items() if name != without]
        return and_(*self.conditions, *self.match(), *others)


async def _where(reader: _Reader, query: CatalogQuery, categories: Sequence[CategoryInfo]) -> _Where:
    conditions: list[Any] = [visible_products()]
    category = _category(query, categories)
    if category is not None:
        conditions.append(Product.category_id.in_(descendant_ids(categories, category.id)))
    if query.price_min is not None or query.price_max is not None:
        priced = select(Variant.id).where(Variant.product_id == Product.id)
        if query.price_min is not None:
            conditions.append(Product.max_price >= query.price_min)  # cheap pre-filter on the summary
            priced = priced.where(Variant.price >= query.price_min)
        if query.price_max is not None:
            conditions.append(Product.min_price <= query.price_max)
            priced = priced.where(Variant.price <= query.price_max)
        conditions.append(priced.exists())
    if query.in_stock:
        conditions.append(Product.in_stock.is_(True))
    facets = {
        name: Product.id.in_(
            select(ProductFacet.product_id).where(ProductFacet.facet == name, ProductFacet.value.in_(values))
        )
        for name, values in query.facets.items()
    }
    plan = await reader.plan(query.q) if query.q else None
    return _Where(conditions, facets, plan, reader.dialect)


async def _ordered_ids(reader: _Reader, query: CatalogQuery, categories: Sequence[CategoryInfo]) -> array[int]:
    """Ids of every product matching ``query``, in its order (cached per catalog version)."""
    relevance = bool(query.q) and query.sort == RELEVANCE
    sort = query.sort if relevance or query.sort in _ORDERS else DEFAULT_SORT

    async def compute() -> array[int]:
        where = await _where(reader, query, categories)
        if where.plan is not None and relevance:
            ranked = where.plan.ranked(reader.dialect)
            statement = (
                select(Product.id)
                .join(ranked, ranked.c.product_id == Product.id)
                .where(*where.conditions, *where.facets.values())
                .order_by(ranked.c.score, Product.name, Product.id)
            )
        else:
            statement = select(Product.id).where(where.all()).order_by(*_ORDERS[sort])
        return array("q", await reader.session.scalars(statement))

    return await reader.cached(("ids", query.filter_key, sort), compute, len)  # type: ignore[no-any-return]


async def _facet_counts(
    reader: _Reader, query: CatalogQuery, categories: Sequence[CategoryInfo]
) -> dict[str, list[FacetValue]]:
    async def compute() -> dict[str, dict[str, int]]:
        where = await _where(reader, query, categories)
        counts: dict[str, dict[str, int]] = {}
        for name in FILTER_FACETS:
            statement = (
                select(ProductFacet.value, func.count(func.distinct(ProductFacet.product_id)))
                .join(Product, Product.id == ProductFacet.product_id)
                .where(ProductFacet.facet == name, where.all(without=name))
                .group_by(ProductFacet.value)
            )
            counts[name] = {value: int(count) for value, count in await reader.session.execute(statement)}
        return counts

    counts = await reader.cached(
        ("facets", query.filter_key), compute, lambda value: sum(len(v) for v in value.values())
    )
    facets = {}
    for name in FILTER_FACETS:
        values = dict(counts[name])
        selected = query.facets.get(name, ())
        for value in selected:  # a selected value stays listed (with 0) so the shopper can untick it
            values.setdefault(value, 0)
        facets[name] = [FacetValue(v, values[v], v in selected) for v in sorted(values, key=str.casefold)]
    return facets


async def _cards(session: AsyncSession, ids: Sequence[int]) -> list[ProductCard]:
    """Cards of ``ids`` in that order: their variants aggregated, their first photo (two queries)."""
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
            )
        )
    return cards


# --- the entry points ----------------------------------------------------------------------------------


async def browse_catalog(session: AsyncSession, query: CatalogQuery, *, page_size: int = 24) -> CatalogPage:
    """One page of the catalog for ``query`` (the shop's grid, its facets and the category tree).

    Args:
        session: A reading session.
        query: Filters, sort and page (see ``CatalogQuery``).
        page_size: Products per page.

    Returns:
        A ``CatalogPage``; a page past the end has no items (the caller shows an empty state). A
        search that finds nothing carries a ``suggestion`` when a corrected text would find something.

    Raises:
        NotFound: ``query.category`` names no category.
    """
    reader = await _Reader.open(session)
    key = ("page", query.filter_key, query.sort, query.page, page_size, query.currency)

    async def compute() -> CatalogPage:
        categories = await reader.categories()
        category = _category(query, categories)
        ids = await _ordered_ids(reader, query, categories)
        total = len(ids)
        start = (query.page - 1) * page_size
        items = await _cards(session, ids[start : start + page_size].tolist()) if start < total else []
        facets = await _facet_counts(reader, query, categories)
        suggestion = None
        if query.q and not total:
            suggestion = await reader.cached(("suggest", query.q), lambda: _suggest(session, reader, query.q))
        return CatalogPage(
            query=query,
            items=items,
            total=total,
            page=query.page,
            pages=max(1, math.ceil(total / page_size)),
            page_size=page_size,
            facets=facets,
            categories=build_tree(categories, query.category),
            category=category,
            suggestion=suggestion,
            cache_key=None if reader.scope is None else (reader.scope, key),
        )

    # The whole page, cards included, is cached per catalog version: a card shows only what a write
    # that bumps the version can change (name, photo, price range, in stock, single variant).
    return await reader.cached(key, compute, lambda page: 1 + len(page.items) * 4)  # type: ignore[no-any-return]


async def _suggest(session: AsyncSession, reader: _Reader, text: str) -> str | None:
    return await search.suggest(session, await reader.plan(text))


_STOCK = select(Variant.id, Variant.stock).where(Variant.product_id == bindparam("pid"))


async def product_for_display(
    session: AsyncSession, key: str | int, load: Callable[[], Awaitable[Product]]
) -> tuple[Product, tuple[CategoryInfo, ...]]:
    """A visible product for its page or the API, and the category list (for its breadcrumb trail).

    The product (variants, photos and facets loaded by ``load``) is cached per catalog version under
    ``key`` (its slug or id) and shared read-only by the requests that show it; its variants' stock,
    which a sale changes without a new version, is read fresh on every call (one small statement).

    Args:
        session: A reading session.
        key: The product's slug or id, as the caller looks it up.
        load: Reads the product with its relations in ``session``; raises ``NotFound`` if it is
            not visible (not cached, so a product that appears is seen at once).

    Returns:
        ``(product, categories)``; treat the product as read-only.
    """
    reader = await _Reader.open(session)

    async def load_detached() -> Product:
        # Out of the loading session: its rollback (a failed add to cart) would expire the shared copy.
        product = await load()
        for item in (product, product.category, *product.variants, *product.images, *product.facets):
            if item is not None and item in session:
                session.expunge(item)
        return product

    product: Product = await reader.cached(("product", key), load_detached)
    if reader.scope is not None:
        stock = {vid: units for vid, units in await session.execute(_STOCK, {"pid": product.id})}
        for variant in product.variants:
            if variant.id in stock:
                set_committed_value(variant, "stock", stock[variant.id])
    return product, await reader.categories()


async def facet_summary(session: AsyncSession, query: CatalogQuery) -> tuple[int, dict[str, list[FacetValue]]]:
    """``(total, {facet: [FacetValue]})`` for ``query``'s filters (sort and page ignored), for the API.

    Raises:
        NotFound: ``query.category`` names no category.
    """
    reader = await _Reader.open(session)
    categories = await reader.categories()
    _category(query, categories)
    ids = await _ordered_ids(reader, query, categories)
    return len(ids), await _facet_counts(reader, query, categories)


async def api_page(
    session: AsyncSession, query: CatalogQuery, *, limit: int, cursor: str | None = None
) -> tuple[list[ProductCard], str | None]:
    """One page of products for the API, linked to the next by an opaque cursor.

    Sorted by a column, pages are keyset pages: ``(column, id)`` compared as a row value against the
    last row of the previous page, along an index, so a deep page costs what the first does and a
    product added meanwhile is neither skipped nor repeated. Sorted by relevance (the default with a
    search text), pages are slices of the cached ranking.

    Args:
        session: A reading session.
        query: Search text, category, facets, price range, stock filter and sort (``page`` ignored).
        limit: Products per page (1-100).
        cursor: ``next_cursor`` of the previous page, or ``None`` for the first page.

    Returns:
        ``(cards, next_cursor)``; ``next_cursor`` is ``None`` on the last page.

    Raises:
        NotFound: ``query.category`` names no category.
        ValidationFailed: the cursor is not one this endpoint issued for this sort.
    """
    reader = await _Reader.open(session)

    async def compute() -> tuple[list[ProductCard], str | None]:
        return await _api_page(reader, query, limit, cursor)

    # Cached per catalog version like the shop's pages (a card changes only with the version).
    key = ("api", query.filter_key, query.sort, limit, cursor)
    return await reader.cached(key, compute, lambda page: 1 + len(page[0]) * 4)  # type: ignore[no-any-return]


async def _api_page(
    reader: _Reader, query: CatalogQuery, limit: int, cursor: str | None
) -> tuple[list[ProductCard], str | None]:
    session = reader.session
    categories = await reader.categories()
    _category(query, categories)
    if query.sort == RELEVANCE and query.q:
        offset = _decode_offset(cursor) if cursor else 0
        ids = await _ordered_ids(reader, query, categories)
        end = offset + limit
        cards = await _cards(session, ids[offset:end].tolist())
        return cards, (_encode_cursor(RELEVANCE, [end]) if end < len(ids) else None)
    sort = query.sort if query.sort in _KEYS else DEFAULT_SORT
    (first, last), descending = _KEYS[sort]
    where = await _where(reader, query, categories)
    conditions = [where.all()]
    if cursor:
        after = tuple_(first, last)
        values = tuple_(
            *(
                bindparam(None, value, type_=column.type)
                for column, value in zip((first, last), _decode_cursor(cursor, sort), strict=True)
            )
        )
        conditions.append(after < values if descending else after > values)
    order = (first.desc(), last.desc()) if descending else (first.asc(), last.asc())
    rows = (await session.execute(select(first, last).where(*conditions).order_by(*order).limit(limit + 1))).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _encode_cursor(sort, [rows[-1][0], rows[-1][1]]) if more and rows else None
    return await _cards(session, [row[1] for row in rows]), next_cursor


def _encode_cursor(sort: str, values: list[Any]) -> str:
    raw = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    payload = json.dumps({"s": sort, "v": raw}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _cursor_values(cursor: str, sort: str, size: int) -> list[Any]:
    problem = ValidationFailed("The cursor is not valid for this query.", field_errors={"cursor": "Invalid cursor."})
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise problem from exc
    values = data.get("v") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("s") != sort or not isinstance(values, list) or len(values) != size:
        raise problem
    if not isinstance(values[-1], int) or isinstance(values[-1], bool) or not 0 <= values[-1] <= 2**63 - 1:
        raise problem
    return values


def _decode_offset(cursor: str) -> int:
    """The position a relevance cursor carries.

    Raises:
        ValidationFailed: the cursor is malformed or was issued for another sort.
    """
    return int(_cursor_values(cursor, RELEVANCE, 1)[0])


def _decode_cursor(cursor: str, sort: str) -> list[Any]:
    """The ``[sort value, id]`` a keyset cursor carries.

    Raises:
        ValidationFailed: the cursor is malformed or was issued for another sort.
    """
    problem = ValidationFailed("The cursor is not valid for this query.", field_errors={"cursor": "Invalid cursor."})
    first, last = _cursor_values(cursor, sort, 2)
    if sort == "newest":
        try:
            first = datetime.fromisoformat(first)
        except (TypeError, ValueError) as exc:
            raise problem from exc
    elif sort in {"price", "-price"}:
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= MAX_PRICE:
            raise problem
    elif not isinstance(first, str):
        raise problem
    return [first, last]
