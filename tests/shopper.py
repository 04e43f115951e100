"""A shopper driven over HTTP, as a browser without JavaScript would: forms with their CSRF tokens.

Works with Litestar's in-process ``AsyncTestClient`` and with ``httpx.AsyncClient`` against a live
server, so the same steps drive the single-process and the multi-worker tests.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import urlsplit

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


async def confirm_address(client: Any, path: str) -> Any:
    """Follow an address verification link as its owner does: open it (a page that confirms nothing, so
    a mail scanner fetching it confirms nothing), then press its one button. Returns the button's answer."""
    page = await client.get(path)
    assert page.status_code == 200 and "Yes, confirm" in page.text, page.text[:500]
    return await post(client, path, token_from=path)


def forged(token: str) -> str:
    """``token`` with one character of its signature changed, so it can never verify.

    Not the last character: base64 leaves that one's lowest bits unused, so some changes to it decode
    to the same signature (a test that swapped the last two for "xx" passed a forgery about once in a
    thousand runs).
    """
    changed = "A" if token[-2] != "A" else "B"
    return token[:-2] + changed + token[-1]


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


def path_of(url: str) -> str:
    """The path and query of ``url`` (the test client talks to the app whatever host a link names)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


CARD_FIELD_RE = re.compile(r'<input[^>]*autocomplete="cc-number"[^>]*>')
NAME_RE = re.compile(r'name="([^"]+)"')
FORM_RE = re.compile(r'<form[^>]*action="([^"]+)"[^>]*method="post"')


async def pay_on_hosted_page(client: Any, payment_url: str, card: str = SUCCESS_CARD) -> Any:
    """Type ``card`` on the test provider's hosted payment page and submit it, as a shopper would.

    Returns the page's answer (not followed): a redirect back to the shop, to the authenticate step,
    or the page again with why the card was declined."""
    page = await client.get(path_of(payment_url))
    assert page.status_code == 200, page.text[:500]
    field = CARD_FIELD_RE.search(page.text)
    assert field, "no card number field on the hosted payment page"
    name = NAME_RE.search(field.group(0)).group(1)
    action = unescape(next(a for a in FORM_RE.findall(page.text) if "cancel" not in a))
    token = CSRF_RE.search(page.text).group(1)
    return await client.post(action, data={name: card, "_csrf_token": token}, follow_redirects=False)


async def place(client: Any, form: dict[str, str], card: str = SUCCESS_CARD) -> Any:
    """Submit the review form, then pay ``card`` on the hosted payment page and come back to the shop.

    Returns the last answer not followed: for a card that pays, the return's redirect to the order's
    page (``/orders/WS-...?placed=1``); else the review page's answer (an error) or the hosted page's
    (a declined card: the page again with the message; the authenticate step: a redirect to it)."""
    response = await client.post("/checkout/place", data=form, follow_redirects=False)
    location = response.headers.get("location", "")
    if response.status_code != 303 or "/test-payments/" not in location:
        return response
    paid = await pay_on_hosted_page(client, location, card)
    back = paid.headers.get("location", "")
    if paid.status_code == 303 and "/checkout/return/" in back:
        return await client.get(path_of(back), follow_redirects=False)
    return paid


async def ready_to_pay(client: Any, email: str, variant_id: int, quantity: int = 1) -> dict[str, str]:
    """Register, fill the cart, pass address and shipping, open review; return the payment form."""
    await register(client, email)
    response = await add_to_cart(client, variant_id, quantity)
    assert response.status_code == 303, response.text[:500]
    await choose_address_and_shipping(client)
    return await review(client)


async def as_guest(client: Any, email: str, shipping: str = "standard") -> Any:
    """Checkout steps 1 and 2 as a guest: "Check out as a guest" on the cart page, then the e-mail address
    with a new address, and the shipping method. Returns the address step's answer (a 303 when accepted;
    the form again with the messages otherwise, and the shipping step is not done)."""
    cart = await client.get("/cart")
    assert 'href="/checkout/guest"' in cart.text, "no 'Check out as a guest' on the cart page"
    await client.get("/checkout/guest", follow_redirects=False)
    response = await post(
        client, "/checkout/address", {"address_id": "new", "email": email, **ADDRESS}, token_from="/checkout/address"
    )
    if response.status_code != 303:
        return response
    shipped = await post(client, "/checkout/shipping", {"shipping_method": shipping}, token_from="/cart")
    assert shipped.status_code == 303, shipped.text[:500]
    return response


async def guest_ready_to_pay(client: Any, email: str, variant_id: int, quantity: int = 1) -> dict[str, str]:
    """A guest fills the cart, passes address (with ``email``) and shipping, opens review; return the payment form."""
    response = await add_to_cart(client, variant_id, quantity)
    assert response.status_code == 303, response.text[:500]
    response = await as_guest(client, email)
    assert response.status_code == 303, response.text[:500]
    return await review(client)
