"""Every message a plain form shows is shown with JavaScript on too.

htmx leaves a page alone when the answer is an error unless ``responseHandling`` (``htmx-config`` in
``templates/base.html``) says to swap it: a wrong password (400), a locked account or a busy address
(429) and an expired form (403) once showed nothing with JavaScript on. Each test checks what the
shopper sees, and (with JavaScript) that htmx swapped the page rather than the browser loading it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page, expect

from tests.e2e import steps
from tests.e2e.conftest import LiveShop, new_context, start_shop

if TYPE_CHECKING:
    from playwright.sync_api import Browser

WRONG_PASSWORD = "not the password at all"
INCORRECT = "The e-mail address or password is incorrect."


def _mark(page: Page) -> None:
    """Mark the loaded page: the mark survives htmx swaps, not a page load."""
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("window.__marker = 1")


def _expect_swapped(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded: htmx should have swapped it in place"


def _submit_sign_in(page: Page, email: str, password: str) -> None:
    """Fill in and send the sign-in form; wait for the answer (the message of the last try may still show)."""
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(password)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/account/sign-in")):
        page.get_by_role("button", name="Sign in").click()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "nojs"])
def test_wrong_password_shows_the_message(request: pytest.FixtureRequest, javascript: bool) -> None:
    page: Page = request.getfixturevalue("page" if javascript else "page_nojs")
    page.goto("/account/sign-in")
    if javascript:
        _mark(page)
    _submit_sign_in(page, steps.new_email("nobody"), WRONG_PASSWORD)
    expect(page.get_by_role("alert")).to_have_text(INCORRECT)
    expect(page.get_by_role("alert")).to_be_focused()  # the message, not the top of the page (WCAG 3.3.1)
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    expect(page.get_by_label("Password")).to_have_value("")
    if javascript:
        _expect_swapped(page)


def test_a_refused_form_leaves_the_address_on_its_page(page: Page) -> None:
    """A boosted form answered with its errors keeps the page's address: reloading it shows the page again,
    not a 405 for the form's POST-only URL (htmx would push that URL otherwise)."""
    steps.register(page)
    page.goto("/account")
    _mark(page)
    page.get_by_label("Current password").fill(WRONG_PASSWORD)
    page.get_by_label("New password (at least 8 characters)").fill("a brand new password")
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/account/password")):
        page.get_by_role("button", name="Change password").click()
    expect(page.get_by_text("This is not your current password.").first).to_be_visible()
    expect(page.get_by_role("alert")).to_be_focused()
    _expect_swapped(page)
    assert page.url.endswith("/account"), page.url
    page.reload()
    expect(page.get_by_role("heading", name="Your account", level=1)).to_be_visible()


def test_a_locked_account_shows_when_to_try_again(page: Page) -> None:
    """After repeated wrong passwords the account is locked (429): the shopper is told, with JavaScript on."""
    email = steps.register(page)
    steps.sign_out(page)
    page.goto("/account/sign-in")
    _mark(page)
    for _ in range(10):
        _submit_sign_in(page, email, WRONG_PASSWORD)
        # The answer is in once the form is swapped (it never keeps the password); until then the last
        # try's message still shows, and filling the old form would send an empty one.
        expect(page.get_by_label("Password")).to_have_value("")
        alert = page.get_by_role("alert")
        expect(alert).to_have_text(re.compile(rf"^({re.escape(INCORRECT)}|Too many failed sign-in attempts\..*)$"))
        if alert.inner_text().startswith("Too many"):
            break
    expect(page.get_by_role("alert")).to_have_text(
        re.compile(r"^Too many failed sign-in attempts\. Try again in \d+ minutes?\.$")
    )
    # Even the right password is refused while the lock lasts, and the shopper still sees why.
    _submit_sign_in(page, email, steps.PASSWORD)
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-in attempts.")
    expect(steps.header(page).get_by_role("link", name="Sign in")).to_be_visible()
    _expect_swapped(page)


def test_a_taken_email_address_shows_the_message(page: Page) -> None:
    email = steps.register(page)
    steps.sign_out(page)
    page.goto("/account/register")
    _mark(page)
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Your name").fill("Someone Else")
    page.get_by_label("Password").fill(steps.PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_text("An account with this e-mail address already exists. Sign in instead.")).to_be_visible()
    expect(page.get_by_role("heading", name="Create an account", level=1)).to_be_visible()
    _expect_swapped(page)


EXPIRED = "Your form expired or came from another site. Reload the page and try again."


def test_an_expired_form_shows_the_message(page: Page) -> None:
    """A boosted form whose CSRF cookie is gone gets the 403 page; htmx swaps it in."""
    page.goto("/account/sign-in")
    _mark(page)
    page.context.clear_cookies()
    _submit_sign_in(page, steps.new_email("nobody"), WRONG_PASSWORD)
    expect(page.get_by_role("heading", name="Forbidden", level=1)).to_be_visible()
    expect(page.locator("main")).to_contain_text(EXPIRED)
    expect(page).to_have_title(re.compile(r"^Forbidden"))
    _expect_swapped(page)


def test_an_expired_add_to_cart_shows_the_message_in_place(page: Page) -> None:
    """An ``hx-post`` that updates part of the page gets the message alone, in that part, not a second page."""
    page.goto("/products/tripod")
    _mark(page)
    page.context.clear_cookies()
    page.get_by_role("button", name="Add to cart").click()
    feedback = page.locator("#cart-feedback")
    expect(feedback.get_by_role("alert")).to_contain_text(EXPIRED)
    expect(page.locator("header.site-header")).to_have_count(1)  # no page nested in the page
    expect(page.get_by_role("heading", name="Tripod", level=1)).to_be_visible()
    _expect_swapped(page)


@pytest.fixture(scope="module")
def strict_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """A ``webshop serve`` (empty catalog) that takes three sign-in attempts a minute from an address."""
    yield from start_shop(tmp_path_factory, "e2e-rate-limit", catalog=False, WEBSHOP_RATE_LIMIT_AUTH="3/minute")


def test_too_many_attempts_from_one_address_show_the_message(browser: Browser, strict_shop: LiveShop) -> None:
    """The per-address limit answers 429 from the middleware (the error page): it is shown with JavaScript on."""
    context = new_context(browser, strict_shop.url)
    try:
        page = context.new_page()
        page.goto("/account/sign-in")
        _mark(page)
        for _ in range(3):
            _submit_sign_in(page, steps.new_email("nobody"), WRONG_PASSWORD)
            expect(page.get_by_role("alert")).to_have_text(INCORRECT)
        _submit_sign_in(page, steps.new_email("nobody"), WRONG_PASSWORD)
        expect(page.get_by_role("heading", name="Too many requests", level=1)).to_be_visible()
        expect(page.locator("main")).to_contain_text(
            re.compile(r"Too many requests from your address\. Please wait \d+ seconds and try again\.")
        )
        _expect_swapped(page)
    finally:
        context.close()
