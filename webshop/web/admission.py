"""Admission control: a few requests in progress per worker at a time, purchases first.

A worker is one event loop on one core. Past a handful of requests in progress, more concurrency
buys no throughput, only longer waits for everyone: every request's awaits interleave with all the
others', and on SQLite a writer holds the database's single write lock across each of its awaits, so
one slow lap of the loop is paid by every writer queued behind it (32 shoppers on one worker: the
write turn was busy 100 % of the time, add-to-cart p99 0.9-1.1 s, place order 1.0-1.2 s).

``AdmissionMiddleware`` lets ``WEBSHOP_MAX_ACTIVE_REQUESTS`` requests run at once (default 4) and
queues the rest, ordered by arrival with a head start of ``WRITE_HEAD_START`` seconds for unsafe
methods (POST, PUT, PATCH, DELETE: adding to a cart, placing an order, an API write) and for the
shopper's return from the payment page (``PURCHASE_GET_PREFIXES``: a GET that settles the order): under overload
the requests that take the shopper's money or keep the shop's data stay fast, and browsing absorbs
the wait (the same choice as a flash-sale queue that keeps checkout open). The head start is
bounded, so reads are never starved: a read that has waited longer than it goes first.

A request that waits longer than ``WEBSHOP_QUEUE_TIMEOUT`` seconds gets ``503 Service Unavailable``
with ``Retry-After`` (RFC 9110 §15.6.4, §10.2.3; through the shop's error page or problem+json).

A request's body is read before it queues for its turn (up to ``BUFFER_LIMIT`` bytes, then replayed
to the handler), so a client that sends its form slowly holds no turn while it does (the slow-POST
attack of the OWASP Denial of Service Cheat Sheet); a body larger than that (a photo or CSV upload)
goes ahead without a turn. Static files, media, health probes and metrics are not counted.

Not covered: a response streamed to a slow reader keeps its turn while it is sent (pages are small;
the large downloads are the admin's exports).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware

from webshop.db.engine import SAFE_METHODS
from webshop.errors import BUSY_DETAIL, DomainError

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

WRITE_HEAD_START = 2.0
"""Seconds a write (unsafe method) is put ahead of reads that arrived before it."""
BUFFER_LIMIT = 1024 * 1024
"""Bytes of a request body read before its turn; a larger body goes ahead without one."""
PURCHASE_GET_PREFIXES = ("/checkout/return/",)
"""GET paths that are a step of buying (the payment provider sends the shopper back there to settle
the order), queued with the writes' head start."""
EXEMPT_PREFIXES = ("/static/", "/media/")
EXEMPT_PATHS = frozenset({"/health", "/ready", "/metrics"})


def _exempt(scope: Scope) -> bool:
    """Static files, media, health probes and metrics: cheap, and a probe must not queue."""
    path: str = scope.get("path", "")
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


class ShopBusy(DomainError):
    """Too many requests waited for their turn longer than ``WEBSHOP_QUEUE_TIMEOUT`` (HTTP 503)."""

    status_code = 503
    title = "Service unavailable"


class AdmissionMiddleware(ASGIMiddleware):
    """At most ``limit`` HTTP requests in progress per worker; the others wait in a priority queue.

    Args:
        limit: Requests in progress at once (``0``: no limit, the middleware is a pass-through).
        timeout: Seconds a request may wait for its turn before ``ShopBusy`` (503) is raised.

    One instance serves one application, and so one event loop: its counters are plain attributes.
    """

    scopes = (ScopeType.HTTP,)
    should_bypass_for_scope = staticmethod(_exempt)

    def __init__(self, limit: int, timeout: float) -> None:
        self.limit = limit
        self.timeout = timeout
        self.active = 0
        self._queue: list[tuple[float, int, asyncio.Future[bool]]] = []
        self._order = itertools.count()

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Run ``next_app`` once this request has its turn (see the module docstring).

        Raises:
            ShopBusy: the request waited longer than ``timeout`` for its turn.
        """
        if self.limit <= 0:
            await next_app(scope, receive, send)
            return
        write = scope.get("method", "GET") not in SAFE_METHODS
        purchase = write or scope.get("path", "").startswith(PURCHASE_GET_PREFIXES)
        if write:
            receive, complete = await _buffered(receive)
            if not complete:  # a large upload, or the client went away: no turn to wait for
                await next_app(scope, receive, send)
                return
        await self._enter(time.monotonic() - (WRITE_HEAD_START if purchase else 0.0))
        try:
            await next_app(scope, receive, send)
        finally:
            self._leave()

    async def _enter(self, rank: float) -> None:
        if self.active < self.limit and not self._queue:
            self.active += 1
            return
        loop = asyncio.get_running_loop()
        # The turn's result: True when ``_leave`` hands it over, False when the timer expires first
        # (a plain future and a timer: ``asyncio.wait`` cost a set, callbacks and a waiter per request).
        turn: asyncio.Future[bool] = loop.create_future()
        heapq.heappush(self._queue, (rank, next(self._order), turn))
        timer = loop.call_later(self.timeout, _expire, turn)
        try:
            granted = await turn
        except BaseException:  # cancelled while waiting: give back a turn handed over meanwhile
            if turn.done() and not turn.cancelled() and turn.result():
                self._leave()
            turn.cancel()
            raise
        finally:
            timer.cancel()
        if not granted:
            raise ShopBusy(BUSY_DETAIL)

    def _leave(self) -> None:
        """Hand this turn to the first waiting request, or free it."""
        while self._queue:
            _, _, turn = heapq.heappop(self._queue)
            if not turn.done():
                turn.set_result(True)  # the count of active requests stays the same
                return
        self.active -= 1


def _expire(turn: asyncio.Future[bool]) -> None:
    """The queue timeout of a waiting turn: it ends unless it was handed over (``_leave`` skips it)."""
    if not turn.done():
        turn.set_result(False)


async def _buffered(receive: Receive) -> tuple[Receive, bool]:
    """Read a request body up to ``BUFFER_LIMIT`` bytes; return a ``receive`` that replays it.

    Returns:
        ``(receive, complete)``: ``complete`` is False when the body is larger than the limit or the
        client disconnected (the replaying ``receive`` then goes on with the original one).
    """
    messages: list[Any] = []  # received events (``Receive``'s, not ``Message``'s, shape)
    size = 0
    complete = False
    while size <= BUFFER_LIMIT:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        if not message.get("more_body", False):
            complete = True
            break

    async def replay() -> Any:
        if messages:
            return messages.pop(0)
        return await receive()

    return replay, complete
