"""Concurrency proof: 20 simultaneous requests per write, against the real server on both engines.

Each test fires 20 requests at once (``httpx.AsyncClient`` and ``asyncio.gather``) at one shared
``webshop serve`` per engine: SQLite with one process, PostgreSQL with two worker processes against
one database, so nothing depends on SQLite's single writer. For every write the tests assert that no
answer is a server error and that the final state is exactly what the successful answers promised
(a line's quantity is what was accepted, one order per checkout form, one account per e-mail address,
one address per address typed, stock moved once).

The last test forces an error after the request's database session failed and checks that the answer
is still the shop's own 500 page, with its security headers and request id.
"""

import asyncio
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import POSTGRES_URL, _pg_database_url, _pg_exec, in_thread, make_settings, require_postgres
from tests.factories import P, make_order, make_user, seed_catalog
from tests.live import live_server, shop_env
from tests.shopper import (
    ADDRESS,
    PASSWORD,
    SUCCESS_CARD,
    csrf,
    path_of,
    pay_on_hosted_page,
    register,
    review,
    sign_in,
)
from webshop.db.engine import ShopAlchemyConfig, create_alchemy_config, write_session
from webshop.db.models import Address, Cart, CartLine, Order, Promotion, PromotionUsage, User, UserRole, Variant
from webshop.stock.service import find_ledger_mismatches

pytestmark = pytest.mark.xdist_group("processes")

N = 20
"""Simultaneous requests per operation."""

CATALOG = (
    P("Page Add", "photo", None, (), (("PAGE-ADD", (), 1000, 100), ("PAGE-CAP", (), 1000, 15))),
    P("Api Add", "photo", None, (), (("API-ADD", (), 1000, 30),)),
    P("Quantity Item", "photo", None, (), (("QTY-1", (), 1000, 10),)),
    P("Remove Item", "photo", None, (), (("RM-1", (), 1000, 50),)),
    P("Buy Item", "photo", None, (), (("BUY-1", (), 1000, 10), ("CANCEL-1", (), 1000, 10))),
    P("Admin Item", "photo", None, (), (("ADM-1", (), 1000, 5),)),
    P("Promo Item", "photo", None, (), (("PROMO-1", (), 1000, 200),)),
)


