"""One spelling per facet value (both engines): "Blue" and "blue" are one colour in the shopper's filters.

The admin API (the admin form calls the same service) and the CSV import store a value the way the
catalog already spells it; the shopper's filter list and the API's facet counts show it once.
"""

from __future__ import annotations

import asyncio
import csv
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.api_user import token_pair
from tests.factories import make_user
from tests.integration.test_catalog_pages import names
from webshop.catalog.csv.apply import import_catalog
from webshop.catalog.csv.parse import COLUMNS, SHOP_COLUMN, parse_catalog
from webshop.catalog.csv.plan import preview_import
from webshop.catalog.csv.sellers import resolve_shops
from webshop.catalog.csv.spelling import respell_batch, respell_facets
from webshop.catalog.facet_spelling import stored_spellings
from webshop.catalog.products import ProductService
from webshop.catalog.schemas import ProductPatch
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Category, Product, ProductFacet, User, UserRole
from webshop.shops.schemas import ShopWrite
from webshop.shops.service import ShopService


@pytest.fixture
async def admin(client: Any, alchemy: ShopAlchemyConfig, skus: Any) -> dict[str, str]:
    """Bearer headers of an admin; the catalog is seeded (``skus``: "black" and "red" are colours in it)."""
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    return {"Authorization": f"Bearer {(await token_pair(client, 'boss@example.com'))['access_token']}"}


async def colours(client: Any) -> dict[str, int]:
    """The colour filter's values with their counts, as the API gives them."""
    facets = (await client.get("/api/products/facets")).json()["facets"]
    return {value["value"]: value["count"] for value in facets["color"]}


