"""Payment providers behind one small interface, and the built-in test provider.

Checkout calls ``provider.charge(...)`` once per order, passing the checkout token as the
idempotency key, so a real gateway (Stripe, Adyen, ... all accept one) never charges twice for a
retried request. Cancelling or refunding a paid order calls ``provider.refund(...)`` with a key
derived from the order's id, so the same order is never refunded twice however often it is asked.
A new gateway is a new class with these two methods; checkout and orders do not change.
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


@dataclass(frozen=True)
class RefundResult:
    """Outcome of a refund: ``ok``; the provider's refund ``reference``; a ``failure_reason`` for people."""

    ok: bool
    reference: str = ""
    failure_reason: str = ""


class PaymentProvider(Protocol):
    """What checkout and order cancellation need from a payment gateway."""

    name: str

    async def charge(self, *, amount: int, currency: str, card_number: str, idempotency_key: str) -> ChargeResult:
        """Charge ``amount`` minor units of ``currency`` once per ``idempotency_key``."""
        ...

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Refund ``amount`` minor units of ``currency`` of the charge ``reference``, once per ``idempotency_key``.

        Asked again with the same key, a provider answers with the first refund instead of paying
        twice (what Stripe's and Adyen's idempotency keys do). A failure is a result with ``ok``
        False, not an exception; an exception means the provider could not be reached.
        """
        ...


def normalize_card_number(raw: str) -> str:
    """Digits only (spaces and dashes as people type them are dropped).

    ASCII digits: ``str.isdigit`` also takes "²" or "٣", which ``int`` then refuses in ``luhn_valid``.
    """
    return "".join(ch for ch in raw if "0" <= ch <= "9")


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

    def __init__(self) -> None:
        self.refunds: dict[str, tuple[str, int, str, str]] = {}
        """Refunds issued by this process, by idempotency key: ``(charge reference, amount, currency,
        refund reference)``; a repeated key finds its first refund here, as at a real gateway."""

    async def charge(self, *, amount: int, currency: str, card_number: str, idempotency_key: str) -> ChargeResult:
        """Simulate a charge (see the class docstring)."""
        number = normalize_card_number(card_number)
        if number == TEST_CARD_DECLINED:
            return ChargeResult(ok=False, decline_reason="Your card was declined. Try another card.")
        if not luhn_valid(number):
            return ChargeResult(ok=False, decline_reason="That card number is not valid.")
        digest = hashlib.sha256(f"{idempotency_key}:{amount}:{currency}".encode()).hexdigest()[:24]
        return ChargeResult(ok=True, reference=f"test_ch_{digest}")

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Simulate a refund of a charge this provider made: the refund reference derives from the
        idempotency key (``test_re_...``), and a repeated key returns the first refund unchanged.

        Refuses (``ok`` False) a charge reference it did not issue, an amount that is not positive, and
        a key used before for another charge or amount (as Stripe answers a reused idempotency key).
        """
        if idempotency_key in self.refunds:
            charge, refunded, refunded_currency, refund_reference = self.refunds[idempotency_key]
            if (charge, refunded, refunded_currency) != (reference, amount, currency):
                return RefundResult(ok=False, failure_reason="This idempotency key was used for another refund.")
            return RefundResult(ok=True, reference=refund_reference)
        if not reference.startswith("test_ch_"):
            return RefundResult(ok=False, failure_reason=f"There is no charge {reference!r} to refund.")
        if amount <= 0:
            return RefundResult(ok=False, failure_reason="A refund must be a positive amount.")
        digest = hashlib.sha256(f"{idempotency_key}:{reference}".encode()).hexdigest()[:24]
        refund_reference = f"test_re_{digest}"
        self.refunds[idempotency_key] = (reference, amount, currency, refund_reference)
        return RefundResult(ok=True, reference=refund_reference)


DEFAULT_PROVIDER: PaymentProvider = TestPaymentProvider()
"""The provider checkout uses (pages and API alike); a real gateway replaces this one line."""
