"""A shopper's journey through the real catalog in Chromium, with JavaScript on and with it off.

Search, category, brand filter, product variant, then register, sign out and sign in again: the
assertions are about what the shopper sees on the page (and, with JavaScript on, that htmx did the
work without a full page load).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.e2e import steps
from tests.e2e.conftest import LiveShop
from tests.e2e.steps import PASSWORD

pytestmark = pytest.mark.browser

# Laptop variants in the shared catalog: (screen size, RAM) -> (SKU, price).
LAPTOP = {
    ("13 inch", "8GB"): ("L2201308", "$1,299.00"),
    ("15 inch", "8GB"): ("L2201508", "$1,399.00"),
    ("15 inch", "16GB"): ("L2201516", "$2,299.00"),
}


def _card_names(page: Page) -> Locator:
    return page.locator("#catalog-results .product-card .card-name")


def _card(page: Page, name: str) -> Locator:
    return _card_names(page).filter(has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))


def _category_link(page: Page, name: str) -> Locator:
    return page.get_by_role("navigation", name="Categories").get_by_role("link", name=name, exact=True)


def _header(page: Page) -> Locator:
    return page.locator("header.site-header")


def _expect_variant(page: Page, options: tuple[str, str]) -> None:
    sku, price = LAPTOP[options]
    expect(page.locator("#variant-sku")).to_have_text(sku)
    expect(page.locator("#variant-price")).to_have_text(price)
    expect(page.locator("#variant-stock")).to_contain_text("In stock")
    # The swapped-in picker listens once htmx has settled it: a person cannot choose again within those
    # milliseconds, but a loaded test machine's next select_option could (and would then change nothing).
    expect(page.locator("#variant-panel.htmx-settling, #variant-panel .htmx-added")).to_have_count(0)


def _new_person() -> tuple[str, str]:
    token = uuid.uuid4().hex[:12]
    return f"shopper-{token}@example.com", f"Shopper {token[:6]}"


def _register_sign_out_sign_in(page: Page, email: str, name: str, shop: LiveShop) -> None:
    """Register through the header link, sign out, sign in again, then confirm the address by the e-mail's
    link (opening it confirms nothing; its button does): the same steps with or without JS."""
    _header(page).get_by_role("link", name="Register").click()
    expect(page).to_have_url(re.compile(r"/account/register$"))
    expect(page.get_by_role("heading", name="Create an account", level=1)).to_be_visible()
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()

    expect(page).to_have_url(re.compile(r"/account$"))
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    expect(page.locator("main")).to_contain_text(f"Signed in as {email}")
    expect(_header(page).get_by_role("link", name=name)).to_be_visible()

    _header(page).get_by_role("button", name="Sign out").click()
    expect(_header(page).get_by_role("link", name="Sign in")).to_be_visible()
    expect(_header(page).get_by_role("link", name=name)).to_have_count(0)
    expect(_header(page).get_by_role("button", name="Sign out")).to_have_count(0)

    _header(page).get_by_role("link", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/account/sign-in$"))
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(_header(page).get_by_role("link", name=name)).to_be_visible()
    expect(_header(page).get_by_role("button", name="Sign out")).to_be_visible()
    expect(_header(page).get_by_role("link", name="Sign in")).to_have_count(0)

    link = re.search(
        r"https?://\S+/account/verify-email/\S+", steps.text_part(steps.mail_to(shop, "verify_email", email))
    )
    assert link, "no verification link in the e-mail"
    page.goto(link.group(0))
    expect(page.get_by_role("heading", name="Confirm your e-mail address", level=1)).to_be_visible()
    page.goto("/account")
    expect(page.locator("#verify-banner")).to_be_visible()  # opening the link confirmed nothing
    page.goto(link.group(0))
    page.get_by_role("button", name=f"Yes, confirm {email}").click()
    expect(page.locator("#link-done")).to_have_text(f"Thank you: {email} is confirmed.")
    page.goto("/account")
    expect(page.locator("#verify-banner")).to_have_count(0)


def _address_book(page: Page, name: str) -> None:
    """From the account page: add an address (a refused one first), change it, remove it."""
    page.goto("/account")
    page.get_by_role("link", name="Your addresses").click()
    expect(page.get_by_role("heading", name="Your addresses", level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text("No saved addresses yet.")
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Street address").fill("12 Analytical Way")
    page.get_by_label("City").fill("London")
    page.get_by_label("Country").select_option("GB")
    page.get_by_role("button", name="Save the address").click()
    expect(page.locator("#postal_code-error")).to_be_visible()  # the United Kingdom has postal codes
    expect(page.get_by_label("Street address")).to_have_value("12 Analytical Way")
    page.get_by_label("Postal code").fill("N1 9GU")
    page.get_by_role("button", name="Save the address").click()
    expect(page.locator("main")).to_contain_text("The address was saved.")
    expect(page.locator(".address-book li")).to_have_count(1)
    page.locator(".address-book").get_by_role("link", name=re.compile(r"^Change")).click()
    expect(page.get_by_role("heading", name="Change an address", level=1)).to_be_visible()
    page.get_by_label("Street address").fill("7 Difference Street")
    page.get_by_role("button", name="Save the address").click()
    expect(page.locator("main")).to_contain_text("The address was changed.")
    expect(page.locator(".address-book li")).to_contain_text("7 Difference Street")
    page.locator(".address-book").get_by_role("button", name=re.compile(r"^Remove")).click()
    expect(page.locator("main")).to_contain_text("The address was removed.")
    expect(page.locator("main")).to_contain_text("No saved addresses yet.")


def _expect_no_reload(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded: htmx should have swapped it in place"


def test_turning_a_page_of_results_moves_the_focus_to_them(page: Page) -> None:
    """htmx fetches only the results; the link followed is gone, so the focus moves to the new page's
    first line ("Page 2 of 5"), not to the start of the document (WCAG 2.4.3)."""
    page.goto("/")
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__marker = 1")
    first = _card_names(page).all_inner_texts()
    page.get_by_role("link", name="Next →").click()
    expect(page).to_have_url(re.compile(r"[?&]page=2(&|$)"))
    where = page.locator("#results-page")
    expect(where).to_have_text(re.compile(r"^Page 2 of \d+$"))
    expect(where).to_be_focused()
    assert _card_names(page).all_inner_texts() != first
    page.get_by_role("link", name="← Previous").click()
    expect(where).to_have_text(re.compile(r"^Page 1 of \d+$"))
    expect(where).to_be_focused()
    expect(_card_names(page)).to_have_text(first)
    _expect_no_reload(page)
    # The links are still links: Ctrl-click opens the next page in a new tab and leaves this one alone.
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Next →").click(modifiers=["Control"])
    expect(opened.value).to_have_url(re.compile(r"[?&]page=2(&|$)"))
    opened.value.close()
    expect(_card_names(page)).to_have_text(first)
    _expect_no_reload(page)


def _from_only(url: str) -> bool:
    """The catalog's request for the price "From" alone (20, no "To" yet)."""
    return "price_min=20" in url and not re.search(r"price_max=\d", url)


