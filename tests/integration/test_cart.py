"""The cart over HTTP: guest and signed-in carts, stock checks, htmx fragments, merge at sign-in."""

from __future__ import annotations

import re

from sqlalchemy import update

from tests.shopper import add_to_cart, csrf, post, register, sign_in, text_of
from webshop.db.models import Variant


def badge(html: str) -> int:
    return int(re.search(r'id="cart-badge"[^>]*>Cart <span class="badge-count">(\d+)<', html, re.S).group(1))


async def test_guest_adds_to_cart_and_sees_lines_and_totals(client, skus):
    response = await add_to_cart(client, skus["BC-1"], 2)
    assert response.status_code == 303
    assert response.headers["location"] == "/cart"
    page = await client.get("/cart")
    assert "Beta Camera" in page.text
    assert badge(page.text) == 2
    assert re.search(r'id="cart-subtotal">\$900.00<', page.text)
    # 20 % standard rate on the goods ($180.00) and on the cheapest shipping, $5.00 ($1.00)
    assert re.search(r'id="cart-tax">\$181.00<', page.text)
    assert re.search(r'id="cart-total"><strong>\$1,086.00<', page.text)
    # One rate: one tax line that names it, not a rate line and then the same sum again as "Tax".
    assert "<dt>Tax 20% on $905.00</dt>" in page.text
    assert "tax-line" not in page.text and "<dt>Tax</dt>" not in page.text


async def test_two_tax_rates_show_a_line_each_and_their_sum(client, alchemy, skus):
    from sqlalchemy import update

    from webshop.db.engine import write_session
    from webshop.db.models import Variant

    async with write_session(alchemy) as session:
        await session.execute(update(Variant).where(Variant.id == skus["DC-1"]).values(tax_category="reduced"))
        await session.commit()
    await add_to_cart(client, skus["BC-1"], 1)
    await add_to_cart(client, skus["DC-1"], 1)
    page = (await client.get("/cart")).text
    lines = re.findall(r'<dt class="muted">(Tax [^<]+)</dt><dd class="muted tax-line">([^<]+)<', page)
    assert [label for label, _ in lines] == ["Tax 10% on $89.00", "Tax 20% on $455.00"], lines
    total = sum(int(amount.strip("$").replace(".", "")) for _, amount in lines)
    assert re.search(rf'<dt>Tax</dt><dd id="cart-tax">\${total // 100}.{total % 100:02d}<', page), page


async def test_a_lines_options_are_named_as_on_the_product_page(client, skus):
    await add_to_cart(client, skus["AL-13"], 1)
    page = (await client.get("/cart")).text
    assert "Screen size: 13 inch" in page  # the picker's label, "Screen size", not the stored "screen size"


async def test_adding_more_than_stock_says_only_n_left_and_changes_nothing(client, skus):
    response = await add_to_cart(client, skus["BC-1"], 5)
    assert response.status_code == 409
    assert "Only 3 left of Beta Camera (BC-1); you asked for 5." in response.text
    assert "<h1>Beta Camera</h1>" in response.text  # the product page, re-rendered with the message
    assert "Your cart is empty" in (await client.get("/cart")).text


async def test_sold_out_variant_cannot_be_added(client, skus):
    response = await add_to_cart(client, skus["GC-1"], 1)
    assert response.status_code == 409
    assert "Gamma Camera (GC-1) is sold out." in response.text


