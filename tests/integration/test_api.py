"""The JSON API over HTTP on both engines: auth and tokens, catalog, cart, checkout, orders, errors."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from sqlalchemy import func, select, update

from tests.api_user import assert_problem, bearer, register, token_pair
from tests.factories import make_user
from tests.shopper import PASSWORD
from webshop.db.engine import write_session
from webshop.db.models import IdempotencyRecord, Order, Product, RefreshToken, User, UserRole, Variant
from webshop.security.jwt import AUDIENCE, signing_key
from webshop.stock.service import find_ledger_mismatches

ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}


# --- auth -------------------------------------------------------------------------------------


async def test_register_returns_the_user_and_ignores_no_role_trick(client):
    response = await register(client)
    assert response.status_code == 201 and response.headers["location"] == "/api/users/me"
    body = response.json()
    assert body["email"] == "ada@example.com" and body["role"] == "customer"
    assert "password" not in response.text and "hash" not in response.text
    sneaky = await register(client, "eve@example.com", role="admin")
    assert_problem(sneaky, 400)
    assert (
        await client.post("/api/auth/token", data={"username": "eve@example.com", "password": PASSWORD})
    ).status_code == 401


async def test_register_validation_and_duplicate_email(client):
    body = assert_problem(  # the schema's rules: a 400 naming every bad field (a taken address is a 422)
        await client.post("/api/auth/register", json={"email": "x", "password": "short", "name": ""}), 400
    )
    assert set(body["errors"]) == {"email", "password", "name"}
    await register(client)
    body = assert_problem(await register(client, "ADA@example.com"), 422)
    assert "already exists" in body["errors"]["email"]


async def test_token_and_me(client):
    await register(client)
    pair = await token_pair(client)
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 15 * 60 and pair["refresh_token"]
    claims = jwt.decode(pair["access_token"], options={"verify_signature": False})
    assert {"exp", "iat", "nbf", "iss", "aud", "sub", "jti", "role"} <= set(claims)
    assert claims["aud"] == AUDIENCE and claims["role"] == "customer"
    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"


async def test_wrong_password_and_missing_token_are_401_with_challenge(client):
    await register(client)
    bad = await client.post("/api/auth/token", data={"username": "ada@example.com", "password": "nope nope"})
    assert_problem(bad, 401)
    missing = await client.get("/api/users/me")
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"].startswith("Bearer")


def forge(settings, user_id, **overrides):
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "exp": now + timedelta(minutes=5),
        "iat": now,
        "nbf": now,
        "iss": settings.security.token_issuer,
        "aud": AUDIENCE,
        "jti": "forged-0001",
        "role": "admin",
        "fam": "none",
    }
    key = overrides.pop("key", signing_key(settings.security))
    algorithm = overrides.pop("algorithm", "HS256")
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "abuse",
    ["alg_none", "other_key", "wrong_aud", "wrong_iss", "expired", "not_yet_valid", "missing_jti", "garbage"],
)
async def test_token_abuse_is_401(client, settings, abuse):
    await register(client)
    user_id = (await client.get("/api/users/me", headers=await bearer(client, "x@example.com"))).json()["id"]
    now = datetime.now(UTC)
    token = {
        "alg_none": lambda: jwt.encode({"sub": str(user_id), "aud": AUDIENCE}, None, algorithm="none"),
        "other_key": lambda: forge(settings, user_id, key="another-key-another-key-another-key!!"),
        "wrong_aud": lambda: forge(settings, user_id, aud="someone-else"),
        "wrong_iss": lambda: forge(settings, user_id, iss="https://evil.example"),
        "expired": lambda: forge(settings, user_id, exp=now - timedelta(seconds=5), iat=now - timedelta(minutes=20)),
        "not_yet_valid": lambda: forge(settings, user_id, nbf=now + timedelta(minutes=5)),
        "missing_jti": lambda: forge(settings, user_id, jti=None),
        "garbage": lambda: "not.a.jwt",
    }[abuse]()
    response = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_deactivated_user_token_is_401(client, alchemy):
    headers = await bearer(client)
    async with write_session(alchemy) as session:
        await session.execute(update(User).values(is_active=False))
        await session.commit()
    assert_problem(await client.get("/api/users/me", headers=headers), 401)


async def _age_refresh_tokens(alchemy, seconds: int) -> None:
    """Date every used refresh token's first use ``seconds`` ago."""
    async with write_session(alchemy) as session:
        used_at = datetime.now(UTC) - timedelta(seconds=seconds)
        await session.execute(update(RefreshToken).where(RefreshToken.used_at.is_not(None)).values(used_at=used_at))
        await session.commit()


