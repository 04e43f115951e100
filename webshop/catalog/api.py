"""Catalog routes of the JSON API: products (search, filters, cursor pages), one product, the category tree."""

from typing import Annotated, Literal

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, QueryParameter

from webshop.api.responses import problems
from webshop.api.schemas import INT_MAX, PathId
from webshop.catalog.schemas import CategoryOut, ProductOut, ProductPage, product_out, summary_out, tree_out
from webshop.catalog.service import CatalogQuery, CategoryService, ProductService
from webshop.security.jwt import PUBLIC

Sort = Literal["name", "-name", "price", "-price", "newest"]
# Prices are bounded with ``gt=-1`` (the same as ``ge=0`` for integers): Litestar leaves a bound of 0 out
# of the OpenAPI schema, which would then call negative prices valid.


class CatalogApiController(Controller):
    """Public catalog reads (no token needed)."""

    path = "/api"
    tags = ["catalog"]
    opt = PUBLIC

    @get("/products", operation_id="listProducts", responses=problems(400, 404, 422))
    async def list_products(
        self,
        products_service: NamedDependency[ProductService],
        q: Annotated[str | None, QueryParameter(max_length=100, description="Search in name and description")] = None,
        category: Annotated[str | None, QueryParameter(description="Category slug (includes subcategories)")] = None,
        brand: Annotated[list[str] | None, QueryParameter(description="Brand facet values (any of)")] = None,
        color: Annotated[list[str] | None, QueryParameter(description="Colour facet values (any of)")] = None,
        price_min: Annotated[int | None, QueryParameter(gt=-1, le=INT_MAX, description="Minor units")] = None,
        price_max: Annotated[int | None, QueryParameter(gt=-1, le=INT_MAX, description="Minor units")] = None,
        sort: FromQuery[Sort] = "name",
        cursor: Annotated[str | None, QueryParameter(max_length=500)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> ProductPage:
        """Search and filter the catalog; pages are linked by ``next_cursor``."""
        query = CatalogQuery.from_params(q=q, category=category, brand=brand, color=color, sort=sort, page=1)
        cards, next_cursor = await products_service.search(
            query, limit=limit, cursor=cursor, price_min=price_min, price_max=price_max
        )
        return ProductPage(items=[summary_out(c) for c in cards], next_cursor=next_cursor)

    @get("/products/{product_id:int}", operation_id="getProduct", responses=problems(400, 404))
    async def get_product(self, product_id: PathId, products_service: NamedDependency[ProductService]) -> ProductOut:
        """One product with its variants (price, stock), photos and facets."""
        return product_out(await products_service.get_visible(product_id))

    @get("/categories", operation_id="listCategories", responses=problems())
    async def list_categories(self, categories_service: NamedDependency[CategoryService]) -> list[CategoryOut]:
        """The category tree."""
        return tree_out(await categories_service.tree())
