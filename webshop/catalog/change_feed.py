"""Knowing without asking that the catalog's per-request look-ups still hold (PostgreSQL LISTEN/NOTIFY).

Every catalog request on PostgreSQL reads the catalog version, and a product page also reads its
variants' stock (``webshop.catalog.version.read_rows``): one round trip to the server each, which on a
small machine costs more than the rest of a cached page (the server's own work shares the cores). The
answers change only when a write commits, so each worker keeps the last answers in memory and is told
when to drop them:

* **Triggers** (migration ``c4a7e2f19d35``) call ``pg_notify('webshop_catalog', '')`` after every
  statement that changes ``catalog_state`` or adds, removes, moves or restocks a variant. PostgreSQL
  delivers a notification to every listening session when the writing transaction commits, and
  never for one that rolls back; a transaction's repeated notifications are delivered once.
* **The listener** (``ChangeFeed``): one asyncpg connection per worker process that listens on
  that channel (``LISTEN``). Each notification bumps ``generation`` and empties the memory. Before
  it is trusted, and every ``_PING_EVERY`` seconds after, it sends a notification of its own and
  waits for it to come back (a pooler in transaction mode accepts ``LISTEN`` but delivers nothing).
  While it is not listening (not yet open, lost, the triggers missing), nothing is kept and every
  request asks the server, as before; a lost connection is opened again with back-off, and the
  memory starts empty.
* **This process's own commits** drop the memory at once (``mark_followed_reads_stale``: a session that bumped
  the catalog version or wrote stock), without waiting for the notification, so a shopper who has just
  bought sees the new stock on the very next request of the same worker.
* **A look-up overtaken by a change** is not kept: ``remember`` keeps an answer only if no change was
  announced between the question and the answer (``generation`` is read before asking).

What is kept is only what these notifications cover: look-ups reading ``catalog_state`` and
``variants`` alone (``follows``). Another worker sees a change once its notification arrives, normally
well under a millisecond after the commit, so no worker serves a stale version or stock level for
longer than the request in flight when the writer committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import secrets
from typing import Any

import asyncpg
from sqlalchemy.orm import Session

from webshop.db.after_commit import call_after_commit

CHANNEL = "webshop_catalog"
"""The notification channel the migration's triggers notify."""
TRIGGERS = ("catalog_state_notify", "variants_notify")
"""The triggers the migration creates; without them the feed never starts listening."""
FOLLOWED_TABLES = frozenset({"catalog_state", "variants"})
"""Tables whose changes (as far as ``read_rows`` reads them) the triggers announce."""
_MAX_KEPT = 20_000
"""Answers kept per process at most; past that the memory starts over."""
_RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Seconds before each new attempt to listen after a failure (the last one repeats)."""
_PING_EVERY = 10.0
"""Seconds between checks that an idle listening connection is still alive."""
_STALE = "webshop.followed_reads_stale"
_FEEDS: set[ChangeFeed] = set()
_TABLE = re.compile(r"\b(?:FROM|JOIN)\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)


@functools.lru_cache(maxsize=64)
def follows(sql: str) -> bool:
    """True when every table ``sql`` reads (after ``FROM`` or ``JOIN``) is one the triggers cover."""
    tables = set(_TABLE.findall(sql))
    return bool(tables) and {t.lower() for t in tables} <= FOLLOWED_TABLES


class ChangeFeed:
    """A worker's memory of catalog look-ups, emptied when PostgreSQL announces a catalog change.

    Args:
        connect_args: ``asyncpg.connect`` keywords for the server (the reader's).
        connect_timeout: Seconds to wait for the listening connection.
    """

    def __init__(self, connect_args: dict[str, Any], connect_timeout: float) -> None:
        self.connect_args = connect_args
        self.connect_timeout = connect_timeout
        self.generation = 0
        self.kept: dict[tuple[str, tuple[Any, ...]], tuple[Any, ...]] = {}
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self._probe_payload = ""
        self._probe_received: asyncio.Event | None = None

    @property
    def listening(self) -> bool:
        """True while the listening connection is open (answers may be kept and reused)."""
        return self._connection is not None and not self._connection.is_closed()

    @property
    def listener_pid(self) -> int | None:
        """The server process id of the listening connection (``pg_stat_activity.pid``), or ``None``."""
        return self._connection.get_server_pid() if self.listening and self._connection else None

    def start(self) -> None:
        """Start listening in the running event loop (in the background; once)."""
        if self._task is None:
            _FEEDS.add(self)
            self._task = asyncio.get_running_loop().create_task(self._listen(), name="webshop-catalog-feed")

    async def stop(self) -> None:
        """Stop listening and forget everything (the application's shutdown)."""
        _FEEDS.discard(self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.forget()

    def recall(self, sql: str, params: tuple[Any, ...]) -> list[Any] | None:
        """The kept answer to ``sql`` with ``params``, or ``None`` (ask the server)."""
        if not self.listening:
            return None
        kept = self.kept.get((sql, params))
        return None if kept is None else list(kept)

    def remember(self, sql: str, params: tuple[Any, ...], rows: list[Any], asked_at: int) -> None:
        """Keep ``rows`` as the answer, unless a change was announced since ``asked_at`` (the
        ``generation`` read before asking) or the look-up reads a table the triggers do not cover."""
        if self.listening and self.generation == asked_at and follows(sql):
            if len(self.kept) >= _MAX_KEPT:
                self.kept.clear()
            self.kept[(sql, params)] = tuple(rows)

    def forget(self, *_: Any) -> None:
        """Drop every kept answer (a change was announced or committed here, or listening stopped)."""
        self.generation += 1
        self.kept.clear()

    async def _listen(self) -> None:
        failures = 0
        while True:
            try:
                if not await self._follow():
                    return  # a database not made by the migrations: ask the server every time
                failures = 0
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError):
                failures += 1
            await asyncio.sleep(_RECONNECT_DELAYS[min(failures, len(_RECONNECT_DELAYS) - 1)])

    async def _follow(self) -> bool:
        """Listen on a new connection until it is lost (True), or answer False at once when the
        database lacks the triggers.

        Raises:
            asyncpg.PostgresError / asyncpg.InterfaceError / OSError / TimeoutError: the server could
                not be reached, stopped answering, or did not deliver the feed's own test notification.
        """
        connection = await asyncpg.connect(**self.connect_args, timeout=self.connect_timeout)
        try:
            present = await connection.fetchval(
                "SELECT count(*) FROM pg_trigger WHERE tgname = ANY($1::text[])", list(TRIGGERS)
            )
            if present != len(TRIGGERS):
                return False
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _: lost.set())
            await connection.add_listener(CHANNEL, self._notified)
            await self._probe(connection)
            self.forget()
            self._connection = connection
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), _PING_EVERY)
                if not lost.is_set():  # idle for a while: are notifications still delivered?
                    await self._probe(connection)
            return True
        finally:
            self._connection = None
            self.forget()
            if not connection.is_closed():
                connection.terminate()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        """A notification: the triggers' (empty payload) means a change; a probe's wakes its waiter."""
        if not payload:
            self.forget()
        elif payload == self._probe_payload and self._probe_received is not None:
            self._probe_received.set()

    async def _probe(self, connection: asyncpg.Connection) -> None:
        """Send a notification of our own and wait for it to come back: proof that this connection
        receives the channel (a connection pooler in transaction mode, such as PgBouncer's, accepts
        ``LISTEN`` but delivers nothing, and then nothing would ever be forgotten).

        Raises:
            TimeoutError: it did not come back within ``connect_timeout`` seconds.
        """
        self._probe_payload = f"probe-{secrets.token_hex(8)}"
        self._probe_received = asyncio.Event()
        await connection.execute(f"SELECT pg_notify('{CHANNEL}', $1)", self._probe_payload)
        await asyncio.wait_for(self._probe_received.wait(), self.connect_timeout)


def mark_followed_reads_stale(session: Session | Any) -> None:
    """Make the session's commit drop this process's kept catalog look-ups (it wrote stock)."""
    session.info[_STALE] = True


def forget_everywhere() -> None:
    """Drop the kept look-ups of every feed of this process."""
    for feed in list(_FEEDS):
        feed.forget()


# A transaction that wrote stock (``mark_followed_reads_stale``) drops the kept look-ups once it commits.
call_after_commit(_STALE, forget_everywhere)
