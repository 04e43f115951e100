"""One place that turns errors into responses: pages for browsers, RFC 9457 problem+json for ``/api``.

No stack trace or SQL ever reaches a client; unexpected errors are logged with the request path.

An error page never needs the database: the request's session may be the thing that failed (a unique
violation rolls it back and expires every object it loaded, the signed-in ``User`` included), so the
handler first swaps ``request.user`` for a ``UserSnapshot`` of plain values (webshop.security.session);
the cart badge's count is already a plain number in ``request.state``.
"""

from __future__ import annotations

import enum
import logging
import re
from typing import Any, Literal, get_args, get_origin

from advanced_alchemy.exceptions import NotFoundError
from litestar import MediaType, Response
from litestar.exceptions import (
    HTTPException,
    MethodNotAllowedException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as DBAPITimeout

from webshop.errors import BUSY_DETAIL, DomainError, InsufficientStock, NotFound
from webshop.security.session import plain_user
from webshop.text import readable_message
from webshop.web import AnyRequest
from webshop.web.responses import route_url, wants_fragment

logger = logging.getLogger("webshop.errors")
RETRY_AFTER_SECONDS = "5"

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Service unavailable",
}


def _is_api(request: AnyRequest) -> bool:
    return request.url.path.startswith("/api")


def problem(status: int, detail: str, *, title: str | None = None, **extra: Any) -> Response[dict[str, Any]]:
    """An RFC 9457 ``application/problem+json`` response."""
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v})
    return Response(body, status_code=status, media_type="application/problem+json")


def error_page(request: AnyRequest, status: int, detail: str) -> Template:
    """The HTML error page (``errors/error.html``) with ``status`` and a message for the shopper.

    htmx swaps every error answer (``responseHandling`` in ``templates/base.html``): a boosted request
    swaps the page's body, so it gets the whole page; an ``hx-get``/``hx-post`` that targets a part of
    the page (the cart, the search results) gets the message alone (``errors/_error.html``), so no
    second page is nested inside the first.
    """
    fragment = wants_fragment(request)
    return Template(
        "errors/_error.html" if fragment else "errors/error.html",
        context={"status": status, "title": TITLES.get(status, "Error"), "detail": detail},
        status_code=status,
        media_type=MediaType.HTML,
        headers={"Vary": "HX-Request"},
    )


MISSING_PARAMETER = re.compile(r"Missing required (header|query|cookie) parameter '([^']+)'")
"""Litestar's message for a required parameter left out (``litestar._kwargs.extractors``), which carries
no details: the parameter's kind and its name as sent."""


def _header_name(name: str) -> str:
    """A header named as clients write it: ``idempotency_key`` or ``idempotency-key`` → ``Idempotency-Key``
    (field names are case-insensitive, RFC 9110 §5.1; the documented spelling is the one to name)."""
    return "-".join(part.capitalize() for part in re.split(r"[-_]", name))


def _field_errors(exc: ValidationException, request: AnyRequest | None = None) -> dict[str, str]:
    """Litestar's validation details (a list of ``{key, message, source}``) as ``{field: message}``, a
    pattern's failure said in words (``webshop.text.readable_message``: a query's cursor as a body's
    field); a header by its own name (``Idempotency-Key``); a required parameter left out as "Required.";
    a query value outside its handler's choices (a ``Literal`` or an enum) with the choices listed, when
    ``request`` is given."""
    errors: dict[str, str] = {}
    for item in exc.extra if isinstance(exc.extra, list) else []:
        if isinstance(item, dict):
            key = str(item.get("key") or "body")
            key = _header_name(key) if item.get("source") == "header" else key
            message = str(item.get("message") or "Invalid value.")
            enum_value = message.startswith("Invalid enum value") and item.get("source") == "query"
            if enum_value and request is not None and (choices := _choices(request, key)):
                message = f"Must be one of: {', '.join(choices)}."
            errors[key] = readable_message(message)
    if not errors and (missing := MISSING_PARAMETER.match(str(exc.detail))):
        kind, name = missing.groups()
        errors[_header_name(name) if kind == "header" else name] = "Required."
    return errors


def _choices(request: AnyRequest, name: str) -> list[str]:
    """The values the handler's parameter ``name`` may take when its type is a ``Literal`` or an enum
    (``[]`` otherwise, or for a parameter of a dependency)."""
    field = request.route_handler.parsed_fn_signature.parameters.get(name)
    return _literal_values(field.annotation) if field is not None else []


