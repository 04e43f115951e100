"""RFC 9457 problem details for the JSON API: the schema and the OpenAPI response specs of each route."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import msgspec
from litestar import Controller, Response
from litestar.datastructures import ResponseHeader
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.types import AfterRequestHookHandler

from webshop.web.errors import TITLES

PROBLEM_JSON = "application/problem+json"


class ShortfallOut(msgspec.Struct):
    """A cart line that cannot be had in full."""

    sku: str
    name: str
    requested: int
    available: int


class Problem(msgspec.Struct):
    """An RFC 9457 problem: ``errors`` maps a field to its message; ``shortfalls`` lists stock problems."""

    type: str
    title: str
    status: int
    detail: str
    errors: dict[str, str] | None = None
    shortfalls: list[ShortfallOut] | None = None


def _location(template: str) -> AfterRequestHookHandler:
    """The hook that gives a 201 its ``Location``: ``template`` with the new resource's ``id`` (read from the
    answer: a Struct, or the JSON bytes of an answer replayed by its ``Idempotency-Key``)."""

    async def add_location(response: Response[Any]) -> Response[Any]:
        if response.status_code != 201:
            return response
        content = response.content
        if isinstance(content, bytes):
            try:
                content = msgspec.json.decode(content)
            except msgspec.DecodeError:
                content = {}
        new_id = content.get("id", "") if isinstance(content, dict) else getattr(content, "id", "")
        response.headers["Location"] = template.format(id=new_id)
        return response

    return add_location


def created_at(template: str) -> dict[str, Any]:
    """The route keywords (``@post(..., **created_at("/api/products/{id}"))``) of a ``POST`` that creates
    the resource ``template`` names once its ``id`` is filled in from the answer: status 201 with a
    ``Location`` header (RFC 9110 §10.2.2 and §15.3.2: the URI of the resource created, which a client
    can ``GET``), declared in the OpenAPI document. A replay of the same ``Idempotency-Key`` gets it too."""
    return {
        "status_code": 201,
        "after_request": _location(template),
        "response_headers": [
            ResponseHeader(name="Location", description=f"The resource created: {template}", documentation_only=True)
        ],
    }


ALWAYS = (429, 503)
"""Statuses any route can answer with: 429 from the general per-address rate limit
(``WEBSHOP_RATE_LIMIT_GENERAL``) and 503 (with ``Retry-After``) while the database is unreachable."""


EXAMPLE_DETAILS = {
    400: "Validation failed for POST /api/cart/items",
    401: "Sign in first: send Authorization: Bearer <access_token>.",
    403: "This operation is for administrators.",
    404: "There is no such product.",
    409: "Only 2 left of DC-1.",
    422: "Please correct the marked fields.",
    429: "Too many requests: try again in a minute.",
    503: "The shop is busy right now; please try again in a moment.",
}
"""A plausible ``detail`` per status for the documented examples (not what every route says)."""


def _example(status: int) -> Example:
    title = TITLES.get(status, "Error")
    detail = EXAMPLE_DETAILS.get(status, f"{title}.")
    return Example(summary=title, value={"type": "about:blank", "title": title, "status": status, "detail": detail})


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI ``responses`` for the problem statuses a route can answer with, plus ``ALWAYS``.

    Each maps to an RFC 9457 ``application/problem+json`` body described by ``Problem``, with one plausible
    example (API QA: Litestar's generated ones were random strings and numbers, such as ``"status": 2562``,
    which SDK generators copy into their documentation).
    """
    return {
        status: ResponseSpec(
            data_container=Problem,
            media_type=PROBLEM_JSON,
            description=TITLES.get(status, "Error"),
            generate_examples=False,
            examples=[_example(status)],
        )
        for status in sorted({*statuses, *ALWAYS})
    }


def declare_refused_media_types(controllers: Iterable[type[Controller]]) -> None:
    """Add 415 to the OpenAPI ``responses`` of every route of ``controllers`` that takes a body: the
    ``strict_json_body`` hook refuses a body in another media type than the route's (RFC 9110 §15.5.16),
    so each such operation documents it without its handler having to say so. Idempotent (a class's
    handlers are shared by every app made).
    """
    for controller in controllers:
        for value in vars(controller).values():
            if isinstance(value, HTTPRouteHandler) and "data" in inspect.signature(value.fn).parameters:
                value.responses = {**(value.responses or {}), **problems(415)}
