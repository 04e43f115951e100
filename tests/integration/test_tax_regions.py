"""Tax by region (issue 19's "per country, and optionally per region"): an address names its state,
province or region (ISO 3166-2), and a country the shop taxes by region asks for it, on the pages (with
every other problem of the address in one round) and in the API; the region's rate is charged and the
order keeps the region it was shipped to."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient
from sqlalchemy import select

from tests.api_user import assert_problem, bearer, bearer_of
from tests.conftest import BASE_URL
from tests.factories import make_user
from tests.shopper import add_to_cart, as_guest, post, register, review, sign_in, text_of
from webshop.db.models import Address, Order, UserRole
from webshop.money import format_money
from webshop.pricing.tax import tax_of_net

US = {"name": "Ada", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
NEEDED = (
    "Enter the state, province or region of the address: tax in the United States depends on it (as CA for California)."
)
SAVED_WITHOUT = (
    "Tax in the United States depends on the state, province or region, and Ada, 1 Main St, Springfield 12345, "
    "United States names none we know: add it to the address."
)


async def tax_california(client: Any, alchemy: Any) -> None:
    """An admin taxes the US by state: 0 % in the US at large, 7.25 % in California."""
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    boss = await bearer_of(client, "boss@example.com")
    for rate in ({"country": "US", "rate_bp": 0}, {"country": "US", "region": "US-CA", "rate_bp": 725}):
        made = await client.post("/api/tax-rates", json={"tax_category": "standard", **rate}, headers=boss)
        assert made.status_code == 201, made.text


async def order_of(alchemy: Any, number: str) -> Order:
    async with alchemy.get_session() as session:
        order = await session.scalar(select(Order).where(Order.number == number))
        assert order is not None
        return order


async def test_a_shopper_in_a_state_with_its_own_rate_is_asked_for_it_and_pays_it(client, alchemy, skus):
    await tax_california(client, alchemy)
    await register(client, "ada@example.com")
    await add_to_cart(client, skus["DC-1"], 1)

    # No state, and a postal code with a character it cannot have: both marked in one round.
    refused = await post(
        client, "/checkout/address", {"address_id": "new", **US, "postal_code": "12*45"}, token_from="/cart"
    )
    assert refused.status_code == 422
    assert 'id="region-error"' in refused.text and 'id="postal_code-error"' in refused.text
    assert NEEDED in text_of(refused.text)
    async with alchemy.get_session() as session:
        assert list(await session.scalars(select(Address))) == []  # nothing half-saved

    unknown = await post(
        client, "/checkout/address", {"address_id": "new", **US, "region": "Narnia"}, token_from="/cart"
    )
    assert unknown.status_code == 422
    assert (
        "“Narnia” is not a state, province or region of the United States: "
        "enter its name or code (as CA for California)."
    ) in text_of(unknown.text)

    # Its name, any case: kept as the ISO 3166-2 code, shown as the post writes it.
    chosen = await post(
        client, "/checkout/address", {"address_id": "new", **US, "region": "california"}, token_from="/cart"
    )
    assert chosen.status_code == 303, chosen.text[:500]
    assert (
        await post(client, "/checkout/shipping", {"shipping_method": "standard"}, token_from="/cart")
    ).status_code == 303
    page = text_of((await client.get("/checkout/review")).text)
    assert "Springfield CA 12345" in page
    assert "Tax 7.25% on" in page
    form = await review(client)
    placed = await client.post("/checkout/place", data=form, follow_redirects=False)
    assert placed.status_code == 303
    async with alchemy.get_session() as session:
        order = await session.scalar(select(Order).order_by(Order.id.desc()).limit(1))
        address = await session.scalar(select(Address))
    assert (order.ship_region, address.region) == ("US-CA", "US-CA")
    assert order.tax_total == tax_of_net(order.subtotal, 725) + tax_of_net(order.shipping_total, 725)
    assert "Springfield CA 12345" in order.shipping_address_lines()
    # The admin's order page names the rate too, as the customer's does.
    async with AsyncTestClient(app=client.app, base_url=BASE_URL) as boss:
        assert (await sign_in(boss, "boss@example.com")).status_code == 303
        page = text_of((await boss.get(f"/admin/orders/{order.id}")).text)
    assert f"Tax 7.25% on {format_money(order.subtotal + order.shipping_total, order.currency)}" in page
    assert page.count(format_money(order.tax_total, order.currency)) == 1  # one rate, one line (QA: twice)
    assert "Springfield CA 12345" in page


async def test_another_state_pays_the_countrys_rate_and_a_saved_address_without_one_is_sent_back(client, alchemy, skus):
    await register(client, "ada@example.com")
    await add_to_cart(client, skus["DC-1"], 1)
    # Saved, and shipping chosen, before the shop taxed by state: no region.
    saved = await post(client, "/checkout/address", {"address_id": "new", **US}, token_from="/cart")
    assert saved.status_code == 303
    assert (
        await post(client, "/checkout/shipping", {"shipping_method": "standard"}, token_from="/cart")
    ).status_code == 303
    await tax_california(client, alchemy)
    # The review sends the shopper back to the address step, saying why (no tax guessed).
    back = await client.get("/checkout/review", follow_redirects=False)
    assert back.status_code in (302, 303) and back.headers["location"] == "/checkout/address"
    assert SAVED_WITHOUT in text_of((await client.get("/checkout/address")).text)
    async with alchemy.get_session() as session:
        address_id = await session.scalar(select(Address.id))
    again = await post(client, "/checkout/address", {"address_id": str(address_id)}, token_from="/cart")
    assert again.status_code == 422
    assert SAVED_WITHOUT in text_of(again.text)
    assert 'value="1 Main St"' in again.text and 'id="region-error"' in again.text  # filled in, to add the state

    texas = await post(client, "/checkout/address", {"address_id": "new", **US, "region": "TX"}, token_from="/cart")
    assert texas.status_code == 303
    async with alchemy.get_session() as session:  # the same address, now with its state: still one
        assert [a.region for a in await session.scalars(select(Address))] == ["US-TX"]
    assert (
        await post(client, "/checkout/shipping", {"shipping_method": "standard"}, token_from="/cart")
    ).status_code == 303
    page = text_of((await client.get("/checkout/review")).text)
    assert "Springfield TX 12345" in page and "Tax 0%" not in page and "7.25%" not in page


async def test_a_guest_is_asked_for_the_state_with_the_rest_of_the_form(client, alchemy, skus):
    await tax_california(client, alchemy)
    await add_to_cart(client, skus["DC-1"], 1)
    await client.get("/checkout/guest", follow_redirects=False)
    fields = {"address_id": "new", **US, "email": "not-an-address"}
    refused = await post(client, "/checkout/address", fields, token_from="/checkout/address")
    assert refused.status_code == 422
    assert 'id="email-error"' in refused.text and 'id="region-error"' in refused.text
    assert (await as_guest(client, "guest@example.com")).status_code == 303  # tests.shopper's GB address: no regions


async def test_the_api_asks_for_the_region_quotes_it_and_keeps_it_on_the_order(client, alchemy, skus):
    await tax_california(client, alchemy)
    ada = {**(await bearer(client)), "Idempotency-Key": "ca-1"}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=ada)

    missing = assert_problem(
        await client.post("/api/checkout", json={"shipping_address": US, "shipping_method": "standard"}, headers=ada),
        422,
    )
    assert missing["errors"] == {"shipping_address.region": NEEDED}
    # With the address's other problems, in one round (QA: the postal code alone first).
    no_code = {"shipping_address": {**US, "postal_code": ""}, "shipping_method": "standard"}
    both = assert_problem(await client.post("/api/checkout", json=no_code, headers=ada), 422)
    assert set(both["errors"]) == {"shipping_address.postal_code", "shipping_address.region"}
    assert_problem(await client.get("/api/checkout/quote?country=US&shipping_method=standard", headers=ada), 422)
    wrong = assert_problem(
        await client.get("/api/checkout/quote?country=US&shipping_method=standard&region=ON", headers=ada), 422
    )
    assert "region" in wrong["errors"]

    quote = await client.get("/api/checkout/quote?country=us&shipping_method=standard&region=CA", headers=ada)
    assert quote.status_code == 200, quote.text
    assert quote.json()["region"] == "US-CA" and quote.json()["taxes"][0]["rate_bp"] == 725
    body = {
        "shipping_address": {**US, "region": "California"},
        "shipping_method": "standard",
        "expected_signature": quote.json()["signature"],
    }
    placed = await client.post("/api/checkout", json=body, headers=ada)
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["shipping_address"]["region"] == "US-CA"
    assert order["tax"] == quote.json()["tax"] and order["total"] == quote.json()["total"]
    assert (await order_of(alchemy, order["number"])).ship_region == "US-CA"
    # The address book keeps it the same way.
    saved = await client.post("/api/addresses", json={**US, "region": "ca"}, headers=ada)
    assert saved.status_code == 201 and saved.json()["region"] == "US-CA", saved.text
    # A region no ISO 3166-2 code names is kept as typed where the shop does not tax by region...
    london = {"name": "Ada", "line1": "1 High St", "city": "London", "postal_code": "N1 9GU", "country": "GB"}
    kept = await client.post("/api/addresses", json={**london, "region": "Greater London"}, headers=ada)
    assert kept.status_code == 201 and kept.json()["region"] == "Greater London", kept.text
    # ...and refused where it does, as checkout would.
    upstate = {**US, "line1": "2 Main St", "region": "Upstate"}
    refused = assert_problem(await client.post("/api/addresses", json=upstate, headers=ada), 422)
    assert refused["errors"]["region"].startswith("“Upstate” is not a state, province or region of the United States")


async def test_a_rate_on_a_region_covers_the_regions_within_it(client, alchemy, skus):
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    boss = await bearer_of(client, "boss@example.com")
    for rate in ({"country": "ES", "rate_bp": 2100}, {"country": "ES", "region": "ES-CN", "rate_bp": 700}):
        made = await client.post("/api/tax-rates", json={"tax_category": "standard", **rate}, headers=boss)
        assert made.status_code == 201, made.text
    ada = await bearer(client)
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=ada)
    quote = "/api/checkout/quote?country=ES&shipping_method=standard&region="
    tenerife = (await client.get(quote + "Santa Cruz de Tenerife", headers=ada)).json()  # ES-TF, in ES-CN
    assert tenerife["region"] == "ES-CN" and [t["rate_bp"] for t in tenerife["taxes"]] == [700]
    madrid = (await client.get(quote + "Madrid", headers=ada)).json()
    assert madrid["region"] == "" and [t["rate_bp"] for t in madrid["taxes"]] == [2100]


async def test_the_address_book_asks_for_the_region_where_checkout_would(client, alchemy, skus):
    await tax_california(client, alchemy)
    await register(client, "ada@example.com")
    refused = await post(
        client,
        "/account/addresses",
        {**US, "region": "Narnia", "postal_code": "12*45"},
        token_from="/account/addresses",
    )
    assert refused.status_code == 422
    assert 'id="region-error"' in refused.text and 'id="postal_code-error"' in refused.text  # one round
    assert "“Narnia” is not a state, province or region of the United States" in text_of(refused.text)
    saved = await post(client, "/account/addresses", {**US, "region": "Texas"}, token_from="/account/addresses")
    assert saved.status_code == 303
    assert "Springfield TX 12345" in text_of((await client.get("/account/addresses")).text)


async def test_the_cart_says_the_tax_waits_for_the_address_where_the_region_decides_it(client, alchemy, skus):
    ada = await bearer(client)
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=ada)
    assert (await client.get("/api/cart", headers=ada)).json()["region_decides_tax"] is False
    await tax_california(client, alchemy)  # the US at large: 0 %

    # The cart, before an address: not "Tax $0.00", but when and why it is known.
    await add_to_cart(client, skus["DC-1"], 1)
    page = text_of((await client.get("/cart")).text)
    assert "Tax At checkout" in page
    assert "Tax depends on the state or region you ship to: checkout works it out from your address." in page
    cart = (await client.get("/api/cart", headers=ada)).json()
    assert cart["region_decides_tax"] is True and cart["tax"]["amount"] == 0
    # Once the address names it, the quote charges it and no longer waits.
    quote = await client.get("/api/checkout/quote?country=US&shipping_method=standard&region=CA", headers=ada)
    assert quote.json()["region_decides_tax"] is False and quote.json()["taxes"][0]["rate_bp"] == 725


async def test_the_quote_names_a_region_only_where_the_cart_pays_its_rate(client, alchemy, skus):
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    boss = await bearer_of(client, "boss@example.com")
    for rate in (
        {"country": "US", "tax_category": "standard", "rate_bp": 500},
        {"country": "US", "region": "US-NY", "tax_category": "reduced", "rate_bp": 400},
    ):
        made = await client.post("/api/tax-rates", json=rate, headers=boss)
        assert made.status_code == 201, made.text
    ada = await bearer(client)
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=ada)  # standard goods
    quote = (await client.get("/api/checkout/quote?country=US&shipping_method=standard&region=NY", headers=ada)).json()
    assert quote["region"] == "" and [t["rate_bp"] for t in quote["taxes"]] == [500]


async def test_the_cart_does_not_wait_for_a_region_whose_rates_it_does_not_pay(client, alchemy, skus):
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    boss = await bearer_of(client, "boss@example.com")
    rate = {"country": "US", "region": "US-CA", "tax_category": "reduced", "rate_bp": 300}
    assert (await client.post("/api/tax-rates", json=rate, headers=boss)).status_code == 201
    ada = await bearer(client)
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=ada)  # standard goods
    assert (await client.get("/api/cart", headers=ada)).json()["region_decides_tax"] is False


async def test_a_saved_address_a_later_rule_refuses_is_sent_back_to_be_mended_at_the_address_step(
    client, alchemy, skus
):
    """A region saved before it was refused (``US-ZZ``) is caught when the address step chooses it, with the
    form filled in and the region marked, not at "Place order", whose page has no address fields (review)."""
    await register(client, "ada@example.com")
    await add_to_cart(client, skus["DC-1"], 1)
    saved = await post(client, "/checkout/address", {"address_id": "new", **US, "region": "TX"}, token_from="/cart")
    assert saved.status_code == 303
    async with alchemy.get_session() as session:  # as an earlier version kept it
        address = await session.scalar(select(Address))
        address.region = "US-ZZ"
        await session.commit()
        address_id = address.id
    again = await post(client, "/checkout/address", {"address_id": str(address_id)}, token_from="/cart")
    assert again.status_code == 422
    assert "“US-ZZ” is not a state, province or region of the United States" in text_of(again.text)
    assert 'value="1 Main St"' in again.text and 'id="region-error"' in again.text
    mended = await post(client, "/checkout/address", {"address_id": "new", **US, "region": "TX"}, token_from="/cart")
    assert mended.status_code == 303
