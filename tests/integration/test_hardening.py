"""Hardening of issue 13, over HTTP on both engines.

* JSON bodies nested too deeply are refused with 400 problem+json before decoding, never a 500
  (RFC 8259 §9 lets a parser limit nesting; OWASP Input Validation Cheat Sheet).
* Guesses of the current password at a password change share the sign-in lock and back-off (OWASP
  Authentication Cheat Sheet, "Account Lockout" and "Change Password Feature").
* The admin CSV export quotes cells a spreadsheet would run as formulas, and the import takes the quote
  off again (OWASP "CSV Injection").
* ``Server-Timing`` only in development or for admins; ``/metrics`` wants its bearer token in production.
* CSRF protection is skipped only for paths under ``/api/``, not for any path containing "api".
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy import select, update

from tests.conftest import BASE_URL, app_client
from tests.factories import account, expire_lock, make_user, seed_catalog
from tests.shopper import PASSWORD, csrf, post, text_of
from tests.shopper import sign_in as page_sign_in
from webshop.api import json_guard
from webshop.api.json_guard import MAX_JSON_DEPTH, TOO_DEEP, json_depth_exceeds
from webshop.catalog.csv.apply import import_catalog
from webshop.catalog.csv.parse import parse_catalog
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Product, UserRole

EMAIL = "ada@example.com"
METRICS_TOKEN = "scrape-token-0123456789abcdef"
DEEP = b"[" * 1000 + b"]" * 1000
JSON = {"content-type": "application/json"}


async def bearer(client: AsyncTestClient[Litestar], email: str = EMAIL) -> dict[str, str]:
    response = await client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status
    return body


# --- 3. JSON nesting ------------------------------------------------------------------------------


async def test_deeply_nested_json_is_refused_with_400_problem_on_every_json_route(client, alchemy):
    await seed_catalog(alchemy)
    await make_user(alchemy, EMAIL)
    headers = {**JSON, **await bearer(client)}
    for method, path, auth in (
        ("POST", "/api/auth/register", {}),
        ("POST", "/api/auth/refresh", {}),
        ("POST", "/api/auth/logout", headers),
        ("POST", "/api/cart/items", headers),
        ("PATCH", "/api/users/me", headers),
        ("POST", "/api/checkout", {**headers, "Idempotency-Key": "deep-nesting-0001"}),
    ):
        response = await client.request(method, path, content=DEEP, headers={**JSON, **auth})
        assert assert_problem(response, 400)["detail"] == TOO_DEEP, path
    # A body that says it is not JSON is refused before anything decodes it (415), deep or not.
    response = await client.post("/api/auth/register", content=DEEP, headers={"content-type": "text/plain"})
    problem = assert_problem(response, 415)
    assert problem["detail"].startswith("Send the body as JSON") and problem["title"] == "Unsupported media type"
    # The token endpoint takes a form: a JSON body is a 415 naming the form's media type, never a 500.
    token = assert_problem(await client.post("/api/auth/token", content=DEEP, headers=JSON), 415)
    assert token["detail"].startswith("Send the body as a form")
    # Bodies nested as deep as allowed still reach validation; the API still works.
    allowed = b'{"email": ' + b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1) + b"}"
    body = assert_problem(await client.post("/api/auth/register", content=allowed, headers=JSON), 400)
    assert body["detail"] != TOO_DEEP
    added = await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    assert added.status_code == 201, added.text


async def test_a_recursion_error_while_decoding_is_a_400_not_a_500(client, monkeypatch):
    """Should the scan ever miss a body, the decoder's ``RecursionError`` still answers 400."""
    monkeypatch.setattr(json_guard, "json_depth_exceeds", lambda body, limit=MAX_JSON_DEPTH: False)
    response = await client.post("/api/auth/register", content=b"[" * 100_000 + b"]" * 100_000, headers=JSON)
    assert assert_problem(response, 400)["detail"] == TOO_DEEP


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, False),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), True),
        (b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), True),
        (b'["' + b"[" * 1000 + b'"]', False),  # brackets inside a string do not count
        (b'["\\"' + b"[" * 1000 + b'"]', False),  # nor after an escaped quote
        (b'["\\\\"' + b"[" * 1000, True),  # an escaped backslash ends the string: these count
        (b"[" + b"[[],{}]," * 1000 + b"0]", False),  # many brackets, shallow
        (b"[" * 1000, True),  # truncated
        (b"]" + b"[" * 1000, False),  # malformed from the first byte: the decoder stops there
    ],
)
def test_the_depth_scan(body, too_deep):
    assert json_depth_exceeds(body) is too_deep


