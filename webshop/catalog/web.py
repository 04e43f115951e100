"""HTML controllers for the catalog: the product grid and the product page."""

from collections.abc import Sequence
from typing import Annotated, Any

from litestar import Controller, MediaType, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.plugins.htmx import HTMXRequest
from litestar.response import Template

from webshop.catalog.products import ProductService
from webshop.catalog.query import CatalogQuery, parse_price
from webshop.catalog.variants import choose_variant, option_choices
from webshop.deps import ProductsDep, SettingsDep
from webshop.web import AnyRequest
from webshop.web.responses import MAX_PAGE, page_or_fragment, route_url
from webshop.web.templating import query_url

Page = Annotated[int | None, QueryParameter(ge=1, le=MAX_PAGE)]
Price = Annotated[str | None, QueryParameter(max_length=20)]
InStock = Annotated[str | None, QueryParameter(max_length=10)]
SETS_SHOP_DIRECTORY = {"shop_directory": True}
"""Route ``opt`` of pages whose handler puts the trading shops in ``request.state.shop_directory``
itself (from reads it makes anyway), so the page hook need not (``webshop.cart.web.cart_badge_hook``)."""


class CatalogListing:
    """The listing pages' ``listing`` dependency: the catalog filters of the request's query string as a
    ``CatalogQuery`` (``query``), the product service that answers it (``service``) and the page size.

    Prices are typed in major units (``"12.50"``; one that is not a price is ignored); any ``in_stock``
    value means "only in stock". One dependency for the catalog and each shop's page, so both take
    the same parameters. It takes the service and the settings too, so Litestar resolves them one after
    the other instead of in an anyio task group (see ``webshop.catalog.api.CatalogSearch``).
    """

    def __init__(
        self,
        products_service: ProductsDep,
        settings: SettingsDep,
        q: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        brand: FromQuery[list[str] | None] = None,
        color: FromQuery[list[str] | None] = None,
        shop: FromQuery[list[str] | None] = None,
        sort: FromQuery[str | None] = None,
        page: Page = None,
        price_min: Price = None,
        price_max: Price = None,
        in_stock: InStock = None,
    ) -> None:
        currency = settings.shop.currency
        self.service = products_service
        self.page_size = settings.shop.page_size
        self.query = CatalogQuery.from_params(
            q=q,
            category=category,
            brand=brand,
            color=color,
            shop=shop,
            sort=sort,
            page=page,
            price_min=parse_price(price_min, currency),
            price_max=parse_price(price_max, currency),
            in_stock=bool(in_stock),
            currency=currency,
        )


class CatalogController(Controller):
    """Shopper-facing catalog pages."""

    include_in_schema = False
    opt = SETS_SHOP_DIRECTORY
    dependencies = {"listing": Provide(CatalogListing, sync_to_thread=False)}

    @get("/", name="catalog", media_type=MediaType.HTML)
    async def catalog(self, request: AnyRequest, listing: NamedDependency[CatalogListing]) -> Template:
        """The product grid with search, category tree, facet, price and stock filters, sort and pages."""
        result = await listing.service.browse(listing.query, page_size=listing.page_size)
        query = listing.query.spelt_as(result.query)
        request.state.shop_directory = result.shops
        response = page_or_fragment(
            request,
            "catalog/index.html",
            {"catalog-results": "catalog/_results_fragment.html"},
            {"result": result, "query": query, "sorts": query.sorts, "page_turned": page_turned(request)},
            status_code=result.status_code,
        )
        return push_query_url(request, response, request.app.route_reverse("catalog"), query)

    @get("/products/{slug:str}", name="product", media_type=MediaType.HTML)
    async def product(
        self,
        request: AnyRequest,
        slug: FromPath[str],
        products_service: ProductsDep,
        sku: FromQuery[str | None] = None,
    ) -> Template:
        """A product page: photos, description and the variant picker."""
        return await render_product(request, products_service, slug, sku=sku)


