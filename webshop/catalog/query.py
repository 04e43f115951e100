"""What a shopper or API client asks of the catalog and what they are shown: ``CatalogQuery`` (search
text, category, facets, price range, stock filter, sort, page), the card, facet and category shapes,
and the visibility rule and the category tree helpers shared by the reads and the writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import and_

from webshop.db.models import Product
from webshop.money import exponent, parse_major
from webshop.shops.directory import ShopDirectory

FILTER_FACETS = ("brand", "color")
SHOP_FACET = "shop"
"""The shop filter's name: its URL parameter (``?shop=slug``) and its key in ``CatalogPage.facets``."""
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
        shops: Shop slugs (``?shop=``, repeatable); products of any of them (ORed, like a facet's values).
        home_shop: The slug of the shop whose page (``/shops/{slug}``) lists the results: the path names
            that shop, so ``params`` leaves it out of links and ``is_filtered`` does not count it.
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
    shops: tuple[str, ...] = ()
    home_shop: str | None = None

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
        shop: list[str] | None = None,
    ) -> CatalogQuery:
        """Normalise raw query parameters: trim, drop blanks, fall back to defaults for unknown values.

        The sort defaults to ``relevance`` with a search text and to ``name`` without; a price range
        given upside down is turned round; prices are clamped to 0..``MAX_PRICE`` minor units.
        """
        facets = {name: _clean(values) for name, values in (("brand", brand), ("color", color))}
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
            shops=_clean(shop),
        )

    def in_shop(self, slug: str) -> CatalogQuery:
        """This query limited to shop ``slug``, as its page (``/shops/{slug}``) lists it."""
        return replace(self, shops=(slug,), home_shop=slug)

    def spelt_as(self, answered: CatalogQuery) -> CatalogQuery:
        """This query with the facet values of ``answered``, the query a catalog page was made for: the
        values as the catalog spells them (``?color=BLACK`` → ``black``, ``webshop.catalog.facet_spelling``),
        so the page's links and its pushed URL match the HTML cached for it, whoever asked first."""
        return self if answered.facets == self.facets else replace(self, facets=answered.facets)

    def sorted_by(self, sort: str | None) -> CatalogQuery:
        """This query in ``sort``, or in its default sort when ``sort`` is not one of ``sorts``
        (the same rule as ``from_params``)."""
        return replace(self, sort=sort if sort in self.sorts else _default_sort(self.q))

    @property
    def default_sort(self) -> str:
        """The sort this query has when none is asked for: ``relevance`` with a search text, else ``name``.
        The sort menu sends it as ``""``, so a search typed on a page in the default sort is by relevance."""
        return _default_sort(self.q)

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
        if self.home_shop is None:
            base[SHOP_FACET] = list(self.shops)
        base["page"] = self.page if self.page > 1 else None
        base.update(changes)
        if base.get("sort") == _default_sort(base.get("q") or "") or (
            base.get("sort") == RELEVANCE and not base.get("q")
        ):
            base["sort"] = None
        return {k: v for k, v in base.items() if v not in (None, "", [])}

    @property
    def is_filtered(self) -> bool:
        """True when any search text, category, facet, shop (but the page's own), price bound or the stock
        filter narrows the catalog."""
        return (
            bool(self.q or self.category or self.facets or self.price_min is not None or self.price_max is not None)
            or self.in_stock
            or self.shops != ((self.home_shop,) if self.home_shop else ())
        )

    @property
    def filter_key(self) -> tuple[Any, ...]:
        """Everything that decides which products match (not the sort or the page): a cache key."""
        facets = tuple(sorted(self.facets.items()))
        return (self.q, self.category, facets, self.price_min, self.price_max, self.in_stock, self.shops)


def _clean(values: list[str] | None) -> tuple[str, ...]:
    """Trimmed, distinct, sorted values of a repeatable parameter, blanks dropped."""
    return tuple(sorted({v.strip() for v in values or () if v and v.strip()}))


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


@dataclass(frozen=True, eq=False)
class ProductCard:
    """One product in the catalog grid.

    Prices are minor units of ``currency``: ``min_price == max_price`` for single-price products.
    ``sku`` and ``variant_id`` are set when the product has exactly one variant (it can go in the
    cart from the grid). ``shop_id``, ``shop_name`` and ``shop_slug`` name the shop that sells it.

    Compared and hashed by identity: a card is built once per catalog version and page and then
    served from the read cache, so the API's memoised ``summary_out`` finds it by its id (hashing
    eleven fields and the photo for each of 100 cards was a tenth of the API list's time).
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
    shop_id: int
    shop_name: str
    shop_slug: str


@dataclass(frozen=True)
class FacetValue:
    """A facet value with the number of products it would show, and whether it is selected.

    ``label`` is what the shopper reads (the shop facet's values are slugs, its labels shop names);
    it defaults to the value.
    """

    value: str
    count: int
    selected: bool
    label: str = ""

    def __post_init__(self) -> None:
        if not self.label:
            object.__setattr__(self, "label", self.value)


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
    shops: ShopDirectory = field(default_factory=ShopDirectory)
    """The trading shops (``shops.several``: whether shop chrome shows)."""
    cache_key: Any = None
    """``(cache scope, query key)`` while the catalog version is known: the key of this page's rendered
    HTML in the per-process cache (``webshop.web.templating.cached_fragment``); ``None`` otherwise."""

    @property
    def status_code(self) -> int:
        """The HTTP status of the page that shows these results: 404 for a page past the last one (it
        lists nothing and says which pages exist: a soft 404 would be indexed as an empty page), else 200."""
        return 404 if self.page > self.pages else 200


def visible_products() -> Any:
    """SQL condition for products a shopper may see: active, not soft-deleted, and sold by a trading
    shop (``Product.shop_active``, kept by ``webshop.shops.service.ShopService``).

    ``is_active = true`` rather than ``IS TRUE``: an equality, which PostgreSQL can use as the first
    column of the ``(is_active, sort column, id)`` indexes.
    """
    return and_(Product.is_active == True, Product.deleted_at.is_(None), Product.shop_active == True)  # noqa: E712


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