async def test_refresh_rotates_and_reuse_revokes_the_family(client, alchemy):
    await register(client)
    first = await token_pair(client)
    second = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    ok = {"Authorization": f"Bearer {second['access_token']}"}
    assert (await client.get("/api/users/me", headers=ok)).status_code == 200
    # Presented again at once (an app refreshing from two requests, or retrying a lost answer: API QA, the
    # user was signed out): within the grace period it gets a new pair too, and the first new pair still works.
    again = await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert again.status_code == 200, again.text
    assert again.json()["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert (await client.get("/api/users/me", headers=ok)).status_code == 200
    racing = await asyncio.gather(
        *(client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]}) for _ in range(2))
    )
    assert [r.status_code for r in racing] == [200, 200]
    # Over 30 seconds after its first use, the used refresh token coming back revokes the whole family,
    # including the new tokens.
    await _age_refresh_tokens(alchemy, 31)
    assert_problem(await client.post("/api/auth/refresh", json={"refresh_token": first["refresh_token"]}), 401)
    assert_problem(await client.post("/api/auth/refresh", json={"refresh_token": second["refresh_token"]}), 401)
    assert_problem(await client.get("/api/users/me", headers=ok), 401)
    # Another sign-in is unaffected.
    assert (await token_pair(client))["access_token"]


async def test_logout_revokes_refresh_family_and_access_token(client):
    await register(client)
    pair = await token_pair(client)
    headers = {"Authorization": f"Bearer {pair['access_token']}"}
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204
    assert_problem(await client.get("/api/users/me", headers=headers), 401)
    assert_problem(await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]}), 401)


