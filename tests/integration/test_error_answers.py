"""Error answers fit where htmx puts them: the whole page for a boosted request, the message alone for a swap.

htmx swaps every 4xx/5xx answer (``responseHandling`` in ``templates/base.html``): a boosted link or
form replaces the body, so it needs the page; an ``hx-get``/``hx-post`` that targets a part of the page
(the cart, the search results) must not get a page nested inside the page.
"""

from __future__ import annotations

import base64
import json
import re

import pytest

from tests.api_user import bearer
from tests.shopper import csrf, register, text_of

BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
PART = {"HX-Request": "true", "HX-Target": "cart"}


async def test_a_plain_request_gets_the_error_page(client):
    response = await client.get("/no-such-page")
    assert response.status_code == 404
    assert "<html" in response.text and "We could not find that page." in response.text
    assert "HX-Request" in response.headers.get("vary", "")


async def test_a_boosted_request_gets_the_whole_page(client):
    response = await client.get("/no-such-page", headers=BOOSTED)
    assert response.status_code == 404
    assert "<title>Page not found · webshop</title>" in response.text
    assert "We could not find that page." in response.text


async def test_a_partial_swap_gets_the_message_alone(client):
    response = await client.get("/no-such-page", headers=PART)
    assert response.status_code == 404
    assert "<html" not in response.text and "<header" not in response.text
    assert re.search(
        r'role="alert"[^>]*><p><strong>Page not found\.</strong> We could not find that page\.</p>', response.text
    )


async def test_an_expired_form_in_a_partial_swap_says_so_in_place(client):
    await csrf(client, "/cart")
    response = await client.post("/cart/clear", headers={**PART, "x-csrftoken": "not-the-token"})
    assert response.status_code == 403
    assert "<html" not in response.text
    assert "Your form expired or came from another site. Reload the page and try again." in response.text


