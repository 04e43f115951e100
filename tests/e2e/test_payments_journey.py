"""Payments in Chromium (issue 18): a guest buys on the test payment service's hosted page, gets the e-mail,
opens the order by its link, downloads the invoice and creates an account; the "authenticate" card; an
admin refunds one line of an order and the shopper sees it.

Each test buys products no other browser test buys, so stock figures read from the product pages are exact.
The shop writes its e-mail as ``.eml`` files in its working folder (no SMTP host is set), where the guest's
test reads the confirmation the way a mail program would.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import steps
from tests.e2e.conftest import LiveShop, new_context

if TYPE_CHECKING:
    from playwright.sync_api import Browser

AUTHENTICATE_CARD = "4000002500003155"
PROCESSING_CARD = "4000000000000077"
GUEST_LINK = re.compile(r"https?://[^\s\"<>]+/orders/guest/[A-Za-z0-9_.\-]+")


def _guest_buys(page: Page, slug: str, address: str, *, js: bool) -> str:
    """A guest (new browser, no account) buys one ``slug`` with the test card; return the order number."""
    page.goto(f"/products/{slug}")
    page.get_by_label("Quantity").fill("1")
    page.get_by_role("button", name="Add to cart").click()
    expect(steps.badge(page)).to_have_text("1")
    page.goto("/cart")
    page.get_by_role("link", name="Check out as a guest").click()
    expect(page.get_by_role("heading", name="Where should we send it?")).to_be_visible()
    page.get_by_label("E-mail address").fill(address)
    steps.fill_address(page)
    steps.choose_shipping(page)
    expect(page.locator("main")).to_contain_text(f"Confirmation to {address}")
    page.locator("#place-order").click()
    steps.pay_on_hosted_page(page)
    expect(page.get_by_role("status").filter(has_text="Thank you")).to_contain_text("is placed and paid")
    assert "/orders/guest/" in page.url, page.url
    heading = page.get_by_role("heading", level=1).inner_text()
    return heading.removeprefix("Order ").strip()


@pytest.mark.parametrize("js", [True, False], ids=["js", "nojs"])
def test_a_guest_buys_opens_the_order_by_its_link_downloads_the_invoice_and_creates_an_account(
    browser: Browser, live_shop: LiveShop, js: bool
) -> None:
    slug = "cordless-mouse" if js else "ethernet-cable"
    address = steps.new_email("guest")
    context = new_context(browser, live_shop.url, java_script_enabled=js)
    other = new_context(browser, live_shop.url, java_script_enabled=js, accept_downloads=True)
    try:
        page = context.new_page()
        number = _guest_buys(page, slug, address, js=js)
        expect(page.locator("#order-status")).to_have_text("Paid")
        expect(steps.badge(page)).to_have_text("0")
        expect(page.locator("#guest-order")).to_contain_text(address)
        shown_link = page.locator("#guest-link").inner_text().strip()

        # The confirmation e-mail carries the same kind of signed link; in another browser it opens the order.
        message = steps.mail_to(live_shop, "order_confirmation", address)
        assert number in message["Subject"] or number in steps.text_part(message)
        link = GUEST_LINK.search(steps.text_part(message))
        assert link, steps.text_part(message)[:2000]
        assert shown_link.endswith(link.group(0).split("/orders/guest/")[1]) or "/orders/guest/" in shown_link
        elsewhere = other.new_page()
        elsewhere.goto("/orders/guest/" + link.group(0).split("/orders/guest/")[1])
        expect(elsewhere.get_by_role("heading", level=1)).to_have_text(f"Order {number}")
        expect(elsewhere.locator("#order-status")).to_have_text("Paid")

        # The invoice downloads as a PDF, and the page stays.
        invoice = elsewhere.get_by_role("link", name=re.compile(r"^Invoice .* \(PDF\)$"))
        expect(invoice).to_have_count(1)
        with elsewhere.expect_download() as download_info:
            invoice.click()
        pdf = Path(download_info.value.path()).read_bytes()
        assert pdf.startswith(b"%PDF"), pdf[:20]
        assert download_info.value.suggested_filename.endswith(".pdf")
        expect(elsewhere.get_by_role("heading", level=1)).to_have_text(f"Order {number}")

        # Back on the confirmation page: one field makes the account, which holds the order.
        page.get_by_label("Password (at least 8 characters)").fill(steps.PASSWORD)
        page.get_by_role("button", name="Create account").click()
        expect(page.locator(".flashes")).to_contain_text(f"Your account is ready and order {number} is in it.")
        expect(steps.header(page).get_by_role("button", name="Sign out")).to_be_visible()
        page.goto("/orders")
        expect(page.get_by_role("link", name=number)).to_be_visible()
    finally:
        other.close()
        context.close()


def _new_customer_pays(page: Page, slug: str, card: str) -> None:
    """A new account buys one ``slug`` and types ``card`` on the test payment service's page."""
    steps.register(page)
    page.goto(f"/products/{slug}")
    steps.add_to_cart(page)
    page.goto("/cart")
    page.get_by_role("link", name="Check out").click()
    steps.fill_address(page)
    steps.choose_shipping(page)
    page.locator("#place-order").click()
    steps.pay_on_hosted_page(page, card)


