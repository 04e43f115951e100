"""The Content-Security-Policy in a real browser: the shop's pages and htmx work under it with no violation.

Every browser test fails on any violation, console error or failed sub-resource (``browser_problems`` in
conftest.py); these tests make sure the check itself notices each kind, and walk the pages and htmx
interactions a shopper uses, plus the API documentation pages with their own policy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from playwright.sync_api import expect

from tests.e2e.conftest import settle

if TYPE_CHECKING:
    from collections.abc import Callable

    from playwright.sync_api import Page, Route

    from tests.e2e.conftest import BrowserProblems

PAGES = ["/", "/account/sign-in", "/account/register", "/account/forgot-password", "/cart", "/no-such-page"]
DOCS = ["/api/docs", "/api/redoc", "/api/scalar"]


PROBE_CSP = "default-src 'self'; script-src 'self'; style-src 'self'"


def _serve_probe(page: Page, body: str, *, script: str = "") -> None:
    """Answer ``/probe`` with ``body`` under the shop's kind of policy, and ``/probe.js`` with ``script``."""

    def html(route: Route) -> None:
        route.fulfill(status=200, content_type="text/html", headers={"Content-Security-Policy": PROBE_CSP}, body=body)

    def javascript(route: Route) -> None:
        route.fulfill(status=200, content_type="text/javascript", body=script)

    page.route("**/probe", html)
    page.route("**/probe.js", javascript)


def test_the_check_notices_a_violation(page: Page, browser_problems: BrowserProblems) -> None:
    """A page with our policy and an inline script and style is reported (then forgiven: it is the probe)."""
    _serve_probe(
        page, "<!doctype html><title>probe</title><p style='color:red'>x</p><script>document.title='ran'</script>"
    )
    page.goto("/probe")
    settle(page)
    assert page.title() == "probe"  # the inline script was blocked
    found = browser_problems.found()
    assert any("script-src" in p for p in found) and any("style-src" in p for p in found), found
    browser_problems.clear()


def test_the_check_notices_errors_and_missing_resources(page: Page, browser_problems: BrowserProblems) -> None:
    """A console error, an uncaught exception and a 404 image are each reported (then forgiven)."""
    _serve_probe(
        page,
        "<!doctype html><title>probe</title><img alt='' src='/static/no-such-image.png'>"
        "<script src='/probe.js'></script>",
        script="console.error('probe says no'); throw new Error('probe failed');",
    )
    page.goto("/probe")
    page.wait_for_load_state("networkidle")
    found = "\n".join(browser_problems.found())
    assert "probe says no" in found, found
    assert "probe failed" in found, found
    assert "HTTP 404 for image" in found and "no-such-image.png" in found, found
    browser_problems.clear()


def test_an_expected_error_can_be_allowed(
    page: Page, browser_problems: BrowserProblems, expect_console_errors: Callable[[str], None]
) -> None:
    expect_console_errors(r"probe says no")
    _serve_probe(
        page,
        "<!doctype html><title>probe</title><script src='/probe.js'></script>",
        script="console.error('probe says no')",
    )
    page.goto("/probe")
    page.wait_for_load_state("networkidle")
    assert browser_problems.found() == []


def test_style_attributes_added_by_others_are_not_copied_by_htmx(page: Page) -> None:
    """Browser extensions, password managers and Playwright's screenshots give inputs a ``style`` attribute.

    htmx used to copy ``style`` from the old element to the new one with the same id after each swap
    (``attributesToSettle``) and to restore pages from its history cache with those attributes: each
    copy was an inline style the policy refused (25 violations on one shopper journey).
    """
    page.goto("/")
    page.evaluate("document.querySelector('#header-q').style.caretColor = 'red'")  # CSSOM: allowed by CSP
    page.screenshot()  # Playwright's caret hiding leaves style="" on every input
    page.locator("header").get_by_role("link", name="Sign in").click()
    expect(page.get_by_role("heading", name="Sign in", level=1)).to_be_visible()
    page.screenshot()
    page.go_back()
    expect(page.locator("#header-q")).to_be_visible()
    page.locator("header").get_by_role("link", name="Register").click()
    expect(page.get_by_role("heading", name="Create an account", level=1)).to_be_visible()
    settle(page)  # every report of what the browser refused has arrived


def test_shop_pages_and_htmx_raise_no_violation(page: Page) -> None:
    for path in PAGES:
        page.goto(path)
        assert page.evaluate("typeof htmx") == "object", path  # the vendored script is allowed and ran
    page.goto("/")
    search = page.get_by_role("searchbox").first
    search.fill("a")
    page.wait_for_load_state("networkidle")
    product = page.locator("a[href^='/products/']").first
    product.click()
    page.wait_for_url(re.compile(r"/products/"))
    page.wait_for_load_state("networkidle")
    settle(page)  # every report of what the browser refused has arrived


def test_api_docs_pages_raise_no_violation(page: Page) -> None:
    """The docs pages' own policy allows their inline start-up code (their bundles are in static/vendor)."""
    for path in DOCS:
        response = page.goto(path, timeout=60_000)  # the first visit compresses MBs of bundles once
        assert response is not None and response.status == 200
        assert "'unsafe-inline'" in response.headers["content-security-policy"]
    settle(page)
