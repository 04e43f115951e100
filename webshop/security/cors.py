"""CORS for the JSON API: which other origins' browser apps may call ``/api`` (``WEBSHOP_CORS_ORIGINS``).

Litestar's ``CORSConfig`` and its CORS middleware do the work (preflight answers, ``Access-Control-*``
headers on responses, ``Vary: Origin``). Litestar applies its ``cors_config`` to the whole app; the
shop wants CORS on ``/api`` only (the pages are same-origin and rely on cookies and CSRF tokens), so
the same middleware runs behind a path check (``ApiCorsMiddleware``): a preflight of ``/api/...`` from
a listed origin gets the headers, from any other origin none, and no page ever gets them.

Credentials (cookies) are never allowed: API clients send a bearer token in ``Authorization``, which
a preflight allows as a request header, and the Fetch standard forbids credentials with ``*``.
(OWASP HTML5 Security Cheat Sheet, "Cross Origin Resource Sharing".)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType

# Litestar 2.9 took the class out of the public API (``cors_config`` is the public way, app-wide);
# it is the same class ``cors_config`` installs.
from litestar.middleware._internal.cors import CORSMiddleware

from webshop.config import SecuritySettings

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Receive, Scope, Send

ALLOWED_HEADERS = ["Authorization", "Content-Type", "Accept", "Idempotency-Key", "If-None-Match", "If-Match"]
"""Request headers a cross-origin API client may send."""
EXPOSED_HEADERS = [
    "Location",
    "Retry-After",
    "ETag",
    "X-Request-ID",
    "WWW-Authenticate",
    "Accept-Post",
    "Accept-Patch",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
    "RateLimit-Policy",
]
"""Response headers a cross-origin API client may read."""
PREFLIGHT_MAX_AGE = 600
"""Seconds a browser may cache a preflight answer."""


class ApiCorsMiddleware:
    """Litestar's CORS middleware for paths under ``/api/`` only; every other request passes untouched.

    It wraps the app's ASGI handler (``install``), as Litestar's own ``cors_config`` does: outside the
    exception handling, admission control, rate limiting and authentication, so a preflight is answered
    before any of them (it carries no token and spends no budget), and the API's refusals (401, 429 with
    ``Retry-After``, 503) carry the CORS headers a browser needs to let the app read them.
    """

    def __init__(self, app: ASGIApp, config: CORSConfig) -> None:
        self.app = app
        self.cors = CORSMiddleware(app=app, config=config)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"].startswith("/api/"):
            await self.cors(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def install(app: Litestar, security: SecuritySettings) -> None:
    """Wrap ``app``'s ASGI handler in ``ApiCorsMiddleware`` for ``security.cors_origins``; nothing when
    that is empty (no CORS)."""
    if not security.cors_origins:
        return
    config = CORSConfig(
        allow_origins=list(security.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=False,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE,
    )
    app.asgi_handler = ApiCorsMiddleware(app.asgi_handler, config)
