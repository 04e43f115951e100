"""Checkout and orders over HTTP: steps, totals, payment, idempotency, history, cancel, ledger."""

from __future__ import annotations

import asyncio
import re

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from tests.factories import ledger_ok, stock
from tests.shopper import (
    DECLINED_CARD,
    add_to_cart,
    choose_address_and_shipping,
    path_of,
    pay_on_hosted_page,
    place,
    post,
    ready_to_pay,
    register,
    review,
    text_of,
)
from webshop.db.models import Order, OrderLine, StockMovement, Variant


async def count_orders(alchemy) -> int:
    async with alchemy.get_session() as session:
        return await session.scalar(select(func.count()).select_from(Order))


async def test_checkout_requires_sign_in_and_keeps_the_guest_cart(client, skus):
    await add_to_cart(client, skus["DC-1"], 2)
    response = await client.get("/checkout/address", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/account/sign-in?next=/checkout/address"
    await register(client, "buyer@example.com")
    assert "Delta Chair" in (await client.get("/cart")).text


async def test_full_checkout_places_a_paid_order_with_a_snapshot(client, alchemy, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["AL-13"], 2)
    page = (await client.get("/checkout/review")).text
    assert re.search(r'id="review-subtotal">\$2,598.00<', page)
    assert re.search(r'id="review-shipping">\$5.00<', page)
    assert re.search(r'id="review-tax">\$520.60<', page)  # 20 % of the goods, 519.60, and of shipping, 1.00
    assert re.search(r'id="review-total"><strong>\$3,123.60<', page)
    response = await place(client, form)
    assert response.status_code == 303
    number = re.match(r"/orders/(WS-[0-9A-Z]{8})\?placed=1", response.headers["location"]).group(1)
    confirmation = await client.get(response.headers["location"])
    assert f"Your order <strong>{number}</strong> is placed and paid." in confirmation.text
    assert 'id="order-status" class="status status-paid">Paid<' in confirmation.text
    assert await stock(alchemy, "AL-13") == 3
    assert "Your cart is empty" in (await client.get("/cart")).text
    # A step opened again with the cart now empty (the back button, another tab) leads to the cart (QA: a 500).
    for step in ("/checkout/address", "/checkout/shipping", "/checkout/review"):
        again = await client.get(step, follow_redirects=False)
        assert again.status_code in (302, 303) and again.headers["location"] == "/cart", (step, again.status_code)
    # The lines keep what the shopper saw even when the product changes later.
    async with alchemy.get_session() as session:
        line = await session.scalar(select(OrderLine))
        assert (line.product_name, line.sku, line.options, line.unit_price, line.currency, line.tax_rate_bp) == (
            "Alpha Laptop",
            "AL-13",
            {"screen size": "13 inch"},
            129900,
            "USD",
            2000,
        )
        variant = await session.scalar(select(Variant).where(Variant.sku == "AL-13"))
        variant.price = 1
        await session.commit()
    assert "$1,299.00" in (await client.get(f"/orders/{number}")).text
    assert number in (await client.get("/orders")).text
    assert await ledger_ok(alchemy)


async def test_address_is_validated_and_saved_for_next_time(client, skus):
    await register(client, "buyer@example.com")
    await add_to_cart(client, skus["DC-1"], 1)
    bad = await post(
        client,
        "/checkout/address",
        {"address_id": "new", "name": "", "line1": "", "city": "X", "postal_code": "1", "country": "Germany"},
        token_from="/cart",
    )
    assert bad.status_code == 422
    assert "Enter the street address." in bad.text
    assert "Choose a country from the list" in bad.text
    odd = await post(
        client,
        "/checkout/address",
        {
            "address_id": "new",
            "name": "Ada",
            "line1": "1 Rue",
            "city": "!!",
            "postal_code": "ABCDE-!!",
            "country": "FR",
        },
        token_from="/cart",
    )
    assert odd.status_code == 422
    assert "Use letters, digits, spaces and hyphens, as in 75005, 10115 or SW1A 1AA." in odd.text
    assert "Enter the name of the city or town." in odd.text
    no_code = {"address_id": "new", "name": "Ada", "line1": "1 Main St", "city": "Austin", "country": "US"}
    missing = await post(client, "/checkout/address", {**no_code, "postal_code": ""}, token_from="/cart")
    assert missing.status_code == 422
    assert "Enter the postal code." in missing.text
    await choose_address_and_shipping(client)
    again = await client.get("/checkout/address")
    assert "Ada Lovelace, 12 Analytical Way, London N1 9GU, United Kingdom" in again.text


async def test_a_new_address_typed_below_a_chosen_saved_one_is_the_one_used(client, skus):
    await register(client, "buyer@example.com")
    await add_to_cart(client, skus["DC-1"], 1)
    await choose_address_and_shipping(client)  # saves Ada's London address, which the page now chooses
    page = await client.get("/checkout/address")
    saved = re.search(r'name="address_id" value="(\d+)"[^>]*checked', page.text).group(1)
    new = {"name": "Ada", "line1": "99 Other Road", "city": "Capital City", "postal_code": "99999", "country": "US"}
    left = {"address_id": saved, "chosen_by_page": saved}  # the radio as the page had chosen it
    chosen = await post(client, "/checkout/address", {**left, **new}, token_from="/cart")
    assert chosen.status_code == 303
    await post(client, "/checkout/shipping", {"shipping_method": "standard"}, token_from="/cart")
    review_page = text_of((await client.get("/checkout/review")).text)
    assert "99 Other Road" in review_page and "Analytical Way" not in review_page
    untouched = await post(client, "/checkout/address", {**left, "name": "Ada"}, token_from="/cart")
    assert untouched.status_code == 303  # the saved one, when nothing new was typed
    picked = {"address_id": saved, "chosen_by_page": "new", **new}  # chosen by the shopper after a refusal
    assert (await post(client, "/checkout/address", picked, token_from="/cart")).status_code == 303
    await post(client, "/checkout/shipping", {"shipping_method": "standard"}, token_from="/cart")
    assert "12 Analytical Way" in text_of((await client.get("/checkout/review")).text)


async def test_an_address_in_a_country_without_postal_codes_needs_none(client, skus):
    await register(client, "buyer@example.com")
    await add_to_cart(client, skus["DC-1"], 1)
    hong_kong = {"address_id": "new", "name": "Ada Lo", "line1": "1 Queen's Road Central", "city": "Central"}
    saved = await post(
        client, "/checkout/address", {**hong_kong, "postal_code": "", "country": "HK"}, token_from="/cart"
    )
    assert saved.status_code == 303, saved.text
    assert "Ada Lo, 1 Queen&#39;s Road Central, Central, Hong Kong" in (await client.get("/checkout/address")).text


async def test_a_declined_card_is_told_on_the_payment_page_and_another_card_pays_the_same_order(client, alchemy, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["BC-1"], 1)
    response = await place(client, form, card=DECLINED_CARD)
    assert response.status_code == 422  # the hosted payment page again, with the reason
    assert "Your card was declined. Try another card." in text_of(response.text)
    assert await count_orders(alchemy) == 1  # the order waits for its payment, its stock held
    assert await stock(alchemy, "BC-1") == 2
    # The shopper tries another card on the same page: the same order is paid.
    payment_url = (await client.post("/checkout/place", data=form, follow_redirects=False)).headers["location"]
    paid = await pay_on_hosted_page(client, payment_url)
    back = await client.get(path_of(paid.headers["location"]), follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"].endswith("?placed=1")
    assert await count_orders(alchemy) == 1 and await stock(alchemy, "BC-1") == 2


async def test_resubmitting_the_same_form_lands_on_the_same_order(client, alchemy, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 1)
    first = await place(client, form)
    second = await place(client, form)  # refresh, or back and resubmit
    assert first.status_code == second.status_code == 303
    assert first.headers["location"] == second.headers["location"]
    assert await count_orders(alchemy) == 1
    assert await stock(alchemy, "DC-1") == 11


async def test_twenty_concurrent_submits_of_one_token_make_one_order(client, alchemy, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 2)
    responses = await asyncio.gather(*(place(client, form) for _ in range(20)))
    assert {r.status_code for r in responses} == {303}
    assert len({r.headers["location"] for r in responses}) == 1
    assert await count_orders(alchemy) == 1
    assert await stock(alchemy, "DC-1") == 10
    assert await ledger_ok(alchemy)


async def test_every_shortfall_is_reported_at_once(client, alchemy, skus):
    await register(client, "buyer@example.com")
    await add_to_cart(client, skus["BC-1"], 3)
    await add_to_cart(client, skus["ZS-40"], 2)
    await add_to_cart(client, skus["DC-1"], 1)
    await choose_address_and_shipping(client)
    form = await review(client)
    async with alchemy.get_session() as session:  # others bought meanwhile
        for sku, left in (("BC-1", 1), ("ZS-40", 0)):
            variant = await session.scalar(select(Variant).where(Variant.sku == sku))
            session.add(StockMovement(variant_id=variant.id, delta=left - variant.stock, reason="adjustment"))
            variant.stock = left
        await session.commit()
    response = await place(client, form)
    assert response.status_code == 409
    assert "Only 1 left of Beta Camera (BC-1); you asked for 3." in response.text
    assert "Zeta Shoe (ZS-40) is sold out." in response.text
    assert await count_orders(alchemy) == 0
    assert (await stock(alchemy, "DC-1"), await stock(alchemy, "BC-1")) == (12, 1)
    assert await ledger_ok(alchemy)


async def test_cart_changed_since_review_is_refused(client, alchemy, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 1)
    async with alchemy.get_session() as session:
        variant = await session.scalar(select(Variant).where(Variant.sku == "DC-1"))
        variant.price = 9900
        await session.commit()
    response = await place(client, form)
    assert response.status_code == 409
    assert "changed since you reviewed it" in response.text
    assert "$99.00" in response.text
    assert await count_orders(alchemy) == 0


async def test_others_orders_are_404_and_shopper_can_cancel_once(client, app, alchemy, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 4)
    number = (await place(client, form)).headers["location"].split("/")[2].split("?")[0]
    assert await stock(alchemy, "DC-1") == 8
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as other:
        await register(other, "other@example.com")
        assert (await other.get(f"/orders/{number}")).status_code == 404
        assert (await post(other, f"/orders/{number}/cancel", {}, token_from="/cart")).status_code == 404
    token_page = f"/orders/{number}"
    cancel = await post(client, f"/orders/{number}/cancel", {}, token_from=token_page)
    assert cancel.status_code == 303
    page = (await client.get(cancel.headers["location"])).text
    assert "Your order was cancelled. Its items are back in stock." in page
    assert ">Cancelled<" in page
    assert await stock(alchemy, "DC-1") == 12
    # The refund of the invoiced order has its credit note, on the page and as a PDF.
    note = re.search(r'href="(/orders/[^"]+/credit-notes/(CN-[0-9]{4}-[0-9]{6})\.pdf)"', page)
    assert note, "no credit note link on the cancelled order's page"
    assert "Order cancelled" in page
    assert "All that was left of the order" in page and "an amount only" not in page  # QA: it said "No items"
    pdf = await client.get(note.group(1))
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    again = await post(client, f"/orders/{number}/cancel", {}, token_from=token_page)
    assert again.status_code == 409
    assert "can no longer be cancelled" in again.text
    assert await stock(alchemy, "DC-1") == 12
    assert await ledger_ok(alchemy)


async def test_two_concurrent_cancels_restore_stock_once(client, alchemy, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 5)
    number = (await place(client, form)).headers["location"].split("/")[2].split("?")[0]
    token = re.search(r'"x-csrftoken": "([^"]+)"', (await client.get(f"/orders/{number}")).text).group(1)
    responses = await asyncio.gather(
        *(
            client.post(f"/orders/{number}/cancel", data={"_csrf_token": token}, follow_redirects=False)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [303, 409]
    assert await stock(alchemy, "DC-1") == 12
    assert await ledger_ok(alchemy)


async def test_check_stock_command_finds_ledger_mismatches(alchemy, skus, settings, monkeypatch):
    from click.testing import CliRunner

    from webshop import config as config_module
    from webshop.cli import main

    monkeypatch.setattr(config_module, "get_settings", lambda: settings)
    monkeypatch.setattr("webshop.cli.get_settings", lambda: settings)
    runner = CliRunner()
    ok = await asyncio.to_thread(runner.invoke, main, ["check-stock"])
    assert ok.exit_code == 0, ok.output
    assert "consistent" in ok.output
    async with alchemy.get_session() as session:
        variant = await session.scalar(select(Variant).where(Variant.sku == "EP-1"))
        variant.stock = 39  # changed without a movement
        await session.commit()
    bad = await asyncio.to_thread(runner.invoke, main, ["check-stock"])
    assert bad.exit_code == 1
    assert "EP-1: stock 39, ledger sum 40" in bad.output


async def test_the_service_refuses_an_unverified_address_when_the_shop_requires_one(alchemy, skus, settings):
    """``place_order`` itself enforces ``WEBSHOP_REQUIRE_VERIFIED_EMAIL`` (the pages redirect and the
    API answers 403 from this one rule); a verified account then places the same cart."""
    import dataclasses
    from datetime import UTC, datetime

    from webshop.accounts.service import UserService
    from webshop.cart.service import CartOwner, CartService
    from webshop.checkout.addresses import AddressInput
    from webshop.checkout.service import CheckoutService
    from webshop.db.engine import write_session
    from webshop.errors import EmailNotVerified
    from webshop.payments.registry import build_provider

    async with write_session(alchemy) as session:
        user = await UserService(session=session).register(
            email="eve@example.com", name="Eve", password="a long passphrase"
        )
        await session.commit()
        await CartService(session=session).add(CartOwner(user_id=user.id), quantity=1, variant_id=skus["DC-1"])
        order = dict(
            user_id=user.id,
            address=AddressInput(name="Eve", line1="1 Main St", city="Springfield", postal_code="12345", country="US"),
            shipping_code="standard",
            return_url="http://shop.test/checkout/return/{number}",
            payment_token="tok_visa",
        )
        shop = dataclasses.replace(settings.shop, require_verified_email=True, tax_rates_bp={})
        checkout = CheckoutService(
            session=session,
            shop=shop,
            provider=build_provider(settings, alchemy),
            payments=settings.payments,
            invoices=settings.invoices,
        )
        with pytest.raises(EmailNotVerified, match="Confirm your e-mail address"):
            await checkout.place_order(**order, checkout_token="t" * 24)
        assert await session.scalar(select(func.count()).select_from(Order)) == 0
        user.email_verified_at = datetime.now(UTC)
        await session.commit()
        placed, created = await checkout.place_order(**order, checkout_token="u" * 24)
        assert created and placed.status == "paid"
