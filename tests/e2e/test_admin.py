"""An admin runs the shop in Chromium: a new product with a photo, stock health, and two orders.

The admin signs in, creates a product with two variants and a photo from ``../shared/catalog/images``,
finds it in the shop, lowers one variant's stock below its threshold and sees it on the stock
dashboard; a shopper buys it twice; the admin ships one order and cancels the other and sees the
stock come back for the cancelled one only. The server is this module's own ``webshop serve``
(the shared catalog imported, an admin made with ``webshop create-admin``), so stock figures are exact.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import SHARED_CATALOG, unavailable
from tests.e2e.conftest import LiveShop, create_admin, new_context, start_shop

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "owner@example.com"
PASSWORD = "correct horse battery staple"
SUCCESS_CARD = "4242424242424242"
PHOTO = SHARED_CATALOG / "images" / "derick-david-409858-unsplash.jpg"


@pytest.fixture(scope="module")
def own_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """This module's ``webshop serve`` with the shared catalog imported (its stock figures are exact)."""
    if not PHOTO.is_file():
        unavailable(f"the shared catalog is missing: {SHARED_CATALOG} (with {PHOTO.name})")
    yield from start_shop(tmp_path_factory, "e2e-admin")


@pytest.fixture(scope="module")
def shop(own_shop: LiveShop) -> str:
    """Base URL of a ``webshop serve`` with the shared catalog and an admin account."""
    create_admin(own_shop, ADMIN_EMAIL, PASSWORD)
    return own_shop.url


@pytest.fixture
def admin(browser: Browser, shop: str) -> Iterator[Page]:
    """A page signed in as the admin (through the sign-in form, sent back to /admin)."""
    context = new_context(browser, shop)
    try:
        page = context.new_page()
        page.goto("/admin")
        expect(page).to_have_url(re.compile(r"/account/sign-in\?next=/admin$"))
        page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/admin$"))
        expect(page.get_by_role("heading", name="Shop administration")).to_be_visible()
        yield page
    finally:
        context.close()


@pytest.fixture
def shopper(browser: Browser, shop: str) -> Iterator[Page]:
    """A page of a newly registered shopper."""
    context = new_context(browser, shop)
    try:
        page = context.new_page()
        token = uuid.uuid4().hex[:10]
        page.goto("/account/register")
        page.get_by_label("E-mail address").fill(f"shopper-{token}@example.com")
        page.get_by_label("Your name").fill(f"Shopper {token[:6]}")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        yield page
    finally:
        context.close()


def _create_product(page: Page, name: str, skus: tuple[str, str], photo: Path) -> None:
    """Admin: create a product with two size variants (stock 10, threshold 5) and upload a photo."""
    page.goto("/admin/products")
    page.get_by_role("link", name="New product").click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Description").fill("A lamp made for the admin journey test.")
    page.get_by_label("Option groups").fill("size")
    for index, (sku, size, price) in enumerate(((skus[0], "Small", "49.00"), (skus[1], "Large", "79.00"))):
        row = page.locator(f"tr[data-variant-row='{index}']")
        row.get_by_label("SKU", exact=True).fill(sku)
        row.get_by_label("Option values", exact=True).fill(size)
        row.get_by_label("Price", exact=True).fill(price)
        row.get_by_label("Stock", exact=True).fill("10")
        row.get_by_label("Low-stock threshold", exact=True).fill("5")
    page.get_by_role("button", name="Create product").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(name)
    expect(page.locator(".flashes")).to_contain_text(f"Created “{name}”.")
    page.get_by_label("Add a photo").set_input_files(str(photo))
    page.get_by_role("button", name="Upload photo").click()
    expect(page.locator("#photos li[data-image] img")).to_have_count(1)


