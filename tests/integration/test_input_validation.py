"""Text input on both engines: no control character gets in, and a JSON body is read by strict types.

A NUL or another control character in any text field is refused where the input is decoded (the shared
types of ``webshop/text.py``): 400 problem+json naming the field for the API, the form again with a
message for a page; nothing is saved. On PostgreSQL a NUL that got as far as the database was a 500.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from tests.conftest import make_settings
from tests.shopper import ADDRESS, PASSWORD, add_to_cart, place, post, ready_to_pay, register, text_of
from webshop.accounts.service import UserService
from webshop.db.engine import write_session
from webshop.db.models import Address, CartLine, Order, Product, User, UserRole, Variant
from webshop.text import BIDI_MESSAGE, CONTROL_MESSAGE

CONTROLS = ["\x00", "\x1b", "\x7f", "\x85", "\t", "\n", "\u202e", "\u2066"]  # and bidi controls (QA)
"""NUL, ESC, DEL, a C1 control, and tab and line feed, which single-line fields refuse too."""
CHECKOUT = {
    "shipping_address": {k: v for k, v in ADDRESS.items() if k != "line2"},
    "shipping_method": "standard",
    "payment": {"token": "tok_visa"},
}


async def bearer(client, email="ada@example.com") -> dict[str, str]:
    body = {"email": email, "password": PASSWORD, "name": "Ada"}
    assert (await client.post("/api/auth/register", json=body)).status_code == 201
    response = await client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def admin_bearer(client, alchemy) -> dict[str, str]:
    async with write_session(alchemy) as session:
        await UserService(session=session).register(
            email="boss@example.com", name="Boss", password=PASSWORD, role=UserRole.ADMIN
        )
        await session.commit()
    response = await client.post("/api/auth/token", data={"username": "boss@example.com", "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def field_errors(response, status: int = 400) -> dict[str, str]:
    """The problem+json ``errors`` of a refused API request."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text
    return response.json()["errors"]


async def count(alchemy, model, *where) -> int:
    async with alchemy.get_session() as session:
        return await session.scalar(select(func.count()).select_from(model).where(*where))


# --- the JSON API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("control", CONTROLS, ids=repr)
async def test_api_profile_name_with_a_control_character_is_refused(client, alchemy, control):
    headers = await bearer(client)
    response = await client.patch("/api/users/me", json={"name": f"Ada{control}Lovelace"}, headers=headers)
    assert "name" in field_errors(response)
    assert (await client.get("/api/users/me", headers=headers)).json()["name"] == "Ada"


@pytest.mark.parametrize("facet", ["brand", "color", "shop"])
async def test_api_catalog_facet_values_with_nul_are_refused_as_the_schema_says(client, skus, facet):
    """A facet value is text like any other: a control character is a 400 naming the parameter, and the
    OpenAPI document says so (the items' pattern), so a client generated from it never sends one."""
    for path in ("/api/products", "/api/products/facets"):
        assert facet in field_errors(await client.get(path, params={facet: "Ac\x00me"}))
        assert (await client.get(path, params={facet: "Acme"})).status_code == 200
        parameters = (await client.get("/api/openapi.json")).json()["paths"][path]["get"]["parameters"]
        [schema] = [p["schema"] for p in parameters if p["name"] == facet]
        assert schema["items"] == {
            "type": "string",
            "pattern": "^[^\\x00-\\x1f\\x7f-\\x9f\\u202a-\\u202e\\u2066-\\u2069\\ufdd0-\\ufdef\\ufffe\\uffff]*$",
        }


@pytest.mark.parametrize(
    "name", ["\u200b", " \u200b\u200d ", "\ufeff", "\u0301\u0301\u0301", "\ufe0f", "\uffff", "Ann\ufdd0"], ids=repr
)
async def test_api_a_name_of_invisible_characters_only_is_refused(client, alchemy, name):
    """QA: a name of a zero-width space, or of combining accents alone, passed "at least one visible
    character" and showed as nothing; a noncharacter is never interchanged (Unicode section 23.7)."""
    headers = await bearer(client)
    assert "name" in field_errors(await client.patch("/api/users/me", json={"name": name}, headers=headers))
    joined = await client.patch("/api/users/me", json={"name": "Mi\u200dna"}, headers=headers)  # inside: allowed
    assert joined.status_code == 200, joined.text
    accent = await client.patch("/api/users/me", json={"name": "Zoe\u0301"}, headers=headers)  # a mark after e
    assert accent.status_code == 200, accent.text


async def test_api_register_name_with_nul_is_refused_and_no_account_is_made(client, alchemy):
    body = {"email": "nul@example.com", "password": PASSWORD, "name": "N\x00L", "bogus": 1}
    errors = field_errors(await client.post("/api/auth/register", json=body))
    assert {"name", "bogus"} <= set(errors)  # every bad field at once, an unknown one too
    body = {"email": "x", "password": "short", "name": ""}
    assert set(field_errors(await client.post("/api/auth/register", json=body))) == {"email", "password", "name"}
    assert await count(alchemy, User) == 0


