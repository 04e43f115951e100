"""How responses travel: compression, ``Cache-Control``, conditional requests, fingerprinted static URLs.

All of the shop's HTTP caching rules live here, in one middleware (``CachingMiddleware``, around the
whole app: ``install``) that looks at each response on its way out, and one compression config
(``compression_config``):

* **Static files** (``/static``) are linked with a content hash in the query, ``static_url("css/site.css")``
  → ``/static/css/site.css?v=1a2b3c4d`` (``StaticAssets``, hashed once at start-up). A request whose
  ``v`` is the file's current hash gets ``Cache-Control: public, max-age=31536000, immutable``: the URL
  changes whenever the file does. Without ``v`` (or with an old one) the answer is ``no-cache``:
  browsers revalidate with the ``ETag``/``Last-Modified`` Litestar's static router sends.
* **Media** (``/media``, product photos) have random or content-hash names that are never reused for
  other bytes: immutable too.
* **Pages** (HTML) carry a CSRF token and the cart badge, so never a shared cache: ``private, no-cache``
  (a browser may keep one for the back button but asks again before reusing it). The visitor's own
  areas (``/account``, ``/orders``, ``/cart``, ``/checkout``, ``/admin``) and every page shown to a
  signed-in visitor say ``no-store`` (OWASP Session Management Cheat Sheet: no personal data on disk).
* **Everything else** (API JSON, redirects, probes) is ``no-store`` unless its handler set a
  ``Cache-Control`` of its own (``/robots.txt``, ``/sitemap.xml``, ``/favicon.ico`` do); a handler's
  header always wins. A response that sets a cookie is never marked ``public``.
* **Conditional requests** (RFC 9110 §13): a ``GET``/``HEAD`` answered 200 with an ``ETag`` or
  ``Last-Modified`` becomes ``304 Not Modified`` when ``If-None-Match`` (weak comparison, §13.1.2)
  or, without it, ``If-Modified-Since`` (§13.1.3) says the client's copy is current. Litestar's static
  files router sends both validators but never answers 304 itself.
* **Compression**: HTML, CSS, JavaScript, JSON, XML, SVG and plain text of at least
  ``COMPRESSION_MINIMUM_SIZE`` bytes are sent with brotli or gzip, as ``Accept-Encoding`` prefers
  (q-values honoured, brotli on a tie); images, fonts, server-sent events and small bodies are sent
  as they are. Litestar's ``CompressionMiddleware`` does the encoding; our subclass only chooses
  what to compress and always sends ``Vary: Accept-Encoding`` for compressible types. A compressed
  response's ``ETag`` is made weak (RFC 9110 §8.8.3: a strong validator names one exact byte sequence).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

import anyio
import brotli
from litestar.config.compression import CompressionConfig
from litestar.datastructures import Headers, MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware.compression import CompressionMiddleware

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"
"""The folder served at ``/static``."""
IMMUTABLE = "public, max-age=31536000, immutable"
"""A year (RFC 9111 §5.2.2.1; ``immutable``: RFC 8246), for URLs whose bytes never change."""
REVALIDATE = "no-cache"
"""Store, but ask the server (a cheap 304) before each reuse."""
PAGE = "private, no-cache"
"""HTML for anonymous visitors: per visitor (CSRF token, cart badge), revalidated before reuse."""
PERSONAL = "no-store"
"""Pages with personal data, and API responses: never written to a cache."""
PERSONAL_PREFIXES = ("/account", "/orders", "/cart", "/checkout", "/admin")
"""Paths whose pages show the visitor's own data (``no-store``)."""

COMPRESSION_MINIMUM_SIZE = 1024
"""Bodies smaller than this (bytes) are sent as they are: the saving would not pay for the work."""
COMPRESSIBLE_TYPES = frozenset(
    {
        "text/html",
        "text/css",
        "text/plain",
        "text/xml",
        "text/javascript",
        "text/csv",
        "application/javascript",
        "application/json",
        "application/xml",
        "application/manifest+json",
        "image/svg+xml",
    }
)
"""Media types worth compressing; ``application/*+json`` and ``*+xml`` (problem+json, RSS) count too."""
SKIP_COMPRESSION_OPT = "skip_compression"
"""Put ``opt={"skip_compression": True}`` on a handler to send its responses uncompressed."""