async def test_patch_me_changes_name_and_password(client):
    headers = await bearer(client)
    renamed = await client.patch("/api/users/me", json={"name": "Countess"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Countess"
    wrong = await client.patch(
        "/api/users/me", json={"password": "new password 1", "current_password": "x"}, headers=headers
    )
    assert "current_password" in assert_problem(wrong, 422)["errors"]
    assert_problem(await client.patch("/api/users/me", json={"role": "admin"}, headers=headers), 400)
    changed = await client.patch(
        "/api/users/me", json={"password": "new password 1", "current_password": PASSWORD}, headers=headers
    )
    assert changed.status_code == 200
    assert (await token_pair(client, password="new password 1"))["access_token"]


# --- catalog ----------------------------------------------------------------------------------


async def test_products_list_filters_and_cursor_pages(client, skus):
    page = (await client.get("/api/products", params={"limit": 2})).json()
    names = [p["name"] for p in page["items"]]
    assert names == ["Alpha Laptop", "Beta Camera"]
    assert page["items"][0]["price_min"] == {"amount": 129900, "currency": "USD"}
    seen = list(names)
    while page["next_cursor"]:
        page = (await client.get("/api/products", params={"limit": 2, "cursor": page["next_cursor"]})).json()
        seen += [p["name"] for p in page["items"]]
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 6
    cheap = (await client.get("/api/products", params={"sort": "price", "price_max": 10000})).json()
    assert [p["name"] for p in cheap["items"]] == ["Epsilon Plant", "Delta Chair", "Zeta Shoe"]
    photo = (await client.get("/api/products", params={"category": "electronics", "brand": "Nikon"})).json()
    assert [p["name"] for p in photo["items"]] == ["Beta Camera"]
    assert (await client.get("/api/products", params={"q": "camera"})).json()["items"][1]["name"] == "Gamma Camera"


async def test_price_sort_pages_with_cursor_in_both_directions(client, skus):
    for sort in ("price", "-price", "-name", "newest"):
        seen, cursor = [], None
        while True:
            params = {"limit": 4, "sort": sort, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/products", params=params)).json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) == 6, sort


async def test_bad_queries_are_problems(client, skus):
    assert_problem(await client.get("/api/products", params={"limit": 101}), 400)
    assert_problem(await client.get("/api/products", params={"sort": "price; DROP"}), 400)
    assert_problem(await client.get("/api/products", params={"cursor": "bogus"}), 422)  # not one the API issued
    not_base64 = assert_problem(await client.get("/api/products", params={"cursor": "abc!"}), 400)  # (QA)
    worded = "Expected text matching the pattern ^[A-Za-z0-9_-]*$"  # not msgspec's regular expression
    assert not_base64["errors"]["cursor"] == worded
    assert (await client.get("/api/products", params={"cursor": ""})).status_code == 200  # empty: first page
    assert_problem(await client.get("/api/products", params={"category": "nope"}), 404)
    assert_problem(await client.get("/api/products/999999"), 404)


async def test_product_detail_and_categories(client, skus):
    listing = (await client.get("/api/products", params={"q": "Zeta"})).json()["items"][0]
    product = (await client.get(f"/api/products/{listing['id']}")).json()
    assert product["option_groups"] == ["size"]
    assert [(v["sku"], v["stock"], v["options"]) for v in product["variants"]] == [
        ("ZS-40", 2, {"size": "Size 40"}),
        ("ZS-42", 7, {"size": "Size 42"}),
    ]
    assert product["facets"]["brand"] == ["Nike"]
    by_slug = await client.get(f"/api/products/by-slug/{listing['slug']}")
    assert by_slug.status_code == 200 and by_slug.json() == product  # a client holding a page's address
    assert_problem(await client.get("/api/products/by-slug/no-such-product"), 404)
    assert_problem(await client.get("/api/products/by-slug/Not_A_Slug"), 400)
    tree = (await client.get("/api/categories")).json()
    electronics = next(c for c in tree if c["slug"] == "electronics")
    assert {c["slug"] for c in electronics["children"]} == {"computers", "photo"}


# --- cart, checkout, orders --------------------------------------------------------------------


async def test_cart_items_add_change_remove_clear(client, skus):
    headers = await bearer(client)
    cart = await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 2}, headers=headers)
    assert cart.status_code == 201
    cart = await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    body = cart.json()
    assert body["item_count"] == 3
    assert body["subtotal"] == {"amount": 2 * 8900 + 1999, "currency": "USD"}
    line = next(ln for ln in body["lines"] if ln["sku"] == "DC-1")
    too_many = await client.patch(f"/api/cart/items/{line['id']}", json={"quantity": 13}, headers=headers)
    assert "Only 12 left" in assert_problem(too_many, 409)["detail"]
    changed = await client.patch(f"/api/cart/items/{line['id']}", json={"quantity": 5}, headers=headers)
    assert changed.json()["item_count"] == 6
    removed = await client.delete(f"/api/cart/items/{line['id']}", headers=headers)
    assert [ln["sku"] for ln in removed.json()["lines"]] == ["EP-1"]
    assert (await client.delete("/api/cart", headers=headers)).status_code == 204
    assert (await client.get("/api/cart", headers=headers)).json()["lines"] == []


async def test_cart_refuses_client_prices_and_others_lines(client, skus):
    headers = await bearer(client)
    priced = await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1, "price": 1}, headers=headers)
    assert_problem(priced, 400)
    line_id = (await client.post("/api/cart/items", json={"sku": "DC-1"}, headers=headers)).json()["lines"][0]["id"]
    other = await bearer(client, "eve@example.com")
    assert_problem(await client.patch(f"/api/cart/items/{line_id}", json={"quantity": 2}, headers=other), 404)
    assert_problem(await client.delete(f"/api/cart/items/{line_id}", headers=other), 404)
    missing = await client.post("/api/cart/items", json={"sku": "NOPE"}, headers=headers)
    assert assert_problem(missing, 422)["errors"]["sku"] == "That product is not available."


QUOTE = {"country": "GB", "shipping_method": "express"}  # where ADDRESS is


def checkout_body(card="tok_visa", method="express"):
    return {"shipping_address": ADDRESS, "shipping_method": method, "payment": {"token": card}}