def _buy(page: Page, slug: str, size: str, quantity: int) -> str:
    """Shopper: buy ``quantity`` of the ``size`` variant; return the order number."""
    page.goto(f"/products/{slug}")
    if page.locator("#opt0").input_value() != size:
        page.locator("#opt0").select_option(size)
        expect(page.locator(".chosen-options")).to_contain_text(size)
    page.get_by_label("Quantity").fill(str(quantity))
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-badge .badge-count")).to_have_text(str(quantity))
    page.goto("/cart")
    page.get_by_role("link", name="Check out").click()
    saved = page.locator("input[type=radio][name=address_id]")
    if saved.count():  # the address from the first purchase is in the address book
        saved.first.check()
    else:
        page.get_by_label("Full name").fill("Ada Lovelace")
        page.get_by_label("Street address").fill("12 Analytical Way")
        page.get_by_label("City").fill("London")
        page.get_by_label("Postal code").fill("N1 9GU")
        page.get_by_label("Country", exact=True).select_option("GB")
    page.get_by_role("button", name="Continue to shipping").click()
    page.get_by_label(re.compile(r"^Standard")).check()
    page.get_by_role("button", name="Continue to review").click()
    page.locator("#place-order").click()
    page.get_by_label("Card number").fill(SUCCESS_CARD)
    page.locator("#pay-button").click()
    expect(page.get_by_text("is placed and paid")).to_be_visible()
    return page.get_by_role("heading", level=1).inner_text().removeprefix("Order ").strip()


def _dashboard_row(page: Page, sku: str):
    page.goto("/admin/stock")
    return page.locator(f"#stock-health tr[data-sku='{sku}']")


def _set_order_status(page: Page, number: str, button: str, status: str) -> None:
    """Admin: find the order in the list by its number and press a status button on its page."""
    page.goto("/admin/orders")
    page.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    page.get_by_role("button", name=button).click()
    expect(page.locator("#order-status")).to_have_text(status)
    expect(page.locator(".flashes")).to_contain_text(f"Order {number} is now {status.lower()}.")
    expect(page.locator(".audit-trail")).to_contain_text(f"→ {status.lower()}")


def _cancel_paid_order(page: Page, number: str) -> None:
    """Admin: "Cancel order" asks first (what is refunded, what comes back); "Yes" cancels and refunds."""
    page.goto("/admin/orders")
    page.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    total = page.locator("#order-total").inner_text().strip()
    page.get_by_role("link", name="Cancel order").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Cancel order {number}?")
    expect(page.locator("#cancel-consequences")).to_contain_text(f"refunds {total} to the customer's card ending 4242")
    page.get_by_role("button", name=f"Yes, cancel order and refund {total}").click()
    expect(page.locator("#order-status")).to_have_text("Cancelled")
    expect(page.locator(".flashes")).to_contain_text(f"Order {number} is now cancelled. {total} was refunded")
    expect(page.locator("#order-refund")).to_contain_text(f"Refunded {total} to the card ending 4242")


