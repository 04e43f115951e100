"""The payment provider interface: payment intents, the way payment services work.

The shop never receives, stores or logs a card number (PCI DSS scope stays with the provider). For each
order it asks the provider for a **payment intent** of the order's amount and currency, under an
idempotency key derived from the order (``intent_idempotency_key``), so a retried request never makes a
second intent. Then either:

* the shopper is sent to the provider's **hosted payment page** (``Intent.redirect_url``) and comes back
  to ``return_url``; or
* an API client confirms with a **token** the provider issued to it (``tok_visa``), in the same call.

The outcome is learnt twice, and acted on once (``webshop.payments.service``): by asking the provider
server to server (``retrieve_intent``), when the shopper returns and by the background worker, and by
the provider's signed **webhook** (``parse_webhook``). Refunds (whole or part) carry their own
idempotency key. Checkout and orders only ever use this interface: a new provider is a new class.

Implementations: ``webshop.payments.testing.TestProvider`` (the built-in test payment service, the
default) and ``webshop.payments.stripe_provider.StripeProvider``; ``webshop.payments.registry`` picks
one from ``WEBSHOP_PAYMENT_PROVIDER``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from webshop.db.models.payments import PaymentStatus

FINAL_STATUSES = frozenset({PaymentStatus.SUCCEEDED, PaymentStatus.FAILED, PaymentStatus.CANCELLED})
"""Statuses a payment intent never leaves (a new attempt would be a new intent)."""

EXPIRED = "The time to pay for this order ran out."
"""``failure_reason`` of a payment cancelled because the time to pay ran out (``WEBSHOP_PAYMENT_TIMEOUT_MINUTES``,
or the provider's own limit: an expired Stripe Checkout Session); the order says it, and e-mails it."""

CANCELLED_BY_SHOPPER = "The payment was cancelled on the payment page."
"""``failure_reason`` of a payment the shopper cancelled on the payment page (the test provider's "Cancel
payment and return to the shop"): they are back in the shop, which says so, so no e-mail follows."""


class ProviderUnavailable(Exception):
    """The provider could not be reached or answered with a server error: try again later.

    A refusal (a declined card, a refund of more than was paid) is a result, never this exception."""


class WebhookRejected(Exception):
    """A webhook the shop must not act on: bad or missing signature, a timestamp outside the replay
    window, or a body that is not an event. The endpoint answers 400 and changes nothing."""


@dataclass(frozen=True)
class Intent:
    """A payment intent as the provider reports it.

    Attributes:
        reference: The provider's id for it (``tpi_...``, Stripe's ``pi_...`` or ``cs_...``).
        status: Where it is (``PaymentStatus``).
        amount: Minor units of ``currency`` it is for.
        currency: ISO 4217 code, upper case.
        redirect_url: The hosted page where the shopper pays or authenticates (empty when none is needed).
        failure_reason: Why the last attempt failed, in words for the shopper (empty otherwise).
        card_last4: The last four digits of the card that paid, if the provider tells (never more).
    """

    reference: str
    status: PaymentStatus
    amount: int
    currency: str
    redirect_url: str = ""
    failure_reason: str = ""
    card_last4: str = ""


@dataclass(frozen=True, kw_only=True)
class IntentRequest:
    """What the shop asks a provider to collect (``PaymentProvider.create_intent``).

    Attributes:
        amount: Minor units of ``currency`` to collect.
        currency: ISO 4217 code.
        order_number: The order it pays for (shown to the shopper, kept in the provider's metadata).
        return_url: Where the hosted payment page sends the shopper back to.
        idempotency_key: The same key again finds the first intent instead of making a second one.
        token: A payment method the provider issued to an API client (``tok_visa``): the intent is
            confirmed at once. ``None``: the shopper pays on the hosted page.
        email: The shopper's address for the provider's receipt (empty: none).
    """

    amount: int
    currency: str
    order_number: str
    return_url: str
    idempotency_key: str
    token: str | None = None
    email: str = ""


@dataclass(frozen=True)
class RefundResult:
    """A refund's outcome: ``ok``; the provider's refund ``reference``; a ``failure_reason`` for people.

    A refusal (more than what is left, an unknown payment) is ``ok`` False, not an exception."""

    ok: bool
    reference: str = ""
    failure_reason: str = ""


@dataclass(frozen=True)
class ProviderEvent:
    """A verified webhook event, in the shop's terms.

    Attributes:
        id: The provider's event id (``evt_...``): the shop acts on each id once.
        type: The provider's event type (``payment_intent.succeeded``), for the record.
        intent_reference: The payment intent it is about (empty for events the shop ignores).
        status: The intent's status the event reports, or ``None`` for events that change nothing.
        created: When the provider created the event (UTC).
        failure_reason: Why a payment failed, for the shopper (empty otherwise).
        card_last4: The last four digits of the card that paid, when the event tells.
    """

    id: str
    type: str
    intent_reference: str
    status: PaymentStatus | None
    created: datetime
    failure_reason: str = ""
    card_last4: str = ""


class PaymentProvider(Protocol):
    """What the shop needs from a payment service. Amounts are minor units; currencies ISO 4217.

    Every method that can move money takes an idempotency key: the same key again returns the first
    result instead of acting twice (as Stripe's and Adyen's idempotency keys do).

    Raises (every method):
        ProviderUnavailable: the provider could not be reached; nothing is known to have happened.
    """

    name: str
    """Short name, stored on orders and in webhook URLs (``/api/payments/webhooks/{name}``)."""

    async def create_intent(self, request: IntentRequest) -> Intent:
        """Create a payment intent for ``request.amount`` of ``request.currency``; once per
        ``request.idempotency_key``.

        Without ``request.token`` the intent waits for the shopper: ``redirect_url`` is the hosted payment
        page, which sends them back to ``request.return_url`` afterwards. With a token (issued by the provider to an
        API client, such as ``tok_visa``) it is confirmed at once and the result says how that went
        (``succeeded``, ``failed`` with a reason, or ``requires_action`` with a ``redirect_url``).
        """
        ...

    async def retrieve_intent(self, reference: str) -> Intent:
        """The intent ``reference`` as the provider has it now (server to server: the truth).

        Raises:
            LookupError: the provider has no such intent.
        """
        ...

    async def cancel_intent(self, reference: str) -> Intent:
        """Cancel an intent that has not succeeded (the order expired or was cancelled).

        Returns the intent as it is afterwards: ``succeeded`` if it was paid after all (the caller then
        refunds), else ``cancelled``. Cancelling twice is harmless."""
        ...

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Refund ``amount`` of the succeeded intent ``reference``, once per ``idempotency_key``.

        Several partial refunds may follow one another; the provider refuses (``ok`` False) more than
        what is left of the payment."""
        ...

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> ProviderEvent:
        """Verify a webhook's signature and replay window (``now``) and read its event.

        ``headers`` keys are lower case.

        Raises:
            WebhookRejected: bad or missing signature, too old, or not an event.
        """
        ...


def intent_idempotency_key(order_number: str, checkout_token: str) -> str:
    """The key of an order's one payment intent: a retried checkout finds the first intent.

    Both the order number (unique to this database) and its checkout token (unique per attempt) go in,
    so two databases sharing a provider account (staging and production) never collide."""
    return f"intent-{order_number}-{checkout_token}"[:120]
