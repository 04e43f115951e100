"""Search quality on the real catalog (``../shared/catalog``: 54 products), on SQLite and PostgreSQL.

The catalog is imported once per engine (the importer builds the search index as it writes); each row
of ``QUERIES`` then names the products that must come first for a query: typos, word order, plurals,
prefixes as you type, brands, SKUs in any spelling, colours and option values, accents and case. A few
HTTP tests check what the shopper sees: "Did you mean ...?", search with filters, relevance first.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import POSTGRES_URL, SHARED_CATALOG, _pg_database_url, _pg_exec, in_thread, make_settings
from webshop.catalog.browse import browse_catalog
from webshop.catalog.csv.apply import import_catalog
from webshop.catalog.query import CatalogQuery
from webshop.db.engine import create_alchemy_config

pytestmark = pytest.mark.skipif(not (SHARED_CATALOG / "products.csv").is_file(), reason="the shared catalog is missing")

LAPTOP = ["Laptop"]
CAMERAS = ["Instant Camera", "Vintage Folding Camera", "Nikkormat SLR Camera", "Compact SLR Camera"]
SLR = ["Nikkormat SLR Camera", "Compact SLR Camera"]
SHOES = [
    "Freerun Running Shoe",
    "Hi-Top Basketball Shoe",
    "Pureboost Running Shoe",
    "RunX Running Shoe",
    "Ultraboost Running Shoe",
]
RUNNING = ["Freerun Running Shoe", "Pureboost Running Shoe", "RunX Running Shoe", "Ultraboost Running Shoe"]
ADIDAS_RUNNING = ["Pureboost Running Shoe", "RunX Running Shoe", "Ultraboost Running Shoe"]
CHAIRS = ["Balloon Chair", "Black Eaves Chair", "Comfy Padded Chair", "Modern Cafe Chair"]

QUERIES: list[tuple[str, list[str], int]] = [
    # (query, products that must all be among the first N results, N). N == len(products): exactly those first.
    # words and prefixes as you type
    ("laptop", LAPTOP, 1),
    ("lapt", LAPTOP, 1),
    ("tripod", ["Tripod"], 1),
    ("skateboard", ["Cruiser Skateboard"], 1),
    ("leather", ["Leather Sofa"], 1),
    # a word inside a compound name: the word itself first, then the compounds
    ("ball", ["Tennis Ball", "Basketball"], 2),
    ("ball", ["Tennis Ball", "Basketball", "Football", "Hi-Top Basketball Shoe"], 5),  # and Balloon Chair
    ("board", ["Cruiser Skateboard", "Clacky Keyboard"], 2),
    ("boost", ["Pureboost Running Shoe", "Ultraboost Running Shoe"], 3),  # and Hard Drive: "boost" in its text
    # typos: a letter missing, wrong, extra, or two swapped
    ("laptp", LAPTOP, 1),
    ("latpop", LAPTOP, 1),
    ("camra", CAMERAS, 8),
    ("cmaera", CAMERAS, 8),
    ("tripd", ["Tripod"], 1),
    ("monitr", ["Curvy Monitor", "32-Inch Monitor"], 2),
    ("keybaord", ["Clacky Keyboard"], 1),
    ("sofaa", ["Grey Fabric Sofa", "Leather Sofa"], 2),
    ("tenis", ["Tennis Ball"], 1),
    ("succulant", ["Assorted Indoor Succulents"], 1),
    ("runing shoe", RUNNING, 4),
    # word order
    ("camera slr", SLR, 2),
    ("slr camera", SLR, 2),
    ("lens camera", ["Camera Lens", "Twin Lens Camera"], 2),
    ("camera lens", ["Camera Lens", "Twin Lens Camera"], 2),
    # plural and singular
    ("shoes", SHOES, 5),
    ("shoe", SHOES, 5),
    ("running shoes", RUNNING, 4),
    ("chairs", CHAIRS, 4),
    ("chair", CHAIRS, 4),
    ("succulents", ["Assorted Indoor Succulents"], 1),
    ("glove", ["Boxing Gloves"], 1),
    ("plants", ["Hanging Plant"], 1),
    # brands (and a brand with a product word)
    ("nike", ["Football", "Freerun Running Shoe", "Hi-Top Basketball Shoe"], 3),
    ("adidas running", ADIDAS_RUNNING, 3),
    ("polaroid", ["Instant Camera"], 1),
    ("kodak camera", ["Instamatic Camera"], 1),
    # SKUs: exact, any case, with or without their dots and dashes
    ("L2201308", LAPTOP, 1),
    ("l2201308", LAPTOP, 1),
    ("CMK32GX4M2AC16", ["High Performance RAM"], 1),
    ("404.038.96", ["Modern Cafe Chair"], 1),
    ("40403896", ["Modern Cafe Chair"], 1),
    ("SC3137-056", ["Football"], 1),
    ("4058NB/09", ["Hand Trowel"], 1),
    # colours and option values
    ("black sneakers", ["Allstar Sneakers"], 1),
    ("blue shoe", ["Ultraboost Running Shoe"], 1),
    ("pink", ["Ultraboost Running Shoe"], 1),
    ("gray sofa", ["Grey Fabric Sofa"], 1),
    ("grey sofa", ["Grey Fabric Sofa"], 1),
    ("mint", ["Modern Cafe Chair"], 1),
    ("15 inch laptop", LAPTOP, 1),
    ("16gb", ["Laptop", "High Performance RAM"], 2),
    # categories, accents and case
    ("indoor plant", ["Assorted Indoor Succulents", "Aloe Vera", "Spiky Cactus"], 5),
    ("Café", ["Modern Cafe Chair"], 1),
    ("CAFE CHAIR", ["Modern Cafe Chair"], 1),
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def catalog_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database holding the shared catalog, imported once per engine for the whole module."""
    workdir = tmp_path_factory.mktemp(f"search-{request.param}")
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, workdir / "shop.db")
        url, name = f"sqlite+aiosqlite:///{workdir / 'shop.db'}", None
    else:
        template_name: str = request.getfixturevalue("postgres_template")
        name = f"webshop_search_{uuid.uuid4().hex[:12]}"
        in_thread(_pg_exec(POSTGRES_URL, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
        url = _pg_database_url(name)
    try:
        in_thread(_import(url, workdir / "media"))
        yield url
    finally:
        if name:
            in_thread(_pg_exec(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _import(url: str, media_dir: Path) -> None:
    config = create_alchemy_config(make_settings(url, media_dir), null_pool=True)
    try:
        report = await import_catalog(config, SHARED_CATALOG, media_dir)
        assert report.products_created == 54, report.summary()
    finally:
        await config.get_engine().dispose()


@pytest.fixture
async def session(catalog_url: str) -> AsyncIterator[AsyncSession]:
    engine = create_async_engine(catalog_url, poolclass=NullPool)
    async with AsyncSession(engine) as session:
        yield session
    await engine.dispose()


@pytest.fixture
async def client(catalog_url: str, tmp_path: Path) -> AsyncIterator[AsyncTestClient]:
    from webshop.app import create_app

    settings = make_settings(catalog_url, tmp_path / "media")
    alchemy = create_alchemy_config(settings, null_pool=True)
    async with AsyncTestClient(app=create_app(settings, alchemy=alchemy), base_url="http://127.0.0.1:8000") as c:
        yield c
    await alchemy.get_engine().dispose()


async def search(session: AsyncSession, text: str, **filters: object) -> list[str]:
    """Product names for ``text`` in relevance order (all of them, one page of 100)."""
    params: dict[str, object] = {"category": None, "brand": None, "color": None, "sort": None, "page": 1}
    params.update(filters)
    query = CatalogQuery.from_params(q=text, **params)  # type: ignore[arg-type]
    page = await browse_catalog(session, query, page_size=100)
    return [card.name for card in page.items]


@pytest.mark.parametrize(("text", "expected", "top"), QUERIES, ids=[q for q, _e, _t in QUERIES])
async def test_query_finds_the_right_products_first(session, text, expected, top):
    names = await search(session, text)
    missing = [name for name in expected if name not in names[:top]]
    assert not missing, f"{text!r}: {missing} not in the first {top} of {names}"


def test_the_table_is_large_enough():
    assert len(QUERIES) >= 30


@pytest.mark.parametrize(("plural", "singular"), [("shoes", "shoe"), ("plants", "plant"), ("chairs", "chair")])
async def test_plural_and_singular_find_the_same(session, plural, singular):
    assert sorted(await search(session, plural)) == sorted(await search(session, singular))


async def test_every_word_must_match_and_unknown_words_find_nothing(session):
    assert await search(session, "camera sofa") == []
    assert await search(session, "zzzz") == []
    assert "Tent" not in await search(session, "tenis")  # one edit from "tents", but not from the stem


async def test_search_with_category_facet_price_and_stock_filters(session):
    assert sorted(await search(session, "shoe", brand=["Nike"])) == ["Freerun Running Shoe", "Hi-Top Basketball Shoe"]
    assert await search(session, "camera", category="computers") == []
    assert "Tripod" in await search(session, "photo", category="electronics")
    cheap = await search(session, "camera", price_max=20000)
    assert sorted(cheap) == ["Camera Lens", "Instamatic Camera", "Instant Camera"]
    assert await search(session, "camera", sort="price", price_max=20000) == [
        "Instamatic Camera",
        "Camera Lens",
        "Instant Camera",
    ]
    assert len(await search(session, "shoe", in_stock=True)) == 5


async def test_zero_results_page_says_did_you_mean_with_a_link(client):
    page = await client.get("/", params={"q": "cmaeraa"})
    assert page.status_code == 200
    assert "No products found" in page.text
    link = re.search(r'Did you mean <a href="([^"]+)">“([^”]+)”</a>\?', page.text)
    assert link, page.text
    assert link.group(2) == "camera"
    assert link.group(1) == "/?q=camera"
    assert 'aria-label="Categories"' in page.text  # the category tree stays on the page
    found = await client.get(link.group(1).replace("&amp;", "&"))
    assert "8 products" in found.text
    nothing = await client.get("/", params={"q": "zzzzqqq"})
    assert "Did you mean" not in nothing.text
    # With filters, only a correction that finds something with them is offered, and the link keeps them.
    filtered = await client.get("/", params={"q": "cmaeraa", "price_max": "100000"})
    assert 'Did you mean <a href="/?q=camera&amp;price_max=100000.00">' in filtered.text, filtered.text
    too_narrow = await client.get("/", params={"q": "cmaeraa", "price_max": "0.01"})
    assert "No products found" in too_narrow.text and "Did you mean" not in too_narrow.text


async def test_relevance_is_the_default_order_with_a_query(client):
    page = await client.get(
        "/", params={"q": "lens camera"}, headers={"HX-Request": "true", "HX-Target": "catalog-results"}
    )
    names = re.findall(r'<span class="card-name">([^<]+)</span>', page.text)
    assert names[:2] == ["Camera Lens", "Twin Lens Camera"]
    full = await client.get("/", params={"q": "lens camera"})
    assert re.search(r'<option value=""\s+selected>Best match</option>', full.text)
    # The menu sends the default sort as "": a search typed on the catalog in its default order (by name)
    # is by relevance, not by name (the form sends the menu's value with the search text).
    home = await client.get("/")
    assert re.search(r'<option value=""\s+selected>Name: A to Z</option>', home.text)
    typed = await client.get("/", params={"q": "lens camera", "sort": ""})
    assert re.findall(r'<span class="card-name">([^<]+)</span>', typed.text)[:2] == ["Camera Lens", "Twin Lens Camera"]
    assert re.search(r'<option value="name"\s*>Name: A to Z</option>', typed.text)  # chosen on purpose: by name
    by_name = await client.get("/", params={"q": "lens camera", "sort": "name"})
    assert re.findall(r'<span class="card-name">([^<]+)</span>', by_name.text) == [
        "Camera Lens",
        "Nikkormat SLR Camera",
        "Twin Lens Camera",
    ]


async def test_api_search_relevance_pages_and_facets(client):
    first = (await client.get("/api/products", params={"q": "shoe", "limit": 2})).json()
    seen = [item["name"] for item in first["items"]]
    page = first
    while page["next_cursor"]:
        page = (
            await client.get("/api/products", params={"q": "shoe", "limit": 2, "cursor": page["next_cursor"]})
        ).json()
        seen += [item["name"] for item in page["items"]]
    assert sorted(seen) == SHOES
    facets = (await client.get("/api/products/facets", params={"q": "shoe", "brand": "Nike"})).json()
    assert facets["total"] == 2
    brands = {f["value"]: (f["count"], f["selected"]) for f in facets["facets"]["brand"]}
    assert brands == {"Adidas": (3, False), "Nike": (2, True)}  # brand counts ignore the brand selection
    sku = (await client.get("/api/products", params={"q": "404.038.96"})).json()
    assert [item["name"] for item in sku["items"]] == ["Modern Cafe Chair"]
