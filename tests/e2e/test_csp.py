"""The Content-Security-Policy in a real browser: the shop's pages and htmx work under it with no violation.

Every browser test is checked for violations (``no_csp_violations`` in conftest.py); these tests make
sure the check itself notices a violation, and walk the pages and htmx interactions a shopper uses,
plus the API documentation pages with their own policy.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

PAGES = ["/", "/account/sign-in", "/account/register", "/account/forgot-password", "/cart", "/no-such-page"]
DOCS = ["/api/docs", "/api/redoc", "/api/scalar"]


def test_the_check_notices_a_violation(page: Page, no_csp_violations: list[str]) -> None:
    """A page with our policy and an inline script and style is reported (then forgiven: it is the probe)."""

    def probe(route: Route) -> None:
        route.fulfill(
            status=200,
            content_type="text/html",
            headers={"Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'"},
            body="<!doctype html><title>probe</title><p style='color:red'>x</p><script>document.title='ran'</script>",
        )

    page.route("**/csp-probe", probe)
    page.goto("/csp-probe")
    page.wait_for_timeout(200)
    assert page.title() == "probe"  # the inline script was blocked
    assert any("script" in v for v in no_csp_violations) and any("style" in v for v in no_csp_violations)
    no_csp_violations.clear()


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
    page.wait_for_timeout(200)  # let the browser report anything it refused


def test_api_docs_pages_raise_no_violation(page: Page) -> None:
    """The docs pages' own policy allows their inline start-up code (their CDN bundles may be unreachable)."""
    for path in DOCS:
        response = page.goto(path)
        assert response is not None and response.status == 200
        assert "'unsafe-inline'" in response.headers["content-security-policy"]
    page.wait_for_timeout(200)
