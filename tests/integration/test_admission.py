"""Admission control (webshop/web/admission.py): a worker runs a few requests at once, writes first.

The shop here runs one request at a time (``max_active_requests=1``). The request in progress is a
real add-to-cart held up by the database: the test holds the cart tables' write lock from a
connection of its own (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``LOCK TABLE ... IN EXCLUSIVE MODE``),
as a long import from the command line would.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Callable

import asyncpg
import httpx
import pytest
from litestar.testing import AsyncTestClient

from tests.conftest import make_settings
from tests.factories import seed_catalog
from tests.shopper import csrf
from webshop.app import create_app
from webshop.db.engine import create_alchemy_config
from webshop.web.admission import AdmissionMiddleware


@contextlib.asynccontextmanager
async def cart_tables_locked(database_url: str) -> AsyncIterator[None]:
    """Hold the write lock on the carts from outside the shop until the block ends."""
    if database_url.startswith("sqlite"):
        conn = sqlite3.connect(database_url.split(":///", 1)[1], isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE carts, cart_lines IN EXCLUSIVE MODE")
            yield
    finally:
        await conn.close()


PATIENT = pytest.mark.parametrize("shop", [30.0], indirect=True, ids=["30 s queue"])
"""For the tests of the queue's order: a timeout no setup on a busy machine comes near, so that a request
is never let go (503) before its turn comes (CI saw the page view's 1 s run out while the held add to
cart still finished, and the page view "finish" first)."""


@pytest.fixture
async def shop(db_url, tmp_path, request):
    """The shop with one request at a time, a 1 s queue timeout (or the test's ``PATIENT`` one), a
    catalog; yields (app, skus)."""
    timeout = getattr(request, "param", 1.0)
    settings = make_settings(db_url, tmp_path / "media", max_active_requests=1, queue_timeout=timeout)
    alchemy = create_alchemy_config(settings, null_pool=True)
    skus = await seed_catalog(alchemy)
    app = create_app(settings, alchemy=alchemy)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000"):  # runs the app's lifespan
        yield app, skus
    await alchemy.get_engine().dispose()


def shopper(app) -> httpx.AsyncClient:
    """A browser of its own (its own cookies) on the in-process app."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8000")


async def add(client: httpx.AsyncClient, token: str, variant_id: int) -> httpx.Response:
    return await client.post("/cart/items", data={"variant_id": str(variant_id), "quantity": "1", "_csrf_token": token})


def admission(app) -> AdmissionMiddleware:
    """The app's admission middleware (one instance per app: its counters are this app's)."""
    return next(m for m in app.middleware if isinstance(m, AdmissionMiddleware))


def waiting(app) -> int:
    """How many requests wait for a turn right now."""
    return sum(not turn.done() for _, _, turn in admission(app)._queue)


async def until(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Let the requests in flight run until ``condition()`` holds: a state to assert from, not a guessed delay."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.01)


def in_cart(page: str) -> int:
    return int(re.search(r'id="cart-badge"[^>]*>Cart <span class="badge-count">(\d+)<', page, re.S).group(1))


async def queued_behind_a_held_add(shop, db_url, name: str, request) -> tuple[list[str], list[httpx.Response]]:
    """With the only turn held by an add to cart (stuck on the locked cart tables), a page view queues,
    then ``request`` (an awaitable, named ``name``); the tables are freed. Returns the order in which
    the three finished and their answers (held, page view, ``name``)."""
    app, skus = shop
    async with shopper(app) as first, shopper(app) as reader:
        first_token = await csrf(first, "/cart")
        finished: list[str] = []

        async def run(label: str, awaited) -> httpx.Response:
            response = await awaited
            finished.append(label)
            return response

        async with cart_tables_locked(db_url):
            held = asyncio.create_task(run("held", add(first, first_token, skus["BC-1"])))
            await until(lambda: admission(app).active == 1, "the first add to cart has the only turn")
            page = asyncio.create_task(run("page view", reader.get("/products/delta-chair")))
            await until(lambda: waiting(app) == 1, "the page view waits for a turn")
            later = asyncio.create_task(run(name, request))
            await until(lambda: waiting(app) == 2, f"the {name} waits for a turn too")
            assert finished == []  # both wait for the turn, not for the database
        responses = await asyncio.gather(held, page, later)
        assert in_cart((await first.get("/cart")).text) == 1
        return finished, list(responses)


@PATIENT
async def test_requests_over_the_limit_wait_and_an_add_to_cart_goes_before_a_page_view(shop, db_url):
    app, skus = shop
    async with shopper(app) as buyer:
        token = await csrf(buyer, "/cart")
        purchase = add(buyer, token, skus["DC-1"])
        finished, responses = await queued_behind_a_held_add(shop, db_url, "add to cart", purchase)
        assert finished == ["held", "add to cart", "page view"]
        assert [r.status_code for r in responses] == [303, 200, 303]
        assert "<h1>Delta Chair</h1>" in responses[1].text
        assert in_cart((await buyer.get("/cart")).text) == 1


@PATIENT
async def test_the_return_from_the_payment_page_goes_before_a_page_view(shop, db_url):
    """The payment provider sends the shopper back with a GET that settles the order: a purchase step."""
    app, _ = shop
    async with shopper(app) as payer:
        back = payer.get("/checkout/return/WS-UNKNOWN")
        finished, _ = await queued_behind_a_held_add(shop, db_url, "payment return", back)
        assert finished == ["held", "payment return", "page view"]


async def test_a_request_that_waits_past_the_queue_timeout_gets_503_with_retry_after(shop, db_url):
    app, skus = shop
    async with shopper(app) as first, shopper(app) as browser:
        token = await csrf(first, "/cart")
        async with cart_tables_locked(db_url):
            held = asyncio.create_task(add(first, token, skus["BC-1"]))
            await until(lambda: admission(app).active == 1, "the add to cart has the only turn")
            page = await browser.get("/")
            api = await browser.get("/api/products")
        assert (await held).status_code == 303  # the held request still completes

    assert page.status_code == 503
    assert page.headers["retry-after"]
    assert "The shop is very busy right now. Please try again in a moment." in page.text
    assert "<html" in page.text  # the shop's error page
    assert api.status_code == 503
    assert api.headers["content-type"].startswith("application/problem+json")
    assert api.headers["retry-after"]
    assert api.json()["status"] == 503
    async with shopper(app) as later:  # nothing is stuck afterwards
        assert (await later.get("/")).status_code == 200


async def test_static_files_and_health_probes_never_queue(shop, db_url):
    app, skus = shop
    async with shopper(app) as first, shopper(app) as probe:
        token = await csrf(first, "/cart")
        css = re.search(r'<link rel="stylesheet" href="([^"]+)"', (await probe.get("/")).text).group(1)
        async with cart_tables_locked(db_url):
            held = asyncio.create_task(add(first, token, skus["BC-1"]))
            await until(lambda: admission(app).active == 1, "the add to cart has the only turn")
            # Queued behind the held turn, a probe would get 503 after the 1 s queue timeout; answered
            # 200 while the add to cart still holds that turn, it never queued (no wall-clock bound:
            # a loaded CI machine can take more than half a second to stat a file).
            assert (await asyncio.wait_for(probe.get("/health"), 10)).status_code == 200
            assert (await asyncio.wait_for(probe.get(css), 10)).status_code == 200
            assert not held.done() and admission(app).active == 1, "the add to cart held its turn throughout"
        assert (await held).status_code == 303
