"""Search engines and link previews: canonical URLs, JSON-LD, ``/sitemap.xml``, ``/robots.txt``, ``/favicon.ico``.

* Every page's ``<head>`` (``templates/base.html``) has a title, a description, a canonical link and
  Open Graph tags; the catalog and product pages fill them in. A listing's canonical URL keeps only
  what names the listing (the category, and the search text for a search); facets, sort and page
  point to it. Search results are also ``noindex, follow``.
* A product page carries schema.org JSON-LD (``product_structured_data``): a ``Product`` with an
  ``Offer`` (one variant) or an ``AggregateOffer`` (several), and a ``BreadcrumbList``. Prices are
  decimal strings made from integer minor units (never a float).
* ``/sitemap.xml`` (sitemaps.org protocol 0.9) lists the home page, the categories that hold a visible
  product and every visible product, with absolute URLs from ``WEBSHOP_BASE_URL``. ``/robots.txt``
  (RFC 9309) names it and keeps crawlers out of the cart, checkout, account, orders, admin and API
  (the API docs excepted).
* ``/favicon.ico``: browsers ask for it whatever the page links to; it answers with the icon.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from litestar import MediaType, Response, get
from litestar.datastructures import CacheControlHeader
from litestar.di import NamedDependency
from litestar.response import File, Template
from markupsafe import Markup
from sqlalchemy import func, select

from webshop.catalog.products import ProductService
from webshop.catalog.query import CatalogQuery, descendant_ids, visible_products
from webshop.config import Settings
from webshop.db.models import Category, Product, ProductImage, Variant
from webshop.money import exponent
from webshop.web.caching import STATIC_DIR

SCHEMA_ORG = "https://schema.org"
IN_STOCK = "https://schema.org/InStock"
OUT_OF_STOCK = "https://schema.org/OutOfStock"
ROBOTS_DISALLOW = ("/cart", "/checkout", "/account", "/orders", "/admin", "/api/")
"""Paths crawlers are asked to leave alone: the visitor's own pages, and the JSON API."""
ROBOTS_ALLOW = ("/api/docs", "/api/redoc", "/api/scalar", "/api/openapi.json")
"""Exceptions inside ``/api/``: the API documentation (the longest match wins, RFC 9309 §2.2.2)."""
SITE_FILE_CACHE = CacheControlHeader(public=True, max_age=3600)
"""robots.txt and the sitemap: an hour in any cache."""
FAVICON_CACHE = CacheControlHeader(public=True, max_age=86400)
"""``/favicon.ico`` has a fixed URL (pages link the fingerprinted copy in ``/static``): a day."""
SITE_FILE_OPT = {"exclude_from_csrf": True}
"""No CSRF cookie on these public, cacheable answers (a shared cache must never hand one out)."""
SITE_FILE_ROUTE: dict[str, Any] = {"include_in_schema": False, "opt": SITE_FILE_OPT}
"""Route options of every site file (sitemap, robots.txt, favicon): not in the API schema, no CSRF cookie."""


def absolute_url(base_url: str, path: str) -> str:
    """``path`` (``/products/x``) on the shop's public URL (``base_url`` without a final ``/``).

    >>> absolute_url("https://shop.example", "/products/x?sku=1")
    'https://shop.example/products/x?sku=1'
    """
    if path.startswith(("http://", "https://")):
        return path
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def listing_canonical(path: str, query: CatalogQuery) -> str:
    """The canonical path of a catalog listing: ``path`` with only the category and search text.

    Facets, sort order and page number are permutations of the same listing, so they are dropped.

    >>> listing_canonical("/", CatalogQuery(category="photo", sort="price", page=3))
    '/?category=photo'
    """
    params = {"q": query.q, "category": query.category}
    encoded = urlencode({key: value for key, value in params.items() if value})
    return f"{path}?{encoded}" if encoded else path


