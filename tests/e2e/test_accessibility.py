"""An automated accessibility check (axe-core) over every page a shopper or an admin sees, in Chromium.

axe-core is vendored under ``tests/e2e/vendor/axe-core`` (see its README) and put into each page by
Playwright's ``evaluate``, which the shop's Content-Security-Policy does not apply to (the shop never
serves it). It checks WCAG 2.0-2.2 A and AA and axe's best practices; a **critical or serious**
violation fails the test, with the page, rule, impact and the elements it found. Pages are reached as a
person would reach them (links, forms, htmx swaps), with JavaScript on; the shopper's pages on a
desktop screen and on a phone. Every state is checked, also when an earlier one failed, and the
whole list is written to ``test-artifacts/axe-<test>.json``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import SHARED_CATALOG
from tests.e2e import steps
from tests.e2e.conftest import new_context

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_OPTIONS = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]},
    "resultTypes": ["violations"],
}
FAILING = ("critical", "serious")
RUN_AXE = """async (options) => {
  const results = await axe.run(document, options);
  return {
    rules: results.passes.length + results.violations.length + results.incomplete.length,
    violations: results.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help,
      targets: v.nodes.map((n) => n.target.join(" ")),
    })),
  };
}"""
MIN_RULES = 20
"""Any page of the shop has this many applicable rules: fewer means axe did not really look at it."""


@dataclass
class Audit:
    """The axe results of one test's page states, in order: ``(state, violations)``."""

    page: Page
    source: str
    results: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)

    def check(self, state: str) -> None:
        """Run axe over the page as it is now and keep the result under ``state``."""
        self.page.wait_for_load_state("load")
        if not self.page.evaluate("typeof window.axe === 'object'"):
            self.page.evaluate(self.source)
        outcome = self.page.evaluate(RUN_AXE, AXE_OPTIONS)
        assert outcome["rules"] >= MIN_RULES, f"{state}: axe applied only {outcome['rules']} rules"
        self.results.append((state, outcome["violations"]))

    def failures(self) -> list[str]:
        """One line per critical or serious violation: state, rule, impact, help, and the elements."""
        lines = []
        for state, violations in self.results:
            for v in violations:
                if v["impact"] in FAILING:
                    targets = ", ".join(v["targets"][:8]) + (" …" if len(v["targets"]) > 8 else "")
                    lines.append(f"{state}: {v['id']} ({v['impact']}) {v['help']}: {targets}")
        return lines

    def report(self, path: Path) -> None:
        states = [{"state": state, "violations": violations} for state, violations in self.results]
        path.write_text(json.dumps(states, indent=2, ensure_ascii=False) + "\n")

    def assert_clean(self, path: Path) -> None:
        self.report(path)
        failures = self.failures()
        assert self.results, "no page was checked"
        assert not failures, f"axe-core found {len(failures)} critical/serious violation(s):\n" + "\n".join(failures)


@pytest.fixture(scope="module")
def axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


@pytest.fixture
def audit(screen_page: Page, axe_source: str) -> Audit:
    return Audit(screen_page, axe_source)


def test_the_check_notices_a_violation(page: Page, axe_source: str) -> None:
    """A page with an unlabelled field, an unnamed button and low contrast fails (the check's own test)."""

    def probe(route: Route) -> None:
        route.fulfill(
            status=200,
            content_type="text/html",
            body='<!doctype html><html lang="en"><head><title>probe</title><link rel="stylesheet" href="/probe.css">'
            '</head><body><main><h1>Probe</h1><form><input type="text" name="q"><button></button></form>'
            '<p class="faint">hard to read</p></main></body></html>',
        )

    page.route("**/probe", probe)
    page.route("**/probe.css", lambda route: route.fulfill(content_type="text/css", body=".faint { color: #ccc; }"))
    page.goto("/probe")
    audit = Audit(page, axe_source)
    audit.check("probe")
    found = {line.split(" ")[1] for line in audit.failures()}
    assert {"label", "button-name", "color-contrast"} <= found, audit.failures()


def test_shopper_pages(audit: Audit, artifacts_dir: Path, request: pytest.FixtureRequest) -> None:
    page, check = audit.page, audit.check
    screen = request.node.callspec.params["screen_page"]

    page.goto("/")
    check("catalog")
    steps.show_filters(page)
    page.get_by_role("navigation", name="Categories").get_by_role("link", name="Computers", exact=True).click()
    expect(page.get_by_role("heading", name="Computers", level=1)).to_be_visible()
    check("category")
    steps.search(page, "camera")
    expect(page).to_have_url(re.compile(r"[?&]q=camera"))
    check("search with results")
    page.locator("#catalog-q").fill("zzzz nothing like this")
    expect(page.locator("#result-count")).to_contain_text("matching")
    expect(page.locator("#catalog-results .product-card")).to_have_count(0)
    check("search without results")

    page.goto("/products/tripod")
    check("product (one variant)")
    page.goto("/products/gaming-pc")
    check("product (several variants)")
    steps.choose_options(page, {"opt0": "R7-2700"})
    check("product (another variant chosen)")

    page.goto("/cart")
    expect(page.get_by_role("heading", name="Your cart is empty")).to_be_visible()
    check("cart (empty)")

    page.goto("/account/sign-in")
    check("sign-in")
    page.get_by_label("E-mail address").fill(steps.new_email("nobody"))
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    check("sign-in (wrong password)")
    page.goto("/account/forgot-password")
    check("forgot password")
    page.goto("/account/register")
    check("register")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    check("register (errors)")

    steps.register(page, steps.new_email(f"a11y-{screen}"))
    check("account")
    page.goto("/orders")
    check("orders (none)")

    page.goto("/products/tripod")
    steps.add_to_cart(page)
    check("product (added to cart)")
    page.locator("#cart-feedback").get_by_role("link", name="View cart").click()
    expect(page.locator(".cart-table tbody tr")).to_have_count(1)
    check("cart (with items)")
    page.get_by_role("link", name="Check out").click()
    expect(page.get_by_role("heading", name="Where should we send it?")).to_be_visible()
    check("checkout address")
    page.get_by_role("button", name="Continue to shipping").click()
    expect(page.locator("[aria-invalid=true]").first).to_be_visible()
    check("checkout address (errors)")
    steps.fill_address(page)
    check("checkout shipping")
    steps.choose_shipping(page)
    check("checkout review")
    number = steps.pay(page)
    check("order confirmation")
    page.goto("/orders")
    check("orders")
    page.get_by_role("link", name=number).click()
    expect(page.get_by_role("heading", name=f"Order {number}")).to_be_visible()
    check("order detail")

    page.goto("/no-such-page")
    check("page not found")

    audit.assert_clean(artifacts_dir / f"axe-shopper-{screen}.json")


