"""The outermost layer of every request: client address, request id, timing, security headers, access log, metrics.

Litestar's own middleware runs only for requests that matched a route, after routing; a 404 for an
unknown path, a 405 or a refused ``Host`` would get no request id, no timing and no security headers.
So this one wraps the whole application (``install``), like a server-level ASGI middleware, but it is
installed by ``create_app`` and so works the same under uvicorn, another server or the test client.

Per request it:

1. takes the client address from a trusted proxy's ``X-Forwarded-For`` (``webshop.security.proxies``)
   and writes it, and ``X-Forwarded-Proto``, into the ASGI scope, so ``request.client`` and rate
   limits see the real client;
2. uses the proxy's ``X-Request-ID`` when a trusted proxy sent a well-formed one, or makes a new one;
   binds it (with method and path) to structlog's context for every log line of the request, puts it
   in ``scope["state"]["request_id"]`` and sends it back as ``X-Request-ID``;
3. measures the time spent in the app and in database statements (SQLAlchemy cursor events) and sends
   ``Server-Timing: app;dur=12.3, db;dur=4.5;desc="3 queries"`` (W3C Server Timing) in development and,
   in production, only to a signed-in admin: exact durations would let anyone measure what the server
   did, e.g. widen the small timing difference between a sign-in with a known and an unknown address
   (W3C Server Timing, "Privacy and Security"; OWASP Authentication Cheat Sheet, response times);
4. adds the security headers (``webshop.security.headers``);
5. after the response, logs one ``request`` line (method, route template, status, duration) — at
   WARNING as ``slow request`` when it took longer than ``WEBSHOP_SLOW_REQUEST_MS`` — and updates the
   Prometheus request counter and latency histogram.
"""

from __future__ import annotations

import contextvars
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

import structlog
from litestar.enums import ScopeType
from sqlalchemy import event

from webshop.observability.logging import get_logger
from webshop.observability.metrics import LATENCY, REQUESTS, UNMATCHED
from webshop.security.headers import SecurityHeaders
from webshop.security.proxies import TrustedProxies
from webshop.security.session import SNAPSHOT_KEY, UserSnapshot, snapshot_of

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from sqlalchemy.ext.asyncio import AsyncEngine

    from webshop.config import Settings

log = get_logger("webshop.request")
_STDLIB_LOG = logging.getLogger("webshop.request")
_SERIES: dict[tuple[str, str, int], tuple[Any, Any]] = {}
"""``(method, route template, status)`` -> its request counter and latency histogram (``labels()``
looks them up under a lock on every call; routes and statuses are a small, fixed set)."""

REQUEST_ID_HEADER = b"x-request-id"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:@=+/-]{8,128}$")
"""A forwarded request id we accept: 8-128 characters of a safe alphabet (UUIDs, ULIDs, hex, base64)."""
TOKEN_LIKE_SEGMENT = re.compile(r"(?<=/)[A-Za-z0-9_.=-]{32,}(?=/|$)")
"""Path segments that look like a token (e-mail links): masked in logs."""

_db_time: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("webshop_db_time", default=None)
"""``[seconds, statements]`` spent in the database by the current request."""


def track_database_time(engine: AsyncEngine) -> None:
    """Add the time of every SQL statement run on ``engine`` to the current request's ``Server-Timing``."""
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_webshop_timed", False):
        return

    @event.listens_for(sync_engine, "before_cursor_execute")
    def _started(conn: Any, _cursor: Any, _statement: Any, _params: Any, _context: Any, _many: Any) -> None:
        conn.info.setdefault("webshop_started", []).append(time.perf_counter())

    @event.listens_for(sync_engine, "after_cursor_execute")
    def _finished(conn: Any, _cursor: Any, _statement: Any, _params: Any, _context: Any, _many: Any) -> None:
        started = conn.info.get("webshop_started")
        if not started:
            return
        elapsed = time.perf_counter() - started.pop()
        totals = _db_time.get()
        if totals is not None:
            totals[0] += elapsed
            totals[1] += 1

    sync_engine._webshop_timed = True  # type: ignore[attr-defined]


def loggable_path(path: str) -> str:
    """``path`` with token-like segments (32+ URL-safe characters) replaced by ``[REDACTED]``."""
    return TOKEN_LIKE_SEGMENT.sub("[REDACTED]", path)[:300]


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]


def _is_admin(scope: Any) -> bool:
    """Whether the request's user (session or bearer token, set by the auth middleware) is an admin.

    Reads only attributes already loaded (``snapshot_of``), so a rolled-back session is never touched.
    """
    fallback = scope.get("state", {}).get(SNAPSHOT_KEY)
    try:
        snapshot = snapshot_of(scope.get("user"), fallback if isinstance(fallback, UserSnapshot) else None)
    except Exception:  # a half-built user object: no timing header rather than a broken response
        return False
    return bool(snapshot is not None and snapshot.is_admin)