@pytest.mark.parametrize("answer", ["at once", "after both are typed"])
def test_a_price_range_typed_quickly_keeps_both_ends(page: Page, answer: str) -> None:
    """Leaving "From" asks for results; its answer (the filters come back out of band) may arrive while
    "To" is being typed or after it, and must not wipe it, nor the request that "To" makes (QA: only
    ``price_min`` was left). The second case holds the first answer back until both ends are typed."""
    page.goto("/")
    page.wait_for_function("() => window.htmx !== undefined")
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    if answer != "at once":
        page.route(_from_only, hold)
    page.locator("#f-price-min").fill("20")
    page.locator("#f-price-max").fill("100")
    page.get_by_role("button", name="Apply filters").click()
    if answer != "at once":
        while not held:
            page.wait_for_timeout(20)
        held[0].continue_()  # the requests that carry "To" were never held
    expect(page).to_have_url(re.compile(r"price_min=20(\.00)?&.*price_max=100|price_max=100.*price_min=20"))
    expect(page.locator("#f-price-min")).to_have_value(re.compile(r"^20(\.00)?$"))
    expect(page.locator("#f-price-max")).to_have_value(re.compile(r"^100(\.00)?$"))


def test_journey_with_javascript(page: Page, live_shop: LiveShop) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="All products", level=1)).to_be_visible()
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__marker = 1")

    # Search as you type: the results swap in place and the URL follows (hx-push-url).
    search = page.locator("#catalog-q")
    search.press_sequentially("cam", delay=90)
    expect(page).to_have_url(re.compile(r"[?&]q=cam(&|$)"))
    expect(page.locator("#result-count")).to_contain_text("matching “cam”")
    expect(page.get_by_role("heading", name="Results for “cam”", level=1)).to_be_visible()
    expect(page).to_have_title("Search: cam · webshop")  # the tab says so too, as without JavaScript
    expect(_card(page, "Instant Camera")).to_be_visible()
    expect(_card(page, "Laptop")).to_have_count(0)
    _expect_no_reload(page)

    # Clearing the box brings every product back.
    search.fill("")
    expect(page.locator("#result-count")).not_to_contain_text("matching")
    expect(page.get_by_role("heading", name="All products", level=1)).to_be_visible()
    expect(page).to_have_title("Catalog · webshop")
    expect(_card(page, "Aloe Vera")).to_be_visible()
    _expect_no_reload(page)

    # Category from the nav (hx-boost), then the Apple brand facet (auto-submits on change).
    _category_link(page, "Computers").click()
    expect(page).to_have_url(re.compile(r"[?&]category=computers(&|$)"))
    expect(page.get_by_role("heading", name="Computers", level=1)).to_be_visible()
    expect(_card(page, "Wireless Optical Mouse")).to_be_visible()
    page.get_by_label(re.compile(r"^Apple\b")).check()
    expect(page).to_have_url(re.compile(r"[?&]brand=Apple(&|$)"))
    expect(page.locator("#result-count")).to_contain_text("2 products")
    expect(_card_names(page)).to_have_text(["Laptop", "Tablet"])
    expect(page.get_by_label(re.compile(r"^Apple\b"))).to_be_checked()
    _expect_no_reload(page)

    # Product page: changing an option swaps the variant panel; SKU and price follow.
    page.get_by_role("link", name="Laptop", exact=True).click()
    expect(page).to_have_url(re.compile(r"/products/laptop"))
    expect(page.get_by_role("heading", name="Laptop", level=1)).to_be_visible()
    _expect_variant(page, ("13 inch", "8GB"))
    page.locator("#opt0").select_option("15 inch")
    _expect_variant(page, ("15 inch", "8GB"))
    page.locator("#opt1").select_option("16GB")
    _expect_variant(page, ("15 inch", "16GB"))
    expect(page).to_have_url(re.compile(r"opt0=15(\+|%20)inch&opt1=16GB"))
    expect(page.locator("#opt0")).to_have_value("15 inch")
    expect(page.locator("#opt1")).to_have_value("16GB")
    _expect_no_reload(page)

    email, name = _new_person()
    _register_sign_out_sign_in(page, email, name, live_shop)
    _address_book(page, name)


