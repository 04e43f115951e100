"""Shared fixtures: a migrated database per test on SQLite and (when configured) PostgreSQL.

Every test that asks for ``db_url`` (directly or through ``settings``/``app``/``client``) runs once per
engine. The schema comes from the real Alembic migrations, run once per session into a template
(a SQLite file, or a PostgreSQL database with a random name). Each test gets a copy of the SQLite file;
on PostgreSQL each test process has one database that is set back to the template's rows before each
test (``tests/postgres_reset.py``). So tests are isolated and fast. PostgreSQL databases are dropped
afterwards; the shared server is left clean.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from litestar import Litestar
from litestar.testing import AsyncTestClient
from sqlalchemy.engine import make_url

from tests.factories import seed_catalog
from tests.postgres_reset import ResettableDatabase
from webshop.catalog.cache import CACHE
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, create_alchemy_config, run_migrations
from webshop.security import passwords

# Property tests are about correctness, not speed (speed is the benchmarks' job, against a hello-world in
# the same run): on a shared, busy machine Hypothesis's timing checks would fail them for the machine's sake.
hypothesis_settings.register_profile("shared-machine", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("shared-machine")

POSTGRES_URL = os.environ.get("WEBSHOP_TEST_POSTGRES_URL", "")
SHARED_CATALOG = Path(__file__).resolve().parents[2] / "shared" / "catalog"
STRICT = os.environ.get("WEBSHOP_REQUIRE_BROWSER") == "1"
"""CI mode: every component a test needs (Chromium, PostgreSQL, the shared catalog) must be there."""
SECRET = "test-secret-key-that-is-long-enough-0123456789"
BASE_URL = "http://127.0.0.1:8000"
"""Where the in-process test clients send their requests (a host the app allows)."""


SERIAL_GROUPS = {
    "browser": ("e2e",),
    "processes": (
        "test_races.py",
        "test_worker_kill.py",
        "test_db_outage.py",
        "test_serve.py",
        "test_demo_command.py",
        "test_api_schema.py",
        "test_webhook_kill.py",
    ),
    "search": ("test_search_quality.py",),
}
"""Tests that share one pytest-xdist worker (``--dist loadgroup`` in pyproject.toml): the browser tests
share one live server and Chromium; the tests that start server processes or load the machine run one
at a time, so their bounds (an outage answered within seconds, a replacement worker within 20 s) are
measured on a machine that is not also running another heavy test; the search-quality tests share their
module's import of the real catalog (about 12 s per engine), which each worker would otherwise repeat."""


TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1, hash_len=32, salt_len=16)
"""argon2id at its lowest cost (8 KiB, one pass: well under a millisecond) for the tests in this process.

At OWASP's cost (``webshop.security.passwords.HASHER``: 19 MiB, two passes, about 30 ms of CPU) the
hashing of the accounts tests create and sign in with took a third of the suite's CPU. Django's testing
guide gives the same advice ("use a faster password hasher"). Every code path still runs (argon2id, the
worker thread, verification, the rehash of a hash at other parameters); only the cost differs. Tests
marked ``owasp_password_cost`` keep the real parameters (they check them), and servers a test starts
as processes always use them."""


@pytest.fixture(autouse=True)
def _cheap_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash with ``TEST_HASHER`` unless the test is marked ``owasp_password_cost``."""
    if request.node.get_closest_marker("owasp_password_cost") is None:
        monkeypatch.setattr(passwords, "HASHER", TEST_HASHER)


def pytest_configure(config: pytest.Config) -> None:
    """Compile ``webshop/`` to bytecode once, in the controlling process, before any test runs.

    Many tests start ``webshop`` processes (live servers, CLI commands, worker kills). Where
    ``PYTHONDONTWRITEBYTECODE`` is set (as on the CI machines) no process writes ``__pycache__``, so every
    one of them compiled the whole package from source again, a second or two of CPU each;
    ``compileall`` writes the caches whatever that variable says, and every process then reads them.
    """
    if not hasattr(config, "workerinput"):
        import compileall

        compileall.compile_dir(Path(__file__).resolve().parents[1] / "webshop", quiet=2)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put each test named in ``SERIAL_GROUPS`` in its xdist group (a no-op without xdist).

    ``tryfirst``: each pytest-xdist worker reads the groups in a hook of its own (it adds the group to the
    test's id, which ``--dist loadgroup`` schedules by); this hook must mark the tests before that one runs.
    """
    for item in items:
        parts = Path(str(item.path)).parts
        for group, names in SERIAL_GROUPS.items():
            if any(name in parts for name in names):
                item.add_marker(pytest.mark.xdist_group(group))