async def test_checkout_places_an_order_and_replays_by_key(client, alchemy, skus):
    headers = await bearer(client)
    methods = (await client.get("/api/shipping-methods")).json()
    assert {m["code"] for m in methods} == {"standard", "express"}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 2}, headers=headers)
    # No key, or an empty one: 400 naming the header as it is written (QA: one had no errors, one said idempotency_key).
    no_key = assert_problem(await client.post("/api/checkout", json=checkout_body(), headers=headers), 400)
    assert no_key["errors"] == {"Idempotency-Key": "Required."}
    empty = {**headers, "Idempotency-Key": ""}
    assert list(
        assert_problem(await client.post("/api/checkout", json=checkout_body(), headers=empty), 400)["errors"]
    ) == ["Idempotency-Key"]
    no_method = assert_problem(await client.get("/api/checkout/quote", params={"country": "FR"}, headers=headers), 400)
    assert no_method["errors"] == {"shipping_method": "Required."}
    keyed = {**headers, "Idempotency-Key": "order-attempt-1"}
    first = await client.post("/api/checkout", json=checkout_body(), headers=keyed)
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["status"] == "paid"
    assert order["subtotal"]["amount"] == 17800 and order["shipping"]["amount"] == 1000
    assert (
        order["total"]["amount"] == order["subtotal"]["amount"] + order["shipping"]["amount"] + order["tax"]["amount"]
    )
    again = await client.post("/api/checkout", json=checkout_body(), headers=keyed)
    assert again.status_code == 201 and again.json() == order
    # Both answers say where the order is (API QA: no 201 had a Location).
    assert first.headers["location"] == again.headers["location"] == f"/api/orders/{order['id']}"
    assert (await client.get(first.headers["location"], headers=headers)).json()["number"] == order["number"]
    different = await client.post("/api/checkout", json=checkout_body(method="standard"), headers=keyed)
    assert_problem(different, 422)
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 10
    assert (await client.get(f"/api/orders/{order['id']}", headers=headers)).json()["number"] == order["number"]
    assert (await client.get("/api/cart", headers=headers)).json()["lines"] == []


async def test_checkout_at_the_quoted_price_or_not_at_all(client, alchemy, skus):
    """QA: a price raised between the shopper's look and the API checkout was charged unannounced; the
    pages refuse it (the review's signature), and now the API does too (``expected_signature``)."""
    headers = await bearer(client)
    assert (
        "empty" in assert_problem(await client.get("/api/checkout/quote", params=QUOTE, headers=headers), 422)["detail"]
    )
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 2}, headers=headers)
    quoted = await client.get("/api/checkout/quote", params=QUOTE, headers=headers)
    assert quoted.status_code == 200, quoted.text
    quote = quoted.json()
    assert (quote["subtotal"]["amount"], quote["shipping"]["amount"], quote["shipping_method"]) == (
        17800,
        1000,
        "express",
    )
    assert quote["total"]["amount"] == 17800 + 1000 + quote["tax"]["amount"] and len(quote["signature"]) == 64
    async with write_session(alchemy) as session:  # the admin raises the price meanwhile
        await session.execute(update(Variant).where(Variant.sku == "DC-1").values(price=99_999))
        await session.commit()
    keyed = {**headers, "Idempotency-Key": "quoted-1"}
    pinned = {**checkout_body(), "expected_signature": quote["signature"]}
    changed = assert_problem(await client.post("/api/checkout", json=pinned, headers=keyed), 409)
    assert changed["detail"] == (
        "Your order changed since you reviewed it (its items, a price, a promotion, the address or the shipping"
        " method). Please check it again."
    )
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 12
    requoted = (await client.get("/api/checkout/quote", params=QUOTE, headers=headers)).json()
    assert requoted["subtotal"]["amount"] == 2 * 99_999 and requoted["signature"] != quote["signature"]
    placed = await client.post(
        "/api/checkout", json={**checkout_body(), "expected_signature": requoted["signature"]}, headers=keyed
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["total"] == requoted["total"]
    bad = {**checkout_body(), "expected_signature": "not-a-signature"}
    assert_problem(await client.post("/api/checkout", json=bad, headers={**headers, "Idempotency-Key": "q2"}), 400)


async def test_an_order_too_large_for_the_books_is_refused_and_nothing_is_taken(client, alchemy, skus):
    """QA: a cart over ``MAX_ORDER_TOTAL`` (2**31 - 1 minor units) was a 500 on PostgreSQL (its integer
    columns); now a 422 on both engines, before anything is written."""
    async with write_session(alchemy) as session:
        await session.execute(update(Variant).where(Variant.sku == "DC-1").values(price=2**31 - 1))
        await session.commit()
    headers = {**(await bearer(client)), "Idempotency-Key": "too-large"}
    added = await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 2}, headers=headers)
    assert added.status_code == 201, added.text
    refused = assert_problem(await client.post("/api/checkout", json=checkout_body(), headers=headers), 422)
    assert refused["detail"].startswith("An order can come to at most $21,474,836.47. Your order was not placed")
    quoted = assert_problem(await client.get("/api/checkout/quote", params=QUOTE, headers=headers), 422)
    assert quoted["detail"] == refused["detail"]  # no quote for an order placing refuses (review)
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 12
    assert [line["quantity"] for line in (await client.get("/api/cart", headers=headers)).json()["lines"]] == [2]