def test_journey_without_javascript(page_nojs: Page, live_shop: LiveShop) -> None:
    page = page_nojs
    page.goto("/")
    form = page.locator("#catalog-form")

    # Search by submitting the form.
    page.locator("#catalog-q").fill("cam")
    form.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"[?&]q=cam(&|$)"))
    expect(page.locator("#result-count")).to_contain_text("matching “cam”")
    expect(page.get_by_role("heading", name="Results for “cam”", level=1)).to_be_visible()
    expect(page).to_have_title("Search: cam · webshop")  # the tab says so too, as without JavaScript
    expect(_card(page, "Instant Camera")).to_be_visible()
    expect(_card(page, "Laptop")).to_have_count(0)

    # Clear the search (an empty search shows everything again).
    page.locator("#catalog-q").fill("")
    form.get_by_role("button", name="Search").click()
    expect(page.locator("#result-count")).not_to_contain_text("matching")
    expect(page.get_by_role("heading", name="All products", level=1)).to_be_visible()
    expect(page).to_have_title("Catalog · webshop")
    expect(_card(page, "Aloe Vera")).to_be_visible()

    # Category link, then the brand checkbox and "Apply filters".
    _category_link(page, "Computers").click()
    expect(page).to_have_url(re.compile(r"[?&]category=computers(&|$)"))
    expect(page.get_by_role("heading", name="Computers", level=1)).to_be_visible()
    page.get_by_label(re.compile(r"^Apple\b")).check()
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"[?&]brand=Apple(&|$)"))
    expect(page).to_have_url(re.compile(r"[?&]category=computers(&|$)"))
    expect(page.locator("#result-count")).to_contain_text("2 products")
    expect(_card_names(page)).to_have_text(["Laptop", "Tablet"])
    expect(page.get_by_label(re.compile(r"^Apple\b"))).to_be_checked()

    # Product page: pick options, then "Show this option".
    page.get_by_role("link", name="Laptop", exact=True).click()
    expect(page.get_by_role("heading", name="Laptop", level=1)).to_be_visible()
    _expect_variant(page, ("13 inch", "8GB"))
    page.locator("#opt0").select_option("15 inch")
    page.get_by_role("button", name="Show this option").click()
    _expect_variant(page, ("15 inch", "8GB"))
    page.locator("#opt1").select_option("16GB")
    page.get_by_role("button", name="Show this option").click()
    _expect_variant(page, ("15 inch", "16GB"))
    expect(page.locator("#opt0")).to_have_value("15 inch")
    expect(page.locator("#opt1")).to_have_value("16GB")

    email, name = _new_person()
    _register_sign_out_sign_in(page, email, name, live_shop)
    _address_book(page, name)


def test_screenshots(page: Page, artifacts_dir: Path) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    catalog = artifacts_dir / "catalog.png"
    product = artifacts_dir / "product.png"
    for path in (catalog, product):
        path.unlink(missing_ok=True)

    page.goto("/")
    expect(_card(page, "Aloe Vera")).to_be_visible()
    page.screenshot(path=str(catalog), full_page=True)

    page.goto("/products/laptop")
    expect(page.locator("#variant-sku")).to_be_visible()
    page.screenshot(path=str(product), full_page=True)

    for path in (catalog, product):
        assert path.is_file(), f"{path} was not written"
        assert path.stat().st_size > 0, f"{path} is empty"


def test_catalog_fits_a_phone_screen(page: Page, artifacts_dir: Path) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    expect(_card(page, "Aloe Vera")).to_be_visible()
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    if scroll_width > 391:
        page.screenshot(path=str(artifacts_dir / "catalog-phone.png"), full_page=True)
    assert scroll_width <= 390 + 1, f"the catalog scrolls sideways on a phone: scrollWidth {scroll_width}px > 390px"
