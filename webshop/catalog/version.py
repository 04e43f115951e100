"""Reading the catalog version (``catalog_state.version``) at the start of every catalog request, and
the other small reads a cached catalog answer still needs (a product's stock).

The version keys this process's cache of catalog reads (``webshop.catalog.browse``): every write
that changes the catalog bumps it in its own transaction, so the next request of every worker sees
the change. Reading it must therefore happen on every request, and it must be cheap.

* **PostgreSQL**: asyncpg answers in the event loop, but a statement in the request's session costs
  a pre-ping, ``BEGIN`` and ``COMMIT`` around it: four round trips for one answer. So the look-ups go
  through a small asyncpg pool on the same server (``attach_reader``, up to four connections per
  worker), outside any transaction and without the pre-ping: one round trip each. A failure there (the server
  restarted, a connection died) falls back to the request's session, whose pool pings, reconnects
  and reports an outage the usual way. While the worker listens for the catalog's change
  notifications (``webshop.catalog.change_feed``), an answer is kept and reused until a write is
  announced: most requests then make no round trip at all.
* **SQLite**: aiosqlite runs each statement of the request's session in the connection's thread;
  the handful of thread hops of a transaction (begin, select, fetch, commit) cost more than the rest
  of a cached catalog page. So the version is read instead through one plain, read-only ``sqlite3``
  connection per database file and process, in autocommit mode, in the event loop's thread: in WAL
  mode a reader never waits for a writer, and the read is a primary-key look-up of a few
  microseconds. It is read *before* the session reads anything, so the session's snapshot is at
  least as new as the version it is cached under. ``read_rows`` reads the same way any other short
  look-up that a cached answer needs fresh (the stock of a cached product's variants).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import sqlite3
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast

import asyncpg
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import NullPool

from webshop.catalog.change_feed import ChangeFeed
from webshop.db.models import CatalogState

if TYPE_CHECKING:
    from sqlalchemy import Engine

_VERSION = select(CatalogState.version).where(CatalogState.id == 1)
_VERSION_SQL = "SELECT version FROM catalog_state WHERE id = 1"
_READERS: OrderedDict[tuple[str, int], tuple[sqlite3.Connection, int]] = OrderedDict()
_PG_READERS: weakref.WeakKeyDictionary[Any, _PgReader] = weakref.WeakKeyDictionary()
"""The main engine's ``sync_engine`` -> its PostgreSQL read engine (``attach_reader``)."""
_MAX_READERS = 8
"""Open read connections kept per process, one per database file and thread (tests open many
databases; the least recently used is closed)."""


async def read_catalog_version(session: AsyncSession) -> int | None:
    """The committed catalog version, or ``None`` when the ``catalog_state`` row is missing.

    Args:
        session: The request's session; on SQLite with a database file it is not used (see the
            module docstring), on an in-memory SQLite database or PostgreSQL it runs the query.
    """
    rows = await read_rows(session, _VERSION, _VERSION_SQL)
    return int(rows[0][0]) if rows else None


async def read_rows(session: AsyncSession, statement: Any, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """The rows of a short, read-only look-up: ``sql`` with ``params`` (qmark style) through this
    process's read connection on a SQLite database file, else ``statement`` with the same
    parameters bound by name (``bindparam``) through ``session``.

    Args:
        session: The request's session (used on PostgreSQL, in-memory SQLite, or when the file
            cannot be read directly).
        statement: The SQLAlchemy form of the query; its bind parameters are named ``p0``, ``p1``...
        sql: The same query as plain SQLite SQL with ``?`` placeholders.
        params: The values, in order.

    Returns:
        The rows, as tuples (or SQLAlchemy ``Row`` objects, which behave as tuples).
    """
    bind = cast("Engine", session.get_bind())  # the session is bound to an engine, not a connection
    named = {f"p{index}": value for index, value in enumerate(params)}
    if bind.dialect.name == "sqlite":
        path = bind.url.database
        if path and path != ":memory:" and not path.startswith("file:"):
            rows = _read_sqlite(path, sql, params)
            if rows is not _UNREADABLE:
                return rows  # type: ignore[no-any-return]
    elif (reader := _PG_READERS.get(bind)) is not None and reader.usable():
        try:
            return await reader.fetch(sql, params)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError, TimeoutError):
            pass  # the session's pool pings, reconnects or reports the outage
    return list(await session.execute(statement, named))


