"""Security headers on every response, and the ``Host`` values the shop answers.

The headers follow the OWASP HTTP Headers and Content Security Policy cheat sheets:

* ``Content-Security-Policy``: everything from our own origin, no inline script or style, no plugins,
  no framing, forms post only to us. The shop's pages meet it: htmx is a static file, its indicator
  styles are off and it never runs ``<script>`` tags from swapped HTML (``htmx-config`` in
  ``templates/base.html``), and the templates carry no ``style=""`` or inline ``<script>``.
* The API documentation pages (Swagger UI, ReDoc, Scalar under ``/api``) are Litestar's render
  plugins. Their bundles are vendored in ``static/vendor`` (``webshop.api.openapi``), so no other host
  is needed, but the pages start them with an inline script holding the schema or the options, and
  the UIs inject their own ``<style>`` elements: those three paths get a policy of their own that adds
  ``'unsafe-inline'`` for scripts and styles (and ``blob:`` workers, ReDoc's search), nothing more.
  They carry no cookies of ours (the session cookie is never sent to ``/api``).
* ``Strict-Transport-Security`` only when the shop is served over https (``WEBSHOP_BASE_URL``); over
  plain http browsers ignore it (RFC 6797 §8.1) and a wrong one locks visitors out.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: strict-origin-when-cross-origin``,
  ``X-Frame-Options: DENY`` (for browsers without ``frame-ancestors``), a ``Permissions-Policy`` that
  turns off powerful features the shop does not use, and ``Cross-Origin-Opener-Policy: same-origin``.

A header a handler set itself is left alone.
"""

from __future__ import annotations

from litestar.config.allowed_hosts import AllowedHostsConfig

from webshop.config import SecuritySettings

PAGE_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)
"""The policy of every page, fragment, API response, static file and error."""

DOCS_CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    ]
)
"""The policy of the API documentation pages only (see the module docstring)."""

DOCS_PATHS = frozenset({"/api/docs", "/api/redoc", "/api/scalar"})
"""Paths of Litestar's OpenAPI UI pages (``webshop.api.openapi``)."""

PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=(), browsing-topics=()"
HSTS = "max-age=63072000; includeSubDomains"
"""Two years, as the OWASP HTTP Strict Transport Security Cheat Sheet recommends."""

UNCHECKED_HOST_PATHS = ["^/health$", "^/ready$", "^/metrics$"]
"""Probes and scrapers reach the shop by IP address, not by its public host name."""


class SecurityHeaders:
    """The header lists to add to responses, built once per app.

    Args:
        security: ``secure_cookies`` (an https base URL) decides whether HSTS is sent.
    """

    def __init__(self, security: SecuritySettings) -> None:
        common: list[tuple[bytes, bytes]] = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"x-frame-options", b"DENY"),
            (b"permissions-policy", PERMISSIONS_POLICY.encode()),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        if security.secure_cookies:
            common.append((b"strict-transport-security", HSTS.encode()))
        self.page = [(b"content-security-policy", PAGE_CSP.encode()), *common]
        self.docs = [(b"content-security-policy", DOCS_CSP.encode()), *common]

    def for_path(self, path: str) -> list[tuple[bytes, bytes]]:
        """The ``(name, value)`` pairs (lower-case names, as in ASGI) for a response to ``path``."""
        return self.docs if path.rstrip("/") in DOCS_PATHS else self.page

    def apply(self, path: str, headers: list[tuple[bytes, bytes]]) -> None:
        """Add the headers for ``path`` to an ASGI ``http.response.start`` header list, keeping any already set."""
        present = {name.lower() for name, _ in headers}
        headers.extend(pair for pair in self.for_path(path) if pair[0] not in present)


def allowed_hosts_config(security: SecuritySettings) -> AllowedHostsConfig | None:
    """Litestar's allowed-hosts check for ``security.effective_allowed_hosts`` (``None`` when any host is fine).

    A request with another ``Host`` gets 400 (OWASP: do not trust the Host header, e.g. for links in
    e-mails). ``/health``, ``/ready`` and ``/metrics`` are not checked.
    """
    hosts = list(security.effective_allowed_hosts)
    if "*" in hosts:
        return None
    return AllowedHostsConfig(allowed_hosts=hosts, exclude=UNCHECKED_HOST_PATHS)