async def test_declined_payment_is_402_cancels_the_order_and_gives_everything_back(client, alchemy, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "declined-1"}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    declined = assert_problem(
        await client.post("/api/checkout", json=checkout_body("tok_chargeDeclined"), headers=headers), 402
    )
    assert declined["detail"] == "Your card was declined."
    async with alchemy.get_session() as session:
        order = await session.scalar(select(Order))
        assert (order.status, order.payment_status) == ("cancelled", "failed")  # the attempt is on record
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 12  # stock back
    assert [line["sku"] for line in (await client.get("/api/cart", headers=headers)).json()["lines"]] == ["DC-1"]
    # The key is spent on that attempt: the same request gets the same answer, another card under it a
    # 422 (it was not tried: QA); a new attempt takes a new key.
    again = await client.post("/api/checkout", json=checkout_body("tok_chargeDeclined"), headers=headers)
    assert assert_problem(again, 402) == declined
    other_card = await client.post("/api/checkout", json=checkout_body(), headers=headers)
    assert "different" in assert_problem(other_card, 422)["detail"]
    retry = await client.post("/api/checkout", json=checkout_body(), headers={**headers, "Idempotency-Key": "d-2"})
    assert retry.status_code == 201, retry.text
    assert (retry.json()["status"], retry.json()["payment"]["status"]) == ("paid", "succeeded")
    assert retry.json()["payment"]["card_last4"] == "4242"


async def test_a_postal_code_is_needed_except_where_a_country_has_none(client, skus):
    headers = await bearer(client)
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    no_code = {key: value for key, value in ADDRESS.items() if key != "postal_code"}
    refused = await client.post(
        "/api/checkout",
        json={**checkout_body(), "shipping_address": no_code},
        headers={**headers, "Idempotency-Key": "no-code-gb"},
    )
    assert assert_problem(refused, 422)["errors"] == {"shipping_address.postal_code": "Enter the postal code."}
    hong_kong = {**no_code, "line1": "1 Queen's Road Central", "city": "Central", "country": "HK"}
    placed = await client.post(
        "/api/checkout",
        json={**checkout_body(), "shipping_address": hong_kong},
        headers={**headers, "Idempotency-Key": "no-code-hk"},
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["shipping_address"]["postal_code"] == ""


async def test_a_product_taken_off_sale_while_in_the_cart_is_not_ordered(client, alchemy, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "withdrawn-1"}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    await client.post("/api/cart/items", json={"sku": "ZS-40", "quantity": 1}, headers=headers)
    async with alchemy.get_session() as session:  # its shop suspended (or the product switched off)
        await session.execute(
            update(Product)
            .where(Product.id == select(Variant.product_id).where(Variant.sku == "DC-1").scalar_subquery())
            .values(shop_active=False)
        )
        await session.execute(update(Variant).where(Variant.sku == "ZS-40").values(stock=0))  # and one sold out
        await session.commit()
    refused = assert_problem(await client.post("/api/checkout", json=checkout_body(), headers=headers), 409)
    assert refused["detail"].startswith("Delta Chair (DC-1) is no longer available; remove it from your cart.")
    assert "Zeta Shoe (ZS-40) is sold out." in refused["detail"]  # every line that cannot be had, at once
    assert [(s["sku"], s["available"]) for s in refused["shortfalls"]] == [("DC-1", 0), ("ZS-40", 0)]
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 12
    cart = (await client.get("/api/cart", headers=headers)).json()
    assert {line["sku"]: line["withdrawn"] for line in cart["lines"]} == {"DC-1": True, "EP-1": False, "ZS-40": False}
    counted = sum(line["line_total"]["amount"] for line in cart["lines"] if not line["withdrawn"])
    assert cart["subtotal"]["amount"] == counted  # the withdrawn chair is in no total
    for line in cart["lines"]:
        if line["sku"] != "EP-1":
            await client.delete(f"/api/cart/items/{line['id']}", headers=headers)
    placed = await client.post(
        "/api/checkout", json=checkout_body(), headers={**headers, "Idempotency-Key": "withdrawn-2"}
    )
    assert placed.status_code == 201 and [line["sku"] for line in placed.json()["lines"]] == ["EP-1"]


async def test_checkout_reports_every_shortfall(client, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "shortfall-1"}
    await client.post("/api/cart/items", json={"sku": "BC-1", "quantity": 3}, headers=headers)
    await client.post("/api/cart/items", json={"sku": "ZS-40", "quantity": 2}, headers=headers)
    other = {**(await bearer(client, "eve@example.com")), "Idempotency-Key": "eve-1"}
    await client.post("/api/cart/items", json={"sku": "BC-1", "quantity": 1}, headers=other)
    await client.post("/api/cart/items", json={"sku": "ZS-40", "quantity": 1}, headers=other)
    assert (await client.post("/api/checkout", json=checkout_body(), headers=other)).status_code == 201
    body = assert_problem(await client.post("/api/checkout", json=checkout_body(), headers=headers), 409)
    assert {s["sku"]: s["available"] for s in body["shortfalls"]} == {"BC-1": 2, "ZS-40": 1}


async def test_twenty_concurrent_checkouts_with_one_key_make_one_order(client, alchemy, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "same-key-20"}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    responses = await asyncio.gather(
        *(client.post("/api/checkout", json=checkout_body(), headers=headers) for _ in range(20))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    assert statuses.count(201) >= 1
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 11
        assert await find_ledger_mismatches(session) == []


async def abandon_claim(alchemy, key: str, *, like: str, minutes_ago: float) -> None:
    """Leave ``key`` as a worker killed mid-checkout leaves it: claimed for the same body, never finished.

    The claim copies the fingerprint of the finished key ``like`` (same request body)."""
    async with write_session(alchemy) as session:
        done = await session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.key == like))
        assert done is not None and done.response_status == 201
        session.add(
            IdempotencyRecord(
                user_id=done.user_id,
                scope=done.scope,
                key=key,
                fingerprint=done.fingerprint,
                updated_at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
            )
        )
        await session.commit()


