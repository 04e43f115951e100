"""A whole purchase with JavaScript on, on a desktop screen and on a phone, without one browser complaint.

Browse a category, search from the header, open a product, pick a variant, add it to the cart, follow
"View cart" in the notice, change the quantity, check out (address, shipping, review, pay) and land on
the order page. Every page on the way is watched (``browser_problems`` in conftest.py): no
Content-Security-Policy violation, no console error, no failed style sheet, script or image. The
journey once raised 25 violations on 9 pages: htmx copied ``style`` attributes that others (browser
extensions, password managers, Playwright's screenshots) had put on inputs; so each step here takes a
screenshot, as a tester would.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import steps
from tests.e2e.conftest import settle

if TYPE_CHECKING:
    from pathlib import Path

    from tests.e2e.conftest import BrowserProblems

# One product per screen, so the two runs (and the other tests on the shared server) never share stock.
PRODUCTS = {
    "desktop": ("Ultraboost Running Shoe", "RS0044"),
    "phone": ("Pureboost Running Shoe", "F3578644"),
}


def _snap(page: Page, artifacts_dir: Path, screen: str, step: str) -> None:
    page.screenshot(path=str(artifacts_dir / f"journey-{screen}-{step}.png"), full_page=True)


def test_purchase_with_javascript_raises_no_browser_problem(
    screen_page: Page, browser_problems: BrowserProblems, artifacts_dir: Path, request: pytest.FixtureRequest
) -> None:
    page = screen_page
    screen = request.node.callspec.params["screen_page"]
    product, sku = PRODUCTS[screen]
    steps.register(page, steps.new_email(f"journey-{screen}"))
    expect(steps.badge(page)).to_have_text("0")

    # Browse: a category from the catalog's navigation (behind "Filters" on a phone).
    steps.header(page).get_by_role("link", name="webshop").click()
    expect(page.get_by_role("heading", name="All products", level=1)).to_be_visible()
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__marker = 1")
    steps.show_filters(page)
    page.get_by_role("navigation", name="Categories").get_by_role("link", name="Footwear", exact=True).click()
    expect(page.get_by_role("heading", name="Footwear", level=1)).to_be_visible()
    _snap(page, artifacts_dir, screen, "category")

    # Search (from the header; on a phone's catalog page, from the catalog's own box).
    steps.search(page, "running shoe")
    expect(page).to_have_url(re.compile(r"[?&]q=running(\+|%20)shoe"))
    results = page.locator("#catalog-results")
    expect(results.get_by_role("link", name=product, exact=True)).to_be_visible()
    _snap(page, artifacts_dir, screen, "search")

    # The product page; pick a size (the variant panel is swapped in place).
    results.get_by_role("link", name=product, exact=True).click()
    expect(page.get_by_role("heading", name=product, level=1)).to_be_visible()
    steps.choose_options(page, {"opt0": "Size 44"})
    expect(page.locator("#variant-sku")).to_have_text(sku)
    _snap(page, artifacts_dir, screen, "product")

    # Add to cart: the notice and the badge change in place; "View cart" in the notice opens the cart.
    page.get_by_role("button", name="Add to cart").click()
    notice = page.locator("#cart-feedback")
    expect(notice).to_contain_text(f"Added {product} to your cart.")
    expect(steps.badge(page)).to_have_text("1")
    assert page.evaluate("window.__marker") == 1, "the page was reloaded: htmx should have swapped it in place"
    _snap(page, artifacts_dir, screen, "added")
    notice.get_by_role("link", name="View cart").click()
    expect(page.get_by_role("heading", name="Your cart", level=1)).to_be_visible()
    row = page.locator(f"tr[data-sku='{sku}']")
    expect(row).to_be_visible()
    _snap(page, artifacts_dir, screen, "cart")

    # Change the quantity.
    row.get_by_role("spinbutton").fill("2")
    row.get_by_role("button", name="Update").click()
    expect(page.locator(f"tr[data-sku='{sku}']").get_by_role("spinbutton")).to_have_value("2")
    expect(steps.badge(page)).to_have_text("2")
    _snap(page, artifacts_dir, screen, "quantity")

    # Check out: address, shipping, review and pay; the order page thanks the shopper.
    page.get_by_role("link", name="Check out").click()
    _snap(page, artifacts_dir, screen, "address")
    steps.fill_address(page)
    _snap(page, artifacts_dir, screen, "shipping")
    steps.choose_shipping(page)
    _snap(page, artifacts_dir, screen, "review")
    assert page.evaluate("window.__marker") == 1, "a full page load happened: boosted links and forms should swap"
    # Paying is the journey's one full-page navigation: the payment service's page is a site of its own
    # (Stripe's, in production), and it sends the shopper back to the shop's order page.
    number = steps.pay(page)
    expect(page.locator(f"tr[data-sku='{sku}']")).to_contain_text(product)
    expect(page.locator("#order-status")).to_have_text("Paid")
    expect(steps.badge(page)).to_have_text("0")
    page.evaluate("window.__marker = 1")
    _snap(page, artifacts_dir, screen, "order")

    # Back through the browser history (htmx reloads the page: it keeps no copies), then the order list.
    with page.expect_event("load"):
        page.go_back()
    steps.header(page).get_by_role("link", name="Orders").click()
    expect(page.get_by_role("link", name=number)).to_be_visible()

    settle(page)  # every report of what the browser refused has arrived
    assert browser_problems.found() == []