async def render_product(
    request: AnyRequest,
    products: ProductService,
    slug: str,
    *,
    sku: str | None = None,
    error: str | None = None,
    quantity: int | None = None,
    status_code: int = 200,
) -> Template:
    """Render a product page (or its variant panel for htmx), optionally with an add-to-cart error and
    the quantity that was refused (shown again in the form, so the shopper sees what to correct).

    Option values come from ``opt0``, ``opt1``, ... query parameters, one per option group; the
    picker's ``from`` parameter is the SKU of the variant it showed (see ``choose_variant``). The
    picker's panel pushes the URL of the variant it shows (``HX-Push-Url``), not the one it asked for.

    Raises:
        NotFound: no visible product has ``slug``.
    """
    product, categories, render_key, shops = await products.display(slug=slug)
    request.state.shop_directory = shops
    groups = product.option_groups or []
    chosen = {group: value for index, group in enumerate(groups) if (value := request.query_params.get(f"opt{index}"))}
    variant = choose_variant(product, chosen, sku, shown=request.query_params.get("from"))
    trail = _category_trail(categories, product.category_id)
    # The page's product parts are rendered once per catalog version, chosen variant and stock
    # levels (templates/catalog/product.html); a page with an add-to-cart error is not cached.
    page_key = None if error or render_key is None else (render_key, variant.id if variant else None)
    response = page_or_fragment(
        request,
        "catalog/product.html",
        {"variant-panel": "catalog/_variant.html"},
        {
            "product": product,
            "variant": variant,
            "choices": option_choices(product),
            "trail": trail,
            "brand": ", ".join(product.facet_values("brand")),
            "seller": shops.seller(product.shop_id),
            "cart_error": error,
            "quantity": quantity,
            "page_key": page_key,
        },
        status_code=status_code,
        page_key=_whole_page_key(request, page_key),
    )
    if variant is not None and response.template_name == "catalog/_variant.html":
        query = {f"opt{index}": value for index, value in enumerate(variant.option_values)}
        response.headers["HX-Push-Url"] = route_url(request, "product", slug=product.slug, query=query)
    return response


PAGE_LINKS = frozenset({"pages-prev", "pages-next", "pages-last"})
"""The ids of the results' links to other pages (``templates/_pagination.html`` with a ``target``)."""


def page_turned(request: AnyRequest) -> bool:
    """Whether this is htmx fetching another page of the results through one of their page links (its
    ``HX-Trigger`` names the link): the answer then moves the focus to the new page's results."""
    return isinstance(request, HTMXRequest) and bool(request.htmx) and request.htmx.trigger in PAGE_LINKS


def push_query_url(request: AnyRequest, response: Template, listing_url: str, query: CatalogQuery) -> Template:
    """``response``, with the address of ``query`` itself as the one htmx puts in the address bar
    (``HX-Push-Url``) when it is the results of an htmx search or filter change.

    htmx would push the form's address, which carries every field, empty ones too
    (``/?q=&price_min=&price_max=``); the query's own (``CatalogQuery.params``) names only what narrows
    or orders the list, as the page's links do, so the address bar shows what a shopper would share.
    """
    if (response.template_name or "").endswith("_results_fragment.html"):
        response.headers["HX-Push-Url"] = query_url(listing_url, query.params())
    return response


def _whole_page_key(request: AnyRequest, page_key: Any) -> Any:
    """The key for keeping the whole product page (``CachedPageTemplate``), or ``None``.

    Only for a visitor who is not signed in (no name, no banner in the header) and has no messages
    waiting (they show once); the cart badge's count is part of the key. Everything else on the page
    is named by ``page_key``; the CSRF token is the visitor's own on every use.
    """
    if page_key is None or request.scope.get("user") is not None:
        return None
    session = request.scope.get("session")
    if isinstance(session, dict) and session.get("_messages"):
        return None
    return (page_key, request.state.get("cart_count", 0))


def _category_trail(categories: Sequence[Any], category_id: int | None) -> list[Any]:
    by_id = {c.id: c for c in categories}
    trail: list[Any] = []
    while category_id is not None and category_id in by_id:
        trail.insert(0, by_id[category_id])
        category_id = by_id[category_id].parent_id
    return trail