def test_the_authenticate_card_asks_the_bank_first_then_pays(page: Page) -> None:
    _new_customer_pays(page, "usb-cable", AUTHENTICATE_CARD)
    expect(page.get_by_role("heading", level=1)).to_have_text("3-D Secure: confirm your payment")
    expect(page.locator("main")).to_contain_text("card ending in 3155")
    page.get_by_role("button", name="Complete authentication").click()
    expect(page.get_by_role("status").filter(has_text="Thank you")).to_contain_text("is placed and paid")
    expect(page.locator("#order-status")).to_have_text("Paid")


def _stock(page: Page, slug: str) -> str:
    page.goto(f"/products/{slug}")
    return page.locator("#variant-stock").inner_text().strip()


def test_an_admin_refunds_one_line_and_the_shopper_sees_it(page: Page, admin_page: Page) -> None:
    steps.register(page, name=f"Refund Shopper {uuid.uuid4().hex[:4]}")
    before = _stock(page, "camera-lens")
    page.goto("/products/instant-camera")
    steps.add_to_cart(page)
    page.goto("/products/camera-lens")
    steps.add_to_cart(page, 2)
    page.goto("/cart")
    page.get_by_role("link", name="Check out").click()
    steps.fill_address(page)
    steps.choose_shipping(page)
    number = steps.pay(page)
    total = page.locator("#order-total").inner_text().strip()
    assert _stock(page, "camera-lens") != before

    admin = admin_page
    admin.goto("/admin/orders")
    admin.get_by_role("link", name=number).click()
    expect(admin.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    admin.get_by_role("link", name="Refund items or an amount").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text(f"Refund order {number}")
    expect(admin.locator("#refund-left")).to_have_text(total)
    admin.get_by_label("Units of B0012UUP02 to refund (0 to 2)").fill("2")
    admin.get_by_label("Put the refunded items back in stock").check()
    admin.get_by_label("Reason").fill("Lens arrived scratched")
    admin.get_by_role("button", name="Refund", exact=True).click()
    expect(admin.locator(".flashes")).to_contain_text(re.compile(r"Refunded .*2[0-9]{2}\.[0-9]{2} to the customer\."))
    refunds = admin.locator("#order-refunds")
    expect(refunds).to_contain_text("2 × Camera Lens")
    expect(refunds).to_contain_text("Lens arrived scratched")
    expect(refunds).to_contain_text("Refunded")
    expect(refunds).to_contain_text("back in stock")

    # The two lenses are back on the shelf; the shopper's order shows the refund and its credit note.
    assert _stock(page, "camera-lens") == before
    page.goto("/orders")
    page.get_by_role("link", name=number).click()
    shopper_refunds = page.locator("#order-refunds")
    expect(shopper_refunds).to_contain_text("2 × Camera Lens")
    expect(page.get_by_role("link", name=re.compile(r"^Credit note .* \(PDF\)$"))).to_have_count(1)
    expect(page.locator("#order-status")).to_have_text("Paid")


def test_a_payment_the_bank_confirms_later_shows_as_paid_without_a_reload(page: Page) -> None:
    """The "processing" card pays by webhook a few seconds later: the order's page asks again by itself
    (QA: it stayed "Pending" until reloaded)."""
    _new_customer_pays(page, "bonsai-tree", PROCESSING_CARD)
    expect(page.locator("#order-payment")).to_contain_text("Your payment is being processed")
    expect(page.locator("#order-status")).to_have_text("Pending")
    url = page.url
    expect(page.locator("#order-status")).to_have_text("Paid", timeout=30_000)
    expect(page.locator("#order-payment")).to_have_count(0)
    assert page.url == url  # the same page, not a reload elsewhere