# --- 5. guessing the current password ---------------------------------------------------------------


async def change_password_page(client: AsyncTestClient[Litestar], current: str) -> httpx.Response:
    return await post(
        client,
        "/account/password",
        {"current_password": current, "new_password": "a brand new password"},
        token_from="/account",
    )


async def test_current_password_guesses_on_the_page_share_the_sign_in_lock(client, alchemy):
    await make_user(alchemy, EMAIL)
    assert (await page_sign_in(client, EMAIL)).status_code == 303
    for attempt in range(1, 6):
        response = await change_password_page(client, "wrong password")
        assert response.status_code == 422 and "This is not your current password." in text_of(response.text)
        assert (await account(alchemy)).failed_sign_ins == attempt
    assert (await account(alchemy)).locked_until is not None

    # Locked after the fifth wrong guess: even the right password is refused, on the page, with the message.
    locked = await change_password_page(client, PASSWORD)
    assert locked.status_code == 429
    assert 50 <= int(locked.headers["retry-after"]) <= 60
    assert "Too many failed sign-in attempts. Try again in 1 minute." in text_of(locked.text)
    assert 'name="current_password"' in locked.text  # the form is shown again
    # It is the sign-in lock: signing in elsewhere is refused too.
    assert_problem(await client.post("/api/auth/token", data={"username": EMAIL, "password": PASSWORD}), 429)

    # Once the lock has run out the right password works, and the count starts again.
    await expire_lock(alchemy)
    assert (await change_password_page(client, PASSWORD)).status_code == 303
    user = await account(alchemy)
    assert (user.failed_sign_ins, user.locked_until) == (0, None)


async def test_current_password_guesses_through_the_api_share_the_sign_in_lock(client, alchemy):
    await make_user(alchemy, EMAIL)
    headers = await bearer(client)

    def change(current: str) -> dict[str, str]:
        return {"name": "Mallory", "current_password": current, "password": "a brand new password"}

    for _ in range(5):
        response = await client.patch("/api/users/me", json=change("wrong password"), headers=headers)
        assert_problem(response, 422)
    user = await account(alchemy)
    assert user.failed_sign_ins == 5 and user.locked_until is not None
    assert user.name != "Mallory"  # a refused change changes nothing, the name included

    locked = await client.patch("/api/users/me", json=change(PASSWORD), headers=headers)
    body = assert_problem(locked, 429)
    assert "Try again in 1 minute" in str(body["detail"]) and 50 <= int(locked.headers["retry-after"]) <= 60
    assert (await page_sign_in(client, EMAIL)).status_code == 429  # the same lock as sign-in

    await expire_lock(alchemy)
    assert (await client.patch("/api/users/me", json=change(PASSWORD), headers=headers)).status_code == 200
    user = await account(alchemy)
    assert (user.failed_sign_ins, user.locked_until, user.name) == (0, None, "Mallory")


# --- 6. CSV formula injection -----------------------------------------------------------------------


FORMULAS = {"alpha-laptop": '=HYPERLINK("http://x")', "beta-camera": "-sale", "gamma-camera": "@SUM(A1)"}


async def rename(alchemy: ShopAlchemyConfig, names: dict[str, str]) -> None:
    async with write_session(alchemy) as session:
        for slug, name in names.items():
            await session.execute(update(Product).where(Product.slug == slug).values(name=name))
        await session.commit()


async def names(alchemy: ShopAlchemyConfig) -> dict[str, str]:
    async with alchemy.get_session() as session:
        return {slug: name for slug, name in (await session.execute(select(Product.slug, Product.name))).all()}