def decimal_amount(amount: int, currency: str) -> str:
    """``amount`` minor units of ``currency`` as a decimal string: ``decimal_amount(129900, "USD") == "1299.00"``.

    The exponent is ISO 4217's (``webshop.money.exponent``); no float is involved.
    """
    return str(Decimal(amount).scaleb(-exponent(currency)))


def product_structured_data(
    product: Any, trail: Sequence[Any], brand: str = "", *, base_url: str
) -> list[dict[str, Any]]:
    """schema.org ``Product`` and ``BreadcrumbList`` objects for a product page (Google's product snippets).

    Args:
        product: A ``Product`` with ``variants`` and ``images`` loaded.
        trail: Its category and that category's ancestors, root first (``Category`` rows).
        brand: The brand name(s), comma-separated; empty for none.
        base_url: The shop's public URL, for absolute links.

    Returns:
        ``[product, breadcrumbs]``: the ``Product`` has an ``Offer`` when it has one variant, an
        ``AggregateOffer`` (``lowPrice``, ``highPrice``, ``offerCount`` and one ``Offer`` per
        variant) when it has several, no offer when it has none; availability is ``InStock`` while
        stock is above zero (for an aggregate: any variant's), else ``OutOfStock``.
    """
    url = absolute_url(base_url, f"/products/{product.slug}")
    item: dict[str, Any] = {
        "@context": SCHEMA_ORG,
        "@type": "Product",
        "name": product.name,
        "url": url,
    }
    if product.description:
        item["description"] = product.description
    if product.images:
        item["image"] = [absolute_url(base_url, f"/media/{image.key}.{image.ext}") for image in product.images]
    if brand:
        item["brand"] = {"@type": "Brand", "name": brand}
    if trail:
        item["category"] = " > ".join(category.name for category in trail)
    variants = list(product.variants)
    offers = [
        {
            "@type": "Offer",
            "sku": variant.sku,
            "price": decimal_amount(variant.price, variant.currency),
            "priceCurrency": variant.currency,
            "availability": IN_STOCK if variant.stock > 0 else OUT_OF_STOCK,
            "url": url if len(variants) == 1 else f"{url}?{urlencode({'sku': variant.sku})}",
        }
        for variant in variants
    ]
    if len(variants) == 1:
        item["sku"] = variants[0].sku
        item["offers"] = offers[0]
    elif variants:
        cheapest = min(variants, key=lambda variant: variant.price)
        dearest = max(variants, key=lambda variant: variant.price)
        item["offers"] = {
            "@type": "AggregateOffer",
            "lowPrice": decimal_amount(cheapest.price, cheapest.currency),
            "highPrice": decimal_amount(dearest.price, dearest.currency),
            "priceCurrency": cheapest.currency,
            "offerCount": len(variants),
            "availability": IN_STOCK if any(variant.stock > 0 for variant in variants) else OUT_OF_STOCK,
            "offers": offers,
        }
    crumbs = [("Home", absolute_url(base_url, "/"))]
    crumbs += [(c.name, absolute_url(base_url, f"/?{urlencode({'category': c.slug})}")) for c in trail]
    crumbs.append((product.name, url))
    breadcrumbs = {
        "@context": SCHEMA_ORG,
        "@type": "BreadcrumbList",
        "itemListElement": [
            {"@type": "ListItem", "position": position, "name": name, "item": link}
            for position, (name, link) in enumerate(crumbs, start=1)
        ],
    }
    return [item, breadcrumbs]


def json_ld(data: dict[str, Any]) -> Markup:
    """``data`` in a ``<script type="application/ld+json">`` element, safe inside HTML.

    The JSON is not executed (so ``script-src 'self'`` does not block it), but the HTML parser still
    ends the element at ``</script>``: ``<``, ``>`` and ``&`` are written as ``\\u003c``-style escapes.
    """
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(f'<script type="application/ld+json">{text}</script>')  # noqa: S704 - escaped above


def product_json_ld(product: Any, trail: Sequence[Any], brand: str = "", *, base_url: str) -> Markup:
    """Jinja global: the product page's JSON-LD scripts (``product_structured_data``, ``json_ld``)."""
    items = product_structured_data(product, trail, brand, base_url=base_url)
    return Markup("\n").join(json_ld(item) for item in items)


