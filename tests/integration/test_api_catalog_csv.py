"""The catalog CSV in the JSON API on both engines: ``GET /api/catalog/export`` and
``POST /api/catalog/import`` (a dry run by default), as the admin page does them, for admins and for a
shop's members (their shops' products only)."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from sqlalchemy import select

from tests.api_user import assert_problem, bearer, bearer_of
from tests.factories import audit_events, shop_selling
from tests.integration.conftest import ADMIN_EMAIL
from webshop.catalog.csv.export import export_columns
from webshop.db.engine import ShopAlchemyConfig
from webshop.db.models import Product, Variant

Headers = dict[str, str]


@pytest.fixture(autouse=True)
async def catalog(skus: dict[str, int]) -> dict[str, int]:
    """The small test catalog (``skus``), for every test here."""
    return skus


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))


def csv_bytes(rows: list[list[str]]) -> bytes:
    handle = io.StringIO(newline="")
    csv.writer(handle).writerows(rows)
    return handle.getvalue().encode("utf-8")


def upload(content: bytes) -> dict[str, Any]:
    return {"files": {"file": ("products.csv", content, "text/csv")}}


async def _price(alchemy: ShopAlchemyConfig, sku: str) -> int | None:
    async with alchemy.get_session() as session:
        return await session.scalar(select(Variant.price).where(Variant.sku == sku))


async def test_the_export_is_the_import_format_and_an_edited_file_is_previewed_then_imported(
    client: Any, alchemy: ShopAlchemyConfig, admin_headers: Headers
) -> None:
    exported = await client.get("/api/catalog/export", headers=admin_headers)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["x-products-exported"] == "6"
    rows = rows_of(exported.content)
    assert tuple(rows[0]) == export_columns()

    unchanged = await client.post("/api/catalog/import", **upload(exported.content), headers=admin_headers)
    assert unchanged.status_code == 200, unchanged.text
    body = unchanged.json()
    assert body["dry_run"] is True and body["products_unchanged"] == 6
    assert body["created"] == body["changed"] == body["rejected"] == []

    laptop = next(row for row in rows if row[1] == "alpha-laptop")
    laptop[8] = "1199.00"
    lamp = ["Omega Lamp", "omega-lamp", "Bright.", "", "category:Home & Garden|category:Lighting", "", "", "OL-1"]
    lamp += ["25.00", "standard", "7", "", "", "", "300", "2"]
    broken = ["Broken Price", "broken-price", "Oops.", "", "", "", "", "BP-1", "twelve", "standard", "1", "", "", ""]
    # A tax category the shop does not have would sell the variant untaxed: refused, as on the product form.
    untaxed = ["Untaxed", "untaxed", "Hm.", "", "", "", "", "UT-1", "5.00", "bogus-tax", "1", "", "", "", "", ""]
    edited = csv_bytes([rows[0], laptop, lamp, [*broken, "", ""], untaxed])

    preview = await client.post("/api/catalog/import", **upload(edited), headers=admin_headers)
    assert preview.status_code == 200, preview.text
    plan = preview.json()
    assert plan["dry_run"] is True
    assert (plan["products_created"], plan["products_updated"], plan["variants_updated"]) == (1, 1, 1)
    assert plan["created"][0]["slug"] == "omega-lamp" and plan["created"][0]["line"] == 3
    assert plan["changed"][0]["changes"] == ["AL-13: price 1299.00 → 1199.00"]
    assert [(r["line"], r["reason"][:20]) for r in plan["rejected"]] == [
        (4, "price 'twelve' is no"),
        (5, "taxCategory 'bogus-t"),
    ]
    assert "is not one of the shop's tax categories (reduced, standard, zero)" in plan["rejected"][1]["reason"]
    assert plan["categories"] == ["Home & Garden > Lighting"]
    assert await _price(alchemy, "AL-13") == 129900  # a dry run writes nothing

    done = await client.post(
        "/api/catalog/import", params={"dry_run": "false"}, **upload(edited), headers=admin_headers
    )
    assert done.status_code == 200, done.text
    report = done.json()
    assert report["dry_run"] is False
    assert (report["products_created"], report["products_updated"], report["variants_created"]) == (1, 1, 1)
    assert report["changed"][0]["changes"] == ["AL-13: price 1299.00 → 1199.00"]
    assert [r["line"] for r in report["rejected"]] == [4, 5]
    assert await _price(alchemy, "AL-13") == 119900
    async with alchemy.get_session() as session:
        lamp_variant = await session.scalar(select(Variant).where(Variant.sku == "OL-1"))
        assert lamp_variant is not None
        assert (lamp_variant.stock, lamp_variant.weight_grams, lamp_variant.low_stock_threshold) == (7, 300, 2)
        laptop_id = await session.scalar(select(Product.id).where(Product.slug == "alpha-laptop"))
        assert laptop_id is not None
    events = await audit_events(alchemy, "product", laptop_id)
    assert [e.action for e in events] == ["import"] and events[0].actor_email == ADMIN_EMAIL


async def test_unreadable_files_are_refused_and_only_staff_may_use_it(
    client: Any, alchemy: ShopAlchemyConfig, admin_headers: Headers
) -> None:
    for content, reason in (
        (b"\xff\xfe not utf-8", "not UTF-8 text"),
        (b"just,some,columns\n1,2,3\n", "This is not a catalog CSV"),
        (b"", "This is not a catalog CSV"),
    ):
        refused = await client.post("/api/catalog/import", **upload(content), headers=admin_headers)
        problem = assert_problem(refused, 422)
        assert reason in problem["detail"] and "file" in str(problem)
    too_large = upload(b"x" * (16 * 1024 * 1024 + 1))
    assert_problem(await client.post("/api/catalog/import", **too_large, headers=admin_headers), 413)
    assert_problem(await client.post("/api/catalog/import", headers=admin_headers), 400)  # no file

    assert_problem(await client.get("/api/catalog/export"), 401)
    customer = await bearer(client, "ada@example.com")
    assert_problem(await client.get("/api/catalog/export", headers=customer), 403)
    exported = (await client.get("/api/catalog/export", headers=admin_headers)).content
    assert_problem(await client.post("/api/catalog/import", **upload(exported), headers=customer), 403)


async def test_a_shops_member_exports_and_imports_their_shops_products_only(
    client: Any, alchemy: ShopAlchemyConfig, admin_headers: Headers
) -> None:
    await shop_selling(alchemy, "ann@example.com", "beta-camera")
    ann = await bearer_of(client, "ann@example.com")
    mine = rows_of((await client.get("/api/catalog/export", headers=ann)).content)
    assert [row[1] for row in mine[1:] if row[1]] == ["beta-camera"]

    everything = rows_of((await client.get("/api/catalog/export", headers=admin_headers)).content)
    for row in everything[1:]:
        if row[7] in ("BC-1", "DC-1"):
            row[8] = "1.00"
    done = await client.post(
        "/api/catalog/import", params={"dry_run": "false"}, **upload(csv_bytes(everything)), headers=ann
    )
    assert done.status_code == 200, done.text
    assert done.json()["products_updated"] == 1 and done.json()["rejected"]  # the other shops' rows
    assert (await _price(alchemy, "BC-1"), await _price(alchemy, "DC-1")) == (100, 8900)
