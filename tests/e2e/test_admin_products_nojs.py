"""An admin edits a product in Chromium with JavaScript off, and the shop shows the change.

Plain links and forms only: the product table's inline price editor opens as a page of its own and
its form answers with a 303 back to the table; the product form saves the name and a variant's price
at once. For contrast, the same inline edits with JavaScript on happen in place (htmx swaps the cell,
no page load). The server is this module's own ``webshop serve`` (shared catalog imported, an admin
made with ``webshop create-admin``), so the other browser tests' data is not touched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import SHARED_CATALOG
from tests.e2e.conftest import LiveShop, create_admin, new_context, start_shop
from webshop.media import MAX_UPLOAD_BYTES

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "editor@example.com"
PASSWORD = "correct horse battery staple"
PHOTO = SHARED_CATALOG / "images" / "derick-david-409858-unsplash.jpg"


@pytest.fixture(scope="module")
def own_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """This module's ``webshop serve`` with the shared catalog imported (the other browser tests' data is apart)."""
    yield from start_shop(tmp_path_factory, "e2e-admin-products")


@pytest.fixture(scope="module")
def shop(own_shop: LiveShop) -> str:
    """Base URL of a ``webshop serve`` with the shared catalog and an admin account."""
    create_admin(own_shop, ADMIN_EMAIL, PASSWORD)
    return own_shop.url


def _signed_in(browser: Browser, shop: str, *, javascript: bool) -> Iterator[Page]:
    """A page signed in as the admin through the sign-in form (sent back to the product table)."""
    context = new_context(browser, shop, java_script_enabled=javascript)
    try:
        page = context.new_page()
        page.goto("/admin/products")
        expect(page).to_have_url(re.compile(r"/account/sign-in\?next=/admin/products$"))
        page.get_by_label("E-mail address").fill(ADMIN_EMAIL)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(re.compile(r"/admin/products$"))
        expect(page.get_by_role("heading", name="Products", level=1)).to_be_visible()
        yield page
    finally:
        context.close()


@pytest.fixture
def admin_nojs(browser: Browser, shop: str) -> Iterator[Page]:
    """The admin's page with JavaScript off."""
    yield from _signed_in(browser, shop, javascript=False)


@pytest.fixture
def admin_js(browser: Browser, shop: str) -> Iterator[Page]:
    """The admin's page with JavaScript on."""
    yield from _signed_in(browser, shop, javascript=True)


