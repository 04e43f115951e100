"""Money: integer minor units plus an ISO 4217 currency code, formatted in one place."""

from __future__ import annotations

import re
from decimal import Decimal

MAX_AMOUNT = 2_000_000_000
"""The largest amount (minor units) of a promotion, a minimum subtotal or a shipping price, and the largest
count (uses of a promotion): what their API fields accept and the admin's forms check, below
PostgreSQL's ``integer`` limit (2**31 - 1)."""

MAX_ORDER_TOTAL = 2**31 - 1
"""The largest subtotal or total (minor units) an order can have: its amounts are PostgreSQL ``integer``
columns. A larger cart is refused at checkout (``CheckoutService``), never cut short."""

# Minor-unit exponents for the currencies we expect (ISO 4217); two decimals otherwise.
_EXPONENT = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3}
_SYMBOL = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}


def exponent(currency: str) -> int:
    """Number of decimal places of ``currency``'s minor unit (ISO 4217), e.g. 2 for USD."""
    return _EXPONENT.get(currency.upper(), 2)


def format_money(amount: int, currency: str = "USD") -> str:
    """Format ``amount`` minor units of ``currency`` for display: ``format_money(129900) == "$1,299.00"``."""
    places = exponent(currency)
    negative = amount < 0
    major, minor = divmod(abs(amount), 10**places) if places else (abs(amount), 0)
    text = f"{major:,}" + (f".{minor:0{places}d}" if places else "")
    symbol = _SYMBOL.get(currency.upper())
    text = f"{symbol}{text}" if symbol else f"{text} {currency.upper()}"
    return f"-{text}" if negative else text


PLAIN_DECIMAL = re.compile(r"[0-9]{1,30}(?:\.[0-9]*)?|\.[0-9]+")
"""A decimal as people type a price: digits, an optional point and decimals (at most 30 digits before it)."""


def parse_major(text: str, currency: str = "USD") -> int:
    """Parse a decimal amount in major units (``"1299.00"``) into minor units (``129900``).

    Raises:
        ValueError: the text is not a plain decimal of 0 or more (no ``1e3``, ``NaN``, ``-1`` or ``+5``: what
            a person types as a price), or has more decimals than the currency.
    """
    if not PLAIN_DECIMAL.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not an amount")
    scaled = Decimal(text.strip()).scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{text!r} has more than {exponent(currency)} decimal places")
    return int(scaled)
