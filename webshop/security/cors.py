"""CORS for the JSON API: which other origins' browser apps may call ``/api`` (``WEBSHOP_CORS_ORIGINS``).

Litestar's ``CORSConfig`` and its CORS middleware do the work (preflight answers, ``Access-Control-*``
headers on responses, ``Vary: Origin``). Litestar applies its ``cors_config`` to the whole app; the
shop wants CORS on ``/api`` only (the pages are same-origin and rely on cookies and CSRF tokens), so
the same middleware is mounted on the API's router instead: a preflight of ``/api/...`` from a listed
origin gets the headers, from any other origin none, and no page ever gets them.

Credentials (cookies) are never allowed: API clients send a bearer token in ``Authorization``, which
a preflight allows as a request header, and the Fetch standard forbids credentials with ``*``.
(OWASP HTML5 Security Cheat Sheet, "Cross Origin Resource Sharing".)
"""

from __future__ import annotations

from litestar.config.cors import CORSConfig
from litestar.middleware import DefineMiddleware

# Litestar 2.9 took the class out of the public API (``cors_config`` is the public way, app-wide);
# it is the same class ``cors_config`` installs.
from litestar.middleware._internal.cors import CORSMiddleware

from webshop.config import SecuritySettings

ALLOWED_HEADERS = ["Authorization", "Content-Type", "Accept", "Idempotency-Key", "If-None-Match", "If-Match"]
"""Request headers a cross-origin API client may send."""
EXPOSED_HEADERS = ["Location", "Retry-After", "ETag", "X-Request-ID", "RateLimit-Limit", "RateLimit-Remaining"]
"""Response headers a cross-origin API client may read."""
PREFLIGHT_MAX_AGE = 600
"""Seconds a browser may cache a preflight answer."""


def api_cors(security: SecuritySettings) -> list[DefineMiddleware]:
    """The CORS middleware for the API router: none when ``security.cors_origins`` is empty (no CORS).

    Returns:
        ``[DefineMiddleware(CORSMiddleware, config=...)]`` or ``[]``; put it first in the router's
        middleware, so a preflight (``OPTIONS`` without a token) is answered before authentication.
    """
    if not security.cors_origins:
        return []
    config = CORSConfig(
        allow_origins=list(security.cors_origins),
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=ALLOWED_HEADERS,
        allow_credentials=False,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE,
    )
    return [DefineMiddleware(CORSMiddleware, config=config)]