@pytest.mark.parametrize("field", ["name", "line1", "line2", "city", "postal_code"])
async def test_api_checkout_address_with_nul_is_refused_and_nothing_is_ordered(client, alchemy, skus, field):
    headers = await bearer(client)
    assert (await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 2}, headers=headers)).is_success
    body = {**CHECKOUT, "shipping_address": {**CHECKOUT["shipping_address"], field: "12\x00 B"}}
    keyed = {**headers, "Idempotency-Key": "nul-address-1"}
    errors = field_errors(await client.post("/api/checkout", json=body, headers=keyed))
    assert f"shipping_address.{field}" in errors
    assert await count(alchemy, Order) == 0 and await count(alchemy, Address) == 0
    assert await count(alchemy, CartLine) == 1
    # Refused before anything was claimed: the same key places the order once the address is right.
    response = await client.post("/api/checkout", json=CHECKOUT, headers=keyed)
    assert response.status_code == 201, response.text
    assert response.json()["shipping_address"]["country"] == "GB"


async def test_admin_api_product_name_with_nul_is_refused_and_nothing_is_saved(client, alchemy, skus):
    headers = await admin_bearer(client, alchemy)
    products = await count(alchemy, Product)
    product = {"name": "Trail\x00Shoe", "variants": [{"sku": "TS-1", "price": 12900}]}
    assert "name" in field_errors(await client.post("/api/products", json=product, headers=headers))
    nested = {"name": "Trail Shoe", "variants": [{"sku": "TS\x1b1", "price": 12900}]}
    assert "variants[0].sku" in field_errors(await client.post("/api/products", json=nested, headers=headers))
    assert await count(alchemy, Product) == products and await count(alchemy, Variant, Variant.sku == "TS-1") == 0
    # A description is multi-line text: tab and line breaks are fine there (and nowhere else).
    fine = {**product, "name": "Trail Shoe", "description": "Grippy.\r\n\tWaterproof."}
    response = await client.post("/api/products", json=fine, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "Grippy.\r\n\tWaterproof."


async def test_api_json_bodies_are_decoded_by_strict_types(client, alchemy, skus):
    headers = await admin_bearer(client, alchemy)
    product = {"name": "Trail Shoe", "variants": [{"sku": "TS-1", "price": 12900}]}
    for changes, field in (
        ({"is_active": 0}, "is_active"),
        ({"is_active": "false"}, "is_active"),
        ({"variants": [{"sku": "TS-1", "price": "12900"}]}, "variants[0].price"),
        ({"variants": [{"sku": "TS-1", "price": 12900.5}]}, "variants[0].price"),
    ):
        errors = field_errors(await client.post("/api/products", json={**product, **changes}, headers=headers))
        assert field in errors, (changes, errors)
    assert await count(alchemy, Product, Product.name == "Trail Shoe") == 0
    # JSON has one number type: 12900.0 is the integer 12900, to JSON Schema and to the server.
    whole = {**product, "variants": [{"sku": "TS-1", "price": 12900.0}], "is_active": False}
    response = await client.post("/api/products", json=whole, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["variants"][0]["price"]["amount"] == 12900


async def test_api_a_body_that_says_it_is_not_json_is_415_and_changes_nothing(client, alchemy, skus):
    """RFC 9110 §15.5.16: the server refuses a body in a media type it does not take, and says which
    it takes (``Accept-Post``/``Accept-Patch``); a body with no ``Content-Type`` is read as JSON."""
    headers = await admin_bearer(client, alchemy)
    product = b'{"name": "Trail Shoe", "variants": [{"sku": "TS-1", "price": 12900}]}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml; charset=utf-8"):
        response = await client.post(
            "/api/products", content=product, headers={**headers, "Content-Type": content_type}
        )
        assert response.status_code == 415, (content_type, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["accept-post"] == "application/json"
        assert "Send the body as JSON (Content-Type: application/json)" in response.json()["detail"]
    patched = await client.patch(
        "/api/products/1", content=b'{"name": "X"}', headers={**headers, "Content-Type": "text/plain"}
    )
    assert patched.status_code == 415 and patched.headers["accept-patch"] == "application/json"
    assert await count(alchemy, Product, Product.name.in_(["Trail Shoe", "X"])) == 0
    missing = await client.post("/api/products", headers=headers)  # no body at all
    assert missing.status_code == 400
    assert missing.json()["detail"] == "This request needs a JSON body (Content-Type: application/json)."
    charset = await client.post(
        "/api/products", content=product, headers={**headers, "Content-Type": "application/json; charset=utf-8"}
    )
    assert charset.status_code == 201, charset.text


async def test_api_a_form_or_a_file_sent_as_json_is_415_naming_what_the_route_takes(client, alchemy, skus):
    """A token request (RFC 6749 §4.3.2: a form) or an upload (a file) sent as JSON is told what to send,
    not that the form's fields are missing (QA: a 400 on ``data``)."""
    headers = await admin_bearer(client, alchemy)
    token = await client.post("/api/auth/token", json={"username": "boss@example.com", "password": PASSWORD})
    assert token.status_code == 415, token.text
    assert token.headers["accept-post"] == "application/x-www-form-urlencoded"
    assert "Send the body as a form (Content-Type: application/x-www-form-urlencoded)" in token.json()["detail"]
    upload = await client.post("/api/products/1/images", json={"file": "x"}, headers=headers)
    assert upload.status_code == 415 and upload.headers["accept-post"] == "multipart/form-data", upload.text
    assert await count(alchemy, Product, Product.id == 1) == 1
    # The right types still work: the form gives a token, a file its answer (here: not an image, 422).
    assert (
        await client.post("/api/auth/token", data={"username": "boss@example.com", "password": PASSWORD})
    ).status_code == 200
    image = await client.post("/api/products/1/images", files={"file": ("a.png", b"not an image")}, headers=headers)
    assert image.status_code == 422, image.text


# --- the pages --------------------------------------------------------------------------------------


async def test_profile_page_refuses_nul_with_the_form_and_a_message(client, alchemy):
    await register(client, "ada@example.com", name="Ada")
    response = await post(client, "/account/profile", {"name": "Ada\x00"}, token_from="/account")
    assert response.status_code == 422
    assert '<form action="/account/profile"' in response.text and CONTROL_MESSAGE in text_of(response.text)
    async with alchemy.get_session() as session:
        assert await session.scalar(select(User.name)) == "Ada"


async def test_register_page_refuses_control_characters_and_keeps_what_fits(client, alchemy):
    data = {"email": "ada@example.com", "name": "Ada\x1b[31m", "password": PASSWORD}
    response = await post(client, "/account/register", data, token_from="/account/register")
    assert response.status_code == 422
    assert CONTROL_MESSAGE in text_of(response.text)
    assert 'value="ada@example.com"' in response.text  # the e-mail address typed is kept
    assert await count(alchemy, User) == 0


async def test_register_page_refuses_a_right_to_left_override_with_its_own_message(client, alchemy):
    data = {"email": "ada@example.com", "name": "\u202eevil", "password": PASSWORD}
    response = await post(client, "/account/register", data, token_from="/account/register")
    assert response.status_code == 422
    assert BIDI_MESSAGE in text_of(response.text)
    assert await count(alchemy, User) == 0


async def test_sign_in_page_refuses_nul_with_the_form(client):
    response = await post(client, "/account/sign-in", {"email": "ada@example.com\x00", "password": PASSWORD})
    assert response.status_code == 400 and CONTROL_MESSAGE in text_of(response.text)
    assert 'action="/account/sign-in"' in response.text


@pytest.mark.parametrize("field", ["name", "line1", "city", "postal_code", "country"])
async def test_checkout_address_page_refuses_nul_with_the_form(client, alchemy, skus, field):
    await register(client, "ada@example.com")
    assert (await add_to_cart(client, skus["DC-1"])).status_code == 303
    data = {"address_id": "new", **ADDRESS, field: "N\x00L"}
    response = await post(client, "/checkout/address", data, token_from="/cart")
    assert response.status_code == 422
    assert CONTROL_MESSAGE in text_of(response.text)
    assert re.search(r'value="12 Analytical Way"|value="London"', response.text)  # the rest is kept
    assert await count(alchemy, Address) == 0


async def test_the_payment_page_refuses_odd_card_numbers_with_the_page_again(client, alchemy, skus):
    form = await ready_to_pay(client, "ada@example.com", skus["DC-1"])
    for card in ("4242\x004242", "²" * 16):  # a NUL; digits that are not 0-9 (were a 500)
        response = await place(client, form, card=card)
        assert response.status_code == 422, (card, response.status_code)
        assert 'autocomplete="cc-number"' in response.text  # the hosted payment page, with the message
    async with alchemy.get_session() as session:
        assert list(await session.scalars(select(Order.status))) == ["pending"]  # waiting for a good card


# --- the published schema ---------------------------------------------------------------------------


def test_the_schema_states_the_patterns_in_json_schema_syntax(tmp_path):
    """Python's end-of-text ``\\Z`` never reaches the OpenAPI schema; every text field of every input
    shape has a pattern (and so refuses control characters)."""
    from webshop.app import create_app

    app = create_app(make_settings(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}", tmp_path / "media"))
    document = app.openapi_schema.to_schema()
    schemas = document["components"]["schemas"]
    assert "\\Z" not in repr(document)
    inputs = [name for name, schema in schemas.items() if schema.get("additionalProperties") is False]
    assert {"RegisterIn", "UserPatch", "AddressIn", "ProductCreate", "CartItemIn"} <= set(inputs)
    for name in inputs:
        for field, schema in schemas[name]["properties"].items():
            arms = schema.get("oneOf", [schema])
            texts = [arm for arm in arms if arm.get("type") == "string" and "format" not in arm]
            if texts and "enum" not in schema and not all("enum" in arm for arm in texts):  # an enum is stricter
                assert "pattern" in schema, (name, field)
