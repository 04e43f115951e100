"""Issue 16 in Chromium: several sellers in one webshop, from the first shop to a delivered order.

A platform admin creates a shop and adds its owner (who registered first); the owner signs in, adds a
product with a photo on the admin pages they know, and it appears on ``/shops/{slug}`` and in the
main catalog under the Shop filter; a shopper buys it together with a product of the default shop in
one checkout; the owner ships their part and the admin ships the default shop's; the shopper's order
page shows both parts shipped and the order shipped. The whole journey runs once with JavaScript on
and once with it off (plain forms and links), on this module's own ``webshop serve``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.conftest import SHARED_CATALOG, unavailable
from tests.e2e import steps
from tests.e2e.conftest import ARTIFACTS_DIR, create_admin, new_context, start_shop
from tests.e2e.test_accessibility import AXE, Audit

pytestmark = pytest.mark.browser

ADMIN_EMAIL = "platform@example.com"
PASSWORD = "correct horse battery staple"
PHOTO = SHARED_CATALOG / "images" / "derick-david-409858-unsplash.jpg"


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This module's ``webshop serve`` (the shared catalog imported: the default shop's) and its admin."""
    if not PHOTO.is_file():
        unavailable(f"the shared catalog is missing: {SHARED_CATALOG} (with {PHOTO.name})")
    for live in start_shop(tmp_path_factory, "e2e-shops"):
        create_admin(live, ADMIN_EMAIL, PASSWORD)
        yield live.url


def _context(browser: Browser, shop: str, js: bool) -> BrowserContext:
    return new_context(browser, shop, java_script_enabled=js)


def _register(page: Page, email: str, name: str) -> None:
    page.goto("/account/register")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()


def _sign_in(page: Page, email: str) -> None:
    page.goto("/account/sign-in")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="Sign out").or_(page.get_by_role("button", name="Sign out"))).to_be_visible()


def _create_shop(admin: Page, name: str, owner_email: str) -> str:
    """Admin: a new shop, its owner added by e-mail; returns the shop's slug."""
    admin.goto("/admin/shops")
    admin.get_by_role("link", name="New shop").click()
    admin.get_by_label("Name", exact=True).fill(name)
    admin.get_by_label("Description").fill("Hand-made kitchen things.")
    admin.get_by_role("button", name="Create shop").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text(name)
    admin.get_by_label("E-mail address of their account").fill(owner_email)
    admin.get_by_label("Role").select_option("owner")
    admin.get_by_role("button", name="Add member").click()
    expect(admin.locator("#members")).to_contain_text(owner_email)
    return admin.get_by_label("Slug (the shop's address)").input_value()


def _add_product(owner: Page, name: str, sku: str) -> None:
    """Owner: a one-variant product with a photo, through the admin product form."""
    owner.goto("/admin/products")
    owner.get_by_role("link", name="New product").click()
    owner.get_by_label("Name", exact=True).fill(name)
    owner.get_by_label("Description").fill("A copper pan for the shops journey.")
    row = owner.locator("tr[data-variant-row='0']")
    row.get_by_label("SKU", exact=True).fill(sku)
    row.get_by_label("Price", exact=True).fill("39.00")
    row.get_by_label("Stock", exact=True).fill("7")
    owner.get_by_role("button", name="Create product").click()
    expect(owner.get_by_role("heading", level=1)).to_have_text(name)
    owner.get_by_label("Add a photo").set_input_files(str(PHOTO))
    owner.get_by_role("button", name="Upload photo").click()
    expect(owner.locator("#photos li[data-image] img")).to_have_count(1)


def _add_to_cart(page: Page, slug: str, js: bool) -> None:
    page.goto(f"/products/{slug}")
    page.get_by_role("button", name="Add to cart").click()
    if js:  # the confirmation is swapped in place
        expect(page.locator("#cart-feedback")).to_contain_text("Added")
    else:
        page.wait_for_load_state()


