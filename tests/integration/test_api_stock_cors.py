"""The stock-health endpoint (the dashboard's numbers, by band and category) and CORS on ``/api`` only."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select, update

from tests.api_user import assert_problem, bearer, token_pair
from tests.conftest import app_client
from tests.factories import make_user
from webshop.db.engine import write_session
from webshop.db.models import Category, UserRole, Variant


@pytest.fixture
async def admin(client, alchemy, skus):
    """Bearer headers of an admin (the catalog is seeded)."""
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    return {"Authorization": f"Bearer {(await token_pair(client, 'boss@example.com'))['access_token']}"}


async def test_stock_health_gives_the_dashboards_numbers_by_band_and_category(client, alchemy, admin):
    # Each band at its edges (threshold t): out 0; critical 2s <= t; low s <= t; medium s <= 2t; healthy above.
    async with write_session(alchemy) as session:
        for sku, level, threshold in (("BC-1", 2, 5), ("DC-1", 6, 5), ("ZS-42", 10, 5), ("AL-13", 5, 5)):
            await session.execute(
                update(Variant).where(Variant.sku == sku).values(stock=level, low_stock_threshold=threshold)
            )
        await session.commit()
        photo = await session.scalar(select(Category.id).where(Category.slug == "photo"))
    report = (await client.get("/api/stock/health", headers=admin)).json()
    assert set(report["counts"]) == {"out", "critical", "low", "medium", "healthy"}
    assert [band["band"] for band in report["bands"]] == ["out", "critical", "low", "medium", "healthy"]
    variants = {b["band"]: {v["sku"]: v for v in b["variants"]} for b in report["bands"]}
    assert variants["critical"]["BC-1"]["stock"] == 2 and variants["critical"]["BC-1"]["low_stock_threshold"] == 5
    assert "AL-13" in variants["low"] and "DC-1" in variants["medium"] and "ZS-42" in variants["medium"]
    assert all(b["count"] == report["counts"][b["band"]] for b in report["bands"])

    # The same figures as the admin dashboard.
    await make_user(alchemy, "page@example.com", UserRole.ADMIN, name="Page")
    from tests.shopper import sign_in

    assert (await sign_in(client, "page@example.com")).status_code == 303
    page = (await client.get("/admin/stock")).text
    shown = dict(re.findall(r'<li data-level="(\w+)">.*?data-count="(\d+)"', page, flags=re.S))
    assert {k: int(v) for k, v in shown.items()} == report["counts"]

    one = (await client.get("/api/stock/health", params={"band": "medium", "limit": 1}, headers=admin)).json()
    assert [b["band"] for b in one["bands"]] == ["medium"] and len(one["bands"][0]["variants"]) == 1
    assert one["bands"][0]["count"] == report["counts"]["medium"]

    in_photo = (await client.get("/api/stock/health", params={"category_id": photo}, headers=admin)).json()
    listed = {v["sku"] for b in in_photo["bands"] for v in b["variants"]}
    assert "BC-1" in listed and "DC-1" not in listed
    assert sum(in_photo["counts"].values()) < sum(report["counts"].values())

    assert_problem(await client.get("/api/stock/health", params={"category_id": 999999}, headers=admin), 404)
    assert_problem(await client.get("/api/stock/health", params={"band": "plenty"}, headers=admin), 400)
    assert_problem(await client.get("/api/stock/health"), 401)
    assert_problem(await client.get("/api/stock/health", headers=await bearer(client, "ada@example.com")), 403)


async def test_stock_and_thresholds_at_the_columns_largest_values_are_banded_not_a_500(client, alchemy, admin):
    """2 × stock past 2,147,483,647 (the 32-bit columns' largest value) was "integer out of range" on
    PostgreSQL, a 500 on the stock pages and ``GET /api/stock/health`` (found by Schemathesis)."""
    largest = 2**31 - 1
    async with write_session(alchemy) as session:
        await session.execute(update(Variant).where(Variant.sku == "DC-1").values(stock=largest, low_stock_threshold=5))
        await session.execute(
            update(Variant).where(Variant.sku == "BC-1").values(stock=largest, low_stock_threshold=largest)
        )
        await session.execute(
            update(Variant).where(Variant.sku == "AL-13").values(stock=1, low_stock_threshold=largest)
        )
        await session.commit()
    response = await client.get("/api/stock/health", headers=admin)
    assert response.status_code == 200, response.text
    bands = {v["sku"]: band["band"] for band in response.json()["bands"] for v in band["variants"]}
    assert (bands["DC-1"], bands["BC-1"], bands["AL-13"]) == ("healthy", "low", "critical")


async def test_cors_answers_listed_origins_on_the_api_only(settings, alchemy, skus):
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"}
    preflight["Access-Control-Request-Headers"] = "authorization, content-type, idempotency-key"
    async with app_client(settings, alchemy, cors_origins=("https://app.example.com",)) as client:
        allowed = await client.options("/api/checkout", headers=preflight)
        assert allowed.status_code in {200, 204}
        assert allowed.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "POST" in allowed.headers["access-control-allow-methods"]
        assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
        assert "access-control-allow-credentials" not in allowed.headers

        other = await client.options("/api/checkout", headers={**preflight, "Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers

        listing = await client.get("/api/products", headers={"Origin": "https://app.example.com"})
        assert listing.status_code == 200
        assert listing.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "origin" in listing.headers["vary"].lower()
        foreign = await client.get("/api/products", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in foreign.headers

        page = await client.get("/", headers={"Origin": "https://app.example.com"})
        assert page.status_code == 200 and "access-control-allow-origin" not in page.headers
        page_preflight = await client.options("/cart/add", headers=preflight)
        assert "access-control-allow-origin" not in page_preflight.headers

    # The API's refusals carry the headers too (a browser app can read the 429 and its Retry-After),
    # and preflights do not spend the client's budget.
    origin = {"Origin": "https://app.example.com"}
    async with app_client(
        settings, alchemy, cors_origins=("https://app.example.com",), rate_limit_general="3/minute"
    ) as client:
        for _ in range(5):
            assert (await client.options("/api/products", headers=preflight)).status_code in {200, 204}
        answers = [await client.get("/api/products", headers=origin) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 429]
        assert answers[-1].headers["access-control-allow-origin"] == "https://app.example.com"
        exposed = answers[-1].headers["access-control-expose-headers"].lower()
        assert "retry-after" in exposed and "www-authenticate" in exposed and "ratelimit-reset" in exposed

    # Empty by default: no CORS headers at all.
    async with app_client(settings, alchemy) as client:
        none = await client.options("/api/checkout", headers=preflight)
        assert "access-control-allow-origin" not in none.headers
