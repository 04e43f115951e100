"""The catalog's derived data stays in step with every write: search index, product summaries, version.

Admin edits, variant and stock changes, soft delete and restore, category renames, checkout and
cancel each update the search documents and the per-product summaries (lowest/highest price, in
stock) in their own transaction, and bump the catalog version that keys the cached counts; the
price and stock filters read those summaries; a deep page costs the same statements as the first;
``webshop check-stock`` compares the summaries and the index with a fresh computation.
"""

from __future__ import annotations

import asyncio
import re

import pytest
from sqlalchemy import event, insert, select, text, update

from tests.factories import SMALL_CATALOG, P, seed_catalog
from tests.shopper import PASSWORD
from webshop.catalog.categories import CategoryService
from webshop.catalog.products import ProductService
from webshop.catalog.schemas import ProductPatch, VariantPatch, VariantWrite
from webshop.catalog.search_index import find_search_index_mismatches
from webshop.catalog.summaries import catalog_changed, find_summary_mismatches
from webshop.db.engine import write_session
from webshop.db.models import Category, Product, Variant

ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}


def names(html: str) -> list[str]:
    return re.findall(r'<span class="card-name">([^<]+)</span>', html)


async def api_names(client, **params) -> list[str]:
    response = await client.get("/api/products", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["items"]]


async def product_id(alchemy, name: str) -> int:
    async with alchemy.get_session() as session:
        return await session.scalar(select(Product.id).where(Product.name == name))


async def variant_id(alchemy, sku: str) -> int:
    async with alchemy.get_session() as session:
        return await session.scalar(select(Variant.id).where(Variant.sku == sku))


async def assert_derived_data_consistent(alchemy) -> None:
    async with alchemy.get_session() as session:
        assert await find_summary_mismatches(session) == []
        assert await find_search_index_mismatches(session) == []


async def test_admin_writes_keep_search_summaries_and_counts_in_step(client, alchemy, skus):
    beta = await product_id(alchemy, "Beta Camera")
    assert await api_names(client, q="camera") == ["Beta Camera", "Gamma Camera"]
    assert "6 products" in (await client.get("/")).text  # cached now, for this catalog version

    async with write_session(alchemy) as session:
        await ProductService(session=session).update_product(beta, ProductPatch(name="Beta Rangefinder"), actor=None)
    assert await api_names(client, q="rangefinder") == ["Beta Rangefinder"]
    assert await api_names(client, q="camera") == ["Gamma Camera"]

    async with write_session(alchemy) as session:
        await ProductService(session=session).update_variant(skus["BC-1"], VariantPatch(price=100), actor=None)
    assert (await api_names(client, sort="price"))[0] == "Beta Rangefinder"
    assert names((await client.get("/?sort=price")).text)[0] == "Beta Rangefinder"

    async with write_session(alchemy) as session:
        await ProductService(session=session).add_variant(beta, VariantWrite(sku="BC-NEW", price=99_900), actor=None)
    assert await api_names(client, q="BC-NEW") == ["Beta Rangefinder"]
    assert await api_names(client, sort="-price", limit=1) == ["Alpha Laptop"]
    async with write_session(alchemy) as session:
        await ProductService(session=session).delete_variant(await variant_id(alchemy, "BC-NEW"), actor=None)
    assert await api_names(client, q="BC-NEW") == []

    in_stock = await api_names(client, in_stock="true")
    assert "Beta Rangefinder" in in_stock and "Gamma Camera" not in in_stock
    async with write_session(alchemy) as session:
        await ProductService(session=session).set_variant_stock(skus["BC-1"], 0, expected=3, actor=None)
    assert "Beta Rangefinder" not in await api_names(client, in_stock="true")
    assert "4 products" in (await client.get("/?in_stock=1")).text

    async with write_session(alchemy) as session:
        await ProductService(session=session).soft_delete(beta, actor=None)
    assert await api_names(client, q="rangefinder") == []
    assert "5 products" in (await client.get("/")).text
    async with write_session(alchemy) as session:
        await ProductService(session=session).restore(beta, actor=None)
    assert await api_names(client, q="rangefinder") == ["Beta Rangefinder"]

    async with write_session(alchemy) as session:
        photo = await session.scalar(select(Category.id).where(Category.slug == "photo"))
        await CategoryService(session=session).rename_category(None, photo, name="Imaging")
        await session.commit()
    assert await api_names(client, q="imaging") == ["Beta Rangefinder", "Gamma Camera"]
    assert (await client.get("/api/products/facets", params={"q": "imaging"})).json()["total"] == 2
    await assert_derived_data_consistent(alchemy)


