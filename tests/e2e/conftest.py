"""End-to-end fixtures: a real ``webshop serve`` on 127.0.0.1 with the shared catalog, and Chromium.

The server runs as a subprocess exactly as an operator would start it (``import-catalog``, then
``serve``), on a throw-away SQLite database and media directory. Chromium is the system one at
``/usr/bin/chromium`` (Playwright cannot download browsers here). Without Chromium or the shared
catalog the tests are skipped, unless ``WEBSHOP_REQUIRE_BROWSER=1`` turns the skip into a failure
(CI sets it, so a missing browser can never pass silently).

**Every browser test fails on anything the browser reports as wrong**, on every page of every context
it opened (however the context was made: the fixtures below, ``browser.new_context`` or
``browser.new_page``): a console error (this includes Chromium's own report of a Content-Security-Policy
violation, "Refused to …"/"Applying inline style violates …"), an uncaught page error, a
``securitypolicyviolation`` event, a sub-resource (style sheet, script, image, font, favicon) that
failed or answered 4xx/5xx, and any 5xx answer. A page's own answer (a document, or an htmx
request) may be a 4xx: that is the shop telling the shopper something (404 page, wrong password),
and the tests check the message is shown. A test that expects an error says so with
``expect_console_errors(pattern)``.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import SHARED_CATALOG, unavailable
from tests.e2e import steps
from tests.live import live_server as serve
from tests.live import run_cli, shop_env

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, Response, WebError

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"
IMPORT_TIMEOUT_S = 180.0
E2E_DIR = Path(__file__).resolve().parent
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 360, "height": 740}
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "correct horse battery staple"

CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.effectiveDirective} blocked ${event.blockedURI || "inline code"}`
    + ` in ${event.sourceFile || document.location.href}:${event.lineNumber}`);
}, true);
"""
"""Added to every page by Playwright (not by the shop): reports each Content-Security-Policy violation."""

PAGE_ANSWERS = frozenset({"document", "xhr", "fetch"})
"""Requests whose answer is a page or an htmx swap: a 4xx there is a message for the shopper, not a fault."""
FAILED_LOAD = re.compile(r"^Failed to load resource: ")
IGNORED_FAILURES = frozenset({"net::ERR_ABORTED"})
"""A request the page itself dropped (a newer search replaced it, the page moved on, a download started)."""


@dataclass
class BrowserProblems:
    """What went wrong in the browser during one test (see the module docstring), and what it expects."""

    console: list[tuple[str, str, str]] = field(default_factory=list)
    """(page URL, text, URL of the resource it is about) of each console error and page error."""
    responses: list[tuple[str, str, int, str]] = field(default_factory=list)
    """(page URL, resource type, status, URL) of each 4xx/5xx answer."""
    failures: list[tuple[str, str, str, str]] = field(default_factory=list)
    """(page URL, resource type, error text, URL) of each request that failed without an answer."""
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def allow(self, pattern: str) -> None:
        """Expect problems whose description matches ``pattern`` (``re.search``); they do not fail the test."""
        self.allowed.append(re.compile(pattern))

    def clear(self) -> None:
        """Forget everything seen so far (not the expectations)."""
        self.console.clear()
        self.responses.clear()
        self.failures.clear()

    def found(self) -> list[str]:
        """Every problem seen so far and not expected, one line each."""
        answered = {url for *_, url in self.responses} | {url for *_, url in self.failures}
        problems: list[str] = []
        for page_url, kind, status, url in self.responses:
            if kind not in PAGE_ANSWERS or status >= 500:
                problems.append(f"HTTP {status} for {kind} {url} (on {page_url})")
        for page_url, kind, error, url in self.failures:
            if error not in IGNORED_FAILURES:
                problems.append(f"{kind} {url} failed: {error} (on {page_url})")
        for page_url, text, url in self.console:
            if FAILED_LOAD.match(text) and url in answered:
                continue  # reported above from the network events, with the resource type
            problems.append(f"console error on {page_url}: {text}" + (f" ({url})" if url else ""))
        return [problem for problem in problems if not any(p.search(problem) for p in self.allowed)]