async def test_a_key_left_unfinished_by_a_crashed_worker_is_taken_over_after_a_while(client, alchemy, skus):
    headers = await bearer(client)
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    first = await client.post("/api/checkout", json=checkout_body(), headers={**headers, "Idempotency-Key": "k-first"})
    assert first.status_code == 201, first.text

    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)
    await abandon_claim(alchemy, "k-recent", like="k-first", minutes_ago=0.5)
    await abandon_claim(alchemy, "k-crashed", like="k-first", minutes_ago=5)
    recent = await client.post(
        "/api/checkout", json=checkout_body(), headers={**headers, "Idempotency-Key": "k-recent"}
    )
    assert assert_problem(recent, 409)["detail"].endswith("retry it in a moment.")  # it may still be running
    assert recent.headers["retry-after"] == "1"
    retried = await client.post(
        "/api/checkout", json=checkout_body(), headers={**headers, "Idempotency-Key": "k-crashed"}
    )
    assert retried.status_code == 201, retried.text
    assert retried.json()["id"] != first.json()["id"]
    again = await client.post(
        "/api/checkout", json=checkout_body(), headers={**headers, "Idempotency-Key": "k-crashed"}
    )
    assert again.status_code == 201 and again.json() == retried.json()
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 2
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 10


async def test_a_crash_after_the_order_committed_is_not_charged_twice_on_retry(client, alchemy, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "k-committed"}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 2}, headers=headers)
    placed = await client.post("/api/checkout", json=checkout_body(), headers=headers)
    assert placed.status_code == 201, placed.text
    # The worker died after the order committed but before the response was stored with the key.
    async with write_session(alchemy) as session:
        await session.execute(
            update(IdempotencyRecord)
            .where(IdempotencyRecord.key == "k-committed")
            .values(response_status=None, response_body=None, updated_at=datetime.now(UTC) - timedelta(minutes=5))
        )
        await session.commit()
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=headers)  # a new cart
    retried = await client.post("/api/checkout", json=checkout_body(), headers=headers)
    assert retried.status_code == 201, retried.text
    assert retried.json() == placed.json()  # the same order, not a second one
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 1
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "DC-1")) == 10
    assert [line["sku"] for line in (await client.get("/api/cart", headers=headers)).json()["lines"]] == ["DC-1"]


