"""No oversell, provably: 50 shoppers check out one variant with stock 10 at the same moment, with an
automatic promotion applied (10 % off: every order keeps its discount and counts one use).

The app is served by the real ``webshop serve`` on 127.0.0.1: on SQLite by one process, on PostgreSQL by
two worker processes against the same database, so the guarantee holds across processes. Every shopper
has registered, filled the cart and reached the review page before the 50 payments are released together.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.factories import P, seed_catalog
from tests.live import live_server, shop_env
from tests.shopper import PASSWORD, place, ready_to_pay
from webshop.db.engine import write_session
from webshop.db.models import Order, Promotion, PromotionUsage, Variant
from webshop.stock.service import find_ledger_mismatches

SHOPPERS = 50
STOCK = 10
HOT = (P("Hot Item", "photo", "Nikon", ("black",), (("HOT-1", (), 2500, STOCK),)),)


async def run_race(clients: list, variant_id: int) -> list[httpx.Response]:
    """Prepare every shopper's checkout, then submit all payments at the same moment."""
    forms = await asyncio.gather(
        *(ready_to_pay(client, f"shopper{i}@example.com", variant_id) for i, client in enumerate(clients))
    )
    start = asyncio.Event()

    async def pay(client, form):
        await start.wait()
        return await place(client, form)

    tasks = [asyncio.create_task(pay(c, f)) for c, f in zip(clients, forms, strict=True)]
    await asyncio.sleep(0.05)
    start.set()
    return await asyncio.gather(*tasks)


async def seed_promotion(alchemy) -> None:
    """An automatic promotion: 10 % off every order, no limit."""
    async with write_session(alchemy) as session:
        session.add(Promotion(name="Hot deal", kind="percentage", value=10))
        await session.commit()


async def assert_promotion_counted(alchemy) -> None:
    """Every order got the 10 % (2.50 of 25.00) and counted exactly one use."""
    async with alchemy.get_session() as session:
        assert set(await session.scalars(select(Order.discount_total))) == {250}
        assert await session.scalar(select(Promotion.times_used)) == STOCK
        assert await session.scalar(select(func.count()).select_from(PromotionUsage)) == STOCK


async def assert_exactly_ten_sold(alchemy, responses: list[httpx.Response]) -> None:
    statuses = [r.status_code for r in responses]
    assert all(s < 500 for s in statuses), statuses
    assert statuses.count(303) == STOCK
    assert statuses.count(409) == SHOPPERS - STOCK
    for response in responses:
        if response.status_code == 409:
            assert "Hot Item (HOT-1) is sold out." in response.text
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == STOCK
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "HOT-1")) == 0
        assert await find_ledger_mismatches(session) == []


async def race_against_live_server(db_url: str, alchemy, tmp_path: Path, workers: int) -> None:
    """Seed the hot variant, serve the app with ``workers`` processes, run the race, check the outcome."""
    variant_id = (await seed_catalog(alchemy, HOT))["HOT-1"]
    await seed_promotion(alchemy)
    env = shop_env(db_url, tmp_path)
    with live_server(env, tmp_path, workers=workers) as base_url:
        limits = httpx.Limits(max_connections=4)
        clients = [httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) for _ in range(SHOPPERS)]
        try:
            responses = await run_race(clients, variant_id)
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))
    await assert_exactly_ten_sold(alchemy, responses)
    await assert_promotion_counted(alchemy)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_fifty_shoppers_stock_ten_sqlite_one_process(db_url, alchemy, tmp_path: Path):
    """SQLite: the app in one process (one ``webshop serve`` worker), 50 simultaneous payments."""
    await race_against_live_server(db_url, alchemy, tmp_path, workers=1)


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_fifty_shoppers_stock_ten_postgres_two_workers(db_url, alchemy, tmp_path: Path):
    """PostgreSQL: two ``webshop serve`` worker processes against one database, 50 simultaneous payments."""
    await race_against_live_server(db_url, alchemy, tmp_path, workers=2)


async def api_race(base_url: str) -> list[httpx.Response]:
    """50 API clients, each with a token and the hot variant in its cart, check out at the same moment."""
    limits = httpx.Limits(max_connections=4)
    clients = [httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) for _ in range(SHOPPERS)]

    async def prepare(index: int, client: httpx.AsyncClient) -> dict[str, str]:
        email = f"api{index}@example.com"
        registered = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "A"})
        assert registered.status_code == 201, registered.text
        token = await client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}", "Idempotency-Key": f"race-{index}"}
        added = await client.post("/api/cart/items", json={"sku": "HOT-1", "quantity": 1}, headers=headers)
        assert added.status_code == 201, added.text
        return headers

    body = {
        "shipping_address": {"name": "A", "line1": "1 Way", "city": "Town", "postal_code": "1", "country": "US"},
        "shipping_method": "standard",
        "payment": {"token": "tok_visa"},
    }
    try:
        headers = await asyncio.gather(*(prepare(i, c) for i, c in enumerate(clients)))
        start = asyncio.Event()

        async def pay(client: httpx.AsyncClient, header: dict[str, str]) -> httpx.Response:
            await start.wait()
            return await client.post("/api/checkout", json=body, headers=header)

        tasks = [asyncio.create_task(pay(c, h)) for c, h in zip(clients, headers, strict=True)]
        await asyncio.sleep(0.05)
        start.set()
        return await asyncio.gather(*tasks)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


@pytest.mark.parametrize(("db_url", "workers"), [("sqlite", 1), ("postgres", 2)], indirect=["db_url"])
async def test_fifty_api_clients_stock_ten(db_url, alchemy, tmp_path: Path, workers: int):
    """Through the JSON API (SQLite: one process; PostgreSQL: two workers): exactly 10 orders (201),
    the other 40 get 409 with the sold-out shortfall."""
    await seed_catalog(alchemy, HOT)
    await seed_promotion(alchemy)
    with live_server(shop_env(db_url, tmp_path), tmp_path, workers=workers) as base_url:
        responses = await api_race(base_url)
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == STOCK and statuses.count(409) == SHOPPERS - STOCK, statuses
    for response in responses:
        if response.status_code == 409:
            assert response.json()["shortfalls"] == [
                {"sku": "HOT-1", "name": "Hot Item", "requested": 1, "available": 0}
            ]
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == STOCK
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "HOT-1")) == 0
        assert await find_ledger_mismatches(session) == []
    await assert_promotion_counted(alchemy)