_REPRESENTATION_HEADERS = frozenset(
    {
        b"content-type",
        b"content-length",
        b"content-encoding",
        b"content-language",
        b"content-range",
        b"content-disposition",
        b"transfer-encoding",
    }
)
"""Headers describing the body, which a 304 leaves out (RFC 9110 §15.4.5)."""


class StaticAssets:
    """Content hashes of the files under a static directory, for cache-busting URLs.

    Hashes are computed once (at start-up): a file edited while the server runs keeps its old hash
    until the next start, as the templates do (Jinja's ``auto_reload`` is off).

    Args:
        directory: The folder served at ``prefix``.
        prefix: Its URL path (``/static``).
    """

    def __init__(self, directory: Path, prefix: str = "/static") -> None:
        self.directory = directory
        self.prefix = prefix.rstrip("/")
        self.hashes: dict[str, str] = {}
        for path in sorted(directory.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()[:8]
                self.hashes[path.relative_to(directory).as_posix()] = digest

    def url(self, name: str) -> str:
        """``/static/<name>?v=<first 8 hex digits of its SHA-256>`` for the file ``name`` (``css/site.css``).

        Raises:
            LookupError: there is no such file (a typo in a template fails loudly, in tests).
        """
        name = name.lstrip("/")
        try:
            return f"{self.prefix}/{name}?v={self.hashes[name]}"
        except KeyError:
            raise LookupError(f"no static file {name!r} in {self.directory}") from None

    def is_current(self, path: str, version: str | None) -> bool:
        """True when ``version`` is the current hash of the file at URL ``path`` (``/static/css/site.css``)."""
        if not version or not path.startswith(self.prefix + "/"):
            return False
        return self.hashes.get(path[len(self.prefix) + 1 :]) == version


def cache_control_for(
    path: str, content_type: str, *, assets: StaticAssets | None, version: str | None, signed_in: bool
) -> str:
    """The ``Cache-Control`` value for a response without one (the rules in the module docstring).

    Args:
        path: The request path.
        content_type: The response's media type without parameters (``text/html``).
        assets: The static files' hashes (``None``: no static URL counts as fingerprinted).
        version: The request's ``v`` query parameter, if any.
        signed_in: Whether a user is signed in on this request.
    """
    if path.startswith("/static/"):
        return IMMUTABLE if assets is not None and assets.is_current(path, version) else REVALIDATE
    if path.startswith("/media/"):
        return IMMUTABLE
    if content_type == "text/html":
        personal = signed_in or any(path == p or path.startswith(p + "/") for p in PERSONAL_PREFIXES)
        return PERSONAL if personal else PAGE
    return PERSONAL


def not_modified(request: Headers, response: MutableScopeHeaders) -> bool:
    """Whether a 200 answer to a ``GET``/``HEAD`` with these headers may become 304 (RFC 9110 §13.2.2).

    ``If-None-Match`` is evaluated first, with the weak comparison (§13.1.2; ``*`` matches any current
    representation); only without it ``If-Modified-Since`` compares ``Last-Modified`` to the date
    (§13.1.3), and an unparseable date is ignored.
    """
    if_none_match = request.get("if-none-match")
    if if_none_match is not None:
        etag = response.get("etag")
        if etag is None:
            return False
        if if_none_match.strip() == "*":
            return True
        current = _opaque(etag)
        return any(_opaque(tag) == current for tag in if_none_match.split(","))
    if_modified_since = request.get("if-modified-since")
    last_modified = response.get("last-modified")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False


def _opaque(tag: str) -> str:
    """An entity tag without its weakness marker: what the weak comparison compares."""
    tag = tag.strip()
    return tag[2:] if tag.startswith("W/") else tag


def _media_type(headers: MutableScopeHeaders) -> str:
    return (headers.get("content-type") or "").split(";", 1)[0].strip().lower()


class CachingMiddleware:
    """Sets ``Cache-Control``, weakens the ``ETag`` of compressed bodies, and answers 304 (module docstring).

    It wraps the whole application (``install``), so errors raised before a handler runs (a 401 from
    the API's bearer check, a 404, a 429) get a ``Cache-Control`` too, and it sees the cookies the
    session middleware sets.

    Args:
        app: The ASGI app to wrap (Litestar's ``asgi_handler``).
        assets: The static files' hashes, to tell a fingerprinted URL from a plain one.
    """

    def __init__(self, app: ASGIApp, assets: StaticAssets | None = None) -> None:
        self.app = app
        self.assets = assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; rewrite the response's start (and drop its body when it becomes 304)."""
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request = Headers.from_scope(scope)
        conditional = scope.get("method") in {"GET", "HEAD"} and (
            "if-none-match" in request or "if-modified-since" in request
        )
        swallowing = False

        async def send_wrapper(message: Message) -> None:
            nonlocal swallowing
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableScopeHeaders.from_message(message)
                self._set_cache_control(scope, headers)
                if "content-encoding" in headers and (etag := headers.get("etag")) and not etag.startswith("W/"):
                    headers["etag"] = f"W/{etag}"
                if conditional and message["status"] == 200 and not_modified(request, headers):
                    message["status"] = 304
                    message["headers"] = [(k, v) for k, v in message["headers"] if k not in _REPRESENTATION_HEADERS]
                    swallowing = True
            elif swallowing and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_wrapper)

    def _set_cache_control(self, scope: Scope, headers: MutableScopeHeaders) -> None:
        value = headers.get("cache-control")
        if value is None:
            path = scope.get("path", "")
            version = None
            if path.startswith("/static/"):  # only a static URL's ``v`` counts: no query parsing elsewhere
                query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
                version = (query.get("v") or [""])[0] or None
            value = cache_control_for(
                path,
                _media_type(headers),
                assets=self.assets,
                version=version,
                signed_in=scope.get("user") is not None,
            )
        if "public" in value and "set-cookie" in headers:
            value = re.sub(r"\bpublic\b", "private", value)
        headers["cache-control"] = value