def _literal_values(annotation: Any) -> list[str]:
    """The ``Literal`` values and enum members' values in ``annotation`` (through ``Annotated``, unions
    and ``Optional``), in their order."""
    if get_origin(annotation) is Literal:
        return [str(value) for value in get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [str(member.value) for member in annotation]
    return [value for arg in get_args(annotation) for value in _literal_values(arg)]


def _only_in_the_path(exc: ValidationException) -> bool:
    """True when every value Litestar refused is a path parameter (an id out of range names no page)."""
    items = exc.extra if isinstance(exc.extra, list) else []
    return bool(items) and all(isinstance(item, dict) and item.get("source") == "path" for item in items)


def _unreadable_input(exc: ValidationException, method: str) -> str:
    """What a shopper is told about input no page handler could take (Litestar's message, "Validation
    failed for GET /?page=0", is for developers): which values, by name, of the address (``GET``) or of
    the form (a post), and what to do."""
    names = [name for name in _field_errors(exc) if name != "body"]
    if not names:
        return "We could not read what was sent. Go back, check it and try again."
    listed = ", ".join(f"“{name}”" for name in names)
    if method not in ("GET", "HEAD"):
        return f"The form has a value we cannot use ({listed}). Go back, correct it and try again."
    return f"This address has a value we cannot use ({listed}). Go back, or start again from the home page."


def _api_problem(request: AnyRequest, exc: Exception, status: int, detail: str) -> Response[Any]:
    extra: dict[str, Any] = {}
    title = None
    if isinstance(exc, DomainError):
        extra["errors"] = exc.field_errors
        title = getattr(exc, "title", None)
        if isinstance(exc, InsufficientStock):
            extra["shortfalls"] = [
                {"sku": s.sku, "name": s.name, "requested": s.requested, "available": s.available}
                for s in exc.shortfalls
            ]
    elif isinstance(exc, ValidationException):
        extra["errors"] = _field_errors(exc, request)
    response = problem(status, detail, title=title, **extra)
    if isinstance(exc, HTTPException) and exc.headers:
        # Keep the headers the exception carries, e.g. ``Allow`` on a 405 (RFC 9110 §15.5.6).
        response.headers.update(exc.headers)
    if status == 401:
        # RFC 6750 §3: tell the client how to authenticate, and whether its token was the problem.
        challenge = 'Bearer realm="webshop"'
        if request.headers.get("authorization"):
            challenge += ', error="invalid_token"'
        response.headers["WWW-Authenticate"] = challenge
    return response


def _is_unstorable_text(exc: Exception) -> bool:
    """PostgreSQL refused a text value it cannot store: a NUL character (SQLSTATE 22021)."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) == "22021"


def _is_database_unavailable(exc: Exception) -> bool:
    """The database is busy or unreachable: pool or connect timeout, refused or dropped connection.

    ``DatabaseUnavailable`` (a ``ConnectionError``) comes from the engine's connect hook; a connection
    that died under a running statement (server stopped) is a ``DBAPIError`` with ``connection_invalidated``.
    """
    if isinstance(exc, DBAPITimeout | OperationalError | InterfaceError | ConnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def _detach_user(request: AnyRequest) -> None:
    """Put a ``UserSnapshot`` in place of the request's ``User``, so rendering the answer reads no database."""
    if request.scope.get("user") is not None:
        request.scope["user"] = plain_user(request)


def _page_above(request: AnyRequest) -> str | None:
    """The nearest path above the request's that answers ``GET`` (``/cart/lines/5/remove`` → ``/cart``),
    or ``None``; asked of Litestar's own router, so only real pages qualify."""
    path = request.url.path.rstrip("/")
    while "/" in path:
        path = path.rsplit("/", 1)[0]
        try:
            request.app.asgi_router.handle_routing(path or "/", "GET")
        except (NotFoundException, MethodNotAllowedException):  # no page answers GET there: look higher
            continue
        return path or "/"
    return None


def handle_exception(request: AnyRequest, exc: Exception) -> Response[Any]:
    """Render any exception that escaped a handler (see module docstring)."""
    _detach_user(request)
    exc, status, detail = _classify(request, exc)
    if status == HTTP_503_SERVICE_UNAVAILABLE:
        # RFC 9110 §10.2.3: tell clients and proxies when to try again.
        api = _is_api(request)
        response = _api_problem(request, exc, status, detail) if api else error_page(request, status, detail)
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    if status == 429:
        # Rate limit or locked account: say when to try again (RFC 6585 §4, RFC 9110 §10.2.3).
        if _is_api(request):
            response = _api_problem(request, exc, status, detail)
        else:
            response = error_page(request, status, detail)
        if isinstance(exc, HTTPException) and exc.headers:
            response.headers.update(exc.headers)
        if retry_after := getattr(exc, "retry_after", None):
            response.headers["Retry-After"] = str(retry_after)
        return response
    if _is_api(request):
        response = _api_problem(request, exc, status, detail)
        if retry_after := getattr(exc, "retry_after", None):  # a 409 worth retrying soon (RFC 9110 §10.2.3)
            response.headers["Retry-After"] = str(retry_after)
        return response
    if isinstance(exc, NotAuthorizedException):
        back = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target = route_url(request, "sign_in", query={"next": back})
        if isinstance(request, HTMXRequest) and request.htmx:
            return ClientRedirect(target)
        return Redirect(target, status_code=HTTP_303_SEE_OTHER)
    htmx = isinstance(request, HTMXRequest) and bool(request.htmx)
    if status == 405 and request.method in ("GET", "HEAD") and not htmx and (page := _page_above(request)):
        # The address of a form's answer (kept in the address bar by a refused form, a reload, a bookmark):
        # the page above it, where the form is (/account/password → /account, /cart/items → /cart).
        return Redirect(page, status_code=HTTP_303_SEE_OTHER)
    if isinstance(exc, NotFoundException) and status == 404:
        detail = "We could not find that page."
    if isinstance(exc, ValidationException) and status == 400:
        if _only_in_the_path(exc):  # /admin/orders/99999999999999999999: no such page (RFC 9110 §15.5.5)
            status, detail = 404, "We could not find that page."
        else:
            detail = _unreadable_input(exc, request.method)
    if isinstance(exc, PermissionDeniedException):
        status = 403
    return error_page(request, status, detail)


def _classify(request: AnyRequest, exc: Exception) -> tuple[Exception, int, str]:
    """``(exception, status, detail)`` for ``exc``: domain errors and HTTP exceptions keep theirs, input
    no handler could take is 400, an unavailable database 503 (logged without SQL), anything else 500
    (logged with its traceback). advanced-alchemy's ``NotFoundError`` becomes the shop's ``NotFound``."""
    if isinstance(exc, NotFoundError):
        # advanced-alchemy's reads (``get_one``) raise their own; the shop answers it as its ``NotFound``
        # (404), with the message the service gave (``error_messages={"not_found": ...}``).
        exc = NotFound(exc.detail or "We could not find that.")
    if isinstance(exc, DomainError):
        status, detail = exc.status_code, exc.detail
    elif isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
        if status == 403 and "csrf" in detail.lower():
            detail = "Your form expired or came from another site. Reload the page and try again."
    elif _is_unstorable_text(exc):
        # Text with a NUL character can be sent in any field, but PostgreSQL can neither store nor search it.
        status, detail = HTTP_400_BAD_REQUEST, "Text must not contain NUL characters."
    elif isinstance(exc, RecursionError):
        # Input nested deeper than a recursive decoder can follow; JSON bodies are refused before that
        # (webshop/api/json_guard.py), this is the backstop: never a 500 for input anyone can send.
        logger.warning("recursion limit on %s %s", request.method, request.url.path)
        status, detail = HTTP_400_BAD_REQUEST, "The request is nested too deeply."
    elif _is_database_unavailable(exc):
        # The database is busy or unreachable: a temporary condition (RFC 9110 §15.6.4), not a bug.
        # The cause is logged without the SQL and its parameters (the driver's own message).
        cause = str(getattr(exc, "orig", None) or exc)[:300]
        logger.warning(
            "database unavailable on %s %s: %s: %s", request.method, request.url.path, type(exc).__name__, cause
        )
        status, detail = HTTP_503_SERVICE_UNAVAILABLE, BUSY_DETAIL
    else:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        status, detail = HTTP_500_INTERNAL_SERVER_ERROR, "An unexpected error happened on our side."
    return exc, status, detail