@dataclass(frozen=True)
class SitemapUrl:
    """One ``<url>`` of the sitemap: absolute ``loc`` and, when known, when its content last changed."""

    loc: str
    lastmod: datetime | None = None


async def sitemap_urls(products: ProductService, base_url: str) -> list[SitemapUrl]:
    """The URLs of ``/sitemap.xml``: the home page, non-empty categories, visible products.

    A category is listed when it or a category below it holds a visible product (active, not
    soft-deleted). A product's ``lastmod`` is the latest change to it, its variants (price, stock)
    or its photos. At most 50,000 URLs fit one sitemap (sitemaps.org); the catalog is far smaller.
    """
    session = products.repository.session
    categories = list(await session.scalars(select(Category).order_by(Category.position, Category.name)))
    rows = (
        await session.execute(
            select(Product.id, Product.slug, Product.category_id, Product.updated_at)
            .where(visible_products())
            .order_by(Product.id)
        )
    ).all()
    changed: dict[int, datetime] = {}
    for model in (Variant, ProductImage):
        grouped = select(model.product_id, func.max(model.updated_at)).group_by(model.product_id)
        for product_id, updated_at in (await session.execute(grouped)).all():
            if updated_at is not None and (product_id not in changed or updated_at > changed[product_id]):
                changed[product_id] = updated_at
    stocked = {row.category_id for row in rows if row.category_id is not None}
    urls = [SitemapUrl(absolute_url(base_url, "/"))]
    for category in categories:
        if stocked & descendant_ids(categories, category.id):
            urls.append(SitemapUrl(absolute_url(base_url, f"/?{urlencode({'category': category.slug})}")))
    for row in rows:
        lastmod = max(filter(None, (row.updated_at, changed.get(row.id))), default=None)
        urls.append(SitemapUrl(absolute_url(base_url, f"/products/{row.slug}"), lastmod))
    return urls


def robots_txt(base_url: str, disallow: Iterable[str] = ROBOTS_DISALLOW, allow: Iterable[str] = ROBOTS_ALLOW) -> str:
    """The text of ``/robots.txt`` (RFC 9309) for the shop at ``base_url``."""
    lines = ["User-agent: *"]
    lines += [f"Allow: {path}" for path in allow]
    lines += [f"Disallow: {path}" for path in disallow]
    lines += ["", f"Sitemap: {absolute_url(base_url, '/sitemap.xml')}", ""]
    return "\n".join(lines)


@get("/sitemap.xml", name="sitemap", media_type=MediaType.XML, cache_control=SITE_FILE_CACHE, **SITE_FILE_ROUTE)
async def sitemap(products_service: NamedDependency[ProductService], settings: NamedDependency[Settings]) -> Template:
    """The sitemap of the shop's public pages."""
    urls = await sitemap_urls(products_service, settings.shop.base_url)
    return Template("seo/sitemap.xml", context={"urls": urls}, media_type=MediaType.XML)


@get(
    "/robots.txt",
    name="robots",
    media_type=MediaType.TEXT,
    cache_control=SITE_FILE_CACHE,
    sync_to_thread=False,
    **SITE_FILE_ROUTE,
)
def robots(settings: NamedDependency[Settings]) -> Response[str]:
    """Crawling rules and the sitemap's address."""
    return Response(robots_txt(settings.shop.base_url), media_type=MediaType.TEXT)


@get("/favicon.ico", name="favicon", cache_control=FAVICON_CACHE, sync_to_thread=False, **SITE_FILE_ROUTE)
def favicon() -> File:
    """The shop's icon, for browsers that ask for ``/favicon.ico`` whatever the page links."""
    return File(
        STATIC_DIR / "favicon.ico", media_type="image/x-icon", content_disposition_type="inline", filename="favicon.ico"
    )


SEO_HANDLERS = [sitemap, robots, favicon]
"""The handlers ``create_app`` registers."""