class _PgReader:
    """A small asyncpg pool for ``read_rows`` and the event loop it belongs to (the first that used
    it): asyncpg connections work only on their own loop, so requests on another loop (a test
    client's portal) use their session instead.

    asyncpg itself, not a SQLAlchemy engine: these statements are fixed strings run on every catalog
    request, and SQLAlchemy's pool checkout, cursor adaptation and greenlet hop cost twice what the
    look-up itself costs (129 against 61 microseconds of CPU a call, measured on this machine).
    asyncpg prepares each statement once per connection and keeps it. Its ``feed`` keeps the answers
    between the catalog's change notifications.
    """

    def __init__(self, connect_args: dict[str, Any], connect_timeout: float) -> None:
        self.connect_args = connect_args
        self.connect_timeout = connect_timeout
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None
        self.feed = ChangeFeed(connect_args, connect_timeout)

    def usable(self) -> bool:
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        return self.loop is loop

    async def fetch(self, sql: str, params: tuple[Any, ...]) -> list[Any]:
        """The rows of ``sql`` (qmark placeholders, as for SQLite) with ``params``, through the pool.

        Raises:
            asyncpg.PostgresError / asyncpg.InterfaceError / OSError / TimeoutError: the server is
                unreachable or refused; the caller falls back to its session.
        """
        kept = self.feed.recall(sql, params)
        if kept is not None:
            return kept
        self.feed.start()
        asked_at = self.feed.generation
        pool = self.pool or await self._open()
        # Bounded as a whole: waiting for a free connection too (the pool's own fetch does not time that).
        async with asyncio.timeout(_READ_TIMEOUT):  # no task per call, unlike wait_for
            rows = list(await pool.fetch(_numbered(sql), *params))
        self.feed.remember(sql, params, rows, asked_at)
        return rows

    async def _open(self) -> asyncpg.Pool:
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            if self.pool is None:
                self.pool = await asyncpg.create_pool(
                    **self.connect_args,
                    min_size=0,
                    max_size=_READ_CONNECTIONS,
                    timeout=self.connect_timeout,
                    reset=_keep_as_is,
                )
            return self.pool

    async def dispose(self) -> None:
        """Close its connections (on the application's shutdown) and forget the loop."""
        if self.loop is None or self.loop is asyncio.get_running_loop():
            await self.feed.stop()
            self.feed = ChangeFeed(self.connect_args, self.connect_timeout)
            if self.pool is not None:
                await self.pool.close()
            self.pool = None
            self._opening = None
            self.loop = None


async def _keep_as_is(connection: asyncpg.Connection) -> None:
    """The pool's reset on release: nothing. Its default (``RESET ALL``, ``UNLISTEN``...) is a round
    trip per look-up, and these connections only ever run plain ``SELECT`` statements."""


_READ_CONNECTIONS = 4
"""asyncpg connections per worker process for the catalog's look-ups."""
_READ_TIMEOUT = 5.0
"""Seconds one look-up may take before the request falls back to its own session."""
_PLACEHOLDER = re.compile(r"\?")


@functools.lru_cache(maxsize=64)
def _numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders numbered for PostgreSQL (``$1``, ``$2``...); the statements
    given to ``read_rows`` hold no ``?`` elsewhere."""
    counter = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


def asyncpg_connect_args(engine: AsyncEngine) -> dict[str, Any]:
    """``asyncpg.connect`` keywords for ``engine``'s URL as SQLAlchemy's asyncpg dialect reads it (host,
    port, user, password, database, and query options such as ``ssl``); SQLAlchemy's own
    ``prepared_statement_cache_size`` becomes asyncpg's ``statement_cache_size`` (0 behind pgbouncer)."""
    _, options = engine.dialect.create_connect_args(engine.url)
    options = dict(options)
    if "prepared_statement_cache_size" in options:
        options["statement_cache_size"] = int(options.pop("prepared_statement_cache_size"))
    options.pop("prepared_statement_name_func", None)
    return options


def attach_reader(engine: AsyncEngine, connect_timeout: float) -> _PgReader | None:
    """Give ``engine`` (PostgreSQL) a reader for ``read_rows``: same server and user, autocommit
    (asyncpg outside a transaction), at most four connections per process, opened on first use;
    ``None`` for SQLite. Dispose of it when the application stops (``create_app`` does). Calling it
    again for the same engine returns the same one.

    Args:
        engine: The application's engine.
        connect_timeout: Seconds to wait for a new connection (capped at 2: on failure the request
            falls back to its own session, which waits the full ``WEBSHOP_DB_CONNECT_TIMEOUT``).
    """
    if engine.dialect.name != "postgresql" or isinstance(engine.pool, NullPool):
        return None  # NullPool (commands, some tests): a connection per read would cost more
    reader = _PG_READERS.get(engine.sync_engine)
    if reader is None:
        reader = _PgReader(asyncpg_connect_args(engine), min(2.0, connect_timeout))
        _PG_READERS[engine.sync_engine] = reader
    return reader


_UNREADABLE = object()


def _read_sqlite(path: str, sql: str, params: tuple[Any, ...]) -> Any:
    """The rows read through this process's read connection to ``path``; ``_UNREADABLE`` when the
    file cannot be read that way (missing, locked past the short busy timeout), so the caller falls
    back to its session."""
    try:
        inode = os.stat(path).st_ino
    except OSError:
        return _UNREADABLE
    key = (path, threading.get_ident())  # a sqlite3 connection belongs to the thread that made it
    held = _READERS.get(key)
    if held is not None and held[1] != inode:  # the file was replaced: read the new one
        _close(key)
        held = None
    try:
        if held is None:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
            connection.execute("PRAGMA busy_timeout=200")
            _READERS[key] = (connection, inode)
            while len(_READERS) > _MAX_READERS:
                _close(next(iter(_READERS)))
        else:
            connection = held[0]
            _READERS.move_to_end(key)
        return connection.execute(sql, params).fetchall()
    except sqlite3.Error:
        _close(key)
        return _UNREADABLE


def _close(key: tuple[str, int]) -> None:
    held = _READERS.pop(key, None)
    if held is not None:
        held[0].close()
