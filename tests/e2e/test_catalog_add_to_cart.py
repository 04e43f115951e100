"""The catalog in Chromium on a desktop and a phone screen, with JavaScript on and off (issue 12).

The first card's "Add to cart" puts that product in the cart (it once submitted the filter form, which
wrapped the cards); on a 360 px phone the products start in the first screen, the category tree and
the filters folded behind one "Filters" control; no shopper or admin page scrolls sideways there, and
checkout and order lines say which number is the price, the quantity and the total.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect

from tests.e2e import steps
from tests.e2e.steps import PASSWORD

pytestmark = pytest.mark.browser

SCREENS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 320, "height": 740}}  # WCAG 1.4.10 reflow
SUCCESS_CARD = "4242424242424242"
NOT_FILTERS = re.compile(r"[?&](_csrf_token|variant_id|quantity)=")
EMPTY_PARAMETER = re.compile(r"[?&][^=&]+=(&|$)")


def _context(browser: Browser, base_url: str, screen: str, *, js: bool = True) -> BrowserContext:
    context = browser.new_context(base_url=base_url, viewport=SCREENS[screen], java_script_enabled=js)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def open_page(browser: Browser, live_server: str) -> Iterator[Callable[..., Page]]:
    """``open_page(screen, js=True)``: a fresh page (own cookies) on that screen size."""
    contexts: list[BrowserContext] = []

    def open_(screen: str, *, js: bool = True) -> Page:
        contexts.append(_context(browser, live_server, screen, js=js))
        return contexts[-1].new_page()

    yield open_
    for context in contexts:
        context.close()


def _cards(page: Page) -> Locator:
    return page.locator("#catalog-results .product-card")


def _badge(page: Page) -> Locator:
    return page.locator("#cart-badge .badge-count")


def _cart_names(page: Page) -> list[str]:
    page.goto("/cart")
    return [name.strip() for name in page.locator(".cart-table tbody .line-name").all_inner_texts()]


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
@pytest.mark.parametrize("screen", ["desktop", "phone"])
def test_the_first_card_puts_its_product_in_the_cart(open_page, screen: str, js: bool) -> None:
    page = open_page(screen, js=js)
    page.goto("/")
    first = _cards(page).first
    name = first.locator(".card-name").inner_text().strip()
    button = first.get_by_role("button", name=f"Add to cart – {name}", exact=True)
    # The shopper sees "Add to cart"; the product's name is there for screen readers only.
    shown = button.evaluate("b => [...b.childNodes].filter(n => n.nodeType === 3).map(n => n.data).join('').trim()")
    assert shown == "Add to cart"
    assert button.locator(".visually-hidden").bounding_box()["width"] <= 1
    if js:
        page.wait_for_function("() => window.htmx !== undefined")
    button.click()
    if js:  # the card says so in place, the badge follows
        expect(first.locator(".card-feedback")).to_contain_text(f"Added {name} to your cart.")
        expect(page).to_have_url(re.compile(r"/$"))
    else:  # the plain form goes to the cart
        expect(page).to_have_url(re.compile(r"/cart$"))
    expect(_badge(page)).to_have_text("1")
    assert _cart_names(page) == [name]


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_on_a_phone_the_products_come_first_and_the_filters_fold_away(open_page, js: bool) -> None:
    page = open_page("phone", js=js)
    page.goto("/")
    first = _cards(page).first
    expect(first).to_be_visible()
    top = first.bounding_box()["y"]
    assert top < SCREENS["phone"]["height"], f"the first product starts {top:.0f} px down, below the screen"
    # One search box, and one "Filters" control in front of the categories, facets and sort.
    expect(page.get_by_role("searchbox")).to_have_count(1)
    expect(page.locator("#catalog-q")).to_be_visible()
    filters = page.locator("summary", has_text="Filters")
    expect(filters).to_be_visible()
    samsung = page.get_by_label(re.compile(r"^Samsung\b"))
    expect(samsung).to_be_hidden()
    expect(page.get_by_role("navigation", name="Categories")).to_be_hidden()
    filters.click()
    expect(page.get_by_role("navigation", name="Categories")).to_be_visible()
    samsung.check()
    if not js:
        page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(re.compile(r"[?&]brand=Samsung(&|$)"))
    expect(page.locator("#result-count")).to_contain_text("2 products")
    assert not NOT_FILTERS.search(page.url), page.url
    # The page still fits the phone and the results' first card still adds to the cart.
    assert page.evaluate("document.documentElement.scrollWidth") <= SCREENS["phone"]["width"]
    name = _cards(page).first.locator(".card-name").inner_text().strip()
    _cards(page).first.get_by_role("button", name=re.compile(r"^Add to cart")).click()
    expect(_badge(page)).to_have_text("1")
    assert _cart_names(page) == [name]


def test_on_a_desktop_the_filters_are_a_sidebar_and_every_change_swaps_the_results(open_page) -> None:
    page = open_page("desktop")
    page.goto("/")
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__marker = 1")
    expect(page.locator("summary", has_text="Filters")).to_be_hidden()
    expect(page.get_by_role("navigation", name="Categories")).to_be_visible()
    expect(page.get_by_role("search", name="Shop")).to_be_visible()
    expect(page.get_by_role("search", name="Products")).to_be_visible()

    samsung = page.get_by_label(re.compile(r"^Samsung\b"))
    samsung.check()
    expect(page.locator("#result-count")).to_contain_text("2 products")
    expect(samsung).to_be_focused()  # the facets are swapped too; the shopper keeps their place
    page.get_by_label("Sort by").select_option("-price")
    expect(page).to_have_url(re.compile(r"[?&]sort=-price(&|$)"))
    page.locator("#catalog-q").press_sequentially("32", delay=80)
    expect(page).to_have_url(re.compile(r"[?&]q=32(&|$)"))
    expect(page.locator("#result-count")).to_contain_text("1 product matching")
    expect(page.get_by_role("status").filter(has_text="1 product matching")).to_have_count(1)  # said, the grid not
    expect(samsung).to_be_checked()
    assert re.search(r"[?&]brand=Samsung(&|$)", page.url) and not NOT_FILTERS.search(page.url), page.url
    assert not EMPTY_PARAMETER.search(page.url), page.url  # the query's own address, not the form's every field
    assert page.evaluate("window.__marker") == 1, "the page was reloaded: htmx should have swapped the results"

    # A card of the swapped-in results adds to the cart too.
    name = _cards(page).first.locator(".card-name").inner_text().strip()
    _cards(page).first.get_by_role("button", name=re.compile(r"^Add to cart")).click()
    expect(_cards(page).first.locator(".card-feedback")).to_contain_text(f"Added {name}")
    expect(_badge(page)).to_have_text("1")


def _fits(page: Page, path: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= SCREENS["phone"]["width"], f"{path} scrolls sideways on a phone: {width} px wide"


def _expect_labelled_line(page: Page, sku: str) -> None:
    """A line on a phone: photo, and each number with its label."""
    row = page.locator(f"tr[data-sku='{sku}']")
    shown = row.locator("td").evaluate_all("cells => cells.map(c => getComputedStyle(c, '::before').content)")
    assert shown[1:] == ['"Price"', '"Qty"', '"Total"'], shown
    thumb = row.locator("img.thumb")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0"), "the thumbnail did not load"
    expect(row.get_by_role("link", name="Allstar Sneakers")).to_have_attribute("href", "/products/allstar-sneakers")


def test_no_page_scrolls_sideways_on_a_phone(browser: Browser, live_server: str, live_admin) -> None:
    shopper = _context(browser, live_server, "phone").new_page()
    try:
        token = uuid.uuid4().hex[:10]
        shopper.goto("/account/register")
        # A long address: the banner asking to confirm it, and the account page, show it whole.
        shopper.get_by_label("E-mail address").fill(f"christopher.montgomery-{token}@lawfirm-example.com")
        shopper.get_by_label("Your name").fill(f"Phone {token[:6]}")
        shopper.get_by_label("Password").fill(PASSWORD)
        shopper.get_by_role("button", name="Create account").click()
        expect(shopper.get_by_role("heading", name="Your account")).to_be_visible()
        for path in (
            "/",
            "/?category=footwear",
            "/?q=" + "Supercalifragilistic" * 4,
            "/account",
            "/products/allstar-sneakers",
        ):
            shopper.goto(path)
            _fits(shopper, path)
        shopper.get_by_role("button", name="Add to cart").click()
        expect(_badge(shopper)).to_have_text("1")
        shopper.goto("/cart")
        _fits(shopper, "/cart")
        sku = shopper.locator(".cart-table tbody tr").first.get_attribute("data-sku")
        shopper.get_by_role("link", name="Check out").click()
        steps.fill_address(shopper)
        steps.choose_shipping(shopper)
        expect(shopper.locator("#review-total")).to_be_visible()
        _fits(shopper, "/checkout/review")
        _expect_labelled_line(shopper, sku)
        shopper.locator("#place-order").click()
        steps.pay_on_hosted_page(shopper, SUCCESS_CARD)
        expect(shopper.get_by_text("is placed and paid")).to_be_visible()
        _fits(shopper, "the order confirmation")
        _expect_labelled_line(shopper, sku)
        shopper.goto("/orders")
        _fits(shopper, "/orders")
    finally:
        shopper.context.close()

    email, password = live_admin
    admin = _context(browser, live_server, "phone").new_page()
    try:
        admin.goto("/admin")
        admin.get_by_label("E-mail address").fill(email)
        admin.get_by_label("Password").fill(password)
        admin.get_by_role("button", name="Sign in").click()
        expect(admin.get_by_role("heading", name="Shop administration")).to_be_visible()
        admin.goto("/admin/products?q=laptop")
        admin.get_by_role("link", name="Laptop", exact=True).click()
        expect(admin.get_by_role("heading", name="Laptop", level=1)).to_be_visible()
        _fits(admin, "the admin product page")
        table = admin.locator(".variant-table")
        assert table.evaluate("t => t.closest('.table-scroll').scrollWidth > t.closest('.table-scroll').clientWidth")
        for path in ("/admin/products", "/admin/orders", "/admin/users", "/admin/stock", "/admin/categories"):
            admin.goto(path)
            _fits(admin, path)
        admin.goto("/admin/orders")
        admin.locator("#order-results tbody a").first.click()
        expect(admin.get_by_role("heading", name=re.compile(r"^Order "))).to_be_visible()
        _fits(admin, "the admin order page")
    finally:
        admin.context.close()
