"""The Stripe provider through the real ``stripe`` library against localstripe on 127.0.0.1.

localstripe (``tests/localstripe_server.py``, with Stripe's idempotency keys and card tokens on
PaymentIntents added) covers the token road end to end: a PaymentIntent paid or declined, read back,
created once per key, cancelled, refunded in parts once per key, and a real signed webhook it sends.
It has no Checkout Sessions, so the hosted-page road (``cs_...``) is covered here only where it meets
the shop: the ``checkout.session.*`` webhooks and the PaymentIntents Checkout makes are read right.
No database: one run, not one per engine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.live import free_port
from tests.webhook_receiver import Receiver
from webshop.config.settings import PaymentSettings
from webshop.db.models import PaymentStatus
from webshop.payments.provider import IntentRequest, ProviderUnavailable, WebhookRejected
from webshop.payments.stripe_provider import StripeProvider

SECRET = "whsec_test_secret_for_the_tests"
RETURN_URL = "http://shop.test/checkout/return/WS-1"


def payments(api_base: str) -> PaymentSettings:
    return PaymentSettings(
        provider="stripe",
        timeout_minutes=30,
        poll_seconds=30,
        webhook_tolerance=300,
        test_delay_seconds=5,
        stripe_secret_key="sk_test_webshop",
        stripe_webhook_secret=SECRET,
        stripe_api_base=api_base,
        refund_retry_seconds=60,
        refund_max_attempts=20,
    )


@pytest.fixture
async def stripe_provider(localstripe: str) -> AsyncIterator[StripeProvider]:
    provider = StripeProvider(payments(localstripe), max_network_retries=0)
    yield provider
    await provider.aclose()


_keys = iter(range(10**6))


def key() -> str:
    """A new idempotency key (localstripe lives for the whole session)."""
    return f"intent-test-{time.time_ns()}-{next(_keys)}"


async def pay(provider: StripeProvider, amount: int = 1000, token: str = "tok_visa", idempotency_key: str = "") -> Any:
    return await provider.create_intent(
        IntentRequest(
            amount=amount,
            currency="EUR",
            order_number="WS-1",
            return_url=RETURN_URL,
            idempotency_key=idempotency_key or key(),
            token=token,
        )
    )


def signed(body: bytes, secret: str = SECRET, at: int | None = None) -> dict[str, str]:
    """Headers as Stripe signs a webhook: ``t=<unix>,v1=<hex HMAC-SHA256 of "t.body">``."""
    at = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return {"stripe-signature": f"t={at},v1={digest}"}


def event(event_type: str, data: dict[str, Any]) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{time.time_ns()}",
            "object": "event",
            "type": event_type,
            "created": int(time.time()),
            "data": {"object": data},
        }
    ).encode()


async def test_a_token_pays_once_per_key(stripe_provider: StripeProvider) -> None:
    idempotency_key = key()
    intent = await pay(stripe_provider, 1234, idempotency_key=idempotency_key)
    assert (intent.status, intent.amount, intent.currency, intent.card_last4) == (
        PaymentStatus.SUCCEEDED, 1234, "EUR", "4242"
    )  # fmt: skip
    assert intent.reference.startswith("pi_")
    again = await pay(stripe_provider, 1234, idempotency_key=idempotency_key)
    assert again.reference == intent.reference and again.status == PaymentStatus.SUCCEEDED
    assert await stripe_provider.retrieve_intent(intent.reference) == intent
    at_stripe = await stripe_provider.client.v1.payment_intents.retrieve_async(intent.reference)
    assert (at_stripe.currency, at_stripe.metadata["order_number"], at_stripe.capture_method) == (
        "eur",
        "WS-1",
        "automatic",
    )


@pytest.mark.parametrize("token", ["tok_chargeDeclined", "pm_card_chargeCustomerFail"])
async def test_a_declined_card_fails_with_a_reason_and_is_cancelled_at_stripe(
    stripe_provider: StripeProvider, token: str
) -> None:
    intent = await pay(stripe_provider, token=token)
    assert (intent.status, intent.failure_reason) == (PaymentStatus.FAILED, "Your card was declined.")
    assert (await stripe_provider.retrieve_intent(intent.reference)).status == PaymentStatus.CANCELLED


async def test_cancel(stripe_provider: StripeProvider) -> None:
    waiting = await pay(stripe_provider, token="tok_threeDSecure2Required")
    assert waiting.status == PaymentStatus.REQUIRES_ACTION  # localstripe gives no redirect page for it
    assert (await stripe_provider.cancel_intent(waiting.reference)).status == PaymentStatus.CANCELLED
    assert (await stripe_provider.cancel_intent(waiting.reference)).status == PaymentStatus.CANCELLED
    paid = await pay(stripe_provider)
    assert (await stripe_provider.cancel_intent(paid.reference)).status == PaymentStatus.SUCCEEDED
    with pytest.raises(LookupError):
        await stripe_provider.retrieve_intent("pi_nosuchintent")
    with pytest.raises(LookupError):
        await stripe_provider.cancel_intent("pi_nosuchintent")


async def test_partial_refunds_never_exceed_the_payment_and_are_idempotent(stripe_provider: StripeProvider) -> None:
    paid = await pay(stripe_provider, 1000)

    async def refund(amount: int, idempotency_key: str) -> Any:
        return await stripe_provider.refund(
            reference=paid.reference, amount=amount, currency="EUR", idempotency_key=idempotency_key
        )

    first = await refund(300, "refund-a")
    assert first.ok and first.reference.startswith("re_")
    assert await refund(300, "refund-a") == first  # the same key: the same refund, not a second one
    assert (await refund(500, "refund-b")).ok
    refused = await refund(300, "refund-c")
    assert not refused.ok and "Only 200 of the 1000" in refused.failure_reason
    assert (await refund(200, "refund-d")).ok
    assert (await refund(300, "refund-a")) == first  # still found among the payment's refunds
    charge = await stripe_provider.client.v1.charges.list_async()
    assert sum(c.amount_refunded for c in charge.data if c.payment_intent == paid.reference) == 1000
    declined = await pay(stripe_provider, token="tok_chargeDeclined")
    assert not (await stripe_provider.refund(
        reference=declined.reference, amount=100, currency="EUR", idempotency_key="refund-e"
    )).ok  # fmt: skip


async def test_stripe_unreachable_is_provider_unavailable() -> None:
    provider = StripeProvider(payments(f"http://127.0.0.1:{free_port()}"), max_network_retries=0)
    try:
        with pytest.raises(ProviderUnavailable):
            await pay(provider)
        with pytest.raises(ProviderUnavailable):
            await provider.retrieve_intent("pi_x")
    finally:
        await provider.aclose()


def test_webhook_signature_and_replay_window(stripe_provider: StripeProvider) -> None:
    body = event("payment_intent.succeeded", {"id": "pi_123", "object": "payment_intent", "metadata": {}})
    now = datetime.now(UTC)
    parsed = stripe_provider.parse_webhook(body, signed(body), now=now)
    assert (parsed.type, parsed.intent_reference, parsed.status) == (
        "payment_intent.succeeded", "pi_123", PaymentStatus.SUCCEEDED
    )  # fmt: skip
    refusals = {
        "wrong secret": (body, signed(body, secret="whsec_other")),
        "body changed": (body.replace(b"pi_123", b"pi_999"), signed(body)),
        "no header": (body, {}),
        "too old": (body, signed(body, at=int(time.time()) - 301)),
    }
    for name, (payload, headers) in refusals.items():
        with pytest.raises(WebhookRejected):
            stripe_provider.parse_webhook(payload, headers, now=now)
            pytest.fail(name)
    with pytest.raises(WebhookRejected):  # a replay of a fresh event, judged at a later ``now``
        stripe_provider.parse_webhook(body, signed(body), now=now + timedelta(seconds=301))


@pytest.mark.parametrize(
    ("event_type", "data", "reference", "status"),
    [
        ("checkout.session.completed", {"id": "cs_1", "payment_status": "paid"}, "cs_1", PaymentStatus.SUCCEEDED),
        ("checkout.session.completed", {"id": "cs_1", "payment_status": "unpaid"}, "cs_1", PaymentStatus.PROCESSING),
        ("checkout.session.async_payment_succeeded", {"id": "cs_1"}, "cs_1", PaymentStatus.SUCCEEDED),
        ("checkout.session.async_payment_failed", {"id": "cs_1"}, "cs_1", PaymentStatus.FAILED),
        ("checkout.session.expired", {"id": "cs_1"}, "cs_1", PaymentStatus.CANCELLED),
        ("payment_intent.canceled", {"id": "pi_1"}, "pi_1", PaymentStatus.CANCELLED),
        ("payment_intent.payment_failed", {"id": "pi_1"}, "pi_1", None),
        ("payment_intent.succeeded", {"id": "pi_1", "metadata": {"webshop_via": "checkout_session"}}, "", None),
        ("charge.refunded", {"id": "ch_1", "payment_intent": "pi_1"}, "pi_1", None),
        ("customer.created", {"id": "cus_1"}, "", None),
    ],
)
def test_webhook_events_in_the_shops_terms(
    stripe_provider: StripeProvider, event_type: str, data: dict[str, Any], reference: str, status: Any
) -> None:
    body = event(event_type, data)
    parsed = stripe_provider.parse_webhook(body, signed(body), now=datetime.now(UTC))
    assert (parsed.intent_reference, parsed.status) == (reference, status)


async def test_a_real_webhook_from_localstripe(
    stripe_provider: StripeProvider,
    localstripe: str,
    receiver: Receiver,
) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(
            f"{localstripe}/_config/webhooks/shop",
            data={"url": receiver.url, "secret": SECRET, "events[]": "payment_intent.succeeded"},
        )
        assert answer.status_code == 200
    try:
        paid = await pay(stripe_provider)
        deadline = time.monotonic() + 10
        while not any(paid.reference.encode() in body for _, _, body in receiver.requests):
            assert time.monotonic() < deadline, "localstripe's webhook did not arrive"
            await receiver.wait_for(len(receiver.requests) + 1, timeout=10)
    finally:
        async with httpx.AsyncClient() as http:  # sent nowhere after this test
            await http.post(
                f"{localstripe}/_config/webhooks/shop",
                data={"url": "http://127.0.0.1:9/", "secret": SECRET, "events[]": "none"},
            )
    headers, body = next((h, b) for _, h, b in receiver.requests if paid.reference.encode() in b)
    parsed = stripe_provider.parse_webhook(body, headers, now=datetime.now(UTC))
    assert (parsed.type, parsed.intent_reference, parsed.status) == (
        "payment_intent.succeeded", paid.reference, PaymentStatus.SUCCEEDED
    )  # fmt: skip
    assert parsed.id.startswith("evt_")
