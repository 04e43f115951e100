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

import math
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import and_, bindparam, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from webshop.catalog import search
from webshop.catalog.cache import (
    _MISS,
    CACHE,
)
from webshop.catalog.cards import read_cards
from webshop.catalog.cursor import (
    _decode_cursor,
    _decode_offset,
    _encode_cursor,
)
from webshop.catalog.facet_spelling import FacetSpellings, stored_spellings
from webshop.catalog.query import (
    DEFAULT_SORT,
    FILTER_FACETS,
    RELEVANCE,
    SHOP_FACET,
    CatalogPage,
    CatalogQuery,
    CategoryInfo,
    FacetValue,
    ProductCard,
    build_tree,
    descendant_ids,
    visible_products,
)
from webshop.catalog.version import read_catalog_version, read_rows
from webshop.db.models import CatalogState, Category, Product, ProductFacet, Variant
from webshop.errors import NotFound
from webshop.shops.directory import ShopDirectory, read_directory

if TYPE_CHECKING:
    from sqlalchemy import URL, Engine

_CATEGORIES = select(Category.id, Category.name, Category.slug, Category.parent_id, Category.position).order_by(
    Category.position, Category.name, Category.id
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


_UNREAD = object()


_NAMES: dict[int, tuple[URL, str]] = {}
"""``id(url)`` -> ``(url, its string)``: an engine keeps its URL object, so it is looked up by identity
(hashing a URL costs more than rendering it)."""


def database_name(url: URL) -> str:
    """``url`` as a string without its password: the database part of the cache keys (remembered per
    URL object: rendering it twice a request was a hundredth of a product page)."""
    known = _NAMES.get(id(url))
    if known is not None and known[0] is url:
        return known[1]
    if len(_NAMES) >= 64:  # tests make many engines
        _NAMES.clear()
    name = url.render_as_string(hide_password=True)
    _NAMES[id(url)] = (url, name)
    return name


@dataclass
class _Reader:
    """One request's reads: the session, its engine, and the cache scope (database, catalog version)."""

    session: AsyncSession
    dialect: str
    scope: tuple[str, int] | None

    @classmethod
    async def open(cls, session: AsyncSession, version: int | object | None = _UNREAD) -> _Reader:
        """The reader of ``session``, with the catalog ``version`` read now unless the caller has it."""
        bind = cast("Engine", session.get_bind())  # the session is bound to an engine, not a connection
        if version is _UNREAD:
            version = await read_catalog_version(session)
        scope = None if version is None else (database_name(bind.url), version)
        return cls(session, bind.dialect.name, scope)  # type: ignore[arg-type]

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

    async def shops(self) -> ShopDirectory:
        """The trading shops (cached per catalog version: shop changes move it, see ``ShopService``)."""
        return await self.cached("shops", lambda: read_directory(self.session), lambda d: 1 + len(d.shops))  # type: ignore[no-any-return]

    async def respelt(self, query: CatalogQuery) -> CatalogQuery:
        """``query`` with its facet values as the catalog spells them: ``?color=BLACK`` (an old link, a
        value typed by hand) filters by "black" and shows it ticked (``webshop.catalog.facet_spelling``).
        The spellings are read once per catalog version, and only for a query with facet filters."""
        if not query.facets:
            return query

        async def compute() -> FacetSpellings:
            return await stored_spellings(self.session, FILTER_FACETS)

        spellings: FacetSpellings = await self.cached("spellings", compute, len)
        facets = {
            name: tuple(sorted({spellings.known(name, value) for value in values}))  # sorted, as CatalogQuery
            for name, values in query.facets.items()
        }
        return query if facets == query.facets else replace(query, facets=facets)

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
    if query.shops:  # a facet too: its own counts ignore it
        directory = await reader.shops()
        ids = [shop.id for slug in query.shops if (shop := directory.by_slug(slug)) is not None]
        facets[SHOP_FACET] = Product.shop_id.in_(ids)
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
    """``{facet: [FacetValue]}``: brand and colour, and the shop (slugs labelled with names) when
    several shops trade; each facet's counts ignore its own selection (cached per catalog version)."""
    directory = await reader.shops()

    async def compute() -> dict[str, dict[str, int]]:
        where = await _where(reader, query, categories)
        counts: dict[str, dict[str, int]] = {}
        if directory.several:  # one statement on products alone: a count per shop
            per_shop = select(Product.shop_id, func.count()).where(where.all(without=SHOP_FACET))
            counts[SHOP_FACET] = {
                shop.slug: int(count)
                for shop_id, count in await reader.session.execute(per_shop.group_by(Product.shop_id))
                if (shop := directory.by_id(shop_id)) is not None
            }
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
    if SHOP_FACET in counts:
        shop_counts = counts[SHOP_FACET]
        facets[SHOP_FACET] = [
            FacetValue(shop.slug, shop_counts.get(shop.slug, 0), shop.slug in query.shops, shop.name)
            for shop in directory.shops
            if shop.slug in shop_counts or shop.slug in query.shops
        ]
    return facets


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
    query = await reader.respelt(query)
    key = ("page", query.filter_key, query.sort, query.page, page_size, query.currency)

    async def compute() -> CatalogPage:
        categories = await reader.categories()
        category = _category(query, categories)
        ids = await _ordered_ids(reader, query, categories)
        total = len(ids)
        start = (query.page - 1) * page_size
        items = await read_cards(session, ids[start : start + page_size].tolist()) if start < total else []
        facets = await _facet_counts(reader, query, categories)
        suggestion = None
        if query.q and not total:
            suggestion = await reader.cached(("suggest", query.q), lambda: _suggest(session, reader, query.q))
            # Offered only where it finds something: with this page's filters, not just in the whole catalog.
            if suggestion and (replace(query, q="").is_filtered or query.shops):
                corrected = replace(query, q=suggestion, page=1)
                suggestion = suggestion if len(await _ordered_ids(reader, corrected, categories)) else None
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
            shops=await reader.shops(),
            cache_key=None if reader.scope is None else (reader.scope, key),
        )

    # The whole page, cards included, is cached per catalog version: a card shows only what a write
    # that bumps the version can change (name, photo, price range, in stock, single variant).
    return await reader.cached(key, compute, lambda page: 1 + len(page.items) * 4)  # type: ignore[no-any-return]


