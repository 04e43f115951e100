"""Engine, session and Alembic configuration for both supported engines.

SQLite is the embedded default and is made to behave under concurrency (SQLite docs, "Write-Ahead
Logging" and "BEGIN TRANSACTION"):

* every connection turns on WAL, a busy timeout and foreign keys;
* pysqlite's own transaction handling is switched off so that we emit ``BEGIN`` ourselves;
* sessions for unsafe HTTP methods (and for commands that write) start with ``BEGIN IMMEDIATE``, so
  they take the write lock up front and wait for it (busy timeout) instead of failing half-way with
  "database is locked" when a read transaction tries to upgrade.

PostgreSQL needs none of this: its row locks and conditional updates do the work. What it needs is
bounded waits when the server is down or overloaded, so that a request answers 503 in seconds
instead of hanging (see ``create_engine``): a connect timeout, a pool timeout and a liveness check
of pooled connections (``pool_pre_ping``), which also makes the app reconnect by itself once the
server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advanced_alchemy.config import AlembicAsyncConfig, AsyncSessionConfig
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.util.concurrency import await_, in_greenlet

from webshop.db.folding import register_sqlite_functions

if TYPE_CHECKING:
    from litestar.datastructures import State
    from litestar.types import Scope

    from webshop.config import DatabaseSettings, Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class DatabaseUnavailable(ConnectionError):
    """A new database connection could not be opened (refused, timed out, server starting or stopping).

    Raised from the engine's ``do_connect`` hook in place of the driver's many different errors
    (``ConnectionRefusedError``, ``TimeoutError``, ``asyncpg.CannotConnectNowError``, DNS errors), so that
    one exception handler can answer 503 (webshop/web/errors.py).
    """


WRITE_OPTION = "webshop_write"
WRITES_ON_GET = "writes_on_get"
"""Route ``opt`` key: this safe-method route writes (the return from a payment page), so its request gets a
write session like a POST: on SQLite its first write takes the writer's turn and ``BEGIN IMMEDIATE``
instead of upgrading a read transaction, which fails at once with "database is locked" when another
connection (the mail sender) committed since the read began."""
SETTINGS_INFO_KEY = "webshop_settings"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def create_engine(database: DatabaseSettings, *, null_pool: bool = False) -> AsyncEngine:
    """Create the async engine for ``database.url``.

    Args:
        database: The database settings (URL, pool size and timeouts, SQLite busy timeout in milliseconds).
        null_pool: Open a fresh connection per checkout (tests, one-shot commands).

    Returns:
        An ``AsyncEngine``; on SQLite with the WAL/busy-timeout/BEGIN IMMEDIATE hooks installed.
    """
    kwargs: dict[str, Any] = {"echo": database.echo_sql}
    if database.is_sqlite:
        # aiosqlite runs each connection in its own thread. A fixed pool of WEBSHOP_DB_POOL_SIZE (no
        # overflow): more threads only contend for the GIL and SQLite's one write lock (with 32
        # shoppers checking out, 50 connections gave add-to-cart a 1.1 s median, 10 gave 0.4 s at the
        # same throughput) and each keeps its own page cache (RSS).
        kwargs["poolclass"] = NullPool if null_pool else None
        if not null_pool:
            kwargs.pop("poolclass")
            kwargs.update(pool_size=database.pool_size, max_overflow=0, pool_timeout=database.pool_timeout)
        kwargs["connect_args"] = {"timeout": database.sqlite_busy_timeout_ms / 1000}
    else:
        # asyncpg waits 60 s for a connection by default; a shop should rather say "try again" (503).
        kwargs["connect_args"] = {"timeout": database.connect_timeout}
        if null_pool:
            kwargs["poolclass"] = NullPool
        else:
            kwargs.update(
                pool_size=database.pool_size,
                max_overflow=database.pool_size,
                # Test each pooled connection before use: after a server restart the old ones are dead and
                # are replaced transparently, so the app recovers without a restart of its own.
                pool_pre_ping=True,
                pool_timeout=database.pool_timeout,
            )
    engine = create_async_engine(database.url, **kwargs)
    if database.is_sqlite:
        _install_sqlite_hooks(engine, database.sqlite_busy_timeout_ms)
    else:
        _install_connect_hook(engine)
    return engine


def _install_connect_hook(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "do_connect")
    def _connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        try:
            return dialect.connect(*cargs, **cparams)
        except Exception as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {type(exc).__name__}: {exc}") from exc


def _install_sqlite_hooks(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN instead of pysqlite's implicit, deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 1 MB of page cache per connection (SQLite's default is 2 MB): the OS caches the file for all
        # of them, and a worker keeps WEBSHOP_DB_POOL_SIZE connections.
        cursor.execute("PRAGMA cache_size=-1024")
        cursor.close()
        register_sqlite_functions(dbapi_connection)  # Unicode case folding for searches (webshop.db.folding)

    writers = _WriterQueue()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before_write(conn: Any, cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
        # A write session's transaction reads without the write lock; its first write, savepoint or
        # SELECT ... FOR UPDATE (whose clause SQLite drops) takes this process's writer turn and then
        # the lock: the read part is rolled back and the transaction goes on as BEGIN IMMEDIATE, so a
        # row "locked" for update is read again under the lock (see _WriterQueue).
        if conn.info.get(_WriterQueue.HOLDS) or not conn.get_execution_options().get(WRITE_OPTION, False):
            return
        compiled = getattr(context, "compiled", None)
        locking = getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None
        if not locking and not _WRITES.match(statement):
            return
        writers.enter(conn)
        try:
            cursor.execute("ROLLBACK")
            cursor.execute("BEGIN IMMEDIATE")
        except BaseException:
            writers.leave(conn)
            raise

    # The write lock is SQLite's until the COMMIT or ROLLBACK that follows these events has run; a
    # writer let in now waits those few statements out in the busy handler (its first sleeps are 1-5 ms).
    for name in ("commit", "rollback"):
        event.listen(engine.sync_engine, name, writers.leave)
    # A connection's info dict, where the turn is noted, is cleared when the connection is invalidated
    # or closed: end the turn first, or every later writer of this process would wait for ever.
    for name in ("checkin", "close", "detach"):
        event.listen(engine.sync_engine.pool, name, lambda _dbapi, record: writers.leave_record(record))
    for name in ("invalidate", "soft_invalidate"):
        event.listen(engine.sync_engine.pool, name, lambda _dbapi, record, _exc: writers.leave_record(record))


_WRITES = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|SAVEPOINT|CREATE|DROP|ALTER)\b", re.IGNORECASE)
"""Statements that need SQLite's write lock (``WITH ... UPDATE`` is not used by the shop)."""