def unavailable(reason: str) -> NoReturn:
    """Skip a test whose component is missing; in CI mode (``WEBSHOP_REQUIRE_BROWSER=1``) fail instead."""
    if STRICT:
        pytest.fail(f"{reason} (WEBSHOP_REQUIRE_BROWSER=1: CI needs it, so this is a failure)", pytrace=False)
    pytest.skip(reason)


def require_postgres() -> str:
    """The PostgreSQL server URL for tests, or skip/fail (see ``unavailable``)."""
    if not POSTGRES_URL:
        unavailable("PostgreSQL tests need WEBSHOP_TEST_POSTGRES_URL (CI sets it)")
    return POSTGRES_URL


@pytest.fixture
def shared_catalog() -> Path:
    """The real catalog in ``../shared/catalog``, or skip/fail (see ``unavailable``)."""
    if not (SHARED_CATALOG / "products.csv").is_file():
        unavailable(f"the shared catalog is missing: {SHARED_CATALOG / 'products.csv'} not found")
    return SHARED_CATALOG


def make_settings(database_url: str, media_dir: Path, **overrides: object) -> Settings:
    """Settings for a test app; ``overrides`` by flat name (``WEBSHOP_QUEUE_TIMEOUT`` is ``queue_timeout``)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "secret_key": SECRET,
        "media_dir": media_dir,
        "page_size": 12,
        # E-mails of tests without an SMTP server go to .eml files beside the test's media, not the work tree.
        "mail_outbox_dir": media_dir.parent / "outbox",
        # Like the live servers (tests/live.py): requests queued behind a busy test machine wait 30 s.
        "queue_timeout": 30.0,
    }
    values.update(overrides)
    return Settings.from_flat(**values)  # type: ignore[arg-type]


def _admin_url(url: str) -> str:
    """The server's maintenance database URL for asyncpg (no SQLAlchemy driver suffix)."""
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