@functools.lru_cache(maxsize=256)
def negotiate_encoding(accept_encoding: str) -> str | None:
    """The content coding to use for ``Accept-Encoding`` (RFC 9110 §12.5.3): ``"br"``, ``"gzip"`` or ``None``.

    The highest q-value wins; brotli on a tie; ``*`` stands for any coding not named; ``q=0`` refuses.
    Memoised: browsers send a handful of distinct values.

    >>> negotiate_encoding("gzip, deflate, br")
    'br'
    >>> negotiate_encoding("br;q=0.5, gzip")
    'gzip'
    >>> negotiate_encoding("identity") is None
    True
    """
    weights: dict[str, float] = {}
    for item in accept_encoding.lower().split(","):
        coding, *params = (part.strip() for part in item.split(";"))
        if not coding:
            continue
        weight = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[coding] = weight
    wildcard = weights.get("*", 0.0)
    candidates = [(weights.get(coding, wildcard), coding) for coding in ("br", "gzip")]
    weight, coding = max(candidates, key=lambda pair: (pair[0], pair[1] == "br"))
    return coding if weight > 0 else None


def is_compressible(media_type: str) -> bool:
    """Whether a body of ``media_type`` (no parameters, lower case) is worth compressing."""
    return media_type in COMPRESSIBLE_TYPES or media_type.endswith(("+json", "+xml"))