async def test_a_value_typed_in_another_case_takes_the_catalogs_spelling(client, alchemy, admin):
    before = await colours(client)
    assert before["black"] >= 1 and "teal" not in before
    async with write_session(alchemy) as session:
        footwear = await session.scalar(select(Category.id).where(Category.slug == "footwear"))
    body = {
        "name": "Trail Shoe",
        "category_id": footwear,
        "facets": {"color": ["BLACK", "Black", "Teal", "teal"]},
        "variants": [{"sku": "TS-1", "price": 12900, "stock": 2}],
    }
    created = await client.post("/api/products", json=body, headers=admin)
    assert created.status_code == 201, created.text
    product = created.json()
    assert product["facets"] == {"color": ["black", "Teal"]}
    after = await colours(client)
    assert after["black"] == before["black"] + 1 and after["Teal"] == 1
    assert not {"BLACK", "Black", "teal"} & set(after)
    # The shopper's filter list shows one "black", and choosing it finds the new shoe with the others.
    page = await client.get("/?color=black")
    assert page.text.count('value="black"') == 1 and 'value="BLACK"' not in page.text
    assert "Trail Shoe" in names(page.text)

    # "Teal" is this product's alone: the admin may change its case. "RED" is other products' "red".
    path = f"/api/products/{product['id']}"
    patched = await client.patch(path, json={"facets": {"color": ["teal", "RED"]}}, headers=admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["facets"] == {"color": ["teal", "red"]}
    assert "RED" not in await colours(client) and "Teal" not in await colours(client)


async def test_a_writer_reads_the_spellings_once_the_writer_before_it_has_committed(alchemy, skus):
    """A writer holds the spelling lock and has stored "Teal" for one product, not committed yet. Another
    product saved with "TEAL" meanwhile waits for it (the advisory lock on PostgreSQL, the writer's turn
    on SQLite) and is stored as "Teal", not as a second spelling of the new colour."""
    async with alchemy.get_session() as session:
        first, second = list(await session.scalars(select(Product.id).order_by(Product.id).limit(2)))

    async def save_teal() -> Product:
        async with write_session(alchemy) as session:
            patch = ProductPatch(facets={"color": ["TEAL"]})
            return await ProductService(session=session).update_product(second, patch, actor=None)

    async with write_session(alchemy) as session:
        assert len(await stored_spellings(session, ["color"], for_write=True)) > 0
        session.add(ProductFacet(product_id=first, facet="color", value="Teal"))
        await session.flush()
        saved = asyncio.ensure_future(save_teal())
        await asyncio.sleep(0.5)  # time for the other save to reach its read (it waits there for this commit)
        await session.commit()
    product = await saved
    assert {facet.value for facet in product.facets if facet.facet == "color"} == {"Teal"}


def _catalog(folder: Path, facets: str) -> Path:
    """A catalog folder whose one product, "Kettle", has the ``facets`` cell (``color:BLACK``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    with (folder / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerow(["Kettle", "kettle", "", "", facets, "", "", "K-1", "9.99", "standard", "3", "", "", ""])
    return folder


async def kettle_facets(client: Any) -> dict[str, list[str]]:
    """The imported kettle's facets, as the API shows its product."""
    [found] = (await client.get("/api/products", params={"q": "kettle"})).json()["items"]
    return (await client.get(f"/api/products/{found['id']}")).json()["facets"]


async def test_the_csv_import_and_its_preview_keep_the_catalogs_spelling(
    client, alchemy: ShopAlchemyConfig, settings: Settings, skus: Any, tmp_path: Path
) -> None:
    media = settings.shop.media_dir
    first = _catalog(tmp_path / "first", "color:BLACK|color:Black|brand:acme")
    report = await import_catalog(alchemy, first, media)
    assert report.products_created == 1, report.errors
    assert "BLACK" not in await colours(client) and "Black" not in await colours(client)
    assert await kettle_facets(client) == {"color": ["black"], "brand": ["acme"]}

    # Other cases of values other products have change nothing, and the dry run says so.
    again = _catalog(tmp_path / "again", "color:Black|brand:acme")
    async with alchemy.get_session() as session:
        preview = await preview_import(session, parse_catalog(again / "products.csv"), media_dir=media)
    assert preview.changed == [] and preview.unchanged == 1
    report = await import_catalog(alchemy, again, media)
    assert report.products_unchanged == 1 and report.products_updated == 0
    assert await kettle_facets(client) == {"color": ["black"], "brand": ["acme"]}

    # "acme" is the kettle's alone: the file may change its case (as an admin may on the product's page).
    renamed = _catalog(tmp_path / "renamed", "color:BLACK|brand:ACME")
    async with alchemy.get_session() as session:
        preview = await preview_import(session, parse_catalog(renamed / "products.csv"), media_dir=media)
    [planned] = preview.changed
    assert "ACME" in " ".join(planned.changes) and "BLACK" not in " ".join(planned.changes), planned.changes
    assert (await import_catalog(alchemy, renamed, media)).products_updated == 1
    assert await kettle_facets(client) == {"color": ["black"], "brand": ["ACME"]}


async def test_a_row_refused_for_naming_another_shop_does_not_hold_the_spelling(
    client, alchemy: ShopAlchemyConfig, settings: Settings, skus: Any, tmp_path: Path
) -> None:
    """Only the products a file really updates may change a value's case: a row that would move the
    kettle to another shop is refused, so the kettle's "Solo" still spells the file's new mug's "SOLO"."""
    media = settings.shop.media_dir
    assert (await import_catalog(alchemy, _catalog(tmp_path / "first", "brand:Solo"), media)).products_created == 1
    admin_id = await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    async with write_session(alchemy) as session:
        await ShopService(session=session).create_shop(await session.get(User, admin_id), ShopWrite(name="Shop A"))
    folder = tmp_path / "second"
    folder.mkdir()
    (folder / "images").mkdir()
    with (folder / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS, SHOP_COLUMN])
        writer.writerow(
            ["Kettle", "kettle", "", "", "brand:SOLO", "", "", "K-1", "9.99", "standard", "3", "", "", "", "shop-a"]
        )
        writer.writerow(["Mug", "mug", "", "", "brand:SOLO", "", "", "M-1", "4.99", "standard", "3", "", "", "", ""])
    report = await import_catalog(alchemy, folder, media)
    assert report.products_created == 1 and "belongs to another shop" in str(report.errors)
    facets = (await client.get("/api/products/facets")).json()["facets"]
    assert {value["value"]: value["count"] for value in facets["brand"]}.get("Solo") == 2
    assert "SOLO" not in {value["value"] for value in facets["brand"]}


