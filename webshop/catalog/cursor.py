"""The API's opaque page cursors: ``[sort value, id]`` for keyset pages, an offset for relevance pages
(base64url JSON, checked against the sort they were issued for).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

from webshop.catalog.query import (
    MAX_PRICE,
    RELEVANCE,
)
from webshop.errors import ValidationFailed
from webshop.text import storable


def _encode_cursor(sort: str, values: list[Any]) -> str:
    raw = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    payload = json.dumps({"s": sort, "v": raw}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def _cursor_values(cursor: str, sort: str, size: int) -> list[Any]:
    problem = ValidationFailed("The cursor is not valid for this query.", field_errors={"cursor": "Invalid cursor."})
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise problem from exc
    values = data.get("v") if isinstance(data, dict) else None
    if not isinstance(data, dict) or data.get("s") != sort or not isinstance(values, list) or len(values) != size:
        raise problem
    if not isinstance(values[-1], int) or isinstance(values[-1], bool) or not 0 <= values[-1] <= 2**63 - 1:
        raise problem
    return values


def _decode_offset(cursor: str) -> int:
    """The position a relevance cursor carries.

    Raises:
        ValidationFailed: the cursor is malformed or was issued for another sort.
    """
    return int(_cursor_values(cursor, RELEVANCE, 1)[0])


def _decode_cursor(cursor: str, sort: str) -> list[Any]:
    """The ``[sort value, id]`` a keyset cursor carries.

    Raises:
        ValidationFailed: the cursor is malformed or was issued for another sort.
    """
    problem = ValidationFailed("The cursor is not valid for this query.", field_errors={"cursor": "Invalid cursor."})
    first, last = _cursor_values(cursor, sort, 2)
    if sort == "newest":
        try:
            first = datetime.fromisoformat(first)
        except (TypeError, ValueError) as exc:
            raise problem from exc
        if first.tzinfo is None:  # the shop issues aware times only; a naive one cannot be compared with them
            raise problem
    elif sort in {"price", "-price"}:
        if not isinstance(first, int) or isinstance(first, bool) or not 0 <= first <= MAX_PRICE:
            raise problem
    elif not isinstance(first, str) or not storable(first):
        raise problem
    return [first, last]
