"""Delivery and SEO: compression, caching headers, 304s, fingerprinted static URLs, favicon, sitemap,
robots.txt, canonical links, Open Graph tags and the product pages' JSON-LD (issue 12)."""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import brotli
import pytest
from litestar import Litestar, MediaType, get
from litestar.response import ServerSentEvent, Stream
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from tests.conftest import BASE_URL as BASE
from tests.factories import SMALL_CATALOG, P, make_user, seed_catalog
from tests.shopper import sign_in
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Product, ProductImage
from webshop.media import placeholder_image, store_image
from webshop.web.caching import (
    IMMUTABLE,
    StaticAssets,
    compression_config,
    install,
    negotiate_encoding,
    not_modified,
)

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
"""``Settings.shop.base_url``'s default, which the test settings keep."""
JSON_LD_RE = re.compile(r'<script type="application/ld\+json">(.*?)</script>', re.S)
SITEMAP_NS = "{http://www.sitemaps.org/schemas/sitemap/0.9}"


def meta(html: str, attribute: str, name: str) -> str:
    """The ``content`` of ``<meta {attribute}="{name}" content="...">`` (the first one)."""
    match = re.search(rf'<meta {attribute}="{re.escape(name)}" content="([^"]*)"', html)
    assert match, f"no {attribute}={name} meta tag"
    return match.group(1)


def canonical(html: str) -> str:
    match = re.search(r'<link rel="canonical" href="([^"]*)"', html)
    assert match, "no canonical link"
    return match.group(1)


def json_ld(html: str) -> list[dict[str, Any]]:
    return [json.loads(block) for block in JSON_LD_RE.findall(html)]


@pytest.fixture
def photo(settings: Settings) -> str:
    """A stored product photo in the test's media folder; returns its key."""
    return store_image(placeholder_image("Photo", seed=3, size=(400, 500)), settings.shop.media_dir).key


# --- compression ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [("br", "br"), ("gzip", "gzip"), ("gzip, deflate, br", "br"), ("br;q=0, gzip", "gzip"), ("identity", None)],
)
async def test_pages_are_compressed_as_accept_encoding_asks(
    client: AsyncTestClient[Litestar], skus: dict[str, int], accept: str, expected: str | None
) -> None:
    plain = await client.get("/", headers={"accept-encoding": "identity"})
    response = await client.get("/", headers={"accept-encoding": accept})
    assert response.status_code == 200
    assert response.headers.get("content-encoding") == expected
    assert "accept-encoding" in response.headers["vary"].lower()
    assert "hx-request" in response.headers["vary"].lower()  # the page's own Vary is kept
    assert response.text == plain.text  # httpx decoded it
    if expected:
        assert response.num_bytes_downloaded < len(plain.content) / 3


async def test_the_encoded_bytes_are_real_brotli_and_gzip(
    client: AsyncTestClient[Litestar], skus: dict[str, int]
) -> None:
    plain = (await client.get("/products/alpha-laptop", headers={"accept-encoding": "identity"})).content
    for coding, decode in (("br", brotli.decompress), ("gzip", gzip.decompress)):
        async with client.stream("GET", "/products/alpha-laptop", headers={"accept-encoding": coding}) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.headers["content-encoding"] == coding
        assert int(response.headers["content-length"]) == len(raw)
        assert decode(raw) == plain


async def test_css_js_json_and_svg_are_compressed(client: AsyncTestClient[Litestar], skus: dict[str, int]) -> None:
    assets = StaticAssets(STATIC_DIR)
    for path in (assets.url("css/site.css"), assets.url("vendor/htmx/htmx-2.0.11.min.js"), "/api/openapi.json"):
        response = await client.get(path, headers={"accept-encoding": "br, gzip"})
        assert response.status_code == 200, path
        assert response.headers.get("content-encoding") == "br", path
    # The SVG icon is smaller than the threshold; a larger SVG body would be compressed.
    svg = await client.get(assets.url("favicon.svg"), headers={"accept-encoding": "br, gzip"})
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "content-encoding" not in svg.headers
    assert "accept-encoding" in svg.headers["vary"].lower()


