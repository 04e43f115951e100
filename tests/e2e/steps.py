"""Steps a shopper or an admin takes in the browser, shared by the journey, message and accessibility tests.

Each step acts through what is on the screen (labels, roles, visible text) and waits for what the
person would wait for, so the same step works with JavaScript on (htmx swaps) and off (page loads).
"""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from email.message import EmailMessage
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Locator, Page, expect

if TYPE_CHECKING:
    from tests.e2e.conftest import LiveShop

PASSWORD = "correct horse battery staple"
SUCCESS_CARD = "4242424242424242"
ADDRESS = {
    "Full name": "Ada Lovelace",
    "Street address": "12 Analytical Way",
    "City": "London",
    "Postal code": "N1 9GU",
}
COUNTRY = "GB"


def header(page: Page) -> Locator:
    """The site header (brand, search, account links)."""
    return page.locator("header.site-header")


def badge(page: Page) -> Locator:
    """The number on the cart badge."""
    return page.locator("#cart-badge .badge-count")


def new_email(prefix: str = "shopper") -> str:
    """An e-mail address no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def register(page: Page, email: str | None = None, *, name: str = "Ada Shopper") -> str:
    """Create an account through the register form (from any page); return its e-mail address."""
    email = email or new_email()
    page.goto("/account/register")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Your account")).to_be_visible()
    return email


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the sign-in form and wait until the header shows it."""
    page.goto("/account/sign-in")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(header(page).get_by_role("button", name="Sign out")).to_be_visible()


def sign_out(page: Page) -> None:
    """Press "Sign out" in the header and wait until the header shows "Sign in"."""
    header(page).get_by_role("button", name="Sign out").click()
    expect(header(page).get_by_role("link", name="Sign in")).to_be_visible()


def search(page: Page, text: str) -> None:
    """Search from the header, or (where a phone's header leaves it to the catalog) from the catalog's box."""
    box = header(page).get_by_role("searchbox", name="Search the shop")
    if not box.is_visible():
        box = page.get_by_role("searchbox", name="Search products")
    box.fill(text)
    box.press("Enter")


def show_filters(page: Page) -> None:
    """Open the catalog's "Filters" control when the screen is narrow enough to fold the sidebar away."""
    summary = page.locator("details.catalog-sidebar > summary")
    details = page.locator("details.catalog-sidebar")
    if summary.count() and summary.is_visible() and details.get_attribute("open") is None:
        summary.click()


def choose_options(page: Page, options: dict[str, str]) -> None:
    """On a product page, pick a variant by its option values (selects ``opt0``, ``opt1``…, by value).

    With JavaScript on, it first waits until htmx has taken the picker in hand (its ``hx-trigger="change"``
    bound): right after a boosted navigation the new page can be on screen a moment before that, and a
    change made in that moment (faster than any person) would not swap the variant panel.
    """
    page.wait_for_function(
        "() => { const form = document.querySelector('form.variant-picker');"
        " return !form || !window.htmx || form['htmx-internal-data'] !== undefined; }"
    )
    for select_id, value in options.items():
        select = page.locator(f"#{select_id}")
        if select.input_value() == value:
            continue
        select.select_option(value)
        expect(page.locator(".chosen-options")).to_contain_text(value)


def add_to_cart(page: Page, quantity: int = 1) -> None:
    """On a product page: set the quantity, press "Add to cart", wait for the confirmation."""
    page.get_by_label("Quantity").fill(str(quantity))
    page.get_by_role("button", name="Add to cart").click()
    expect(page.locator("#cart-feedback")).to_contain_text("Added")


def fill_address(page: Page) -> None:
    """Checkout, first step: type a new address and continue."""
    expect(page.get_by_role("heading", name="Where should we send it?")).to_be_visible()
    new = page.get_by_label("A new address (below)")
    if new.count():
        new.check()
    for label, value in ADDRESS.items():
        page.get_by_label(label).fill(value)
    page.get_by_label("Country", exact=True).select_option(COUNTRY)
    page.get_by_role("button", name="Continue to shipping").click()


def choose_shipping(page: Page, method: str = "Standard") -> None:
    """Checkout, second step: pick a shipping method by the start of its label and continue."""
    page.get_by_label(re.compile(rf"^{method}")).check()
    page.get_by_role("button", name="Continue to review").click()
    expect(page.locator("#review-tax")).to_be_visible()


def pay(page: Page, card: str = SUCCESS_CARD) -> str:
    """Checkout, last step: place the order, type the card on the payment service's hosted page and pay;
    back in the shop, return the order number."""
    page.locator("#place-order").click()
    pay_on_hosted_page(page, card)
    expect(page.get_by_role("status").filter(has_text="Thank you")).to_contain_text("is placed and paid")
    return page.get_by_role("heading", level=1).inner_text().removeprefix("Order ").strip()


def pay_on_hosted_page(page: Page, card: str = SUCCESS_CARD) -> None:
    """On the test payment service's page: type ``card`` and press Pay."""
    expect(page).to_have_title(re.compile(r"Test payment service$"))
    page.get_by_label("Card number").fill(card)
    page.locator("#pay-button").click()


def buy(page: Page, slug: str, options: dict[str, str] | None = None, quantity: int = 1) -> str:
    """Buy ``quantity`` of a product's variant straight through checkout; return the order number."""
    page.goto(f"/products/{slug}")
    choose_options(page, options or {})
    add_to_cart(page, quantity)
    page.goto("/cart")
    page.get_by_role("link", name="Check out").click()
    fill_address(page)
    choose_shipping(page)
    return pay(page)


def mail_to(shop: LiveShop, kind: str, to: str, timeout: float = 15.0) -> EmailMessage:
    """The ``kind`` e-mail (``order_confirmation``, ``verify_email``) the shop sent to ``to``, read from its
    outbox folder as a mail program would (no SMTP host is set; the sender writes within a second)."""
    outbox = shop.workdir / ".webshop" / "outbox"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(outbox.glob(f"*-{kind}.eml")) if outbox.is_dir() else []:
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] and to.lower() in message["To"].lower():
                return message  # type: ignore[return-value]
        time.sleep(0.2)
    pytest.fail(f"no {kind} e-mail to {to} in {outbox} within {timeout} s", pytrace=False)


def text_part(message: EmailMessage) -> str:
    """The plain-text body of ``message``."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())