class _WriterQueue:
    """This process's writers to one SQLite database, let in one at a time in arrival order.

    SQLite has one write lock per database. Writers that find it taken wait in its busy handler,
    which sleeps and retries with growing pauses (up to 100 ms a try): under load the unlucky ones
    wait for seconds while newcomers get in (issue 14 measured add-to-cart at 7.6-14 s at p99 with
    32 shoppers). Here a write transaction first takes its turn in an ``asyncio.Lock`` (first come,
    first served) of the running event loop, and only then ``BEGIN IMMEDIATE``; the busy handler is
    left for other processes (a CLI command, a second worker).

    The lock is taken in SQLAlchemy's ``begin`` event, which runs in the greenlet of an async engine
    call, so it can wait with ``await_``; synchronous use (Alembic's, the tests' sync helpers) goes
    straight to ``BEGIN IMMEDIATE``.
    """

    HOLDS = "webshop_holds_write_turn"

    def __init__(self) -> None:
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def enter(self, conn: Any) -> None:
        """Wait for this process's turn to write (from async code; synchronous callers go straight on)
        and mark the connection as writing until its COMMIT or ROLLBACK."""
        if conn.info.get(self.HOLDS):
            return
        lock = None
        if in_greenlet():
            loop = asyncio.get_running_loop()
            lock = self._locks.get(loop)
            if lock is None:
                lock = self._locks[loop] = asyncio.Lock()
            await_(lock.acquire())
        conn.info[self.HOLDS] = lock or True

    def leave(self, conn: Any) -> None:
        """End this connection's turn (at COMMIT, ROLLBACK or when it goes back to the pool)."""
        if conn.invalidated:  # its info is gone with the DBAPI connection; the pool's event ended the turn
            return
        self._release(conn.info)

    def leave_record(self, record: Any) -> None:
        """``leave`` for a pooled connection record (a turn must not outlive the checkout)."""
        self._release(record.info)

    def _release(self, info: dict[str, Any]) -> None:
        held = info.pop(self.HOLDS, None)
        if isinstance(held, asyncio.Lock):
            held.release()