async def test_orders_visibility_cancel_and_admin_status_changes(client, alchemy, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "o-1"}
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 4}, headers=headers)
    order = (await client.post("/api/checkout", json=checkout_body(), headers=headers)).json()
    eve = await bearer(client, "eve@example.com")
    assert_problem(await client.get(f"/api/orders/{order['id']}", headers=eve), 404)
    assert_problem(await client.post(f"/api/orders/{order['id']}/cancel", headers=eve), 404)
    assert (await client.get("/api/orders", headers=eve)).json()["items"] == []
    assert_problem(await client.get("/api/orders", params={"customer_id": 1}, headers=eve), 403)
    me = (await client.get("/api/users/me", headers=headers)).json()["id"]  # one's own id: one's own orders (QA)
    mine = (await client.get("/api/orders", params={"customer_id": me}, headers=headers)).json()["items"]
    assert [o["id"] for o in mine] == [order["id"]]
    assert_problem(await client.patch(f"/api/orders/{order['id']}", json={"status": "shipped"}, headers=eve), 403)

    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    boss = {"Authorization": f"Bearer {(await token_pair(client, 'boss@example.com'))['access_token']}"}
    listed = (await client.get("/api/orders", params={"status": "paid"}, headers=boss)).json()
    assert [o["id"] for o in listed["items"]] == [order["id"]]
    assert (await client.get("/api/orders", params={"view": "mine"}, headers=boss)).json()["items"] == []  # QA
    both = await client.get("/api/orders", params={"view": "mine", "customer_id": 1}, headers=boss)
    assert assert_problem(both, 422)["errors"] == {
        "customer_id": "view=mine lists your own orders; leave customer_id out."
    }
    shipped = await client.patch(f"/api/orders/{order['id']}", json={"status": "shipped"}, headers=boss)
    assert shipped.status_code == 200 and shipped.json()["status"] == "shipped"
    assert_problem(await client.post(f"/api/orders/{order['id']}/cancel", headers=headers), 409)
    assert_problem(await client.patch(f"/api/orders/{order['id']}", json={"status": "paid"}, headers=boss), 409)
    assert_problem(await client.patch(f"/api/orders/{order['id']}", json={"total": 1}, headers=boss), 400)


async def test_two_concurrent_cancels_restore_stock_once(client, alchemy, skus):
    headers = {**(await bearer(client)), "Idempotency-Key": "c-1"}
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 4}, headers=headers)
    order = (await client.post("/api/checkout", json=checkout_body(), headers=headers)).json()
    responses = await asyncio.gather(
        *(client.post(f"/api/orders/{order['id']}/cancel", headers=headers) for _ in range(2))
    )
    assert sorted(r.status_code for r in responses) == [200, 409]
    async with alchemy.get_session() as session:
        assert await session.scalar(select(Variant.stock).where(Variant.sku == "EP-1")) == 40
        assert await find_ledger_mismatches(session) == []


async def test_openapi_and_docs_are_served(client):
    schema = (await client.get("/api/openapi.json")).json()
    assert schema["openapi"].startswith("3.1")
    operations = {op["operationId"] for path in schema["paths"].values() for op in path.values()}
    assert {"createToken", "listProducts", "checkout", "updateOrderStatus"} <= operations
    assert schema["paths"]["/api/cart"]["get"]["security"] == [{"BearerToken": []}]
    assert "/cart" not in schema["paths"]  # pages are not part of the API
    # Every operation that takes a body says it refuses another media type (415), as it does.
    with_body = [op for path in schema["paths"].values() for op in path.values() if "requestBody" in op]
    assert with_body and all("415" in op["responses"] for op in with_body)
    assert not [
        op["operationId"]
        for path in schema["paths"].values()
        for op in path.values()
        if "415" in op["responses"] and "requestBody" not in op
    ]
    for page in ("/api/docs", "/api/redoc", "/api/scalar"):
        response = await client.get(page)
        assert response.status_code == 200 and "text/html" in response.headers["content-type"]
    # The creates whose resource a client can GET say where it is (Location, RFC 9110 §15.3.2).
    located = {
        op["operationId"]
        for path in schema["paths"].values()
        for op in path.values()
        if "Location" in op["responses"].get("201", {}).get("headers", {})
    }
    assert {"register", "checkout", "createProduct", "createShop", "createPromotion", "saveAddress"} <= located


async def test_unknown_api_route_is_a_problem(client):
    assert_problem(await client.get("/api/nothing-here"), 404)
