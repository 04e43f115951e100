"""The catalog's rendered grid is cached per query and catalog version, and stays right for every visitor.

The grid, filters and category tree of a catalog page (and the htmx results fragment) are rendered
once per query and catalog version; only the CSRF token in the cards' add-to-cart forms differs
between visitors, and each visitor gets their own. A catalog write is seen by the very next request.
"""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from tests.shopper import CSRF_RE, PASSWORD
from tests.shopper import post as post_form
from webshop.catalog.products import ProductService
from webshop.catalog.schemas import ProductPatch
from webshop.db.engine import write_session
from webshop.db.models import Product

ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}
FRAGMENT = {"HX-Request": "true", "HX-Target": "catalog-results"}


def names(html: str) -> list[str]:
    return re.findall(r'<span class="card-name">([^<]+)</span>', html)


def card_tokens(html: str) -> set[str]:
    """The CSRF tokens in the cards' add-to-cart forms."""
    forms = re.findall(r'<form action="/cart/items".*?</form>', html, re.DOTALL)
    assert forms, "no add-to-cart form on the page"
    return {CSRF_RE.search(form).group(1) for form in forms}


def cart_count(response) -> int:
    """The number on the page's cart badge."""
    return int(re.search(r'<span class="badge-count">(\d+)</span>', response.text).group(1))


@pytest.mark.parametrize("headers", [{}, FRAGMENT], ids=["page", "htmx fragment"])
async def test_each_visitor_gets_their_own_token_in_the_cached_cards(app, client, skus, headers):
    first = await client.get("/", headers=headers)
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as other:
        second = await other.get("/", headers=headers)
        assert names(first.text) == names(second.text)  # the same grid...
        (mine,), (theirs,) = card_tokens(first.text), card_tokens(second.text)
        assert mine != theirs  # ...with each visitor's own token
        # The other visitor's card form works: the product is in their cart, not in the first visitor's.
        card = re.search(r'name="variant_id" value="(\d+)"', second.text).group(1)
        added = await other.post(
            "/cart/items", data={"_csrf_token": theirs, "variant_id": card, "quantity": "1"}, follow_redirects=False
        )
        assert added.status_code == 303, added.text
        assert cart_count(await other.get("/")) == 1
    assert cart_count(await client.get("/")) == 0


async def test_each_visitor_gets_their_own_token_on_the_cached_product_page(app, client, skus):
    """The product page's content is rendered once per version, variant and stock; the token is each visitor's."""
    first = await client.get("/products/beta-camera")
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as other:
        second = await other.get("/products/beta-camera")
        (mine,), (theirs,) = card_tokens(first.text), card_tokens(second.text)
        assert mine != theirs
        assert first.text.replace(mine, "") == second.text.replace(theirs, "")  # otherwise the same page
        added = await other.post(
            "/cart/items",
            data={"_csrf_token": theirs, "variant_id": skus["BC-1"], "quantity": "1"},
            follow_redirects=False,
        )
        assert added.status_code == 303, added.text
        assert cart_count(await other.get("/products/beta-camera")) == 1
    assert cart_count(await client.get("/products/beta-camera")) == 0


async def test_the_kept_product_page_is_sent_as_the_rendered_one(app, client, skus):
    """The kept page (sent without the template engine) has the rendered page's status, headers and
    bytes, but for the visitor's own token and cookies."""
    rendered = await client.get("/products/beta-camera")
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as other:
        kept = await other.get("/products/beta-camera")
    (mine,), (theirs,) = card_tokens(rendered.text), card_tokens(kept.text)
    assert kept.status_code == rendered.status_code == 200
    assert kept.content.replace(theirs.encode(), b"") == rendered.content.replace(mine.encode(), b"")
    varying = {"set-cookie", "x-request-id", "server-timing", "date", "content-length"}
    assert {k: v for k, v in kept.headers.items() if k not in varying} == {
        k: v for k, v in rendered.headers.items() if k not in varying
    }
    assert kept.headers["content-type"] == "text/html; charset=utf-8"


async def test_the_kept_product_page_shows_each_visitors_messages_badge_and_name(client, skus):
    """An anonymous product page is kept whole; a waiting message, the cart count and signing in
    each still show on it at once."""
    first = (await client.get("/products/beta-camera")).text
    assert "Sign in" in first and cart_count_of(first) == 0
    token = card_tokens(first).pop()
    added = await client.post(
        "/cart/items", data={"_csrf_token": token, "variant_id": skus["BC-1"], "quantity": "1"}, follow_redirects=False
    )
    assert added.status_code == 303
    page = (await client.get("/products/beta-camera")).text  # the message waits for the next page
    assert "Added Beta Camera to your cart." in page and cart_count_of(page) == 1
    again = (await client.get("/products/beta-camera")).text
    assert "Added Beta Camera" not in again and cart_count_of(again) == 1
    await client.post("/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"})
    await post_form(client, "/account/sign-in", {"email": "ada@example.com", "password": PASSWORD})
    signed_in = (await client.get("/products/beta-camera")).text
    assert "Ada" in signed_in and "Sign out" in signed_in and "Sign in" not in signed_in


