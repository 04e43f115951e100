"""Engine, session and Alembic configuration for both supported engines.

SQLite is the embedded default and is made to behave under concurrency (SQLite docs, "Write-Ahead
Logging" and "BEGIN TRANSACTION"):

* every connection turns on WAL, a busy timeout and foreign keys;
* pysqlite's own transaction handling is switched off so that we emit ``BEGIN`` ourselves;
* sessions for unsafe HTTP methods (and for commands that write) start with ``BEGIN IMMEDIATE``, so
  they take the write lock up front and wait for it (busy timeout) instead of failing half-way with
  "database is locked" when a read transaction tries to upgrade.

PostgreSQL needs none of this: its row locks and conditional updates do the work.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from advanced_alchemy.config import AlembicAsyncConfig, AsyncSessionConfig
from advanced_alchemy.extensions.litestar import SQLAlchemyAsyncConfig
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from litestar.datastructures import State
    from litestar.types import Scope

    from webshop.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WRITE_OPTION = "webshop_write"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})


def create_engine(settings: Settings, *, null_pool: bool = False) -> AsyncEngine:
    """Create the async engine for ``settings.database_url``.

    Args:
        settings: Application settings (URL, pool size, SQLite busy timeout in milliseconds).
        null_pool: Open a fresh connection per checkout (tests, one-shot commands).

    Returns:
        An ``AsyncEngine``; on SQLite with the WAL/busy-timeout/BEGIN IMMEDIATE hooks installed.
    """
    kwargs: dict[str, Any] = {"echo": settings.echo_sql}
    if settings.is_sqlite:
        # aiosqlite runs each connection in its own thread; a small pool keeps them warm.
        kwargs["poolclass"] = NullPool if null_pool else None
        if not null_pool:
            kwargs.pop("poolclass")
            kwargs.update(pool_size=settings.db_pool_size, max_overflow=settings.db_pool_size * 4)
        kwargs["connect_args"] = {"timeout": settings.sqlite_busy_timeout_ms / 1000}
    elif null_pool:
        kwargs["poolclass"] = NullPool
    else:
        kwargs.update(
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            pool_pre_ping=True,
            pool_timeout=10,
        )
    engine = create_async_engine(settings.database_url, **kwargs)
    if settings.is_sqlite:
        _install_sqlite_hooks(engine, settings.sqlite_busy_timeout_ms)
    return engine


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
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@dataclass
class ShopAlchemyConfig(SQLAlchemyAsyncConfig):
    """advanced-alchemy's Litestar config, with write sessions for unsafe HTTP methods.

    ``provide_session`` hands a POST/PUT/PATCH/DELETE request a session whose transactions begin
    with ``BEGIN IMMEDIATE`` on SQLite (a no-op option on PostgreSQL).
    """

    write_session_maker: Callable[[], AsyncSession] | None = None

    def provide_session(self, state: State, scope: Scope) -> AsyncSession:  # type: ignore[override]
        """Return the request's session, creating it on first use (a write session for unsafe methods)."""
        from advanced_alchemy.extensions.litestar._utils import get_aa_scope_state, set_aa_scope_state

        session = get_aa_scope_state(scope, self.session_scope_key)
        if session is None:
            method = scope.get("method", "GET")
            if method not in SAFE_METHODS and self.write_session_maker is not None:
                session = self.write_session_maker()
                set_aa_scope_state(scope, self.session_scope_key, session)
            else:
                session = super().provide_session(state, scope)
        return session  # type: ignore[no-any-return]


def create_alchemy_config(settings: Settings, *, null_pool: bool = False) -> ShopAlchemyConfig:
    """Build the advanced-alchemy config used by the app, the CLI and the tests.

    Sessions keep objects loaded after commit (``expire_on_commit=False``); the request session is
    committed by ``autocommit_include_redirects`` (a POST answered with a 303 still commits).
    """
    engine = create_engine(settings, null_pool=null_pool)
    session_config = AsyncSessionConfig(expire_on_commit=False)
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
    config.write_session_maker = async_sessionmaker(
        bind=engine.execution_options(**{WRITE_OPTION: True}),
        expire_on_commit=False,
    )
    return config


@contextlib.asynccontextmanager
async def write_session(config: ShopAlchemyConfig) -> AsyncIterator[AsyncSession]:
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
