"""End-to-end fixtures: a real ``webshop serve`` on 127.0.0.1 with the shared catalog, and Chromium.

The server runs as a subprocess exactly as an operator would start it (``import-catalog``, then
``serve``), on a throw-away SQLite database and media directory. Chromium is the system one at
``/usr/bin/chromium`` (Playwright cannot download browsers here). Without Chromium or the shared
catalog the tests are skipped, unless ``WEBSHOP_REQUIRE_BROWSER=1`` turns the skip into a failure
(CI sets it, so a missing browser can never pass silently).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.conftest import SHARED_CATALOG, unavailable
from tests.live import live_server as serve
from tests.live import run_cli, shop_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
IMPORT_TIMEOUT_S = 180.0
E2E_DIR = Path(__file__).resolve().parent
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || "inline code"}`
    + ` in ${event.sourceFile || document.location.href}:${event.lineNumber}`);
});
"""
"""Added to every page by Playwright (not by the shop): reports each Content-Security-Policy violation."""
CSP_VIOLATIONS: list[str] = []
"""Content-Security-Policy violations seen in any browser context during the current test."""


def _record_csp_violations(context: BrowserContext) -> None:
    """Collect the context's CSP violations: Chromium's own console report and the listener's."""

    def on_console(message: ConsoleMessage) -> None:
        if message.text.startswith("CSP violation") or "Content Security Policy" in message.text:
            CSP_VIOLATIONS.append(f"{message.page.url if message.page else '?'}: {message.text}")

    context.add_init_script(script=CSP_LISTENER)
    context.on("console", on_console)


@pytest.fixture(autouse=True)
def no_csp_violations() -> Iterator[list[str]]:
    """Every browser test fails if any page it opened reported a Content-Security-Policy violation."""
    CSP_VIOLATIONS.clear()
    yield CSP_VIOLATIONS
    found, CSP_VIOLATIONS[:] = list(CSP_VIOLATIONS), []
    if found:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(found), pytrace=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under ``tests/e2e`` as a browser test."""
    for item in items:
        if E2E_DIR in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """``test-artifacts/`` at the repository root (git-ignored): screenshots land here."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a ``webshop serve`` subprocess with the shared catalog imported."""
    if not (SHARED_CATALOG / "products.csv").is_file():
        unavailable(f"the shared catalog is missing: {SHARED_CATALOG / 'products.csv'} not found")
    workdir = tmp_path_factory.mktemp("e2e-server")
    env = shop_env(f"sqlite+aiosqlite:///{workdir / 'shop.db'}", workdir, PYTHONUNBUFFERED="1")
    imported = run_cli(["import-catalog", "--no-progress", str(SHARED_CATALOG)], env, workdir, timeout=IMPORT_TIMEOUT_S)
    if imported.returncode != 0:
        pytest.fail(
            f"import-catalog exited with {imported.returncode}:\n{imported.stdout}{imported.stderr}", pytrace=False
        )
    with serve(env, workdir) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system Chromium, shared by a test module.

    Module scope, not session: sync Playwright keeps an event loop running in the main thread while
    it is open, and the async tests in other modules need that thread free for their own loop.
    """
    if not CHROMIUM.exists():
        unavailable(f"Chromium is not installed at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright package is not installed")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu"],
        )
        new_context = chromium.new_context

        def recording_context(*args: object, **kwargs: object) -> BrowserContext:
            context = new_context(*args, **kwargs)  # type: ignore[arg-type]
            _record_csp_violations(context)
            return context

        chromium.new_context = recording_context  # type: ignore[method-assign]  # every test's contexts
        try:
            yield chromium
        finally:
            chromium.close()


def _context(browser: Browser, live_server: str, **options: object) -> BrowserContext:
    context = browser.new_context(base_url=live_server, **options)  # type: ignore[arg-type]
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page (own cookies) with JavaScript on; relative URLs resolve against the live server."""
    context = _context(browser, live_server)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page_nojs(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page (own cookies) with JavaScript off: what a no-JS shopper gets."""
    context = _context(browser, live_server, java_script_enabled=False)
    try:
        yield context.new_page()
    finally:
        context.close()
