"""A nesting limit for JSON request bodies, checked before they are decoded.

msgspec decodes nested arrays and objects recursively: a body of about a thousand ``[`` (a few
kilobytes, well under any size limit) exhausts Python's recursion limit and raises ``RecursionError``
on any route that takes JSON, anonymous ones included. OWASP's Input Validation and REST Security
cheat sheets ask for limits on the structure of input, not only its size; RFC 8259 §9 lets a parser
"set limits on the maximum depth of nesting". So every JSON body is scanned for its nesting depth
first (a cheap pass over the raw bytes; strings are skipped, so brackets inside them do not count),
and a body nested deeper than ``MAX_JSON_DEPTH`` is refused with 400 "JSON nested too deeply"
(problem+json under ``/api``). The size limit stays Litestar's ``request_max_body_size``: the body is
read by ``Request.body()`` as before.

All JSON decoding of request bodies goes through Litestar's ``Request.json()`` (the JSON body
extractor calls it whatever the ``Content-Type``), so ``ShopRequest`` overriding it covers every
route; form and multipart bodies are never scanned.
"""

from __future__ import annotations

from typing import Any

from litestar.exceptions import ClientException
from litestar.plugins.htmx import HTMXRequest
from litestar.types import Empty

MAX_JSON_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in a request body (the API's own bodies use 3)."""
TOO_DEEP = "JSON nested too deeply"

_NOT_SHAPE = bytes(set(range(256)) - set(b'"[]{}'))
"""Every byte but quotes and brackets: what the depth scan drops first."""
_BRACKETS = bytes.maketrans(b"[{]}", b"(())")


class JsonTooDeep(ClientException):
    """400: the request's JSON body nests arrays and objects deeper than ``MAX_JSON_DEPTH``."""

    def __init__(self) -> None:
        super().__init__(detail=TOO_DEEP)


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether ``body`` nests arrays/objects more than ``limit`` deep (RFC 8259 §9 allows such a limit).

    Brackets inside strings do not count. The scan never fails: malformed JSON is left to the decoder,
    which stops at the first error, before any nesting this scan did not see.

    Args:
        body: The raw request body (UTF-8 JSON, possibly malformed).
        limit: Deepest nesting allowed.

    Returns:
        True when some bracket opens at depth ``limit + 1`` or deeper.
    """
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot nest deeper than it has brackets: the usual body needs no scan
    # Everything runs in C (the body may be megabytes): drop the strings, keep the brackets as "()",
    # then peel off the innermost pairs ``limit`` times; each pass lowers every nesting by one level.
    shape = _outside_strings(body).translate(_BRACKETS)
    for _ in range(limit):
        peeled = shape.replace(b"()", b"")
        if len(peeled) == len(shape):
            break
        shape = peeled
    if b"()" in shape:
        return True  # a pair still stands after ``limit`` peels: it encloses more than ``limit`` levels
    # Left over: brackets without a partner, ")))(((" (no "()" remains). A ")" first means the JSON is
    # malformed there and the decoder stops before it; otherwise count the unclosed "(" (a truncated
    # body: the limit is exact for well-formed JSON, a truncated one may nest up to twice as deep).
    return not shape.startswith(b")") and len(shape) > limit


def _outside_strings(body: bytes) -> bytes:
    """The brackets and quotes of ``body`` that are outside JSON strings (an unterminated string runs on).

    Escapes go first: ``\\\\`` pairs, then a ``\\"`` left over is an escaped quote. Then everything but
    quotes and brackets, then ``""`` (an empty string, or two strings with nothing between them: either
    way nothing outside strings is lost), so that only strings holding brackets are left to cut out.
    """
    shape = body.replace(b"\\\\", b"").replace(b'\\"', b"").translate(None, _NOT_SHAPE).replace(b'""', b"")
    return b"".join(shape.split(b'"')[::2]) if b'"' in shape else shape


class ShopRequest(HTMXRequest):
    """The app's request class: Litestar's ``HTMXRequest`` whose ``json()`` refuses too deep nesting."""

    async def json(self) -> Any:
        """The decoded JSON body.

        Raises:
            JsonTooDeep: nested deeper than ``MAX_JSON_DEPTH`` (or deep enough to exhaust the decoder's
                recursion, which must never become a 500).
        """
        decoded = self._json is not Empty or self._connection_state.json is not Empty
        if not decoded and json_depth_exceeds(await self.body()):
            raise JsonTooDeep
        try:
            return await super().json()
        except RecursionError as exc:
            raise JsonTooDeep from exc
