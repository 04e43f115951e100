"""Schema pieces every API resource shares (msgspec Structs)."""

from __future__ import annotations

import msgspec


class Money(msgspec.Struct, frozen=True):
    """An amount of money: ``amount`` in integer minor units (cents) of ``currency`` (ISO 4217)."""

    amount: int
    currency: str


def money(amount: int, currency: str) -> Money:
    """``Money`` from minor units and a currency code."""
    return Money(amount=amount, currency=currency)