def _ship(page: Page, number: str, shop_name: str, carrier: str, tracking: str) -> None:
    """On the admin order page: mark ``shop_name``'s part shipped."""
    page.goto("/admin/orders")
    page.get_by_role("link", name=number).click()
    part = page.locator("#parts-title + .table-scroll tr", has_text=shop_name)
    part.get_by_label("Carrier").fill(carrier)
    part.get_by_label("Tracking number").fill(tracking)
    part.get_by_role("button", name="Mark shipped").click()
    expect(page.locator("#parts-title + .table-scroll tr", has_text=shop_name)).to_contain_text(tracking)


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_a_new_shop_sells_beside_the_default_shop_and_each_ships_its_part(
    browser: Browser, shop: str, js: bool
) -> None:
    tag = uuid.uuid4().hex[:6]
    shop_name, product, sku = f"Copper Kitchen {tag}", f"Copper Pan {tag}", f"CP-{tag}".upper()
    owner_email = f"owner-{tag}@example.com"
    contexts = [_context(browser, shop, js) for _ in range(3)]
    admin, owner, shopper = (context.new_page() for context in contexts)
    # With JavaScript on, axe-core checks every new page of the journey (see test_accessibility.py).
    audits = [Audit(page, AXE.read_text(encoding="utf-8")) for page in (admin, owner, shopper)]

    def check(page: Page, state: str) -> None:
        if js:
            audits[(admin, owner, shopper).index(page)].check(state)

    try:
        _register(owner, owner_email, "Olive Owner")
        _sign_in(admin, ADMIN_EMAIL)
        slug = _create_shop(admin, shop_name, owner_email)
        check(admin, "admin: the new shop's page with its owner")
        admin.goto("/admin/shops")
        check(admin, "admin: shops")

        # The owner runs the shop from the admin pages, scoped to it.
        owner.goto("/admin")
        nav = owner.get_by_role("navigation", name="Administration")
        expect(nav.get_by_role("link", name="Products")).to_be_visible()
        expect(nav.get_by_role("link", name="Users")).to_have_count(0)
        _add_product(owner, product, sku)
        check(owner, "owner: their product with its photo")

        # The product is on the shop's page and in the main catalog under the Shop filter.
        shopper.goto(f"/shops/{slug}")
        expect(shopper.get_by_role("heading", level=1)).to_have_text(shop_name)
        expect(shopper.get_by_role("link", name=product)).to_be_visible()
        check(shopper, "a shop's page")
        shopper.goto("/shops")
        check(shopper, "shops")
        shopper.goto("/")
        shop_filter = shopper.get_by_role("group", name="Filters").locator("fieldset", has_text="Shop")
        shop_filter.get_by_label(re.compile(rf"^{re.escape(shop_name)} \(1\)")).check()
        shopper.get_by_role("button", name="Apply filters").click()
        expect(shopper.get_by_role("link", name=product)).to_be_visible()
        expect(shopper.locator(".product-card, article").filter(has_text="Laptop")).to_have_count(0)
        check(shopper, "catalog filtered by shop")

        # One checkout across the two shops: a parcel each.
        _register(shopper, f"buyer-{tag}@example.com", "Bea Buyer")
        slug_of_product = product.lower().replace(" ", "-")
        _add_to_cart(shopper, slug_of_product, js)
        _add_to_cart(shopper, "tablet", js)
        shopper.goto("/cart")
        expect(shopper.locator("tr", has_text=product)).to_contain_text(f"Sold by {shop_name}")
        shopper.get_by_role("link", name="Check out").click()
        steps.fill_address(shopper)
        steps.choose_shipping(shopper)
        expect(shopper.locator("main")).to_contain_text("2 parcels, one per shop")
        number = steps.pay(shopper)
        expect(shopper.get_by_role("heading", name=f"Sold by {shop_name}")).to_be_visible()
        expect(shopper.get_by_role("heading", name="Sold by Webshop")).to_be_visible()

        # Each seller ships its own part; the order ships with the last one.
        _ship(owner, number, shop_name, "DHL", f"JD{tag}")
        expect(owner.locator("main")).not_to_contain_text("Tablet")  # the owner sees their lines only
        check(owner, "owner: the order with their part shipped")
        _ship(admin, number, "Webshop", "UPS", f"1Z{tag}")

        shopper.goto("/orders")
        shopper.get_by_role("link", name=number).click()
        expect(shopper.locator("#order-status")).to_have_text("Shipped")
        expect(shopper.locator("main")).to_contain_text(f"Shipped with DHL JD{tag}")
        expect(shopper.locator("main")).to_contain_text(f"Shipped with UPS 1Z{tag}")
        check(shopper, "an order from two shops, shipped")
        if js:
            for audit, who in zip(audits, ("admin", "owner", "shopper"), strict=True):
                ARTIFACTS_DIR.mkdir(exist_ok=True)
                audit.assert_clean(ARTIFACTS_DIR / f"axe-shops-{who}.json")
    finally:
        for context in contexts:
            context.close()