class SelectiveCompressionMiddleware(CompressionMiddleware):
    """Litestar's compression, for compressible media types only and with proper ``Accept-Encoding`` parsing.

    Litestar's own middleware compresses every body (photos too) and looks for ``br`` or ``gzip`` as a
    substring of ``Accept-Encoding`` (so ``br;q=0`` would get brotli). It also compresses on every
    request, in the event loop: fine for pages of tens of KB, not for the API docs' bundles of 1-5 MB
    (half a second to seconds of CPU each). So a static file is compressed once per coding, in a
    worker thread, and the result kept in memory while the file's ``ETag`` stays the same (the
    ``static/`` folder is small and fixed: a few MB for both codings).
    """

    def __init__(self, app: ASGIApp, config: CompressionConfig) -> None:
        super().__init__(app, config)
        self._static: dict[tuple[str, str], tuple[str, bytes]] = {}
        """``(path, coding)`` → ``(etag, compressed body)`` of the static files sent so far."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Choose the coding, then let Litestar compress a compressible response with it."""
        encoding = negotiate_encoding(Headers.from_scope(scope).get("accept-encoding", ""))
        if encoding == "br" and self.config.backend != "brotli":
            encoding = "gzip"
        await self.app(scope, receive, self._selective_send(send, encoding, scope))

    def _selective_send(self, send: Send, encoding: str | None, scope: Scope) -> Send:
        target: Send | None = None

        async def send_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                values = [v.strip() for v in (headers.get("vary") or "").split(",") if v.strip()]
                if "accept-encoding" not in {v.lower() for v in values}:
                    values.append("Accept-Encoding")
                headers["vary"] = ", ".join(values)
            await send(message)

        async def choose(message: Message) -> None:
            nonlocal target
            if target is None and message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if "content-encoding" in headers or not is_compressible(_media_type(headers)):
                    target = send
                elif encoding is None:
                    target = send_vary
                elif scope["path"].startswith("/static/") and scope.get("method") == "GET" and "etag" in headers:
                    target = self._static_send(send_vary, encoding, scope["path"], headers["etag"])
                else:
                    target = self.create_compression_send_wrapper(send_vary, encoding, scope)
            await (target or send)(message)

        return choose

    def _static_send(self, send: Send, encoding: str, path: str, etag: str) -> Send:
        """Send a static file compressed with ``encoding``, compressing it only if not done before."""
        start: Message | None = None
        chunks: list[bytes] = []
        cached = self._static.get((path, encoding))
        compressed = cached[1] if cached is not None and cached[0] == etag else None

        async def send_static(message: Message) -> None:
            nonlocal start, compressed
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            if compressed is None:
                chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            if compressed is None:
                body = b"".join(chunks)
                if len(body) < self.config.minimum_size:
                    await send(start)
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    return
                compressed = await anyio.to_thread.run_sync(self._compress, body, encoding)
                self._static[(path, encoding)] = (etag, compressed)
            headers = MutableScopeHeaders.from_message(start)
            headers["content-encoding"] = encoding
            headers["content-length"] = str(len(compressed))
            await send(start)
            await send({"type": "http.response.body", "body": compressed, "more_body": False})

        return send_static

    def _compress(self, body: bytes, encoding: str) -> bytes:
        """``body`` compressed whole with the config's brotli or gzip settings."""
        if encoding == "br":
            return bytes(
                brotli.compress(
                    body, mode=brotli.MODE_TEXT, quality=self.config.brotli_quality, lgwin=self.config.brotli_lgwin
                )
            )
        return gzip.compress(body, compresslevel=self.config.gzip_compress_level, mtime=0)


def install(app: Litestar, assets: StaticAssets | None = None) -> Litestar:
    """Wrap ``app``'s whole request handling in ``CachingMiddleware``; returns ``app`` itself."""
    app.asgi_handler = CachingMiddleware(app.asgi_handler, assets)
    return app


def compression_config() -> CompressionConfig:
    """Brotli (quality 5, Litestar's default for dynamic bodies) with a gzip fallback (level 6)."""
    return CompressionConfig(
        backend="brotli",
        brotli_gzip_fallback=True,
        minimum_size=COMPRESSION_MINIMUM_SIZE,
        gzip_compress_level=6,
        middleware_class=SelectiveCompressionMiddleware,
        exclude_opt_key=SKIP_COMPRESSION_OPT,
    )
