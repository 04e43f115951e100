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
    from playwright.sync_api import Browser, BrowserContext, Page

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
IMPORT_TIMEOUT_S = 180.0
E2E_DIR = Path(__file__).resolve().parent


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