def test_admin_edits_a_product_without_javascript(admin_nojs: Page, artifacts_dir: Path) -> None:
    page = admin_nojs

    # Find the laptop by one of its SKUs.
    page.get_by_label("Search (name, slug or SKU)").fill("L2201308")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"/admin/products\?.*q=L2201308"))
    results = page.locator("#product-results")
    expect(results.locator(".result-count")).to_have_text("1 product")
    row = results.locator("tr[data-sku='L2201308']")
    expect(row.locator(".cell-price .cell-value")).to_have_text("$1,299.00")

    # Inline price edit, as a page of its own: a wrong value first, then a right one.
    row.get_by_role("link", name="Edit the price of L2201308").click()
    expect(page.get_by_role("heading", name="Edit the price of L2201308")).to_be_visible()
    page.get_by_label("Price (USD) of L2201308").fill("12,50")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("alert")).to_contain_text("Enter a price of 0 or more")
    page.get_by_label("Price (USD) of L2201308").fill("1249.50")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(re.compile(r"/admin/products\?.*q=L2201308"))
    expect(page.locator(".flashes")).to_contain_text("L2201308: price saved.")
    expect(page.locator("tr[data-sku='L2201308'] .cell-price .cell-value")).to_have_text("$1,249.50")

    # The product form: a new name and another variant's price, saved together.
    page.locator("#product-results").get_by_role("link", name="Laptop", exact=True).click()
    expect(page.get_by_role("heading", name="Laptop", level=1)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("Laptop Pro")
    variant = page.locator("tr[data-sku='L2201516']")
    expect(variant.get_by_label("Price", exact=True)).to_have_value("2299.00")
    variant.get_by_label("Price", exact=True).fill("2199.00")
    page.get_by_role("button", name="Save product").click()
    expect(page.locator(".flashes")).to_contain_text("Saved “Laptop Pro”.")
    expect(page.get_by_role("heading", name="Laptop Pro", level=1)).to_be_visible()
    history = page.locator(".audit-trail")
    expect(history).to_contain_text("Edited the product.")
    expect(history).to_contain_text("Edited variant L2201516: price")
    expect(history).to_contain_text(ADMIN_EMAIL)
    page.screenshot(path=str(artifacts_dir / "admin-product-nojs.png"), full_page=True)

    # The shop shows both changes.
    page.get_by_role("link", name="View in the shop").click()
    expect(page.get_by_role("heading", name="Laptop Pro", level=1)).to_be_visible()
    page.goto("/products/laptop?sku=L2201516")
    expect(page.locator("#variant-price")).to_have_text("$2,199.00")
    page.goto("/products/laptop?sku=L2201308")
    expect(page.locator("#variant-price")).to_have_text("$1,249.50")


def test_inline_edits_happen_in_place_with_javascript(admin_js: Page) -> None:
    page = admin_js
    page.evaluate("window.samePage = true")  # gone after any full page load
    page.get_by_label("Search (name, slug or SKU)").fill("L2201508")  # filters as you type
    expect(page.locator("#product-results .result-count")).to_have_text("1 product")
    row = page.locator("tr[data-sku='L2201508']")

    row.get_by_role("link", name="Edit the price of L2201508").click()
    price = row.get_by_label("Price (USD) of L2201508")
    expect(price).to_have_value("1399.00")
    price.fill("-5")
    row.get_by_role("button", name="Save").click()
    expect(row.get_by_role("alert")).to_contain_text("Enter a price of 0 or more")
    price.fill("1350")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".cell-price .cell-value")).to_have_text("$1,350.00")

    row.get_by_role("link", name="Edit the stock of L2201508").click()
    row.get_by_label("Stock on hand of L2201508").fill("2")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".cell-stock .cell-value")).to_have_text("2")
    expect(row.locator(".cell-stock")).to_contain_text("critical")
    assert page.evaluate("window.samePage") is True

    page.goto("/products/laptop?sku=L2201508")
    expect(page.locator("#variant-price")).to_have_text("$1,350.00")
    expect(page.locator("#variant-stock")).to_contain_text("2")


def test_a_photo_over_the_limit_is_refused_on_the_form_with_what_was_typed_kept(admin_js: Page) -> None:
    """Browser QA: a 7 MB photo went to a separate 413 page, and the description typed beside it was lost.
    With JavaScript the field refuses it as soon as it is chosen, with the server's message, and nothing
    is sent; a photo within the limit is then accepted from the same form."""
    page = admin_js
    page.get_by_label("Search (name, slug or SKU)").fill("L2201308")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#product-results .result-count")).to_have_text("1 product")
    edit_link = "as => as.map(a => a.getAttribute('href')).find(href => /^[/]admin[/]products[/][0-9]+$/.test(href))"
    page.goto(page.locator("#product-results a").evaluate_all(edit_link))
    expect(page.get_by_label("Add a photo")).to_be_visible()
    page.wait_for_function("() => window.htmx !== undefined")
    edit_url = page.url
    photos = page.locator("#photos li[data-image]").count()
    page.get_by_label("Description of the photo").fill("The laptop, open, from the left")
    too_large = b"\xff\xd8\xff\xe0" + b"\0" * (MAX_UPLOAD_BYTES + 1)
    page.get_by_label("Add a photo").set_input_files(
        files=[{"name": "big.jpg", "mimeType": "image/jpeg", "buffer": too_large}]
    )
    page.get_by_role("button", name="Upload photo").click()
    message = page.get_by_label("Add a photo").evaluate("field => field.validationMessage")
    assert message == f"The file is too large: photos can be at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB."
    assert page.url == edit_url
    expect(page.get_by_label("Description of the photo")).to_have_value("The laptop, open, from the left")
    page.get_by_label("Add a photo").set_input_files(str(PHOTO))
    assert page.get_by_label("Add a photo").evaluate("field => field.validity.valid")
    page.get_by_role("button", name="Upload photo").click()
    expect(page.locator("#photos li[data-image]")).to_have_count(photos + 1)
    expect(page.locator("#photos li[data-image] img").last).to_have_attribute("alt", "The laptop, open, from the left")