@dataclass(frozen=True)
class Shop:
    """One engine's live shop: the server's base URL, its database URL and the seeded variant ids."""

    engine: str
    base_url: str
    db_url: str
    media: Path
    skus: dict[str, int]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shop(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    """A migrated database of its own with ``CATALOG``, served by ``webshop serve`` (SQLite: 1 worker;
    PostgreSQL: 2 workers), shared by the tests of this module."""
    workdir = tmp_path_factory.mktemp(f"concurrency-{request.param}")
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        shutil.copyfile(template, workdir / "shop.db")
        db_url, name = f"sqlite+aiosqlite:///{workdir / 'shop.db'}", None
    else:
        require_postgres()
        template_name: str = request.getfixturevalue("postgres_template")
        name = f"webshop_conc_{uuid.uuid4().hex[:12]}"
        in_thread(_pg_exec(POSTGRES_URL, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
        db_url = _pg_database_url(name)
    try:

        async def seed() -> dict[str, int]:
            config = create_alchemy_config(make_settings(db_url, workdir / "media"), null_pool=True)
            try:
                return await seed_catalog(config, CATALOG)
            finally:
                await config.get_engine().dispose()

        skus = in_thread(seed())
        workers = 1 if request.param == "sqlite" else 2
        with live_server(shop_env(db_url, workdir), workdir, workers=workers) as base_url:
            yield Shop(request.param, base_url, db_url, workdir / "media", skus)
    finally:
        if name:
            in_thread(_pg_exec(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def db(shop: Shop) -> AsyncIterator[ShopAlchemyConfig]:
    """The live shop's database, for setting up and checking (NullPool, this test's event loop)."""
    config = create_alchemy_config(make_settings(shop.db_url, shop.media), null_pool=True)
    yield config
    await config.get_engine().dispose()


@pytest.fixture
async def browser(shop: Shop) -> AsyncIterator[httpx.AsyncClient]:
    """A shopper's browser (one cookie jar) talking to the live shop."""
    async with httpx.AsyncClient(base_url=shop.base_url, timeout=60) as client:
        yield client


async def at_once(*requests: Any) -> list[httpx.Response]:
    """Send the request coroutines together and return their answers, in order."""
    return list(await asyncio.gather(*requests))


def no_server_errors(responses: list[httpx.Response]) -> list[int]:
    """The status codes; fails when any of them is a 5xx (with the first such body)."""
    statuses = [r.status_code for r in responses]
    failed = [r for r in responses if r.status_code >= 500]
    assert not failed, f"{statuses}: {failed[0].headers.get('content-type')} {failed[0].text[:300]}"
    return statuses


async def new_shopper(client: httpx.AsyncClient, shop: Shop, label: str) -> int:
    """Register a shopper in ``client`` (signed in afterwards); return the user id."""
    email = f"{label}-{uuid.uuid4().hex[:8]}@example.com"
    await register(client, email)
    return await user_id_of(shop, email)


async def user_id_of(shop: Shop, email: str) -> int:
    """The id of the account with ``email``."""
    config = create_alchemy_config(make_settings(shop.db_url, shop.media), null_pool=True)
    try:
        async with config.get_session() as session:
            user_id = await session.scalar(select(User.id).where(User.email == email))
    finally:
        await config.get_engine().dispose()
    assert user_id is not None
    return user_id


async def line_of(db: ShopAlchemyConfig, user_id: int, variant_id: int) -> CartLine | None:
    """The user's cart line of ``variant_id`` (``None`` when there is none)."""
    async with db.get_session() as session:
        return await session.scalar(
            select(CartLine).join(Cart).where(Cart.user_id == user_id, CartLine.variant_id == variant_id)
        )


async def add_form(client: httpx.AsyncClient, token: str, variant_id: int, quantity: int = 1) -> httpx.Response:
    """Post the add-to-cart form."""
    return await client.post(
        "/cart/items",
        data={"variant_id": str(variant_id), "quantity": str(quantity), "_csrf_token": token},
        follow_redirects=False,
    )


async def test_add_to_cart_pages(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """A new shopper (no cart yet) adds 20 times at once: one cart, one line of 20. Then 20 adds to an
    existing line of 1 with 15 in stock: the line ends at 1 + the accepted adds = 15, the others 409."""
    user_id = await new_shopper(browser, shop, "pages")
    token = await csrf(browser, "/cart")
    statuses = no_server_errors(await at_once(*(add_form(browser, token, shop.skus["PAGE-ADD"]) for _ in range(N))))
    assert statuses == [303] * N
    async with db.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Cart).where(Cart.user_id == user_id)) == 1
    line = await line_of(db, user_id, shop.skus["PAGE-ADD"])
    assert line is not None and line.quantity == N

    assert (await add_form(browser, token, shop.skus["PAGE-CAP"])).status_code == 303
    statuses = no_server_errors(await at_once(*(add_form(browser, token, shop.skus["PAGE-CAP"]) for _ in range(N))))
    assert set(statuses) <= {303, 409}, statuses
    line = await line_of(db, user_id, shop.skus["PAGE-CAP"])
    assert line is not None and line.quantity == 1 + statuses.count(303) == 15


async def test_add_to_cart_api(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """Through the API: 20 adds by a new user make a line of 20; 20 more on 30 in stock: 10 accepted."""
    email = f"api-{uuid.uuid4().hex[:8]}@example.com"
    registered = await browser.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "A"})
    assert registered.status_code == 201, registered.text
    tokens = await browser.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    user_id = await user_id_of(shop, email)

    def add() -> Any:
        return browser.post("/api/cart/items", json={"sku": "API-ADD", "quantity": 1}, headers=headers)

    statuses = no_server_errors(await at_once(*(add() for _ in range(N))))
    assert statuses == [201] * N
    line = await line_of(db, user_id, shop.skus["API-ADD"])
    assert line is not None and line.quantity == N

    responses = await at_once(*(add() for _ in range(N)))
    statuses = no_server_errors(responses)
    assert set(statuses) <= {201, 409}, statuses
    line = await line_of(db, user_id, shop.skus["API-ADD"])
    assert line is not None and line.quantity == N + statuses.count(201) == 30
    assert max(r.json()["lines"][0]["quantity"] for r in responses if r.status_code == 201) == 30


async def test_change_quantity(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """20 quantity changes at once (1 to 20, 10 in stock): those up to 10 succeed, the line holds one of them."""
    user_id = await new_shopper(browser, shop, "qty")
    token = await csrf(browser, "/cart")
    assert (await add_form(browser, token, shop.skus["QTY-1"])).status_code == 303
    line = await line_of(db, user_id, shop.skus["QTY-1"])
    assert line is not None

    def change(quantity: int) -> Any:
        return browser.post(
            f"/cart/lines/{line.id}", data={"quantity": str(quantity), "_csrf_token": token}, follow_redirects=False
        )

    statuses = no_server_errors(await at_once(*(change(q) for q in range(1, N + 1))))
    assert statuses == [303] * 10 + [409] * 10, statuses
    after = await line_of(db, user_id, shop.skus["QTY-1"])
    assert after is not None and 1 <= after.quantity <= 10


async def test_remove_line(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """20 removes of one line at once: one removes it (back to the cart), the others hear it is gone."""
    user_id = await new_shopper(browser, shop, "remove")
    token = await csrf(browser, "/cart")
    assert (await add_form(browser, token, shop.skus["RM-1"], 3)).status_code == 303
    line = await line_of(db, user_id, shop.skus["RM-1"])
    assert line is not None
    responses = await at_once(
        *(
            browser.post(f"/cart/lines/{line.id}/remove", data={"_csrf_token": token}, follow_redirects=False)
            for _ in range(N)
        )
    )
    assert sorted(no_server_errors(responses)) == [303] + [404] * (N - 1)
    for response in responses:
        if response.status_code == 303:
            assert response.headers["location"] == "/cart"
        else:
            assert "That item is no longer in your cart." in response.text
    assert await line_of(db, user_id, shop.skus["RM-1"]) is None


async def test_place_one_checkout_form_twenty_times(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """20 submits of one checkout form (a frantic double click): one order, and every answer leads to it."""
    user_id = await new_shopper(browser, shop, "buyer")
    token = await csrf(browser, "/cart")
    assert (await add_form(browser, token, shop.skus["BUY-1"], 2)).status_code == 303
    for path, data in (
        ("/checkout/address", {"address_id": "new", **ADDRESS}),
        ("/checkout/shipping", {"shipping_method": "standard"}),
    ):
        assert (await browser.post(path, data={**data, "_csrf_token": token})).status_code in {200, 303}
    async with write_session(db) as session:  # an automatic promotion on this variant: one use, however many submits
        session.add(Promotion(name="Buy week", kind="percentage", value=10, variant_ids=[shop.skus["BUY-1"]]))
        await session.commit()
    form = await review(browser)
    responses = await at_once(*(browser.post("/checkout/place", data=form, follow_redirects=False) for _ in range(N)))
    assert no_server_errors(responses) == [303] * N
    locations = {r.headers["location"] for r in responses}
    assert len(locations) == 1, locations  # every answer: the one payment page
    [payment_url] = locations
    assert "/test-payments/pay/tpi_" in payment_url
    paid = await pay_on_hosted_page(browser, payment_url, SUCCESS_CARD)
    back = await browser.get(path_of(paid.headers["location"]), follow_redirects=False)
    async with db.get_session() as session:
        numbers = list(await session.scalars(select(Order.number).where(Order.user_id == user_id)))
        assert len(numbers) == 1
        assert back.headers["location"] == f"/orders/{numbers[0]}?placed=1"
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "BUY-1")) == 8
        assert await session.scalar(select(Order.discount_total).where(Order.number == numbers[0])) == 200
        assert await session.scalar(select(Promotion.times_used).where(Promotion.name == "Buy week")) == 1
        assert await find_ledger_mismatches(session) == []
    page = await browser.get(f"/orders/{numbers[0]}?placed=1")
    assert page.status_code == 200 and numbers[0] in page.text


async def test_fifty_shoppers_race_for_a_code_limited_to_ten_uses(
    shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient
):
    """50 shoppers with the same code in their carts check out at once through the API: exactly 10 orders
    get the discount (the code's limit), the other 40 are told (409) and charged nothing; no 5xx.
    Cancelling a discounted order gives its use back once, however many times it is cancelled."""
    shoppers = 50
    async with write_session(db) as session:
        promotion = Promotion(name="Race ten", code="RACE10", kind="percentage", value=10, usage_limit=10)
        session.add(promotion)
        await session.commit()
        promotion_id = promotion.id
    emails = [f"race-{index}-{uuid.uuid4().hex[:6]}@example.com" for index in range(shoppers)]
    headers, user_ids = [], []
    for email in emails:
        user_id = await make_user(db, email)
        user_ids.append(user_id)
        async with write_session(db) as session:
            cart = Cart(user_id=user_id, promotion_code="RACE10")
            session.add(cart)
            await session.flush()
            session.add(CartLine(cart_id=cart.id, variant_id=shop.skus["PROMO-1"], quantity=2))
            await session.commit()
        tokens = await browser.post("/api/auth/token", data={"username": email, "password": PASSWORD})
        headers.append({"Authorization": f"Bearer {tokens.json()['access_token']}"})
    body = {"shipping_address": ADDRESS, "shipping_method": "standard", "payment": {"token": "tok_visa"}}
    responses = await at_once(
        *(
            browser.post("/api/checkout", json=body, headers={**h, "Idempotency-Key": f"race-{index}"})
            for index, h in enumerate(headers)
        )
    )
    statuses = no_server_errors(responses)
    assert sorted(set(statuses)) == [201, 409], statuses
    placed = [r.json() for r in responses if r.status_code == 201]
    assert len(placed) == 10
    assert all(o["discount_total"]["amount"] == 200 and o["promotions"][0]["code"] == "RACE10" for o in placed)
    refused = [r.json() for r in responses if r.status_code == 409]
    assert all("RACE10" in p["detail"] and "used up" in p["detail"] for p in refused), refused[0]
    async with db.get_session() as session:
        assert await session.scalar(select(Promotion.times_used).where(Promotion.id == promotion_id)) == 10
        uses = await session.scalar(
            select(func.count()).select_from(PromotionUsage).where(PromotionUsage.promotion_id == promotion_id)
        )
        orders = await session.scalar(
            select(func.count()).select_from(Order).where(Order.number.in_([o["number"] for o in placed]))
        )
        assert uses == 10 and orders == 10
        # Nobody was charged the discounted price without a use counted: every promo order is one of the ten.
        racers = select(func.count()).select_from(Order).where(Order.user_id.in_(user_ids))
        assert await session.scalar(racers) == 10
        assert await session.scalar(racers.where(Order.discount_total > 0)) == 10
        assert await find_ledger_mismatches(session) == []

    # A cancelled order gives its use back exactly once, however many cancels arrive together.
    first = placed[0]
    owner = headers[statuses.index(201)]
    cancels = await at_once(*(browser.post(f"/api/orders/{first['id']}/cancel", headers=owner) for _ in range(N)))
    assert set(no_server_errors(cancels)) <= {200, 409}
    async with db.get_session() as session:
        assert await session.scalar(select(Promotion.times_used).where(Promotion.id == promotion_id)) == 9
        released = await session.scalar(
            select(func.count())
            .select_from(PromotionUsage)
            .where(PromotionUsage.promotion_id == promotion_id, PromotionUsage.released_at.is_not(None))
        )
        assert released == 1


async def test_cancel_twenty_times(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """20 cancels of one order at once: it is cancelled once and its stock comes back once."""
    email = f"cancel-{uuid.uuid4().hex[:8]}@example.com"
    user_id = await make_user(db, email)
    number = f"WS-C{uuid.uuid4().hex[:6].upper()}"
    await make_order(db, user_id, number, {"CANCEL-1": 3})
    assert (await sign_in(browser, email)).status_code == 303
    token = await csrf(browser, "/orders")
    responses = await at_once(
        *(
            browser.post(f"/orders/{number}/cancel", data={"_csrf_token": token}, follow_redirects=False)
            for _ in range(N)
        )
    )
    statuses = no_server_errors(responses)
    assert statuses.count(303) >= 1 and set(statuses) <= {303, 409}, statuses
    async with db.get_session() as session:
        assert await session.scalar(select(Order.status).where(Order.number == number)) == "cancelled"
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "CANCEL-1")) == 10
        assert await find_ledger_mismatches(session) == []


async def test_save_one_address_twenty_times(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """20 submits of one new address at once: all go on to shipping, the address book holds it once."""
    user_id = await new_shopper(browser, shop, "address")
    token = await csrf(browser, "/cart")
    responses = await at_once(
        *(
            browser.post(
                "/checkout/address",
                data={"address_id": "new", **ADDRESS, "_csrf_token": token},
                follow_redirects=False,
            )
            for _ in range(N)
        )
    )
    assert no_server_errors(responses) == [303] * N
    async with db.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Address).where(Address.user_id == user_id)) == 1


async def test_register_one_email_twenty_times(shop: Shop, db: ShopAlchemyConfig):
    """20 registrations of one e-mail address at once: one account; the others hear "already exists"."""
    email = f"twin-{uuid.uuid4().hex[:8]}@example.com"
    clients = [httpx.AsyncClient(base_url=shop.base_url, timeout=60) for _ in range(N)]
    try:
        tokens = await at_once(*(csrf(c, "/account/register") for c in clients))
        responses = await at_once(
            *(
                c.post(
                    "/account/register",
                    data={"email": email, "name": "Twin", "password": PASSWORD, "_csrf_token": t},
                    follow_redirects=False,
                )
                for c, t in zip(clients, tokens, strict=True)
            )
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    statuses = no_server_errors(responses)
    assert sorted(statuses) == [303] + [422] * (N - 1), statuses
    for response in responses:
        if response.status_code == 422:
            assert "already exists" in response.text
    async with db.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(User).where(User.email == email)) == 1


async def test_admin_inline_stock_edit(shop: Shop, db: ShopAlchemyConfig, browser: httpx.AsyncClient):
    """20 admins' inline stock edits from the same level at once: one is saved, the others hear it changed."""
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    await make_user(db, email, UserRole.ADMIN)
    assert (await sign_in(browser, email)).status_code == 303
    variant_id = shop.skus["ADM-1"]
    token = await csrf(browser, "/admin/products")

    def edit(level: int) -> Any:
        return browser.post(
            f"/admin/products/variants/{variant_id}/stock",
            data={"value": str(level), "expected": "5", "next": "/admin/products", "_csrf_token": token},
            follow_redirects=False,
        )

    levels = list(range(10, 10 + N))
    responses = await at_once(*(edit(level) for level in levels))
    statuses = no_server_errors(responses)
    assert sorted(statuses) == [303] + [409] * (N - 1), statuses
    saved = levels[statuses.index(303)]
    async with db.get_session() as session:
        assert await session.scalar(select(Variant.stock).where(Variant.id == variant_id)) == saved
        assert await find_ledger_mismatches(session) == []
    for response in responses:
        if response.status_code == 409:
            assert re.search(rf"it is now {saved}\b", response.text), response.text[:500]


# --- a failed session never breaks the error page ----------------------------------------------------


@get("/test-only/broken-session/{how:str}", include_in_schema=False)
async def broken_session(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], how: FromPath[str]
) -> None:
    """Break the request's session with a unique violation, then let an error escape the handler.

    ``flush``: the violation outside any savepoint leaves the session needing a rollback.
    ``savepoint``: the signed-in user was changed in a savepoint that the violation rolled back, so the
    user's loaded attributes are expired and reading them would need the database.
    """
    if how == "flush":
        db_session.add(User(email=request.user.email, name="Twin", password_hash="x"))
        await db_session.flush()
    try:
        async with db_session.begin_nested():
            request.user.name = "Changed"
            db_session.add(User(email=request.user.email, name="Twin", password_hash="x"))
            await db_session.flush()
    except IntegrityError:
        raise RuntimeError("something unexpected after a failed write") from None


async def test_error_after_failed_session_is_the_shops_500_page(app, client, alchemy):
    """An error after the session failed (a unique violation, with or without a savepoint) is answered
    with the shop's 500 page, its security headers and request id; the header still shows the shopper."""
    app.register(broken_session)
    email = f"broken-{uuid.uuid4().hex[:8]}@example.com"
    await make_user(alchemy, email, name="Ada Broken")
    assert (await sign_in(client, email)).status_code == 303
    for how in ("flush", "savepoint"):
        response = await client.get(f"/test-only/broken-session/{how}")
        assert response.status_code == 500, response.text[:300]
        assert response.headers["content-type"].startswith("text/html")
        assert "Something went wrong" in response.text
        assert "Ada Broken" in response.text
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-request-id"]
        assert response.headers["x-content-type-options"] == "nosniff"
        # Nothing of the failed session leaks into the next request.
        page = await client.get("/cart")
        assert page.status_code == 200 and "Ada Broken" in page.text
