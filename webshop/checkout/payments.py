"""Payment providers behind one small interface, and the built-in test provider.

Checkout calls ``provider.charge(...)`` once per order, passing the checkout token as the
idempotency key, so a real gateway (Stripe, Adyen, ... all accept one) never charges twice for a
retried request. A new gateway is a new class with this method; checkout does not change.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

# Documented test cards (the same numbers Stripe uses in test mode).
TEST_CARD_SUCCESS = "4242424242424242"
TEST_CARD_DECLINED = "4000000000000002"


@dataclass(frozen=True)
class ChargeResult:
    """Outcome of a charge: ``ok``; the provider's ``reference``; a ``decline_reason`` for the shopper."""

    ok: bool
    reference: str = ""
    decline_reason: str = ""


class PaymentProvider(Protocol):
    """What checkout needs from a payment gateway."""

    name: str

    async def charge(self, *, amount: int, currency: str, card_number: str, idempotency_key: str) -> ChargeResult:
        """Charge ``amount`` minor units of ``currency`` once per ``idempotency_key``."""
        ...


def normalize_card_number(raw: str) -> str:
    """Digits only (spaces and dashes as people type them are dropped)."""
    return "".join(ch for ch in raw if ch.isdigit())


def luhn_valid(number: str) -> bool:
    """True when ``number`` passes the Luhn check (ISO/IEC 7812-1)."""
    if not number.isdigit() or not 12 <= len(number) <= 19:
        return False
    total = 0
    for index, digit in enumerate(reversed(number)):
        value = int(digit)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class TestPaymentProvider:
    """A provider that never talks to a bank: 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is
    declined, any other Luhn-valid number succeeds too. References derive from the idempotency key,
    so repeating a charge yields the same reference, as a real gateway's idempotency would.
    """

    __test__ = False  # not a pytest test class
    name = "test"

    async def charge(self, *, amount: int, currency: str, card_number: str, idempotency_key: str) -> ChargeResult:
        """Simulate a charge (see the class docstring)."""
        number = normalize_card_number(card_number)
        if number == TEST_CARD_DECLINED:
            return ChargeResult(ok=False, decline_reason="Your card was declined. Try another card.")
        if not luhn_valid(number):
            return ChargeResult(ok=False, decline_reason="That card number is not valid.")
        digest = hashlib.sha256(f"{idempotency_key}:{amount}:{currency}".encode()).hexdigest()[:24]
        return ChargeResult(ok=True, reference=f"test_ch_{digest}")


DEFAULT_PROVIDER: PaymentProvider = TestPaymentProvider()
"""The provider checkout uses (pages and API alike); a real gateway replaces this one line."""