def cart_count_of(html: str) -> int:
    return int(re.search(r'<span class="badge-count">(\d+)</span>', html).group(1))


async def test_a_catalog_write_shows_on_the_next_request(client, alchemy, skus):
    assert "Alpha Laptop" in names((await client.get("/")).text)
    assert "Alpha Laptop" in names((await client.get("/", headers=FRAGMENT)).text)
    async with write_session(alchemy) as session:
        product = await session.scalar(select(Product.id).where(Product.name == "Alpha Laptop"))
        await ProductService(session=session).update_product(product, ProductPatch(name="Alpha Notebook"), actor=None)
    page, fragment = (await client.get("/")).text, (await client.get("/", headers=FRAGMENT)).text
    assert "Alpha Notebook" in names(page) and "Alpha Laptop" not in names(page)
    assert "Alpha Notebook" in names(fragment)
    api = (await client.get("/api/products", params={"limit": 100})).json()["items"]
    assert "Alpha Notebook" in [item["name"] for item in api]


async def test_selling_out_takes_the_add_button_off_the_cached_card(client, alchemy, skus):
    page = (await client.get("/")).text
    assert re.search(f'name="variant_id" value="{skus["BC-1"]}"', page)  # Beta Camera (one variant) can be added
    async with write_session(alchemy) as session:
        await ProductService(session=session).set_variant_stock(skus["BC-1"], 0, expected=None, actor=None)
    page = (await client.get("/")).text
    assert not re.search(f'name="variant_id" value="{skus["BC-1"]}"', page)
    assert "Beta Camera" in names(page)


async def test_the_cached_product_shows_the_stock_of_this_moment(client, alchemy, skus):
    """A sale that leaves a product in stock bumps no catalog version; its page and API still show it."""
    async with alchemy.get_session() as session:
        product = await session.scalar(select(Product.id).where(Product.slug == "beta-camera"))

    async def api_stock() -> int:
        body = (await client.get(f"/api/products/{product}")).json()
        return next(v["stock"] for v in body["variants"] if v["sku"] == "BC-1")

    assert await api_stock() == 3
    assert (
        "(3 available)" in (await client.get("/products/beta-camera")).text
        or "Only 3 left" in (await client.get("/products/beta-camera")).text
    )
    # A shopper buys one through the API: the summary (in stock) stays, so the version does too.
    await client.post("/api/auth/register", json={"email": "ada@example.com", "password": PASSWORD, "name": "Ada"})
    token = (await client.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "Idempotency-Key": "one-camera"}
    await client.post("/api/cart/items", json={"sku": "BC-1", "quantity": 1}, headers=headers)
    body = {"shipping_address": ADDRESS, "shipping_method": "standard", "payment": {"token": "tok_visa"}}
    assert (await client.post("/api/checkout", json=body, headers=headers)).status_code == 201
    assert await api_stock() == 2
    page = (await client.get("/products/beta-camera")).text
    assert "(2 available)" in page or "Only 2 left" in page
    async with write_session(alchemy) as session:
        await ProductService(session=session).set_variant_stock(skus["BC-1"], 0, expected=2, actor=None)
    assert await api_stock() == 0
    assert "Out of stock" in (await client.get("/products/beta-camera")).text


async def test_a_product_shown_before_shows_each_change_at_once(client, alchemy, skus):
    """A product page seen before is read with the version and stock in one statement; a rename,
    a sale and a soft delete each show on the very next view, on the page and in the API."""
    async with alchemy.get_session() as session:
        product = await session.scalar(select(Product.id).where(Product.slug == "beta-camera"))
    assert "<h1>Beta Camera</h1>" in (await client.get("/products/beta-camera")).text
    assert (await client.get(f"/api/products/{product}")).json()["name"] == "Beta Camera"
    async with write_session(alchemy) as session:
        await ProductService(session=session).update_product(product, ProductPatch(name="Beta Camera II"), actor=None)
    assert "<h1>Beta Camera II</h1>" in (await client.get("/products/beta-camera")).text
    assert (await client.get(f"/api/products/{product}")).json()["name"] == "Beta Camera II"
    async with write_session(alchemy) as session:
        await ProductService(session=session).set_variant_stock(skus["BC-1"], 1, expected=3, actor=None)
    assert "Only 1 left" in (await client.get("/products/beta-camera")).text
    async with write_session(alchemy) as session:
        await ProductService(session=session).soft_delete(product, actor=None)
    assert (await client.get("/products/beta-camera")).status_code == 404
    assert (await client.get(f"/api/products/{product}")).status_code == 404


