"""Reading the catalog version (``catalog_state.version``) at the start of every catalog request, and
the other small reads a cached catalog answer still needs (a product's stock).

The version keys this process's cache of catalog reads (``webshop.catalog.browse``): every write
that changes the catalog bumps it in its own transaction, so the next request of every worker sees
the change. Reading it must therefore happen on every request, and it must be cheap.

* **PostgreSQL**: asyncpg answers in the event loop, but a statement in the request's session costs
  a pre-ping, ``BEGIN`` and ``COMMIT`` around it: four round trips for one answer. So the look-ups go
  through a small second engine on the same server (``attach_reader``, two connections per worker)
  in autocommit mode and without the pre-ping: one round trip each. A failure there (the server
  restarted, a connection died) falls back to the request's session, whose pool pings, reconnects
  and reports an outage the usual way.
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
import os
import sqlite3
import threading
import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

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
            async with reader.engine.connect() as connection:
                return list(await connection.execute(statement, named))
        except (SQLAlchemyError, OSError):  # the session's pool pings, reconnects or reports the outage
            pass
    return list(await session.execute(statement, named))


class _PgReader:
    """A read engine and the event loop its connections belong to (the first that used it): asyncpg
    connections work only on their own loop, so requests on another loop (a test client's portal)
    use their session instead."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.loop: asyncio.AbstractEventLoop | None = None

    def usable(self) -> bool:
        loop = asyncio.get_running_loop()
        if self.loop is None:
            self.loop = loop
        return self.loop is loop

    async def dispose(self) -> None:
        """Close its connections (on the application's shutdown) and forget the loop."""
        if self.loop is None or self.loop is asyncio.get_running_loop():
            await self.engine.dispose()
            self.loop = None


def attach_reader(engine: AsyncEngine, connect_timeout: float) -> _PgReader | None:
    """Give ``engine`` (PostgreSQL) a read engine for ``read_rows``: same server and user, autocommit,
    no pre-ping, at most two connections per process; ``None`` for SQLite. Dispose of it when the
    application stops (``create_app`` does). Calling it again for the same engine returns the same one.

    Args:
        engine: The application's engine.
        connect_timeout: Seconds to wait for a new connection (capped at 2: on failure the request
            falls back to its own session, which waits the full ``WEBSHOP_DB_CONNECT_TIMEOUT``).
    """
    if engine.dialect.name != "postgresql" or isinstance(engine.pool, NullPool):
        return None  # NullPool (commands, some tests): a connection per read would cost more
    reader = _PG_READERS.get(engine.sync_engine)
    if reader is None:
        reader = _PgReader(
            create_async_engine(
                engine.url,
                isolation_level="AUTOCOMMIT",
                pool_size=2,
                max_overflow=0,
                pool_timeout=1,
                connect_args={"timeout": min(2.0, connect_timeout)},
            )
        )
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
