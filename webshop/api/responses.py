"""RFC 9457 problem details for the JSON API: the schema and the OpenAPI response specs of each route."""

from __future__ import annotations

import msgspec
from litestar.openapi.datastructures import ResponseSpec

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


ALWAYS = (429, 503)
"""Statuses any route can answer with: 429 from the general per-address rate limit
(``WEBSHOP_RATE_LIMIT_GENERAL``) and 503 (with ``Retry-After``) while the database is unreachable."""


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI ``responses`` for the problem statuses a route can answer with, plus ``ALWAYS``.

    Each maps to an RFC 9457 ``application/problem+json`` body described by ``Problem``.
    """
    return {
        status: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, description=TITLES.get(status, "Error"))
        for status in sorted({*statuses, *ALWAYS})
    }