@dataclass
class ShopAlchemyConfig(SQLAlchemyAsyncConfig):
    """advanced-alchemy's Litestar config, with write sessions for unsafe HTTP methods.

    ``provide_session`` hands a POST/PUT/PATCH/DELETE request a session whose transactions begin
    with ``BEGIN IMMEDIATE`` on SQLite (a no-op option on PostgreSQL).
    """

    write_session_maker: Callable[[], AsyncSession] | None = None
    database: DatabaseSettings | None = None
    """The database settings the engine was made with (the mail sender opens a small engine of its own)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if callable(self.before_send_handler):
            self.before_send_handler = _skip_unused_sessions(self.before_send_handler, self.session_scope_key)

    def provide_session(self, state: State, scope: Scope) -> AsyncSession:
        """Return the request's session, creating it on first use (a write session for unsafe methods)."""
        from advanced_alchemy.extensions.litestar._utils import get_aa_scope_state, set_aa_scope_state

        session = get_aa_scope_state(scope, self.session_scope_key)
        if session is None:
            method = scope.get("method", "GET")
            handler = scope.get("route_handler")
            writes = method not in SAFE_METHODS or bool(handler is not None and handler.opt.get(WRITES_ON_GET))
            if writes and self.write_session_maker is not None:
                session = self.write_session_maker()
                set_aa_scope_state(scope, self.session_scope_key, session)
            else:
                session = super().provide_session(state, scope)
        return session  # type: ignore[no-any-return]


def _skip_unused_sessions(handler: Any, scope_key: str) -> Any:
    """advanced-alchemy's commit-or-rollback hook, not run for a request session that never began a
    transaction and holds no pending change (a cached catalog page or API answer reads nothing through
    it, and a service that committed itself left nothing): there is nothing to commit, roll back or
    give back to the pool, and the hook's ``commit()`` and ``close()`` each cost a trip through
    SQLAlchemy's greenlet. The session is only forgotten at the end of the response, as the hook does.
    """
    from advanced_alchemy.extensions.litestar._utils import delete_aa_scope_state, get_aa_scope_state
    from advanced_alchemy.extensions.litestar.plugins.init.config.common import SESSION_TERMINUS_ASGI_EVENTS

    async def before_send(message: Any, scope: Any) -> None:
        session = get_aa_scope_state(scope, scope_key)
        if (
            session is not None
            and not session.in_transaction()
            and not (session.new or session.dirty or session.deleted)
        ):
            if message["type"] in SESSION_TERMINUS_ASGI_EVENTS:
                delete_aa_scope_state(scope, scope_key)
            return
        await handler(message, scope)

    return before_send