@pytest.fixture
def admin_audit(browser: Browser, live_server: str, live_admin: tuple[str, str], axe_source: str) -> Iterator[Audit]:
    """An admin's page (desktop screen, JavaScript on) with a shopper's order to look at."""
    shopper = new_context(browser, live_server)
    try:
        page = shopper.new_page()
        steps.register(page, steps.new_email("a11y-customer"), name="Grace Customer")
        steps.buy(page, "tennis-ball", quantity=2)
    finally:
        shopper.close()
    context = new_context(browser, live_server, viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        steps.sign_in(page, *live_admin)
        yield Audit(page, axe_source)
    finally:
        context.close()


def test_admin_pages(admin_audit: Audit, artifacts_dir: Path) -> None:
    page, check = admin_audit.page, admin_audit.check
    admin_nav = page.get_by_role("navigation", name="Administration")

    page.goto("/admin")
    check("admin dashboard")

    admin_nav.get_by_role("link", name="Products").click()
    expect(page.get_by_role("heading", name="Products", level=1)).to_be_visible()
    check("admin products")
    page.get_by_role("link", name="Gaming PC", exact=True).click()
    expect(page.get_by_role("heading", name="Gaming PC", level=1)).to_be_visible()
    check("admin product edit form (with history)")
    page.goto("/admin/products/new")
    check("admin new product form")

    admin_nav.get_by_role("link", name="Categories").click()
    expect(page.get_by_role("heading", name="Categories", level=1)).to_be_visible()
    check("admin categories")
    page.locator("main").get_by_role("link", name="Footwear", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Footwear")
    check("admin category (with history)")

    admin_nav.get_by_role("link", name="Stock").click()
    expect(page.get_by_role("heading", name="Stock", level=1)).to_be_visible()
    check("admin stock")

    admin_nav.get_by_role("link", name="Orders").click()
    expect(page.get_by_role("heading", name="Orders", level=1)).to_be_visible()
    check("admin orders")
    page.locator("#order-results").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"^Order "))).to_be_visible()
    check("admin order detail")
    page.get_by_role("button", name="Mark as shipped").click()
    expect(page.locator(".audit-trail")).to_contain_text("shipped")
    check("admin order detail (status history)")
    cancel = page.locator("a[data-status]")
    if cancel.count():
        cancel.first.click()
        check("admin order status confirmation")

    admin_nav.get_by_role("link", name="Users").click()
    expect(page.get_by_role("heading", name="Users", level=1)).to_be_visible()
    check("admin users")
    page.get_by_role("link", name="Grace Customer").first.click()
    check("admin user (with audit trail)")

    admin_nav.get_by_role("link", name="Webhooks").click()
    expect(page.get_by_role("heading", name="Webhooks", level=1)).to_be_visible()
    check("admin webhooks")
    page.get_by_role("link", name="Register endpoint").click()
    page.get_by_role("button", name=re.compile("^Register")).click()  # nothing filled in: the form's errors
    expect(page.locator(".field-error").first).to_be_visible()
    check("admin webhook form (with errors)")
    page.get_by_label("URL that receives the events").fill("http://127.0.0.1:9/hooks")
    page.locator('input[name="events"]').first.check()
    page.get_by_role("button", name=re.compile("^Register")).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Endpoint "))).to_be_visible()
    page.get_by_role("button", name="Send test event").click()
    expect(page.locator("#webhook-deliveries")).to_contain_text("webhook.test")
    check("admin webhook endpoint (with its delivery log)")

    admin_nav.get_by_role("link", name="Import/export").click()
    expect(page.get_by_role("heading", name="Catalog import and export", level=1)).to_be_visible()
    check("admin import/export")
    page.get_by_label(re.compile(r"^CSV file")).set_input_files(str(SHARED_CATALOG / "products.csv"))
    page.get_by_role("button", name="Preview import").click()
    expect(page.get_by_role("heading", name=re.compile(r"^Import preview"))).to_be_visible()
    check("admin import preview")

    admin_audit.assert_clean(artifacts_dir / "axe-admin.json")
