"""HTML controllers for the shoppers' side of shops: the list of shops and each shop's page with its
catalog (the main catalog's grid, search, facets, sort and pages, limited to that shop)."""

from litestar import Controller, MediaType, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Template

from webshop.catalog.web import CatalogListing, Page, page_turned, push_query_url
from webshop.deps import ShopsDep
from webshop.web import AnyRequest
from webshop.web.responses import page_count, page_or_fragment

SHOPS_PAGE_SIZE = 24


class ShopsController(Controller):
    """The shops a shopper can buy from."""

    path = "/shops"
    include_in_schema = False
    dependencies = {"listing": Provide(CatalogListing, sync_to_thread=False)}

    @get("", name="shops", media_type=MediaType.HTML)
    async def shops(self, shops_service: ShopsDep, page: Page = None) -> Template:
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
        request: AnyRequest,
        slug: FromPath[str],
        shops_service: ShopsDep,
        listing: NamedDependency[CatalogListing],
    ) -> Template:
        """A shop's profile and its products, searched, filtered, sorted and paged like the catalog."""
        shop = await shops_service.get_public(slug=slug)
        query = listing.query.in_shop(shop.slug)
        result = await listing.service.browse(query, page_size=listing.page_size)
        query = query.spelt_as(result.query)
        listing_url = request.app.route_reverse("shop", slug=shop.slug)
        response = page_or_fragment(
            request,
            "shops/shop.html",
            {"catalog-results": "shops/_results_fragment.html"},
            {
                "shop": shop,
                "result": result,
                "query": query,
                "sorts": query.sorts,
                "listing_url": listing_url,
                "page_turned": page_turned(request),
                # The catalog's HTML for this query is kept apart from the main catalog's (other URLs).
                "html_key": None if result.cache_key is None else (result.cache_key, "shop"),
            },
            status_code=result.status_code,
        )
        return push_query_url(request, response, listing_url, query)