def _two_product_catalog(folder: Path, brand: str) -> Path:
    """A catalog folder of a kettle and a mug, both of brand ``brand``."""
    folder.mkdir(parents=True)
    (folder / "images").mkdir()
    with (folder / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for name, sku in (("Kettle", "K-1"), ("Mug", "M-1")):
            writer.writerow(
                [name, name.lower(), "", "", f"brand:{brand}", "", "", sku, "9.99", "standard", "3", "", "", ""]
            )
    return folder


async def test_each_import_batch_takes_a_spelling_committed_since_the_file_was_read_but_keeps_its_own(
    client, alchemy: ShopAlchemyConfig, settings: Settings, skus: Any, tmp_path: Path
) -> None:
    """The file was respelt before its first batch; an admin commits "Hue" for another product before
    the batch is written: the batch, respelt under the facet writers' lock, writes "Hue", not the file's
    "HUE". And a case change the file makes to a value only its products have holds in every batch."""
    rows_file = _catalog(tmp_path / "hue", "color:HUE")
    async with alchemy.get_session() as session:
        first = await session.scalar(select(Product.id).order_by(Product.id).limit(1))
        rows, shop_ids = await resolve_shops(session, parse_catalog(rows_file / "products.csv").products, [])
        written = await respell_facets(session, rows, shop_ids)
    assert rows[0].facets == [("color", "HUE")] and written == ["kettle"]
    async with write_session(alchemy) as session:  # the admin's save, committed between the two reads
        session.add(ProductFacet(product_id=first, facet="color", value="Hue"))
        await session.commit()
    async with write_session(alchemy) as session:
        await respell_batch(session, rows, written)
    assert rows[0].facets == [("color", "Hue")]

    media = settings.shop.media_dir
    assert (await import_catalog(alchemy, _two_product_catalog(tmp_path / "a", "acme"), media)).products_created == 2
    renamed = await import_catalog(alchemy, _two_product_catalog(tmp_path / "b", "ACME"), media, batch_size=1)
    assert renamed.products_updated == 2, renamed.errors
    brands = {value["value"] for value in (await client.get("/api/products/facets")).json()["facets"]["brand"]}
    assert "ACME" in brands and "acme" not in brands


async def test_a_filter_value_in_another_case_finds_the_catalogs_value(client, skus):
    """Old links and values typed by hand: ``?color=BLACK`` filters by "black", ticked once; the API too."""
    exact = names((await client.get("/?color=black")).text)
    assert exact
    page = await client.get("/?color=BLACK&color=Black")
    assert names(page.text) == exact
    assert page.text.count('value="black"') == 1 and 'value="BLACK"' not in page.text
    assert re.search(r'value="black"\s*checked', page.text)
    assert "color=BLACK" not in page.text and "color=Black" not in page.text  # its links name "black" too
    listed = (await client.get("/api/products", params={"brand": "NIKON"})).json()["items"]
    assert listed and listed == (await client.get("/api/products", params={"brand": "Nikon"})).json()["items"]
    facets = (await client.get("/api/products/facets", params={"brand": "nikon"})).json()
    assert [(v["value"], v["selected"]) for v in facets["facets"]["brand"] if v["selected"]] == [("Nikon", True)]
    # A value no product has finds nothing, as before.
    assert names((await client.get("/?color=mauve")).text) == []