async def test_images_and_small_bodies_are_not_compressed(
    client: AsyncTestClient[Litestar], photo: str, settings: Settings
) -> None:
    for path in (f"/media/{photo}-640.webp", f"/media/{photo}.jpg", "/favicon.ico"):
        response = await client.get(path, headers={"accept-encoding": "br, gzip"})
        assert response.status_code == 200, path
        assert "content-encoding" not in response.headers, path
        assert "vary" not in response.headers, path
    small = await client.get("/health", headers={"accept-encoding": "br, gzip"})
    assert small.status_code == 200 and "content-encoding" not in small.headers


async def test_a_large_static_file_is_compressed_once(client: AsyncTestClient[Litestar]) -> None:
    """A bundle of MBs is compressed once per coding (not on every request) and sent whole."""
    path = "vendor/scalar/standalone.js"
    bodies = []
    for _ in range(2):
        async with client.stream(
            "GET", StaticAssets(STATIC_DIR).url(path), headers={"accept-encoding": "br"}
        ) as response:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        assert response.headers["content-encoding"] == "br"
        assert int(response.headers["content-length"]) == len(raw)
        assert response.headers["etag"].startswith('W/"')  # a compressed body is not byte-identical to the file
        bodies.append(raw)
    assert bodies[0] == bodies[1]
    assert brotli.decompress(bodies[0]) == (STATIC_DIR / path).read_bytes()
    gzipped = await client.get(StaticAssets(STATIC_DIR).url(path), headers={"accept-encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.content == (STATIC_DIR / path).read_bytes()


async def test_server_sent_events_and_streams_pass_through() -> None:
    """Event streams are never buffered or compressed; other streams are compressed chunk by chunk."""

    @get("/events", sync_to_thread=False)
    def events() -> ServerSentEvent:
        return ServerSentEvent(iter(["first " * 400, "second " * 400]))

    @get("/stream", media_type=MediaType.TEXT, sync_to_thread=False)
    def stream() -> Stream:
        return Stream(iter([b"a" * 5000, b"b" * 5000]))

    app = install(Litestar([events, stream], compression_config=compression_config()))
    async with AsyncTestClient(app=app) as client:
        sse = await client.get("/events", headers={"accept-encoding": "br, gzip"})
        assert sse.headers["content-type"].startswith("text/event-stream")
        assert "content-encoding" not in sse.headers
        assert "data: first" in sse.text and "data: second" in sse.text
        streamed = await client.get("/stream", headers={"accept-encoding": "gzip"})
        assert streamed.headers["content-encoding"] == "gzip"
        assert streamed.text == "a" * 5000 + "b" * 5000


def test_accept_encoding_negotiation() -> None:
    assert negotiate_encoding("") is None
    assert negotiate_encoding("gzip;q=1.0, br;q=0.5") == "gzip"
    assert negotiate_encoding("br;q=0.5, gzip;q=0.5") == "br"
    assert negotiate_encoding("*") == "br"
    assert negotiate_encoding("*;q=0, gzip") == "gzip"
    assert negotiate_encoding("br;q=0, gzip;q=0") is None
    assert negotiate_encoding("deflate, compress") is None


# --- fingerprinted static files, media and conditional requests ------------------------------------


async def test_pages_link_static_files_by_content_hash(client: AsyncTestClient[Litestar], skus: dict[str, int]) -> None:
    html = (await client.get("/")).text
    linked = re.findall(r'(?:href|src|content)="(?:https?://[^/"]+)?(/static/[^"]+)"', html)
    assert linked, "no static file linked"
    for url in linked:
        path, _, query = url.partition("?v=")
        digest = hashlib.sha256((STATIC_DIR / path.removeprefix("/static/")).read_bytes()).hexdigest()[:8]
        assert query == digest, url
    assert "/static/css/site.css?v=" in html and "/static/vendor/htmx/" in html


async def test_fingerprinted_static_files_are_immutable_others_revalidate(client: AsyncTestClient[Litestar]) -> None:
    url = StaticAssets(STATIC_DIR).url("css/site.css")
    response = await client.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["etag"] and response.headers["last-modified"]
    for other in ("/static/css/site.css", "/static/css/site.css?v=00000000"):
        assert (await client.get(other)).headers["cache-control"] == "no-cache", other


async def test_static_and_media_answer_conditional_requests_with_304(
    client: AsyncTestClient[Litestar], photo: str
) -> None:
    for url in (StaticAssets(STATIC_DIR).url("css/site.css"), f"/media/{photo}-320.webp"):
        first = await client.get(url, headers={"accept-encoding": "br"})
        assert first.status_code == 200
        assert first.headers["cache-control"] == IMMUTABLE, url
        etag, modified = first.headers["etag"], first.headers["last-modified"]

        again = await client.get(url, headers={"if-none-match": etag, "accept-encoding": "br"})
        assert again.status_code == 304, url
        assert again.content == b""
        assert again.headers["etag"] == etag and again.headers["cache-control"] == IMMUTABLE
        assert "content-type" not in again.headers and "content-encoding" not in again.headers
        # A strong tag from an uncompressed answer matches the weak one of a compressed answer.
        listed = f'"nope", {etag.removeprefix("W/")}'
        assert (await client.get(url, headers={"if-none-match": listed})).status_code == 304
        assert (await client.get(url, headers={"if-none-match": '"other"'})).status_code == 200

        since = await client.get(url, headers={"if-modified-since": modified})
        assert since.status_code == 304 and since.content == b""
        older = await client.get(url, headers={"if-modified-since": "Mon, 01 Jan 2001 00:00:00 GMT"})
        assert older.status_code == 200 and older.content
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2).
        both = await client.get(url, headers={"if-none-match": '"other"', "if-modified-since": modified})
        assert both.status_code == 200
        head = await client.head(url, headers={"if-none-match": etag})
        assert head.status_code == 304


def test_not_modified_rules() -> None:
    from litestar.datastructures import Headers, MutableScopeHeaders

    def response(**headers: str) -> MutableScopeHeaders:
        return MutableScopeHeaders(
            {"headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]}
        )

    current = response(etag='"abc"', last_modified="Tue, 01 Dec 2026 10:00:00 GMT")
    assert not_modified(Headers({"if-none-match": "*"}), current)
    assert not_modified(Headers({"if-none-match": 'W/"abc"'}), current)
    assert not not_modified(Headers({"if-none-match": '"abd"'}), current)
    assert not_modified(Headers({"if-modified-since": "Wed, 02 Dec 2026 10:00:00 GMT"}), current)
    assert not not_modified(Headers({"if-modified-since": "Mon, 30 Nov 2026 10:00:00 GMT"}), current)
    assert not not_modified(Headers({"if-modified-since": "yesterday"}), current)
    assert not not_modified(Headers({"if-none-match": '"abc"'}), response())


async def test_public_files_set_no_cookie(client: AsyncTestClient[Litestar], photo: str, skus: dict[str, int]) -> None:
    """A response a shared cache may keep never carries a cookie (it would hand it to everyone)."""
    assets = StaticAssets(STATIC_DIR)
    for path in (assets.url("css/site.css"), f"/media/{photo}.jpg", "/favicon.ico", "/robots.txt", "/sitemap.xml"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert "set-cookie" not in response.headers, path
        assert "public" in response.headers["cache-control"], path


# --- Cache-Control on pages and the API -----------------------------------------------------------


async def test_pages_and_api_say_how_to_cache(
    client: AsyncTestClient[Litestar], alchemy: ShopAlchemyConfig, skus: dict[str, int]
) -> None:
    assert (await client.get("/")).headers["cache-control"] == "private, no-cache"
    assert (await client.get("/products/alpha-laptop")).headers["cache-control"] == "private, no-cache"
    for path in ("/cart", "/account/sign-in"):
        assert (await client.get(path)).headers["cache-control"] == "no-store", path
    assert (await client.get("/api/products")).headers["cache-control"] == "no-store"
    assert (await client.get("/api/cart")).headers["cache-control"] == "no-store"
    assert (await client.get("/robots.txt")).headers["cache-control"] == "max-age=3600, public"

    await make_user(alchemy, "ada@example.com")
    await sign_in(client, "ada@example.com")
    # Signed in, every page shows the visitor's name: nothing is stored.
    assert (await client.get("/")).headers["cache-control"] == "no-store"


# --- favicon, robots.txt, sitemap.xml --------------------------------------------------------------


async def test_favicon(client: AsyncTestClient[Litestar], skus: dict[str, int]) -> None:
    response = await client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/x-icon"
    assert response.content.startswith(b"\x00\x00\x01\x00")  # an ICO directory
    html = (await client.get("/")).text
    assert re.search(r'<link rel="icon" href="/static/favicon\.svg\?v=\w{8}" type="image/svg\+xml">', html)
    svg = await client.get(StaticAssets(STATIC_DIR).url("favicon.svg"))
    assert svg.status_code == 200 and svg.text.startswith("<svg")


async def test_robots_txt(client: AsyncTestClient[Litestar]) -> None:
    response = await client.get("/robots.txt")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    lines = response.text.splitlines()
    assert lines[0] == "User-agent: *"
    for path in ("/cart", "/checkout", "/account", "/orders", "/admin", "/api/"):
        assert f"Disallow: {path}" in lines
    assert "Allow: /api/docs" in lines
    assert f"Sitemap: {BASE}/sitemap.xml" in lines


async def test_sitemap_lists_visible_products_and_categories(
    client: AsyncTestClient[Litestar], alchemy: ShopAlchemyConfig, skus: dict[str, int]
) -> None:
    def locations(body: bytes) -> list[str]:
        root = ET.fromstring(body)  # noqa: S314 - our own response
        return [element.text or "" for element in root.iter(f"{SITEMAP_NS}loc")]

    response = await client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    urls = locations(response.content)
    assert urls[0] == f"{BASE}/"
    products = {f"{BASE}/products/{item.name.lower().replace(' ', '-')}" for item in SMALL_CATALOG}
    assert products <= set(urls)
    assert f"{BASE}/?category=photo" in urls and f"{BASE}/?category=electronics" in urls
    assert len(urls) == len(set(urls))
    root = ET.fromstring(response.content)  # noqa: S314 - our own response
    lastmods = [element.text for element in root.iter(f"{SITEMAP_NS}lastmod")]
    assert len(lastmods) == len(products)
    assert all(datetime.fromisoformat(text or "").tzinfo is not None for text in lastmods)

    async with write_session(alchemy) as session:
        await session.execute(
            update(Product).where(Product.slug == "gamma-camera").values(deleted_at=datetime.now(UTC))
        )
        await session.execute(update(Product).where(Product.slug == "delta-chair").values(is_active=False))
        await session.commit()
    urls = locations((await client.get("/sitemap.xml")).content)
    assert f"{BASE}/products/gamma-camera" not in urls
    assert f"{BASE}/products/delta-chair" not in urls
    assert f"{BASE}/products/beta-camera" in urls
    assert f"{BASE}/?category=furniture" not in urls  # its only product is hidden now
    assert f"{BASE}/?category=home-garden" in urls  # still holds the plant


# --- canonical links, description, Open Graph, JSON-LD --------------------------------------------


async def test_catalog_pages_have_canonical_description_and_open_graph(
    client: AsyncTestClient[Litestar], skus: dict[str, int]
) -> None:
    home = (await client.get("/")).text
    assert re.search(r"<title>[^<]+</title>", home)
    assert canonical(home) == f"{BASE}/"
    assert meta(home, "name", "description")
    assert meta(home, "property", "og:type") == "website"
    assert meta(home, "property", "og:url") == f"{BASE}/"
    assert meta(home, "property", "og:title")
    assert meta(home, "property", "og:description") == meta(home, "name", "description")
    assert meta(home, "property", "og:image").startswith(f"{BASE}/static/")
    assert 'name="robots"' not in home

    # Facets, sort and page are permutations of the category listing.
    listing = (await client.get("/?category=photo&brand=Nikon&sort=price&page=1")).text
    assert canonical(listing) == f"{BASE}/?category=photo"
    assert meta(listing, "property", "og:url") == f"{BASE}/?category=photo"
    assert "Photo" in meta(listing, "name", "description")
    assert canonical((await client.get("/?sort=name&color=red")).text) == f"{BASE}/"

    search = (await client.get("/?q=camera&brand=Nikon&sort=price")).text
    assert canonical(search) == f"{BASE}/?q=camera"
    assert meta(search, "name", "robots") == "noindex, follow"


async def test_product_page_meta_and_open_graph(
    client: AsyncTestClient[Litestar], alchemy: ShopAlchemyConfig, skus: dict[str, int], photo: str
) -> None:
    async with write_session(alchemy) as session:
        product = await session.scalar(select(Product).where(Product.slug == "beta-camera"))
        assert product is not None
        session.add(ProductImage(product_id=product.id, key=photo, ext="jpg", width=400, height=500))
        await session.commit()
    page = (await client.get("/products/alpha-laptop?sku=AL-15")).text
    assert canonical(page) == f"{BASE}/products/alpha-laptop"
    assert meta(page, "property", "og:type") == "product"
    assert meta(page, "property", "og:title") == "Alpha Laptop"
    assert meta(page, "name", "description") == "A fine product."
    camera = (await client.get("/products/beta-camera")).text
    assert meta(camera, "property", "og:image") == f"{BASE}/media/{photo}.jpg"
    item = json_ld(camera)[0]
    assert item["image"] == [f"{BASE}/media/{photo}.jpg"]


async def test_product_json_ld_with_several_variants(client: AsyncTestClient[Litestar], skus: dict[str, int]) -> None:
    product, breadcrumbs = json_ld((await client.get("/products/alpha-laptop")).text)
    assert product["@context"] == "https://schema.org" and product["@type"] == "Product"
    assert product["name"] == "Alpha Laptop"
    assert product["url"] == f"{BASE}/products/alpha-laptop"
    assert product["brand"] == {"@type": "Brand", "name": "Apple"}
    assert "sku" not in product  # each offer names its own
    offers = product["offers"]
    assert offers["@type"] == "AggregateOffer"
    assert (offers["lowPrice"], offers["highPrice"], offers["offerCount"]) == ("1299.00", "1499.00", 2)
    assert offers["priceCurrency"] == "USD"
    assert offers["availability"] == "https://schema.org/InStock"  # AL-13 has 5
    by_sku = {offer["sku"]: offer for offer in offers["offers"]}
    assert by_sku["AL-13"]["availability"] == "https://schema.org/InStock"
    assert by_sku["AL-15"]["availability"] == "https://schema.org/OutOfStock"
    assert by_sku["AL-15"]["price"] == "1499.00" and isinstance(by_sku["AL-15"]["price"], str)

    assert breadcrumbs["@type"] == "BreadcrumbList"
    trail = [(item["position"], item["name"], item["item"]) for item in breadcrumbs["itemListElement"]]
    assert trail == [
        (1, "Home", f"{BASE}/"),
        (2, "Electronics", f"{BASE}/?category=electronics"),
        (3, "Computers", f"{BASE}/?category=computers"),
        (4, "Alpha Laptop", f"{BASE}/products/alpha-laptop"),
    ]


async def test_product_json_ld_with_one_variant(client: AsyncTestClient[Litestar], skus: dict[str, int]) -> None:
    product, _ = json_ld((await client.get("/products/beta-camera")).text)
    assert product["sku"] == "BC-1"
    assert product["offers"] == {
        "@type": "Offer",
        "sku": "BC-1",
        "price": "450.00",
        "priceCurrency": "USD",
        "availability": "https://schema.org/InStock",
        "url": f"{BASE}/products/beta-camera",
    }
    sold_out, _ = json_ld((await client.get("/products/gamma-camera")).text)
    assert sold_out["offers"]["availability"] == "https://schema.org/OutOfStock"
    plant, _ = json_ld((await client.get("/products/epsilon-plant")).text)
    assert plant["offers"]["price"] == "19.99"
    assert "brand" not in plant


async def test_json_ld_cannot_end_its_script_element(
    client: AsyncTestClient[Litestar], alchemy: ShopAlchemyConfig
) -> None:
    nasty = 'Fine </script><script>alert("x")</script> & <!-- done'
    await seed_catalog(alchemy, (P("Odd Lamp", "furniture", "A&B", (), (("OL-1", (), 1000, 1),), description=nasty),))
    html = (await client.get("/products/odd-lamp")).text
    blocks = JSON_LD_RE.findall(html)
    assert len(blocks) == 2
    assert "</script" not in blocks[0] and "<" not in blocks[0]
    product = json.loads(blocks[0])
    assert product["description"] == nasty
    assert product["brand"]["name"] == "A&B"


# --- the API docs load nothing from another host ----------------------------------------------------


async def test_api_docs_pages_use_vendored_assets(client: AsyncTestClient[Litestar]) -> None:
    for path in ("/api/docs", "/api/redoc", "/api/scalar"):
        response = await client.get(path)
        assert response.status_code == 200, path
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert sources, path
        for source in sources:
            assert source.startswith("/"), f"{path} loads {source}"
            if source.startswith("/static/"):
                assert (await client.get(source)).headers["cache-control"] == IMMUTABLE, source
        policy = response.headers["content-security-policy"]
        assert "http" not in policy, policy