def test_admin_journey(admin: Page, shopper: Page, artifacts_dir: Path) -> None:
    token = uuid.uuid4().hex[:6].upper()
    name = f"Journey Lamp {token}"
    small, large = f"JL-{token}-S", f"JL-{token}-L"

    # 1. A new product with two variants and a photo.
    _create_product(admin, name, (small, large), PHOTO)
    product_url = admin.url

    # 2. The shopper finds it in the shop, with its photo.
    shopper.goto("/")
    shopper.locator("#header-q").fill(name)
    shopper.locator("#header-q").press("Enter")
    card = shopper.locator(".product-card", has_text=name)
    expect(card).to_have_count(1)
    expect(card.locator("img")).to_have_count(1)
    card.get_by_role("link").first.click()
    expect(shopper.get_by_role("heading", level=1)).to_have_text(name)
    slug = shopper.url.rstrip("/").split("/products/")[1].split("?")[0]
    expect(shopper.locator("#variant-stock")).to_contain_text("10")

    # 3. The admin lowers the small lamp's stock below its threshold: it shows as low on the dashboard.
    expect(_dashboard_row(admin, small)).to_have_count(0)  # healthy rows are not listed
    admin.get_by_label("SKU").fill(small)
    admin.get_by_label("Change (units)").fill("-6")
    admin.get_by_label("Reason").select_option("count")
    admin.get_by_label("Note").fill("Shelf count after the journey test")
    admin.get_by_role("button", name="Adjust stock").click()
    expect(admin.locator(".flashes")).to_contain_text(f"Stock of {small} is now 4.")
    row = admin.locator(f"#stock-health table[data-level='low'] tr[data-sku='{small}']")
    expect(row).to_be_visible()
    expect(row.locator("td").nth(2)).to_have_text("4")
    row.get_by_role("link", name=name).click()
    expect(admin).to_have_url(product_url)
    admin.screenshot(path=str(artifacts_dir / "admin-product.png"), full_page=True)

    # 4. The shopper buys one and then two small lamps: 4 → 3 → 1, critical now.
    first = _buy(shopper, slug, "Small", 1)
    second = _buy(shopper, slug, "Small", 2)
    row = _dashboard_row(admin, small)
    expect(row.locator("td").nth(2)).to_have_text("1")
    expect(admin.locator(f"#stock-health table[data-level='critical'] tr[data-sku='{small}']")).to_be_visible()

    # 5. Ship the first order (stock stays), cancel the second (its two lamps come back).
    _set_order_status(admin, first, "Mark as shipped", "Shipped")
    expect(_dashboard_row(admin, small).locator("td").nth(2)).to_have_text("1")
    _cancel_paid_order(admin, second)
    expect(admin.locator(".audit-trail")).to_contain_text("stock returned")
    admin.screenshot(path=str(artifacts_dir / "admin-order-cancelled.png"), full_page=True)
    row = _dashboard_row(admin, small)
    expect(row.locator("td").nth(2)).to_have_text("3")
    expect(admin.locator(f"#stock-health table[data-level='low'] tr[data-sku='{small}']")).to_be_visible()
    admin.screenshot(path=str(artifacts_dir / "admin-stock.png"), full_page=True)

    # The shop agrees, and the shipped order cannot be cancelled any more.
    shopper.goto(f"/products/{slug}")
    expect(shopper.locator("#variant-stock")).to_have_text("Only 3 left")
    admin.goto("/admin/orders")
    admin.get_by_label("Status").select_option("shipped")
    expect(admin.locator("#order-results")).to_contain_text(first)
    expect(admin.locator("#order-results")).not_to_contain_text(second)
    admin.get_by_role("link", name=first).click()
    expect(admin.get_by_role("link", name="Cancel order")).to_have_count(0)
    expect(admin.get_by_role("button", name="Mark as delivered")).to_be_visible()


def test_the_order_filters_say_why_nothing_matches_with_javascript(admin: Page) -> None:
    """htmx swaps only the results: a date's message comes with them, beside its field (QA: "0 orders"
    without a reason with JavaScript on)."""
    admin.goto("/admin/orders")
    admin.wait_for_function("() => window.htmx !== undefined")
    admin.locator("#order-from").fill("2026-12-08")
    admin.locator("#order-to").fill("2026-12-01")
    admin.get_by_role("button", name="Filter").click()
    message = admin.locator("#order-to-error")
    expect(message).to_be_visible()
    expect(message).to_have_text("The last day comes before the first: no order can match.")
    admin.locator("#order-to").fill("2026-12-31")
    admin.get_by_role("button", name="Filter").click()
    expect(message).to_be_hidden()
    expect(admin.locator("#order-from")).to_have_value("2026-12-08")


def test_adding_a_variant_row_puts_the_focus_in_it(admin: Page) -> None:
    """Browser QA: after "Add a variant row", pressed from the keyboard, the focus was left on the page,
    three screens above the new row. It goes to the new row's SKU, what was typed kept."""
    admin.goto("/admin/products/new")
    admin.wait_for_function("() => window.htmx !== undefined")
    rows = admin.locator("tr[data-variant-row]").count()
    admin.get_by_label("Name", exact=True).fill("Focus lamp")
    admin.get_by_role("button", name="Add a variant row").focus()
    admin.keyboard.press("Enter")
    expect(admin.locator("tr[data-variant-row]")).to_have_count(rows + 1)
    expect(admin.locator(f"#new-{rows}-sku")).to_be_focused()
    expect(admin.get_by_label("Name", exact=True)).to_have_value("Focus lamp")
