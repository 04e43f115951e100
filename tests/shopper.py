"""A shopper driven over HTTP, as a browser without JavaScript would: forms with their CSRF tokens.

Works with Litestar's in-process ``AsyncTestClient`` and with ``httpx.AsyncClient`` against a live
server, so the same steps drive the single-process and the multi-worker tests.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

CSRF_RE = re.compile(r'(?:name="_csrf_token" value="|"x-csrftoken": ")([^"]+)"')
TOKEN_RE = re.compile(r'name="checkout_token" value="([^"]+)"')
SIGNATURE_RE = re.compile(r'name="cart_signature" value="([^"]*)"')
PASSWORD = "correct horse battery"
SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Way",
    "line2": "",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "gb",
}


async def csrf(client: Any, path: str = "/account/sign-in") -> str:
    """The CSRF token of a page's forms."""
    response = await client.get(path)
    match = CSRF_RE.search(response.text)
    assert match, f"no CSRF token on {path}: {response.status_code}"
    return match.group(1)


async def post(
    client: Any,
    path: str,
    data: dict[str, Any] | None = None,
    *,
    token_from: str = "/account/sign-in",
    headers: dict[str, str] | None = None,
) -> Any:
    """Post a form with a fresh CSRF token (from the page ``token_from``); redirects are not followed."""
    token = await csrf(client, token_from)
    return await client.post(
        path, data={**(data or {}), "_csrf_token": token}, headers=headers or {}, follow_redirects=False
    )


def text_of(html: str) -> str:
    """What a reader sees of a page: tags dropped, entities decoded, whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()


async def register(client: Any, email: str, name: str = "Shopper") -> Any:
    """Create an account (and be signed in)."""
    response = await post(
        client,
        "/account/register",
        {"email": email, "name": name, "password": PASSWORD},
        token_from="/account/register",
    )
    assert response.status_code == 303, response.text[:500]
    return response


async def sign_in(client: Any, email: str, password: str = PASSWORD) -> Any:
    """Sign in."""
    return await post(client, "/account/sign-in", {"email": email, "password": password})


async def add_to_cart(client: Any, variant_id: int, quantity: int = 1, **headers: str) -> Any:
    """Add a variant to the cart from its product page form."""
    token = await csrf(client, "/cart")
    return await client.post(
        "/cart/items",
        data={"variant_id": str(variant_id), "quantity": str(quantity), "_csrf_token": token},
        headers=headers,
        follow_redirects=False,
    )


async def choose_address_and_shipping(client: Any, shipping: str = "standard") -> None:
    """Checkout steps 1 and 2 with a new address."""
    response = await post(client, "/checkout/address", {"address_id": "new", **ADDRESS}, token_from="/cart")
    assert response.status_code == 303, response.text[:500]
    response = await post(client, "/checkout/shipping", {"shipping_method": shipping}, token_from="/cart")
    assert response.status_code == 303, response.text[:500]


async def review(client: Any) -> dict[str, str]:
    """Open the review page; return the payment form's hidden fields and CSRF token."""
    response = await client.get("/checkout/review")
    assert response.status_code == 200, response.text[:500]
    return {
        "checkout_token": TOKEN_RE.search(response.text).group(1),
        "cart_signature": SIGNATURE_RE.search(response.text).group(1),
        "_csrf_token": CSRF_RE.search(response.text).group(1),
    }


async def place(client: Any, form: dict[str, str], card: str = SUCCESS_CARD) -> Any:
    """Submit the payment form."""
    return await client.post("/checkout/place", data={**form, "card_number": card}, follow_redirects=False)


async def ready_to_pay(client: Any, email: str, variant_id: int, quantity: int = 1) -> dict[str, str]:
    """Register, fill the cart, pass address and shipping, open review; return the payment form."""
    await register(client, email)
    response = await add_to_cart(client, variant_id, quantity)
    assert response.status_code == 303, response.text[:500]
    await choose_address_and_shipping(client)
    return await review(client)