async def _suggest(session: AsyncSession, reader: _Reader, text: str) -> str | None:
    return await search.suggest(session, await reader.plan(text))


_STOCK = select(Variant.id, Variant.stock).where(Variant.product_id == bindparam("p0"))
_STOCK_SQL = "SELECT id, stock FROM variants WHERE product_id = ?"
_VERSION_AND_STOCK = (
    select(CatalogState.version, Variant.id, Variant.stock)
    .select_from(CatalogState)
    .outerjoin(Variant, Variant.product_id == bindparam("p0"))
    .where(CatalogState.id == 1)
)
_VERSION_AND_STOCK_SQL = (
    "SELECT catalog_state.version, variants.id, variants.stock FROM catalog_state"
    " LEFT OUTER JOIN variants ON variants.product_id = ? WHERE catalog_state.id = 1"
)
_SHOWN: dict[tuple[str, str | int], int] = {}
"""``(database, slug or id)`` -> the id of the product last shown under it, so the next request can
read the catalog version and that product's stock in one statement."""
_MAX_SHOWN = 50_000


class DisplayedProduct(NamedTuple):
    """What ``product_for_display`` answers: the product (shared: read-only), the category list (for
    its breadcrumb trail), a key naming this exact state of it for caches of its rendered parts:
    the catalog scope and version, the product and every variant's stock (``None``: not cacheable),
    and the trading shops (for "Sold by", which the version also covers)."""

    product: Product
    categories: tuple[CategoryInfo, ...]
    render_key: Any
    shops: ShopDirectory = ShopDirectory()


async def product_for_display(
    session: AsyncSession, key: str | int, load: Callable[[], Awaitable[Product]]
) -> DisplayedProduct:
    """A visible product for its page or the API, and the category list (for its breadcrumb trail).

    The product (variants, photos and facets loaded by ``load``) is cached per catalog version under
    ``key`` (its slug or id) and shared read-only by the requests that show it; its variants' stock,
    which a sale changes without a new version, is read fresh on every call. For a product shown
    before, the version and the stock are read in one statement (``_VERSION_AND_STOCK``); if the
    version has changed since, the product is looked up again.

    Args:
        session: A reading session.
        key: The product's slug or id, as the caller looks it up.
        load: Reads the product with its relations in ``session``; raises ``NotFound`` if it is
            not visible (not cached, so a product that appears is seen at once).

    Returns:
        ``DisplayedProduct(product, categories, render_key)``; treat the product as read-only.
    """
    database = database_name(cast("Engine", session.get_bind()).url)
    shown = _SHOWN.get((database, key))
    if shown is not None:
        rows = await read_rows(session, _VERSION_AND_STOCK, _VERSION_AND_STOCK_SQL, (shown,))
        reader = await _Reader.open(session, int(rows[0][0]) if rows else None)
        if reader.scope is not None:
            known = CACHE.get((reader.scope, ("product", key)))
            if known is not _MISS and known.id == shown:
                return await _with_stock(reader, known, {vid: units for _, vid, units in rows if vid is not None})
    else:
        reader = await _Reader.open(session)

    async def load_detached() -> Product:
        # Out of the loading session: its rollback (a failed add to cart) would expire the shared copy.
        product = await load()
        for item in (product, product.category, product.shop, *product.variants, *product.images, *product.facets):
            if item is not None and item in session:
                session.expunge(item)
        return product

    product: Product = await reader.cached(("product", key), load_detached)
    if reader.scope is None:
        return DisplayedProduct(product, await reader.categories(), None, await reader.shops())
    if len(_SHOWN) >= _MAX_SHOWN:
        _SHOWN.clear()
    _SHOWN[(database, key)] = product.id
    stock = {vid: units for vid, units in await read_rows(session, _STOCK, _STOCK_SQL, (product.id,))}
    return await _with_stock(reader, product, stock)


async def _with_stock(reader: _Reader, product: Product, stock: dict[int, int]) -> DisplayedProduct:
    """``product`` with its variants' stock set to ``stock`` (``{variant id: units}``), as displayed."""
    for variant in product.variants:
        if variant.id in stock:
            set_committed_value(variant, "stock", stock[variant.id])
    render_key = (reader.scope, "product", product.id, tuple(sorted(stock.items())))
    return DisplayedProduct(product, await reader.categories(), render_key, await reader.shops())


async def shop_directory(session: AsyncSession) -> ShopDirectory:
    """The trading shops, cached per catalog version (the storefront's shop chrome, "Sold by" labels)."""
    return await (await _Reader.open(session)).shops()


async def facet_summary(session: AsyncSession, query: CatalogQuery) -> tuple[int, dict[str, list[FacetValue]]]:
    """``(total, {facet: [FacetValue]})`` for ``query``'s filters (sort and page ignored), for the API.

    Raises:
        NotFound: ``query.category`` names no category.
    """
    reader = await _Reader.open(session)
    query = await reader.respelt(query)
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
    query = await reader.respelt(query)

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
        cards = await read_cards(session, ids[offset:end].tolist())
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
    return await read_cards(session, [row[1] for row in rows]), next_cursor