PROBLEMS = BrowserProblems()
"""The problems of the running test, from every browser context (contexts can outlive a test)."""


def _page_url(page: Page | None) -> str:
    try:
        return page.url if page else "?"
    except Exception:  # a closed page has no URL any more
        return "?"


def _requesting_page_url(request: Request) -> str:
    try:
        return _page_url(request.frame.page)
    except Exception:  # a service worker's request has no frame
        return "?"


def watch(context: BrowserContext) -> BrowserContext:
    """Record every problem of ``context``'s pages, present and future, in ``PROBLEMS``."""

    def on_console(message: ConsoleMessage) -> None:
        # Chromium reports an input's pattern it cannot compile (with the ``v`` flag) as a warning only, and
        # the field then goes unchecked in the browser (QA: ``[+-]?[0-9]+`` on the stock page): count it too.
        if message.type == "error" or "is not a valid regular expression" in message.text:
            location = message.location.get("url", "") if message.location else ""
            PROBLEMS.console.append((_page_url(message.page), message.text, location))

    def on_web_error(error: WebError) -> None:
        PROBLEMS.console.append((_page_url(error.page), f"uncaught {error.error}", ""))

    def on_response(response: Response) -> None:
        if response.status >= 400:
            request = response.request
            PROBLEMS.responses.append(
                (_requesting_page_url(request), request.resource_type, response.status, response.url)
            )

    def on_request_failed(request: Request) -> None:
        failure = request.failure or ""
        PROBLEMS.failures.append((_requesting_page_url(request), request.resource_type, failure, request.url))

    context.add_init_script(script=CSP_LISTENER)
    context.on("console", on_console)
    context.on("weberror", on_web_error)
    context.on("response", on_response)
    context.on("requestfailed", on_request_failed)
    return context


def settle(page: Page) -> None:
    """Wait until Playwright has received every report of what ``page`` did so far, before a test looks
    at ``browser_problems`` (or ends, which checks them).

    A marker is logged from a task the page runs after its pending ones (a violation's event listener, an
    error); console messages reach Playwright in the order they were logged, so once the marker is here the
    reports before it are too: a positive signal, not a guessed pause.
    """
    marker = f"settled {uuid.uuid4().hex}"
    with page.expect_console_message(lambda message: message.text == marker):
        page.evaluate("marker => setTimeout(() => console.log(marker), 0)", marker)


@pytest.fixture(autouse=True)
def browser_problems() -> Iterator[BrowserProblems]:
    """Every browser test fails if any page it opened had a problem it did not expect (module docstring)."""
    PROBLEMS.clear()
    PROBLEMS.allowed.clear()
    yield PROBLEMS
    found = PROBLEMS.found()
    PROBLEMS.clear()
    if found:
        pytest.fail("The browser reported problems:\n" + "\n".join(found), pytrace=False)


@pytest.fixture
def expect_console_errors(browser_problems: BrowserProblems) -> Callable[[str], None]:
    """``expect_console_errors(pattern)``: this test expects the browser problems matching the regex."""
    return browser_problems.allow


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


@dataclass(frozen=True)
class LiveShop:
    """A running ``webshop serve``: its base URL, and the environment and folder its commands need."""

    url: str
    env: dict[str, str]
    workdir: Path


_IMPORTED: dict[tuple[tuple[str, str], ...], Path] = {}
"""Folders holding the shared catalog as ``import-catalog`` left it (``shop.db`` and ``media/``), by the
extra settings of the shops that asked for one (the import takes 40-70 s on a slow machine)."""