async def test_htmx_config_swaps_every_error_answer(client):
    """The page tells htmx to swap 4xx answers (no error event: the page shows the message) and 5xx ones."""
    page = (await client.get("/account/sign-in")).text
    config = json.loads(re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", page).group(1))
    rules = config["responseHandling"]

    def rule_for(status: int) -> dict:
        return next(rule for rule in rules if re.fullmatch(rule["code"], str(status)))

    for status in (400, 403, 404, 409, 413, 422, 429):
        assert rule_for(status) == {"code": "4..", "swap": True, "error": False}, status
    for status in (500, 502, 503):
        assert rule_for(status)["swap"] is True, status
    assert rule_for(204)["swap"] is False
    # htmx must never write a style attribute (the policy refuses inline styles) nor restore a page from
    # a copy kept in the browser (which may carry attributes others added to it).
    assert "style" not in config["attributesToSettle"]
    assert config["historyCacheSize"] == 0 and config["refreshOnHistoryMiss"] is True


async def test_a_boosted_form_answered_with_its_errors_leaves_the_address_bar_alone(client):
    """htmx pushes a boosted request's URL into the history: for a post answered with its form again that
    URL only answers POST, so the answer says ``HX-Push-Url: false`` and the address stays on the page."""
    await register(client, "history@example.com")
    token = await csrf(client, "/account")
    refused = await client.post(
        "/account/password",
        data={"current_password": "not it at all", "new_password": "a new password", "_csrf_token": token},
        headers=BOOSTED,
        follow_redirects=False,
    )
    assert refused.status_code in (400, 422) and "Your account" in refused.text
    assert refused.headers["hx-push-url"] == "false"
    # Were the address pushed, a reload would GET it: that leads to the page of the form, not a 405.
    for path, page in (("/account/password", "/account"), ("/cart/items", "/cart"), ("/cart/lines/7/remove", "/cart")):
        answer = await client.get(path, follow_redirects=False)
        assert (answer.status_code, answer.headers["location"]) == (303, page), path
    assert (await client.post("/account/password", follow_redirects=False)).status_code == 403  # no CSRF token
    assert (await client.get("/api/cart/items", headers={"Authorization": "Bearer x"})).status_code in (401, 405)
    # Pages and redirects keep htmx's history as it was: a boosted GET pushes its own URL.
    page = await client.get("/account", headers=BOOSTED)
    assert page.status_code == 200 and "hx-push-url" not in page.headers


async def test_a_page_address_with_a_value_out_of_range_says_which_in_words(client):
    response = await client.get("/?page=0")
    assert response.status_code == 400
    text = text_of(response.text)
    assert "This address has a value we cannot use (“page”). Go back, or start again from the home page." in text
    assert "Validation failed" not in text  # Litestar's message is for developers


async def test_admin_addresses_with_numbers_no_database_holds_are_answered_not_crashed(admin):
    """An id past what a row id can be names no page (404); a page number past the last list page
    reads as the last one read (an empty page); the last date there is is a date like any other."""
    for path in (
        "/admin/products/9223372036854775808",
        "/admin/users/9223372036854775808",
        "/admin/orders/9223372036854775808",
        "/admin/categories/999999999999999999999",
    ):
        response = await admin.get(path)
        assert response.status_code == 404, path
        assert "We could not find that page." in text_of(response.text), path
    for path in ("/admin/orders", "/admin/users"):
        response = await admin.get(f"{path}?page=999999999999999999")
        assert response.status_code == 200, path
        assert f'href="{path}?page=1">Last page (1)</a>' in response.text, path  # read as page 100,000: past the end
    users = await admin.get("/admin/users?page=999999999999999999")
    assert "There is no page 100000." in text_of(users.text)  # the admin is a user: the list has one page
    assert (await admin.get("/orders?page=999999999999999999")).status_code == 200
    last_day = await admin.get("/admin/orders?date_to=9999-12-31")
    assert last_day.status_code == 200 and 'value="9999-12-31"' in last_day.text
    assert (await admin.get("/?price_min=1e999999")).status_code == 200  # not a price: the filter is ignored
    # "²" passes str.isdigit() but not int(); full-width "２" passes int(): neither is a number here.
    for path in ("/admin/orders?shop=²", "/admin/products?shop=２&category=²", "/admin/stock?shop=²"):
        assert (await admin.get(path)).status_code == 200, path


async def test_an_order_cursor_of_other_digits_than_ascii_is_a_problem_not_a_crash(client):
    """An id cursor outside its documented pattern is a 400, as on every id-cursor list (users, deliveries)."""
    headers = await bearer(client)
    for cursor in ("²", "x", "1" * 16):
        response = await client.get("/api/orders", params={"cursor": cursor}, headers=headers)
        assert response.status_code == 400 and "cursor" in response.text, (cursor, response.text)


@pytest.mark.parametrize("text", ["\\ud800", "\\u0000"])
async def test_a_name_cursor_carrying_what_no_engine_stores_is_a_problem_not_a_crash(client, text):
    """A crafted cursor's name with a lone surrogate (UTF-8 cannot encode it) or a NUL (PostgreSQL's text
    refuses it) was a 500 from the database driver."""
    for sort in ("name", "-name"):
        catalog = base64.urlsafe_b64encode(f'{{"s":"{sort}","v":["{text}",1]}}'.encode()).decode().rstrip("=")
        page = await client.get("/api/products", params={"sort": sort, "cursor": catalog})
        assert page.status_code == 422 and page.json()["errors"] == {"cursor": "Invalid cursor."}, page.text
    shops = base64.urlsafe_b64encode(f'["{text}",1]'.encode()).decode().rstrip("=")
    page = await client.get("/api/shops", params={"cursor": shops})
    assert page.status_code == 422 and page.json()["errors"] == {"cursor": "Invalid cursor."}, page.text


async def test_a_json_body_that_gives_a_field_twice_is_refused_and_nothing_is_written(client, skus):
    """msgspec keeps a repeated name's last value; another reader may keep the first (RFC 8259 section 4)."""
    headers = await bearer(client)
    body = b'{"sku": "NOPE", "quantity": 1, "sku": "DC-1"}'
    added = await client.post("/api/cart/items", content=body, headers={**headers, "Content-Type": "application/json"})
    assert added.status_code == 400, added.text
    assert added.json()["errors"] == {"sku": "This field is given more than once: send it once (RFC 8259 section 4)."}
    assert (await client.get("/api/cart", headers=headers)).json()["lines"] == []
    nested = b'{"shipping_address": {"country": "FR", "country": "US"}, "shipping_method": "standard"}'
    checkout = await client.post(
        "/api/checkout", content=nested, headers={**headers, "Content-Type": "application/json", "Idempotency-Key": "k"}
    )
    assert (checkout.status_code, list(checkout.json()["errors"])) == (400, ["shipping_address.country"])
