"""One place that turns errors into responses: pages for browsers, RFC 9457 problem+json for ``/api``.

No stack trace or SQL ever reaches a client; unexpected errors are logged with the request path.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
    ValidationException,
)
from litestar.plugins.htmx import ClientRedirect, HTMXRequest
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER, HTTP_500_INTERNAL_SERVER_ERROR

from webshop.errors import DomainError

logger = logging.getLogger("webshop.errors")

TITLES = {
    400: "Bad request",
    401: "Sign-in required",
    403: "Forbidden",
    404: "Page not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Something went wrong",
    503: "Service unavailable",
}


def _is_api(request: Request[Any, Any, Any]) -> bool:
    return request.url.path.startswith("/api")


def problem(status: int, detail: str, *, title: str | None = None, **extra: Any) -> Response[dict[str, Any]]:
    """An RFC 9457 ``application/problem+json`` response."""
    body = {"type": "about:blank", "title": title or TITLES.get(status, "Error"), "status": status, "detail": detail}
    body.update({k: v for k, v in extra.items() if v})
    return Response(body, status_code=status, media_type="application/problem+json")


def error_page(request: Request[Any, Any, Any], status: int, detail: str) -> Template:
    """The HTML error page (``errors/error.html``) with ``status`` and a message for the shopper."""
    return Template(
        "errors/error.html",
        context={"status": status, "title": TITLES.get(status, "Error"), "detail": detail},
        status_code=status,
        media_type=MediaType.HTML,
    )


def handle_exception(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Render any exception that escaped a handler (see module docstring)."""
    if isinstance(exc, DomainError):
        status, detail = exc.status_code, exc.detail
        extra = {"errors": exc.field_errors}
    elif isinstance(exc, HTTPException):
        status, detail = exc.status_code, str(exc.detail)
        extra = {"errors": exc.extra} if isinstance(exc, ValidationException) and exc.extra else {}
        if status == 403 and "csrf" in detail.lower():
            detail = "Your form expired or came from another site. Reload the page and try again."
    else:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        status, detail, extra = HTTP_500_INTERNAL_SERVER_ERROR, "An unexpected error happened on our side.", {}
    if _is_api(request):
        return problem(status, detail, **extra)
    if isinstance(exc, NotAuthorizedException):
        target = "/account/sign-in?next=" + quote(
            request.url.path + (f"?{request.url.query}" if request.url.query else "")
        )
        if isinstance(request, HTMXRequest) and request.htmx:
            return ClientRedirect(target)
        return Redirect(target, status_code=HTTP_303_SEE_OTHER)
    if isinstance(exc, NotFoundException) and status == 404:
        detail = "We could not find that page."
    if isinstance(exc, PermissionDeniedException):
        status = 403
    return error_page(request, status, detail)