def _imported_catalog(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """A folder with the shared catalog imported under the settings ``env`` adds (once per ``env``)."""
    key = tuple(sorted(env.items()))
    if key not in _IMPORTED:
        folder = tmp_path_factory.mktemp("e2e-catalog")
        environment = shop_env(f"sqlite+aiosqlite:///{folder / 'shop.db'}", folder, PYTHONUNBUFFERED="1", **env)
        imported = run_cli(
            ["import-catalog", "--no-progress", str(SHARED_CATALOG)], environment, folder, timeout=IMPORT_TIMEOUT_S
        )
        if imported.returncode != 0:
            pytest.fail(
                f"import-catalog exited with {imported.returncode}:\n{imported.stdout}{imported.stderr}", pytrace=False
            )
        _IMPORTED[key] = folder
    return _IMPORTED[key]


def start_shop(
    tmp_path_factory: pytest.TempPathFactory, name: str, *, catalog: bool = True, **env: str
) -> Iterator[LiveShop]:
    """Yield a ``webshop serve`` on a new database (the shared catalog imported unless ``catalog=False``:
    a copy of one import per set of settings, database and media alike)."""
    if catalog and not (SHARED_CATALOG / "products.csv").is_file():
        unavailable(f"the shared catalog is missing: {SHARED_CATALOG / 'products.csv'} not found")
    workdir = tmp_path_factory.mktemp(name)
    environment = shop_env(f"sqlite+aiosqlite:///{workdir / 'shop.db'}", workdir, PYTHONUNBUFFERED="1", **env)
    if catalog:
        imported = _imported_catalog(tmp_path_factory, env)
        for part in imported.iterdir():
            if part.is_dir():
                shutil.copytree(part, workdir / part.name)
            else:
                shutil.copy2(part, workdir / part.name)
    with serve(environment, workdir) as base_url:
        yield LiveShop(base_url, environment, workdir)


def create_admin(shop: LiveShop, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    """``webshop create-admin EMAIL`` against ``shop``'s database."""
    done = run_cli(["create-admin", email], {**shop.env, "WEBSHOP_ADMIN_PASSWORD": password}, shop.workdir, timeout=60)
    if done.returncode != 0:
        pytest.fail(f"webshop create-admin exited with {done.returncode}:\n{done.stdout}{done.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def live_shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveShop]:
    """A ``webshop serve`` subprocess with the shared catalog imported, shared by the browser tests."""
    yield from start_shop(tmp_path_factory, "e2e-server")


@pytest.fixture(scope="session")
def live_server(live_shop: LiveShop) -> str:
    """Base URL of the shared ``webshop serve``."""
    return live_shop.url


@pytest.fixture(scope="session")
def live_admin(live_shop: LiveShop) -> tuple[str, str]:
    """E-mail address and password of an admin of the shared server."""
    create_admin(live_shop)
    return ADMIN_EMAIL, ADMIN_PASSWORD


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless system Chromium, shared by a test module; every context it makes is watched (``watch``).

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

        def watched_context(*args: Any, **kwargs: Any) -> BrowserContext:
            return watch(new_context(*args, **kwargs))

        def watched_page(*args: Any, **kwargs: Any) -> Page:
            # Playwright's own new_page makes its context internally, past the wrapper above.
            return watched_context(*args, **kwargs).new_page()

        chromium.new_context = watched_context  # type: ignore[method-assign]
        chromium.new_page = watched_page  # type: ignore[method-assign]
        try:
            yield chromium
        finally:
            chromium.close()


def new_context(browser: Browser, base_url: str, **options: Any) -> BrowserContext:
    """A watched context whose relative URLs resolve against ``base_url`` (10 s timeouts)."""
    context = browser.new_context(base_url=base_url, **options)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def page(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page (own cookies) with JavaScript on; relative URLs resolve against the live server."""
    context = new_context(browser, live_server)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page_nojs(browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page (own cookies) with JavaScript off: what a no-JS shopper gets."""
    context = new_context(browser, live_server, java_script_enabled=False)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture(params=["desktop", "phone"])
def screen_page(request: pytest.FixtureRequest, browser: Browser, live_server: str) -> Iterator[Page]:
    """A fresh page with JavaScript on, once on a desktop screen (1280x800) and once on a phone (360x740)."""
    options: dict[str, Any] = {"viewport": DESKTOP}
    if request.param == "phone":
        options = {"viewport": PHONE, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
    context = new_context(browser, live_server, **options)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def admin_page(browser: Browser, live_server: str, live_admin: tuple[str, str]) -> Iterator[Page]:
    """A page with JavaScript on (downloads accepted), signed in as the shared server's admin."""
    context = new_context(browser, live_server, accept_downloads=True)
    try:
        page = context.new_page()
        steps.sign_in(page, *live_admin)
        yield page
    finally:
        context.close()