def create_alchemy_config(settings: Settings, *, null_pool: bool = False) -> ShopAlchemyConfig:
    """Build the advanced-alchemy config used by the app, the CLI and the tests.

    Sessions keep objects loaded after commit (``expire_on_commit=False``); the request session is
    committed by ``autocommit_include_redirects`` (a POST answered with a 303 still commits).
    """
    engine = create_engine(settings.database, null_pool=null_pool)
    # Every session carries the settings (``session.info[SETTINGS_INFO_KEY]``), so that code deep in a
    # service (an e-mail queued with the order) can build absolute links without threading them through.
    session_config = AsyncSessionConfig(expire_on_commit=False, info={SETTINGS_INFO_KEY: settings})
    config = ShopAlchemyConfig(
        engine_instance=engine,
        session_config=session_config,
        before_send_handler="autocommit_include_redirects",
        alembic_config=AlembicAsyncConfig(
            script_location=str(PROJECT_ROOT / "migrations"),
            toml_file=str(PROJECT_ROOT / "pyproject.toml"),
            version_table_name="alembic_version",
        ),
        set_default_exception_handler=False,
    )
    config.database = settings.database
    config.write_session_maker = async_sessionmaker(
        bind=engine.execution_options(**{WRITE_OPTION: True}),
        expire_on_commit=False,
        info={SETTINGS_INFO_KEY: settings},
    )
    return config


@dataclass
class WriteSessions:
    """Only the write sessions of a database: what a background task on an event loop of its own uses
    (an engine must not cross event loops, and a whole ``ShopAlchemyConfig`` per task would grow
    advanced-alchemy's process-wide registry of configs)."""

    write_session_maker: Callable[[], AsyncSession] | None


def write_sessions(settings: Settings) -> tuple[WriteSessions, AsyncEngine]:
    """Write sessions on a new engine without a pool (made and used on the caller's event loop), and
    the engine, for the caller to dispose of."""
    engine = create_engine(settings.database, null_pool=True)
    maker = async_sessionmaker(
        bind=engine.execution_options(**{WRITE_OPTION: True}),
        expire_on_commit=False,
        info={SETTINGS_INFO_KEY: settings},
    )
    return WriteSessions(maker), engine


@contextlib.asynccontextmanager
async def write_session(config: ShopAlchemyConfig | WriteSessions) -> AsyncIterator[AsyncSession]:
    """Open a session whose transactions take the write lock up front (commands, background work).

    The caller commits; an exception rolls back. Yields an ``AsyncSession``.
    """
    if config.write_session_maker is None:
        raise RuntimeError("create the config with create_alchemy_config()")
    async with config.write_session_maker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise


async def end_transaction(session: AsyncSession) -> None:
    """End ``session``'s transaction before slow work that needs none of it, keeping what it loaded.

    Used when a request must not hold a pooled connection (or, on SQLite, a transaction) through a
    long step done elsewhere, e.g. parsing and previewing a catalog upload in sessions of its own.
    Whatever the request had written so far is committed with it (normally nothing: the sign-in
    lookup only reads); objects stay loaded (``expire_on_commit=False``).
    """
    await session.commit()


def run_migrations(config: ShopAlchemyConfig, revision: str = "head", *, downgrade: bool = False) -> None:
    """Upgrade (or downgrade) the database with Alembic through advanced-alchemy's commands.

    Must be called from synchronous code: the async Alembic environment runs its own event loop.
    """
    from advanced_alchemy.alembic.commands import AlembicCommands

    commands = AlembicCommands(sqlalchemy_config=config)
    if downgrade:
        commands.downgrade(revision=revision)
    else:
        commands.upgrade(revision=revision)


def _script_directory() -> Any:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    return ScriptDirectory.from_config(config)


@functools.cache
def migration_heads() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code (``migrations/versions``).

    Read once per process (the shipped scripts do not change while it runs; every app built reads it).
    """
    return frozenset(_script_directory().get_heads())


def known_revisions() -> set[str]:
    """Every revision of the migrations shipped with this code."""
    return {script.revision for script in _script_directory().walk_revisions()}


async def database_revisions(engine: AsyncEngine) -> set[str]:
    """The revision(s) the database is at: the rows of ``alembic_version`` (empty when never migrated).

    Raises:
        DatabaseUnavailable: the database cannot be reached (and SQLAlchemy errors for other failures).
    """
    from sqlalchemy import inspect, text

    async with engine.connect() as connection:
        has_table = await connection.run_sync(lambda sync: inspect(sync).has_table("alembic_version"))
        if not has_table:
            return set()
        rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
        return {row[0] for row in rows}
