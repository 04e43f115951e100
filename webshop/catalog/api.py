"""Catalog routes of the JSON API: products (search, filters, cursor pages, facet counts), one product,
the category tree."""

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency, Provide
from litestar.params import PathParameter, QueryParameter

from webshop.api.responses import problems
from webshop.api.schemas import INT_MAX, PathId, ProductCursor
from webshop.catalog import limits
from webshop.catalog.browse import DisplayedProduct
from webshop.catalog.cache import CACHE, MISS
from webshop.catalog.query import CatalogQuery
from webshop.catalog.schemas import (
    SLUG_PATTERN,
    CategoryOut,
    ProductFacets,
    ProductOut,
    ProductPage,
    facets_out,
    product_out,
    summary_out,
    tree_out,
)
from webshop.deps import CategoriesDep, ProductsDep
from webshop.security.jwt import PUBLIC
from webshop.text import Line, query_text, query_texts

Sort = Literal["relevance", "name", "-name", "price", "-price", "newest"]
# Prices are bounded with ``gt=-1`` (the same as ``ge=0`` for integers): Litestar leaves a bound of 0 out
# of the OpenAPI schema, which would then call negative prices valid.
Query = Annotated[
    str | None,
    query_text(  # no control characters (webshop/text.py)
        max_length=100,
        description="Search text: every word must match the name, a SKU, the brand, a category, an option "
        "or the description (any order; the last letters may be missing; one typo per word of 4+ letters)",
    ),
]
CategorySlug = Annotated[str | None, QueryParameter(description="Category slug (includes subcategories)")]
Brands = Annotated[list[Line] | None, query_texts(description="Brand facet values (any of)")]
Colors = Annotated[list[Line] | None, query_texts(description="Colour facet values (any of)")]
Shops = Annotated[list[Line] | None, query_texts(description="Shop slugs (any of): only these shops' products")]
PriceMin = Annotated[
    int | None,
    QueryParameter(gt=-1, le=INT_MAX, description="Only products with a variant at this price or more (minor units)"),
]
PriceMax = Annotated[
    int | None,
    QueryParameter(gt=-1, le=INT_MAX, description="Only products with a variant at this price or less (minor units)"),
]
InStock = Annotated[bool | None, QueryParameter(description="Only products with a variant in stock")]


def displayed_out(displayed: DisplayedProduct) -> ProductOut:
    """``product_out`` of a product as ``ProductService.display`` shows it, kept in the catalog's
    per-process cache under its ``render_key`` (catalog version, product and every variant's stock),
    so it is built once per state of the product, not per request (``None``: built every time).
    Treat the answer as read-only."""
    if displayed.render_key is None:
        return product_out(displayed.product)
    key = ("api-product", displayed.render_key)
    answer = CACHE.get(key)
    if answer is MISS:
        answer = product_out(displayed.product)
        CACHE.put(key, answer, 1 + len(answer.variants) + len(answer.images))
    return answer  # type: ignore[no-any-return]


ProductSlugPath = Annotated[
    str,
    PathParameter(
        min_length=1,
        max_length=limits.PRODUCT_SLUG,
        pattern=SLUG_PATTERN,
        schema_extra={"pattern": f"^{limits.SLUG.pattern}$"},  # the same rule in JSON Schema's dialect (no \Z)
        description="A product's slug, such as ``trail-shoes``",
    ),
]
"""A product slug in a path: lowercase letters and digits joined by single hyphens."""


class CatalogSearch:
    """The handlers' ``search``: the catalog filters of the request's query string (search text,
    category, brand, colour and shop facets, price range in minor units, stock), normalised by
    ``CatalogQuery.from_params`` in the default sort (``filters``), and the product service that
    answers them (``service``).

    One dependency for the product list and the facet counts, so both take the same parameters, with
    the same bounds and descriptions in the OpenAPI document. It takes the service too, so that
    Litestar resolves the two one after the other: dependencies that do not depend on each other are
    resolved concurrently in an anyio task group, which cost a sixth of the product list's time.
    """

    def __init__(
        self,
        products_service: ProductsDep,
        q: Query = None,
        category: CategorySlug = None,
        brand: Brands = None,
        color: Colors = None,
        shop: Shops = None,
        price_min: PriceMin = None,
        price_max: PriceMax = None,
        in_stock: InStock = None,
    ) -> None:
        self.service = products_service
        self.filters = CatalogQuery.from_params(
            q=q,
            category=category,
            brand=brand,
            color=color,
            shop=shop,
            sort=None,
            page=1,
            price_min=price_min,
            price_max=price_max,
            in_stock=in_stock,
        )


class CatalogApiController(Controller):
    """Public catalog reads (no token needed)."""

    path = "/api"
    tags = ["catalog"]
    opt = PUBLIC
    dependencies = {"search": Provide(CatalogSearch, sync_to_thread=False)}

    @get("/products", operation_id="listProducts", responses=problems(400, 404, 422))
    async def list_products(
        self,
        search: NamedDependency[CatalogSearch],
        sort: Annotated[
            Sort | None, QueryParameter(description="Default: relevance with a search text, else name")
        ] = None,
        cursor: ProductCursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> ProductPage:
        """Search and filter the catalog; pages are linked by ``next_cursor``."""
        cards, next_cursor = await search.service.search(search.filters.sorted_by(sort), limit=limit, cursor=cursor)
        return ProductPage(items=[summary_out(c) for c in cards], next_cursor=next_cursor)

    @get("/products/facets", operation_id="productFacets", responses=problems(400, 404))
    async def product_facets(self, search: NamedDependency[CatalogSearch]) -> ProductFacets:
        """How many products match these filters, and the counts of brand and colour values."""
        total, facets = await search.service.facets(search.filters)
        return facets_out(total, facets)

    @get("/products/{product_id:int}", operation_id="getProduct", responses=problems(400, 404))
    async def get_product(self, product_id: PathId, products_service: ProductsDep) -> ProductOut:
        """One product with its variants (price, stock), photos and facets."""
        return displayed_out(await products_service.display(product_id=product_id))

    @get("/products/by-slug/{slug:str}", operation_id="getProductBySlug", responses=problems(400, 404))
    async def get_product_by_slug(self, slug: ProductSlugPath, products_service: ProductsDep) -> ProductOut:
        """One product by its slug (the last part of its page's address, ``/products/{slug}``), as ``getProduct``."""
        return displayed_out(await products_service.display(slug=slug))

    @get("/categories", operation_id="listCategories", responses=problems())
    async def list_categories(self, categories_service: CategoriesDep) -> list[CategoryOut]:
        """The category tree."""
        return tree_out(await categories_service.tree())
