"""Promotion codes as the shopper types them, and why a promotion does not apply, in words.

Codes are case-insensitive: stored and compared as :func:`normalise_code` returns them. Messages format
money with :func:`webshop.money.format_money` and dates without the locale ("3 Dec 2026").
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from enum import StrEnum

from webshop.money import format_money

CODE_MAX_LENGTH = 40
_CODE = re.compile(r"[A-Z0-9_-]+")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Reason(StrEnum):
    """Why a promotion does not apply to a cart."""

    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    MINIMUM_NOT_REACHED = "minimum_not_reached"
    USED_UP = "used_up"
    USED_UP_BY_YOU = "used_up_by_you"
    NOT_FOR_THESE_ITEMS = "not_for_these_items"


def format_day(moment: datetime) -> str:
    """A date for messages, independent of the locale: ``3 Dec 2026``."""
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


class NotApplicable(Exception):
    """The promotion does not apply to this cart; :attr:`message` says why, for the shopper.

    Attributes:
        reason: Why, as a stable value.
        when: The end (EXPIRED) or start (NOT_YET_VALID) of the promotion, else None.
        shortfall: Minor units still to spend (MINIMUM_NOT_REACHED), else 0.
        currency: Currency code of ``shortfall``.
    """

    def __init__(self, reason: Reason, *, when: datetime | None = None, shortfall: int = 0, currency: str = "USD"):
        self.reason = reason
        self.when = when
        self.shortfall = shortfall
        self.currency = currency
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The reason in a sentence: "This code expired on 3 Dec 2026.", "Spend $50.00 more to use this code."."""
        day = format_day(self.when) if self.when else None
        match self.reason:
            case Reason.EXPIRED:
                return f"This code expired on {day}." if day else "This code has expired."
            case Reason.NOT_YET_VALID:
                return f"This code is valid from {day}." if day else "This code is not valid yet."
            case Reason.MINIMUM_NOT_REACHED:
                return f"Spend {format_money(self.shortfall, self.currency)} more to use this code."
            case Reason.USED_UP:
                return "This code has been used up."
            case Reason.USED_UP_BY_YOU:
                return "You have already used this code as often as it allows."
            case _:
                return "This code does not apply to anything in your cart."


def normalise_code(text: str) -> str:
    """A promotion code as stored and compared: NFKC-normalised, trimmed, upper-cased (``" summer10" -> "SUMMER10"``).

    Raises:
        ValueError: the code is empty, longer than 40 characters, or has a character other than A-Z, 0-9,
            ``-`` and ``_``.
    """
    code = unicodedata.normalize("NFKC", text).strip().upper()
    if not code:
        raise ValueError("Enter a code.")
    if len(code) > CODE_MAX_LENGTH:
        raise ValueError(f"A code has at most {CODE_MAX_LENGTH} characters.")
    if not _CODE.fullmatch(code):
        raise ValueError("A code may only have letters A–Z, digits, '-' and '_'.")
    return code
