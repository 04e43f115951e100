"""HTML controllers for the shoppers' side of shops: the list of shops and each shop's page with its
catalog (the main catalog's grid, search, facets, sort and pages, limited to that shop)."""

from typing import Any

from litestar import Controller, MediaType, Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from webshop.catalog.products import ProductService
from webshop.catalog.web import InStock, Page, Price, catalog_query
from webshop.config import Settings
from webshop.shops.service import ShopService
from webshop.web.responses import page_count, page_or_fragment

SHOPS_PAGE_SIZE = 24


class ShopsController(Controller):
    """The shops a shopper can buy from."""

    path = "/shops"
    include_in_schema = False

    @get("", name="shops", media_type=MediaType.HTML)
    async def shops(self, shops_service: NamedDependency[ShopService], page: Page = None) -> Template:
        """The trading shops by name, paged."""
        page = page or 1
        shops, total = await shops_service.list_public(limit=SHOPS_PAGE_SIZE, offset=(page - 1) * SHOPS_PAGE_SIZE)
        return Template(
            "shops/index.html",
            context={"shops": shops, "total": total, "page": page, "pages": page_count(total, SHOPS_PAGE_SIZE)},
        )

    @get("/{slug:str}", name="shop", media_type=MediaType.HTML)
    async def shop(
        self,
        request: Request[Any, Any, Any],
        slug: FromPath[str],
        shops_service: NamedDependency[ShopService],
        products_service: NamedDependency[ProductService],
        settings: NamedDependency[Settings],
        q: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        brand: FromQuery[list[str] | None] = None,
        color: FromQuery[list[str] | None] = None,
        sort: FromQuery[str | None] = None,
        page: Page = None,
        price_min: Price = None,
        price_max: Price = None,
        in_stock: InStock = None,
    ) -> Template:
        """A shop's profile and its products, searched, filtered, sorted and paged like the catalog."""
        shop = await shops_service.get_public(slug=slug)
        query = catalog_query(
            settings,
            q=q,
            category=category,
            brand=brand,
            color=color,
            sort=sort,
            page=page,
            price_min=price_min,
            price_max=price_max,
            in_stock=in_stock,
        ).in_shop(shop.slug)
        result = await products_service.browse(query, page_size=settings.shop.page_size)
        return page_or_fragment(
            request,
            "shops/shop.html",
            {"catalog-results": "shops/_results_fragment.html"},
            {
                "shop": shop,
                "result": result,
                "query": query,
                "sorts": query.sorts,
                "listing_url": request.app.route_reverse("shop", slug=shop.slug),
                # The catalog's HTML for this query is kept apart from the main catalog's (other URLs).
                "html_key": None if result.cache_key is None else (result.cache_key, "shop"),
            },
        )
