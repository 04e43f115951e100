"""Schema pieces every API resource shares (msgspec Structs)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.params import PathParameter

BIGINT_MAX = 2**63 - 1
"""The largest value of the database's 64-bit integer columns; bigger numbers are a 400, not a database error."""

INT_MAX = 2**31 - 1
"""The largest value of the database's 32-bit integer columns (prices in minor units)."""

ID_MAX = 2**53 - 1
"""The largest id a path or query parameter takes: an integer every JSON client can hold exactly
(RFC 7493 §2.2), and one OpenAPI can state exactly (Litestar writes parameter bounds as floats, and
``2**63 - 1`` as a float is ``2**63``, which would make an out-of-range id look valid)."""

PathId = Annotated[int, PathParameter(ge=1, le=ID_MAX)]
"""A row id in a path."""


class Money(msgspec.Struct, frozen=True):
    """An amount of money: ``amount`` in integer minor units (cents) of ``currency`` (ISO 4217)."""

    amount: int
    currency: str


def money(amount: int, currency: str) -> Money:
    """``Money`` from minor units and a currency code."""
    return Money(amount=amount, currency=currency)