async def _pg_exec(url: str, *statements: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(_admin_url(url))
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _pg_database_url(name: str) -> str:
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def in_thread(coroutine: Any) -> Any:
    """Run a coroutine to completion in a thread with its own event loop (safe inside a running loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _migrate(url: str, media_dir: Path) -> None:
    """Run the migrations in a thread of their own: Alembic's async env calls ``asyncio.run``, which
    refuses to start inside a running loop (as under pytest-asyncio or sync Playwright)."""
    config = create_alchemy_config(make_settings(url, media_dir), null_pool=True)
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run_migrations, config).result()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    path = directory / "template.db"
    _migrate(f"sqlite+aiosqlite:///{path}", directory / "media")
    return path


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A PostgreSQL database with a random name, migrated to head once per session, dropped after."""
    require_postgres()
    name = f"webshop_tpl_{uuid.uuid4().hex[:12]}"
    in_thread(_pg_exec(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    try:
        _migrate(_pg_database_url(name), tmp_path_factory.mktemp("pg-media"))
        yield name
    finally:
        in_thread(_pg_exec(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def worker_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This test process's folder for the test database file, media and outbox (emptied per test)."""
    return tmp_path_factory.mktemp("worker")


@pytest.fixture(scope="session")
def postgres_test_database(postgres_template: str) -> Iterator[ResettableDatabase]:
    """This test process's PostgreSQL test database: made once, set back to the template's rows before
    each test (``tests/postgres_reset.py`` says why it is not copied per test), dropped at the end."""
    name = f"webshop_test_{uuid.uuid4().hex[:12]}"
    database = ResettableDatabase(_admin_url(POSTGRES_URL), _admin_url(_pg_database_url(name)), name, postgres_template)
    try:
        yield database
    finally:
        in_thread(database.drop())


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, worker_dir: Path) -> Iterator[str]:
    """A migrated database for one test, holding what the session's template holds and nothing else.

    Its URL is the same for every test of this process (a file in ``worker_dir``, or the database of
    ``postgres_test_database``), so that tests can share one app (see ``app``); its content is new each
    time: the SQLite file is a fresh copy of the template; the PostgreSQL database is reset to it.
    """
    # The catalog's per-process cache is keyed by database name and catalog version, and both repeat
    # from one test's fresh copy to the next: forget it with the database it came from.
    CACHE.clear()
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = worker_dir / "shop.db"
        for leftover in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
            leftover.unlink(missing_ok=True)
        shutil.copyfile(template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    database: ResettableDatabase = request.getfixturevalue("postgres_test_database")
    in_thread(database.reset())
    yield _pg_database_url(database.name)


@pytest.fixture
def settings(db_url: str, worker_dir: Path) -> Settings:
    """Settings for a test app on the test's database, with media (and the e-mail outbox) in folders
    emptied for each test."""
    for folder in ("media", "outbox"):
        shutil.rmtree(worker_dir / folder, ignore_errors=True)
    return make_settings(db_url, worker_dir / "media")


@dataclass
class _Shared:
    """A database config of this process and the app built on it (see ``app``)."""

    settings: Settings
    alchemy: ShopAlchemyConfig
    app: Litestar | None = None


_SHARED: list[_Shared] = []
"""This process's database configs and apps, newest first, by the settings they were built with."""


@pytest.fixture
async def alchemy(settings: Settings) -> AsyncIterator[ShopAlchemyConfig]:
    """The database config (NullPool) shared by the app and the test's own data set-up (one per equal
    settings in this process: its engine keeps no connection between tests)."""
    shared = next((shared for shared in _SHARED if shared.settings == settings), None)
    if shared is None:
        shared = _Shared(settings, create_alchemy_config(settings, null_pool=True))
        _SHARED.insert(0, shared)
        del _SHARED[4:]
    yield shared.alchemy
    await shared.alchemy.get_engine().dispose()


@pytest.fixture
async def app(settings: Settings, alchemy: ShopAlchemyConfig) -> Litestar:
    """The application under test: built once per process for equal settings, and reused.

    Building the app (registering its 440 route handlers) took a second of CPU, half the time of most
    tests. A reused app starts each test as a new one would: the database is a fresh copy (same URL,
    the catalog cache forgotten by ``db_url``), the media and outbox folders are empty (``settings``),
    and the rate-limit and sign-in counters it keeps in memory are forgotten here.
    """
    from webshop.app import create_app
    from webshop.security.throttle import STORE_NAME

    shared = next((shared for shared in _SHARED if shared.alchemy is alchemy), None)
    if shared is None:  # a module's own alchemy fixture
        return create_app(settings, alchemy=alchemy)
    if shared.app is None:
        shared.app = create_app(settings, alchemy=alchemy)
    else:
        await shared.app.stores.get(STORE_NAME).delete_all()
    return shared.app


@pytest.fixture
async def skus(alchemy: ShopAlchemyConfig) -> dict[str, int]:
    """The small test catalog (``tests.factories.SMALL_CATALOG``) in the test's database: ``{sku: variant id}``."""
    return await seed_catalog(alchemy)


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """An HTTP client talking to the app in-process (cookies kept between requests)."""
    async with AsyncTestClient(app=app, base_url=BASE_URL) as test_client:
        yield test_client


@asynccontextmanager
async def app_client(
    settings: Settings, alchemy: ShopAlchemyConfig, **overrides: object
) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """A client for an app built with ``settings`` changed by ``overrides`` (its own lifespan)."""
    from webshop.app import create_app

    app = create_app(settings.with_values(**overrides), alchemy=alchemy)
    async with AsyncTestClient(app=app, base_url=BASE_URL) as test_client:
        yield test_client