async def test_csv_export_quotes_formulas_and_the_import_reads_them_back(client, alchemy, settings, tmp_path):
    await seed_catalog(alchemy)
    await rename(alchemy, FORMULAS)
    async with write_session(alchemy) as session:
        await session.execute(
            update(Product).where(Product.slug == "delta-chair").values(description="+1 and\ttabs", name="'=quoted")
        )
        await session.commit()
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    assert (await page_sign_in(client, "boss@example.com")).status_code == 303
    response = await client.get("/admin/catalog-csv/export")
    assert response.status_code == 200
    rows = {row[1]: row for row in csv.reader(io.StringIO(response.text)) if row[1]}
    for slug, name in FORMULAS.items():
        assert rows[slug][0] == "'" + name, slug
    assert rows["delta-chair"][0] == "''=quoted" and rows["delta-chair"][2] == "'+1 and\ttabs"
    assert rows["alpha-laptop"][8] == "1299.00"  # numbers stay numbers
    assert not [cell for row in rows.values() for cell in row if cell[:1] in {"=", "+", "-", "@", "\t", "\r"}]

    # The importer's parser takes the quote off: the export reads back exactly...
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "products.csv").write_bytes(response.content)
    parsed = {product.slug: product for product in parse_catalog(Path(folder) / "products.csv").products}
    assert {slug: parsed[slug].name for slug in FORMULAS} == FORMULAS
    assert (parsed["delta-chair"].name, parsed["delta-chair"].description) == ("'=quoted", "+1 and\ttabs")
    # ...and importing it restores the names, formula-like characters and all.
    before = await names(alchemy)
    await rename(alchemy, dict.fromkeys(FORMULAS, "Renamed"))
    report = await import_catalog(alchemy, folder, settings.shop.media_dir)
    assert report.errors == [], report.summary()
    assert await names(alchemy) == before


# --- 7. Server-Timing and /metrics in production ------------------------------------------------------


async def test_server_timing_only_in_development_or_for_admins(settings, alchemy):
    await seed_catalog(alchemy)
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    await make_user(alchemy, EMAIL)
    production = {"env": "production", "metrics_token": METRICS_TOKEN}
    async with app_client(settings, alchemy, **production) as shop:
        for path in ("/", "/account/sign-in", "/api/products", "/no-such-page", "/health"):
            assert "server-timing" not in (await shop.get(path)).headers, path
        assert "server-timing" not in (await page_sign_in(shop, EMAIL, "wrong password")).headers
        assert (await page_sign_in(shop, EMAIL)).status_code == 303  # a customer: still none
        assert "server-timing" not in (await shop.get("/")).headers
        assert "server-timing" not in (await shop.get("/api/users/me", headers=await bearer(shop))).headers
    async with app_client(settings, alchemy, **production) as admin:
        assert (await page_sign_in(admin, "boss@example.com")).status_code == 303
        assert "app;dur=" in (await admin.get("/")).headers["server-timing"]
        token = await bearer(admin, "boss@example.com")
        assert "app;dur=" in (await admin.get("/api/users/me", headers=token)).headers["server-timing"]
    async with app_client(settings, alchemy, env="development") as development:
        for path in ("/", "/api/products", "/no-such-page"):
            assert "app;dur=" in (await development.get(path)).headers["server-timing"], path


async def test_metrics_want_the_bearer_token_in_production(settings, alchemy):
    async with app_client(settings, alchemy, env="production", metrics_token=METRICS_TOKEN) as shop:
        refused = await shop.get("/metrics")
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert (await shop.get("/metrics", headers={"Authorization": "Bearer guess"})).status_code == 401
        scraped = await shop.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status_code == 200 and "webshop_http_requests_total" in scraped.text


# --- 8. CSRF exclusion anchored to /api/ ------------------------------------------------------------


async def test_csrf_is_skipped_only_under_the_api_prefix(client, alchemy):
    await seed_catalog(alchemy)
    await make_user(alchemy, EMAIL)
    assert (await page_sign_in(client, EMAIL)).status_code == 303
    for path in ("/orders/apiXYZ/cancel", "/orders/api/cancel", "/orders/WS-api/cancel"):
        response = await client.post(path, data={"quantity": "1"}, follow_redirects=False)
        assert response.status_code == 403, (path, response.status_code)
        assert "Your form expired or came from another site" in text_of(response.text), path
    # With the page's token the same form reaches the cancel handler (an unknown order: 404).
    token = await csrf(client, "/account")
    response = await client.post("/orders/apiXYZ/cancel", data={"_csrf_token": token}, follow_redirects=False)
    assert response.status_code == 404
    # The JSON API, authorised by a bearer token, needs no CSRF token.
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as api:
        added = await api.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=await bearer(api))
        assert added.status_code == 201, added.text
