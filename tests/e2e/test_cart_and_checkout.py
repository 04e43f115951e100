"""A purchase in Chromium on the real catalog: cart, checkout, order history, cancellation.

The same purchase runs with JavaScript on (htmx swaps the cart and the badge in place) and with it
off (plain forms and 303 redirects). Each test buys a different product, so the tests can share one
server and still read exact stock figures from the product page.
"""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import steps
from tests.e2e.steps import PASSWORD

pytestmark = pytest.mark.browser

SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"


def _register(page: Page) -> None:
    token = uuid.uuid4().hex[:12]
    page.goto("/account/register")
    page.get_by_label("E-mail address").fill(f"buyer-{token}@example.com")
    page.get_by_label("Your name").fill(f"Buyer {token[:6]}")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()


def _badge(page: Page):
    return page.locator("#cart-badge .badge-count")


def _choose(page: Page, slug: str, options: dict[str, str], *, js: bool) -> None:
    """Open a product page and pick a variant by its option values."""
    page.goto(f"/products/{slug}")
    for select_id, value in options.items():
        if page.locator(f"#{select_id}").input_value() == value:
            continue
        page.locator(f"#{select_id}").select_option(value)
        if not js:
            page.get_by_role("button", name="Show this option").click()
        expect(page.locator(".chosen-options")).to_contain_text(value)
    for value in options.values():
        expect(page.locator(".chosen-options")).to_contain_text(value)


def _stock_text(page: Page, slug: str, options: dict[str, str], *, js: bool) -> str:
    _choose(page, slug, options, js=js)
    return page.locator("#variant-stock").inner_text().strip()


def _add(page: Page, quantity: int = 1) -> None:
    page.get_by_label("Quantity").fill(str(quantity))
    page.get_by_role("button", name="Add to cart").click()


def _check_out(page: Page, card: str) -> None:
    """Cart → address → shipping → review → pay."""
    page.goto("/cart")
    page.get_by_role("link", name="Check out").click()
    steps.fill_address(page)
    steps.choose_shipping(page, "Express")
    page.locator("#place-order").click()
    page.get_by_label("Card number").fill(card)
    page.locator("#pay-button").click()


def _purchase(page: Page, *, js: bool) -> None:
    """Add two variants, change a quantity, remove one, pay, cancel (after the confirmation page, which
    says what is refunded); stock follows on the product page."""
    slug, (first, first_sku), (second, second_sku) = (
        ("laptop", ({"opt0": "13 inch", "opt1": "16GB"}, "L2201316"), ({"opt0": "15 inch", "opt1": "8GB"}, "L2201508"))
        if js
        else ("tablet", ({"opt0": "32GB"}, "TBL200032"), ({"opt0": "128GB"}, "TBL200128"))
    )
    _register(page)
    before = _stock_text(page, slug, first, js=js)
    assert before == "In stock (100 available)"

    _add(page)
    if js:  # the confirmation and the badge are swapped in place
        expect(page.locator("#cart-feedback")).to_contain_text("Added")
    expect(_badge(page)).to_have_text("1")
    _choose(page, slug, second, js=js)
    _add(page)
    expect(_badge(page)).to_have_text("2")

    page.goto("/cart")
    expect(page.locator(".cart-table tbody tr")).to_have_count(2)
    first_row = page.locator(f"tr[data-sku='{first_sku}']")
    first_row.get_by_role("spinbutton").fill("3")
    first_row.get_by_role("button", name="Update").click()
    expect(page.locator(f"tr[data-sku='{first_sku}']").get_by_role("spinbutton")).to_have_value("3")
    expect(_badge(page)).to_have_text("4")
    if js:  # the swapped-out button's focus goes to the message, not to the top of the page
        expect(page.locator("#cart-status")).to_be_focused()
        expect(page.locator("#cart-status")).to_have_text("Your cart was updated.")
    page.locator(f"tr[data-sku='{second_sku}']").get_by_role("button", name=re.compile(r"^Remove")).click()
    expect(page.locator(".cart-table tbody tr")).to_have_count(1)
    expect(page.locator(f"tr[data-sku='{second_sku}']")).to_have_count(0)
    expect(_badge(page)).to_have_text("3")

    _check_out(page, SUCCESS_CARD)
    expect(page.get_by_role("status").filter(has_text="Thank you")).to_contain_text("is placed and paid")
    number = page.get_by_role("heading", level=1).inner_text().removeprefix("Order ").strip()
    expect(page.locator("#order-status")).to_have_text("Paid")
    expect(_badge(page)).to_have_text("0")
    assert _stock_text(page, slug, first, js=js) == "In stock (97 available)"

    page.goto("/orders")
    expect(page.get_by_role("link", name=number)).to_be_visible()
    page.get_by_role("link", name=number).click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.locator("tbody tr td").nth(2)).to_have_text("3")
    total = page.locator("#order-total").inner_text().strip()
    # "Cancel this order" asks first, and says what happens to the money; "Keep my order" changes nothing.
    page.get_by_role("link", name="Cancel this order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel order {number}?")
    expect(page.locator("#cancel-consequences")).to_contain_text(
        f"Your payment of {total} will be refunded to your card ending 4242."
    )
    page.get_by_role("link", name="Keep my order").click()
    expect(page.locator("#order-status")).to_have_text("Paid")
    assert _stock_text(page, slug, first, js=js) == "In stock (97 available)"
    page.goto("/orders")
    page.get_by_role("link", name=number).click()
    page.get_by_role("link", name="Cancel this order").click()
    page.get_by_role("button", name="Yes, cancel this order").click()
    expect(page.get_by_role("status").filter(has_text="cancelled")).to_contain_text("cancelled")
    expect(page.locator("#order-status")).to_have_text("Cancelled")
    expect(page.locator("#order-refund")).to_contain_text(f"Refunded {total} to your card ending 4242 on")
    expect(page.get_by_role("link", name="Cancel this order")).to_have_count(0)
    assert _stock_text(page, slug, first, js=js) == before


def test_purchase_and_cancel_with_javascript(page: Page) -> None:
    _purchase(page, js=True)


def test_purchase_and_cancel_without_javascript(page_nojs: Page) -> None:
    _purchase(page_nojs, js=False)


def test_a_declined_card_is_told_on_the_payment_page_and_cancelling_gives_everything_back(page: Page) -> None:
    _register(page)
    options = {"opt0": "2TB"}
    assert _stock_text(page, "hard-drive", options, js=True) == "In stock (100 available)"
    _add(page, 2)
    expect(_badge(page)).to_have_text("2")
    _check_out(page, DECLINED_CARD)
    expect(page.get_by_role("alert")).to_contain_text("declined")
    expect(page.get_by_label("Card number")).to_be_visible()
    # The shopper gives up: the order is cancelled, its stock and the cart's lines come back.
    page.locator("#cancel-button").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Order")
    page.goto("/orders")
    expect(page.locator("main")).to_contain_text("Cancelled")
    expect(_badge(page)).to_have_text("2")
    assert _stock_text(page, "hard-drive", options, js=True) == "In stock (100 available)"