class RequestContextMiddleware:
    """ASGI middleware wrapping the whole app (see the module docstring).

    Args:
        app: The ASGI app to wrap (Litestar's ``asgi_handler``).
        settings: Trusted proxies and HSTS (``security``), slow-request threshold and the
            environment (``server``: ``Server-Timing`` for everyone only outside production).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.proxies = TrustedProxies(settings.security.trusted_proxies)
        self.headers = SecurityHeaders(settings.security)
        self.slow_seconds = settings.server.slow_request_ms / 1000
        self.timing_for_everyone = not settings.server.production

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one HTTP request (other scope types pass straight through)."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        connected = scope.get("client")
        peer = connected[0] if connected else None
        trusted = self.proxies.is_trusted(peer)
        if trusted:
            client = self.proxies.client_address(peer, _header_values(scope, b"x-forwarded-for"))
            if client and client != peer:
                scope["client"] = (client, 0)
            proto = (_header_values(scope, b"x-forwarded-proto") or [""])[-1].strip().lower()
            if proto in {"http", "https"}:
                scope["scheme"] = proto
        incoming = (_header_values(scope, REQUEST_ID_HEADER) or [""])[-1].strip() if trusted else ""
        request_id = incoming if REQUEST_ID_RE.match(incoming) else secrets.token_hex(16)
        scope.setdefault("state", {})["request_id"] = request_id
        # A request that matched no route (a 404 page) never reaches the session and auth middleware,
        # but its page still renders ``request.user`` and the flashed messages: signed out, no session.
        scope.setdefault("user", None)
        scope.setdefault("auth", None)
        scope.setdefault("session", {})
        path = scope.get("path", "")
        db_time = [0.0, 0]
        db_token = _db_time.set(db_time)
        status = 500
        forwarded = scope.get("client")  # the proxy's client, when one was trusted above
        client_host = forwarded[0] if forwarded else None

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if self.timing_for_everyone or _is_admin(scope):
                    elapsed_ms = (time.perf_counter() - started) * 1000
                    timing = f"app;dur={elapsed_ms:.1f}"
                    if db_time[1]:
                        timing += f', db;dur={db_time[0] * 1000:.1f};desc="{db_time[1]} queries"'
                    headers.append((b"server-timing", timing.encode()))
                headers.append((REQUEST_ID_HEADER, request_id.encode()))
                self.headers.apply(path, headers)
                message["headers"] = headers
            await send(message)

        # bind/reset rather than structlog's ``bound_contextvars``: the same, without a generator-based
        # context manager per request.
        log_tokens = structlog.contextvars.bind_contextvars(
            request_id=request_id, method=scope.get("method"), path=loggable_path(path), client=client_host
        )
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            _db_time.reset(db_token)
            try:
                self._finished(scope, status, time.perf_counter() - started, db_time)
            finally:
                structlog.contextvars.reset_contextvars(**log_tokens)

    def _finished(self, scope: Scope, status: int, seconds: float, db_time: list[float]) -> None:
        route = scope.get("path_template") or UNMATCHED
        if scope.get("route_handler") is None:
            route = UNMATCHED
        method = str(scope.get("method", ""))
        series = _SERIES.get((method, route, status))
        if series is None:
            labels = {"method": method, "route": route, "status": str(status)}
            series = _SERIES[(method, route, status)] = (REQUESTS.labels(**labels), LATENCY.labels(**labels))
        series[0].inc()
        series[1].observe(seconds)
        slow = seconds >= self.slow_seconds
        if not slow and not _STDLIB_LOG.isEnabledFor(logging.INFO):
            return  # the access log is off (WEBSHOP_LOG_LEVEL above info): no event to build
        fields = {
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 1),
            "db_ms": round(db_time[0] * 1000, 1),
            "db_queries": db_time[1],
        }
        if slow:
            log.warning("slow request", slow_request_ms=round(self.slow_seconds * 1000), **fields)
        else:
            log.info("request", **fields)


def install(app: Litestar, settings: Settings, *, engine: AsyncEngine | None = None) -> Litestar:
    """Wrap ``app``'s whole request handling in ``RequestContextMiddleware``; time SQL on ``engine``.

    Returns:
        ``app`` itself (still the ``Litestar`` instance: its state, stores and ``url_for`` are unchanged).
    """
    app.asgi_handler = RequestContextMiddleware(app.asgi_handler, settings)
    if engine is not None:
        track_database_time(engine)
    return app