async def test_htmx_add_returns_fragment_with_out_of_band_badge(client, skus):
    response = await add_to_cart(client, skus["DC-1"], 1, **{"HX-Request": "true", "HX-Target": "cart-feedback"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert "Added Delta Chair to your cart." in response.text
    assert 'id="cart-badge" class="cart-badge" hx-swap-oob="true"' in response.text
    assert badge(response.text) == 1
    error = await add_to_cart(client, skus["DC-1"], 50, **{"HX-Request": "true"})
    assert error.status_code == 409
    assert "Only 12 left" in error.text
    assert "<html" not in error.text


async def test_change_quantity_remove_and_empty(client, skus):
    await add_to_cart(client, skus["DC-1"], 1)
    await add_to_cart(client, skus["EP-1"], 1)
    page = (await client.get("/cart")).text
    chair_line = int(re.search(r'id="line-(\d+)" data-sku="DC-1"', page).group(1))
    plant_line = int(re.search(r'id="line-(\d+)" data-sku="EP-1"', page).group(1))
    response = await post(client, f"/cart/lines/{chair_line}", {"quantity": "3"}, token_from="/cart")
    assert response.status_code == 303
    assert badge((await client.get("/cart")).text) == 4
    too_many = await post(client, f"/cart/lines/{chair_line}", {"quantity": "13"}, token_from="/cart")
    assert too_many.status_code == 409
    assert "Only 12 left of Delta Chair" in too_many.text
    assert 'value="3"' in too_many.text  # nothing changed
    assert too_many.text.count('id="cart-badge"') == 1  # the whole page: one badge, none out of band (QA)
    fragment = await client.post(
        f"/cart/lines/{plant_line}/remove",
        data={"_csrf_token": await csrf(client, "/cart")},
        headers={"HX-Request": "true", "HX-Target": "cart"},
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert "Epsilon Plant" not in fragment.text
    assert 'hx-swap-oob="true"' in fragment.text
    assert (await post(client, "/cart/clear", {}, token_from="/cart")).status_code == 303
    assert "Your cart is empty" in (await client.get("/cart")).text


async def test_a_refused_quantity_is_shown_again_beside_its_message(client, skus):
    refused = await add_to_cart(client, skus["DC-1"], 150)  # without JavaScript: the product page again
    assert refused.status_code == 422
    assert "Choose a quantity from 1 to 99." in refused.text
    assert re.search(r'<input type="number" id="quantity" name="quantity" value="150"', refused.text)
    fresh = (await client.get("/products/delta-chair")).text  # a fresh page starts at 1
    assert re.search(r'<input type="number" id="quantity" name="quantity" value="1"', fresh)


async def test_an_empty_quantity_is_stopped_in_the_browser_and_named_as_a_form_value(client, skus):
    page = (await client.get("/products/delta-chair")).text
    assert re.search(r'<input type="number" id="quantity" name="quantity"[^>]* required>', page)
    await add_to_cart(client, skus["DC-1"], 1)
    assert re.search(
        r'name="quantity" value="1" min="0" max="99"\s+inputmode="numeric" required', (await client.get("/cart")).text
    )
    # A client that sends it anyway (no browser check) is told which form value, not "this address".
    empty = await post(client, "/cart/items", {"variant_id": str(skus["DC-1"]), "quantity": ""}, token_from="/cart")
    assert empty.status_code == 400
    assert "The form has a value we cannot use (“quantity”). Go back, correct it and try again." in text_of(empty.text)


async def test_adding_past_the_most_a_line_holds_says_what_the_cart_has(client, skus):
    await add_to_cart(client, skus["DC-1"], 1)
    refused = await add_to_cart(client, skus["DC-1"], 99)  # 99 is allowed alone, not on top of 1
    assert refused.status_code == 422
    message = "You can have at most 99 of one item in your cart; it already holds 1 of Delta Chair (DC-1)."
    assert message in text_of(refused.text)
    assert re.search(r'name="quantity" value="1"', (await client.get("/cart")).text)  # unchanged


async def test_quantity_zero_removes_and_bad_quantity_is_refused(client, skus):
    await add_to_cart(client, skus["DC-1"], 1)
    line = int(re.search(r'id="line-(\d+)"', (await client.get("/cart")).text).group(1))
    bad = await post(client, f"/cart/lines/{line}", {"quantity": "500"}, token_from="/cart")
    assert bad.status_code == 422
    assert "Choose a quantity from 1 to 99." in bad.text
    assert (await post(client, f"/cart/lines/{line}", {"quantity": "0"}, token_from="/cart")).status_code == 303
    assert "Your cart is empty" in (await client.get("/cart")).text


async def test_another_shoppers_line_is_not_found(client, app, skus):
    from litestar.testing import AsyncTestClient

    await add_to_cart(client, skus["DC-1"], 1)
    line = int(re.search(r'id="line-(\d+)"', (await client.get("/cart")).text).group(1))
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as other:
        response = await post(other, f"/cart/lines/{line}/remove", {}, token_from="/cart")
        assert response.status_code == 404
    assert "Delta Chair" in (await client.get("/cart")).text


async def test_a_merge_past_the_line_limit_says_the_limit_not_the_stock(client, app, alchemy, skus):
    from litestar.testing import AsyncTestClient

    async with alchemy.get_session() as session:
        await session.execute(update(Variant).where(Variant.sku == "EP-1").values(stock=150))
        await session.commit()
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as earlier:
        await register(earlier, "merge@example.com")
        await add_to_cart(earlier, skus["EP-1"], 60)
    await add_to_cart(client, skus["EP-1"], 60)
    assert (await sign_in(client, "merge@example.com")).status_code == 303
    page = text_of((await client.get("/cart")).text)
    assert "a cart holds at most 99 of one item, so your cart has 99." in page and "available" not in page


async def test_guest_cart_merges_into_account_at_sign_in_capped_at_stock(client, app, skus):
    from litestar.testing import AsyncTestClient

    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as earlier:
        await register(earlier, "merge@example.com")
        await add_to_cart(earlier, skus["ZS-40"], 1)
        await add_to_cart(earlier, skus["DC-1"], 2)
    # As a guest on another device: two more shoes (only 2 in stock in all) and a plant.
    await add_to_cart(client, skus["ZS-40"], 2)
    await add_to_cart(client, skus["EP-1"], 1)
    response = await sign_in(client, "merge@example.com")
    assert response.status_code == 303
    page = (await client.get("/cart")).text
    assert "Zeta Shoe (ZS-40): only 2 available, so your cart has 2." in page
    assert badge(page) == 5  # 2 shoes + 2 chairs + 1 plant
    # The message is shown once.
    assert "only 2 available" not in (await client.get("/cart")).text