async def test_look_ups_outside_the_session_show_each_sale_and_fall_back(settings, skus, alchemy):
    """With a pooled engine (as ``webshop serve`` runs) the version and stock are read outside the
    request's session: on SQLite through the read-only file connection, on PostgreSQL through the
    reader's asyncpg pool. The product page shows each sale at once; on PostgreSQL, when the read
    engine cannot connect, the request's own session answers instead and the stock is still right.
    """
    from webshop.app import create_app
    from webshop.catalog.version import attach_reader
    from webshop.db.engine import create_alchemy_config

    def stock_line(page: str) -> str:
        return re.search(r'id="variant-stock">\s*([^<]+?)\s*<', page).group(1)

    # A real pool, as in a worker. The test client runs the app (and its shutdown, which disposes of
    # both engines) on an event loop of its own.
    pooled = create_alchemy_config(settings)
    app = create_app(settings, alchemy=pooled)
    reader = attach_reader(pooled.get_engine(), settings.database.connect_timeout)
    assert (reader is not None) == settings.database.url.startswith("postgresql")
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as shopper:
        assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 3 left"
        if reader is not None:
            assert reader.pool is not None and reader.pool.get_size() >= 1  # the look-ups went through the reader
        async with write_session(alchemy) as session:
            await ProductService(session=session).set_variant_stock(skus["BC-1"], 2, expected=3, actor=None)
        assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 2 left"
        if reader is None:
            return
        # The reader cannot connect (a port nobody listens on): the session answers instead.
        working, reader.pool = reader.pool, None
        reader.connect_args = {**reader.connect_args, "port": 1}
        try:
            async with write_session(alchemy) as session:
                await ProductService(session=session).set_variant_stock(skus["BC-1"], 1, expected=2, actor=None)
            assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 1 left"
            assert (await shopper.get("/api/products", params={"limit": 5})).status_code == 200
        finally:
            if reader.pool is not None:
                await reader.pool.close()
            reader.pool = working


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # LISTEN/NOTIFY: SQLite reads its local file
async def test_postgresql_workers_reuse_look_ups_until_a_change_is_announced(settings, skus, alchemy):
    """PostgreSQL: while a worker listens on the catalog's change channel, the version and stock
    look-ups are answered from its memory; a write committed by anyone else (another worker, host or
    a plain SQL client) is announced by the migration's triggers and shown by the next request; a
    lost listening connection means asking the server every time until it listens again."""
    import asyncio

    import asyncpg

    from webshop.app import create_app
    from webshop.catalog.version import asyncpg_connect_args, attach_reader
    from webshop.db.engine import create_alchemy_config

    def stock_line(page: str) -> str:
        return re.search(r'id="variant-stock">\s*([^<]+?)\s*<', page).group(1)

    async def eventually(check, seconds: float = 5.0) -> None:
        for _ in range(int(seconds / 0.02)):
            if check():
                return
            await asyncio.sleep(0.02)
        raise AssertionError("not within the time")

    pooled = create_alchemy_config(settings)
    app = create_app(settings, alchemy=pooled)
    reader = attach_reader(pooled.get_engine(), settings.database.connect_timeout)
    elsewhere = await asyncpg.connect(**asyncpg_connect_args(pooled.get_engine()))  # "another host"
    set_stock = "UPDATE variants SET stock = $1 WHERE sku = 'BC-1'"
    try:
        async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as shopper:
            assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 3 left"
            feed = reader.feed
            await eventually(lambda: feed.listening)
            assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 3 left"
            assert feed.kept, "the look-up was not kept"

            # A change the triggers do not announce (disabled for it) is not seen: the answer is the kept one.
            async with elsewhere.transaction():
                await elsewhere.execute("ALTER TABLE variants DISABLE TRIGGER variants_notify")
                await elsewhere.execute(set_stock, 9)
                await elsewhere.execute("ALTER TABLE variants ENABLE TRIGGER variants_notify")
            assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 3 left"

            # An announced change is seen: a sale elsewhere, then a catalog version bump.
            before = feed.generation
            await elsewhere.execute(set_stock, 2)
            await eventually(lambda: feed.generation > before)
            assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 2 left"
            before = feed.generation
            await elsewhere.execute("UPDATE catalog_state SET version = version + 1")
            await eventually(lambda: feed.generation > before)

            # The listening connection is lost: nothing is kept until it listens again, and writes still show.
            lost = feed.listener_pid
            await elsewhere.execute("SELECT pg_terminate_backend($1)", lost)
            await eventually(lambda: feed.listener_pid != lost)
            await elsewhere.execute(set_stock, 1)
            assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 1 left"
            await eventually(lambda: feed.listening)
            assert stock_line((await shopper.get("/products/beta-camera")).text) == "Only 1 left"
    finally:
        await elsewhere.close()