async def test_checkout_and_cancel_turn_the_in_stock_flag_off_and_on(client, alchemy, skus):
    before = (await client.get("/api/products/facets", params={"in_stock": "true"})).json()["total"]
    assert before == 5
    await client.post("/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"})
    token = (await client.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "Idempotency-Key": "last-cameras"}
    await client.post("/api/cart/items", json={"sku": "BC-1", "quantity": 3}, headers=headers)
    body = {"shipping_address": ADDRESS, "shipping_method": "standard", "payment": {"token": "tok_visa"}}
    order = await client.post("/api/checkout", json=body, headers=headers)
    assert order.status_code == 201, order.text

    assert (await client.get("/api/products/facets", params={"in_stock": "true"})).json()["total"] == 4
    assert "Beta Camera" not in names((await client.get("/?in_stock=1")).text)
    await assert_derived_data_consistent(alchemy)

    cancelled = await client.post(f"/api/orders/{order.json()['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    assert (await client.get("/api/products/facets", params={"in_stock": "true"})).json()["total"] == 5
    assert "Beta Camera" in names((await client.get("/?in_stock=1")).text)
    await assert_derived_data_consistent(alchemy)


async def test_counts_are_cached_by_catalog_version(client, alchemy, skus):
    assert "6 products" in (await client.get("/")).text
    async with write_session(alchemy) as session:
        # A write that skips catalog_changed: the cached count for this version stays (no scan per request)...
        new = (
            await session.execute(
                insert(Product).returning(Product.id),
                [{"name": "Omega Lamp", "slug": "omega-lamp", "description": "", "option_groups": []}],
            )
        ).scalar_one()
        await session.execute(insert(Variant), [{"product_id": new, "sku": "OL-1", "price": 500, "stock": 1}])
        await session.commit()
    assert "6 products" in (await client.get("/")).text
    async with write_session(alchemy) as session:
        # ...and a write that records the change is seen by the very next request, in every worker.
        await catalog_changed(session, [new])
        await session.commit()
    page = (await client.get("/?sort=price")).text
    assert "7 products" in page
    assert names(page)[0] == "Omega Lamp"
    assert await api_names(client, q="omega") == ["Omega Lamp"]


async def test_price_and_stock_filters_on_the_page_and_the_api(client, skus):
    page = (await client.get("/", params={"price_min": "50", "price_max": "100"})).text
    assert names(page) == ["Delta Chair", "Zeta Shoe"]
    assert 'value="50.00"' in page and 'value="100.00"' in page  # the form shows the filter back
    assert await api_names(client, price_min=5000, price_max=10000) == ["Delta Chair", "Zeta Shoe"]
    # A product matches when one of its variants is in the range (not merely its lowest and highest price).
    assert await api_names(client, price_min=130_000, price_max=140_000) == []
    assert await api_names(client, price_min=140_000) == ["Alpha Laptop"]
    stocked = names((await client.get("/", params={"in_stock": "1"})).text)
    assert stocked == ["Alpha Laptop", "Beta Camera", "Delta Chair", "Epsilon Plant", "Zeta Shoe"]
    facets = (await client.get("/api/products/facets", params={"in_stock": "true", "color": "black"})).json()
    assert facets["total"] == 1  # Beta Camera; Gamma Camera is black too but sold out
    assert {f["value"]: f["count"] for f in facets["facets"]["color"]}["black"] == 1
    assert (await client.get("/", params={"price_min": "lots"})).status_code == 200  # not a price: ignored


async def test_a_deep_page_runs_the_same_statements_as_the_first(client, alchemy):
    extra = tuple(P(f"Widget {n:03d}", "furniture", None, (), ((f"W-{n:03d}", (), 1000 + n, 1),)) for n in range(60))
    await seed_catalog(alchemy, SMALL_CATALOG + extra)
    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        statements.append(statement)

    engine = alchemy.get_engine().sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        runs = {}
        for page in (1, 6, 1, 6):
            statements.clear()
            response = await client.get("/", params={"sort": "price", "page": page})
            assert response.status_code == 200
            runs[page] = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(names((await client.get("/?sort=price&page=6")).text)) == 6  # 66 products, 12 a page
    # Warm (cache filled by the first round): the version, the page's cards and their photos, whatever the page.
    assert len(runs[1]) == len(runs[6]), runs
    # The version: one statement on PostgreSQL; on SQLite it is read outside the session (webshop/catalog/version.py).
    assert sum("catalog_state" in statement for statement in runs[6]) == (0 if engine.dialect.name == "sqlite" else 1)
    assert not any("product_facets" in statement for statement in runs[6])  # facet counts come from the cache
    assert not any("OFFSET" in statement.upper() for statement in runs[1] + runs[6])


async def test_check_stock_finds_and_repairs_stale_summaries_and_documents(alchemy, skus, settings, monkeypatch):
    from click.testing import CliRunner

    from webshop import config as config_module
    from webshop.cli import main

    monkeypatch.setattr(config_module, "get_settings", lambda: settings)
    monkeypatch.setattr("webshop.cli.get_settings", lambda: settings)
    runner = CliRunner()
    ok = await asyncio.to_thread(runner.invoke, main, ["check-stock"])
    assert ok.exit_code == 0, ok.output
    assert "product summaries consistent" in ok.output and "search index consistent" in ok.output

    async with write_session(alchemy) as session:
        await session.execute(update(Product).where(Product.slug == "delta-chair").values(min_price=1))
        await session.execute(text("DELETE FROM product_search WHERE product_id = :id"), {"id": 1})
        await session.commit()
    bad = await asyncio.to_thread(runner.invoke, main, ["check-stock"])
    assert bad.exit_code == 1
    assert "delta-chair: summary (min, max, in stock) (1, 8900, True), variants say (8900, 8900, True)" in bad.output
    assert "1 search document(s) out of date" in bad.output
    repaired = await asyncio.to_thread(runner.invoke, main, ["check-stock", "--repair"])
    assert repaired.exit_code == 0, repaired.output
    await assert_derived_data_consistent(alchemy)


@pytest.mark.parametrize("sort", ["price", "-price", "name", "-name", "newest"])
async def test_api_keyset_pages_through_ties_without_repeats_or_gaps(client, alchemy, sort):
    same = tuple(P(f"Tie {n:02d}", "furniture", None, (), ((f"T-{n:02d}", (), 1000, 1),)) for n in range(23))
    await seed_catalog(alchemy, same)
    seen, cursor = [], None
    while True:
        page = (
            await client.get(
                "/api/products", params={"sort": sort, "limit": 5, **({"cursor": cursor} if cursor else {})}
            )
        ).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 23
