"""The test payment service's own side: its hosted pages, tokens, refunds, webhook signatures and sender.

Intents are made with ``TestProvider.create_intent`` directly (no shop checkout); the pages are driven
as a browser without JavaScript would (the pages have no script, so that is also what a browser with
JavaScript does). The shop's base URL points at a real HTTP receiver on 127.0.0.1 (``receiver``), so
the app's background sender delivers the service's signed webhooks there. Every test runs on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from tests.conftest import SECRET, make_settings
from tests.shopper import post, text_of
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import PaymentStatus, TestPaymentEvent, TestPaymentIntent
from webshop.observability.logging import log_formatter
from webshop.payments.provider import IntentRequest, WebhookRejected
from webshop.payments.testing import (
    CARD_AUTHENTICATE,
    CARD_DECLINED,
    CARD_DELAYED,
    CARD_INSUFFICIENT_FUNDS,
    CARD_PAYS,
    DECLINED,
    INSUFFICIENT_FUNDS,
    TestProvider,
    sign,
    webhook_secret,
)
from webshop.payments.testing_sender import TestPaymentSender

RETURN_URL = "http://127.0.0.1:8000/checkout/return/WS-TP-1"
DELAY = 60.0
"""The delayed card's delay here: long enough that the app's sender never settles it by itself."""


@pytest.fixture
def settings(db_url: str, tmp_path: Any, receiver: Any) -> Settings:
    """The shop at the receiver's address (the service's webhooks go there), with a fast sender."""
    return make_settings(
        db_url,
        tmp_path / "media",
        base_url=receiver.url.removesuffix("/hooks"),
        webhook_poll_seconds=0.05,
        webhook_retry_seconds=0.05,
        webhook_timeout=5.0,
        test_payment_delay_seconds=DELAY,
    )


@pytest.fixture
def provider(app: Any) -> TestProvider:
    """The app's own test provider."""
    found = app.state.payment_provider
    assert isinstance(found, TestProvider)
    return found


async def new_intent(provider: TestProvider, *, amount: int = 1234, token: str | None = None, key: str = "") -> Any:
    return await provider.create_intent(
        IntentRequest(
            amount=amount,
            currency="USD",
            order_number="WS-TP-1",
            return_url=RETURN_URL,
            idempotency_key=key or f"intent-{uuid.uuid4().hex}",
            token=token,
        )
    )


async def status_of(provider: TestProvider, reference: str) -> str:
    row = await provider.intent(reference)
    assert row is not None
    return row.status


def pay_path(reference: str) -> str:
    return f"/test-payments/pay/{reference}"


async def pay(client: Any, reference: str, card: str) -> Any:
    return await post(client, pay_path(reference), {"card_number": card}, token_from="/account/sign-in")


def returned(response: Any, reference: str) -> bool:
    """The answer sends the shopper back to the shop with the intent's id."""
    return response.status_code == 303 and response.headers["location"] == f"{RETURN_URL}?payment_intent={reference}"


# --- the hosted page ----------------------------------------------------------------------------


async def test_the_page_is_the_services_own_and_4242_pays_without_the_number_kept_or_logged(
    client, provider, alchemy, receiver
):
    intent = await new_intent(provider)
    assert intent.redirect_url.endswith(pay_path(intent.reference))
    page = await client.get(pay_path(intent.reference))
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    text = text_of(page.text)
    assert "Test payment service" in text and "no real money moves" in text
    assert "$12.34" in text and "WS-TP-1" in text and "4000 0025 0000 3155" in text
    assert 'autocomplete="cc-number"' in page.text and 'inputmode="numeric"' in page.text
    assert "Cancel payment and return to the shop" in text
    assert "Search the shop" not in text and "<script" not in page.text  # not the shop's layout, no script

    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(log_formatter("json"))
    sql = logging.getLogger("sqlalchemy.engine")
    level = sql.level
    logging.getLogger().addHandler(handler)
    sql.setLevel(logging.INFO)  # every statement and its parameters, too
    try:
        paid = await pay(client, intent.reference, "4242 4242 4242 4242")
    finally:
        sql.setLevel(level)
        logging.getLogger().removeHandler(handler)
    assert returned(paid, intent.reference)
    assert "INSERT INTO test_payment_events" in buffer.getvalue()  # the capture did see the work
    assert CARD_PAYS not in buffer.getvalue() and "4242 4242 4242 4242" not in buffer.getvalue()

    row = await provider.intent(intent.reference)
    assert row is not None and (row.status, row.card_last4, row.failure_reason) == ("succeeded", "4242", "")
    async with alchemy.get_session() as session:
        payloads = [json.dumps(e.payload) for e in await session.scalars(select(TestPaymentEvent))]
    assert payloads and not any(CARD_PAYS in p for p in payloads)
    # Paid: the page now sends the shopper back to the shop.
    assert returned(await client.get(pay_path(intent.reference), follow_redirects=False), intent.reference)

    # The app's background sender delivered the event, signed, to the shop's webhook endpoint.
    (_, headers, body), *_ = await receiver.wait_for(1)
    event = provider.parse_webhook(body, headers, now=datetime.now(UTC))
    assert (event.type, event.intent_reference, event.status) == (
        "payment_intent.succeeded",
        intent.reference,
        "succeeded",
    )
    assert headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("card", "message"), [(CARD_DECLINED, DECLINED), (CARD_INSUFFICIENT_FUNDS, INSUFFICIENT_FUNDS)]
)
async def test_a_declined_card_shows_why_and_another_card_pays(client, provider, card, message):
    intent = await new_intent(provider)
    refused = await pay(client, intent.reference, card)
    assert refused.status_code == 422 and message in text_of(refused.text)
    assert card not in refused.text  # the number is not filled in again
    assert await status_of(provider, intent.reference) == "requires_payment"
    # The message is on the page itself too (a reload, or a browser that followed a redirect).
    assert message in text_of((await client.get(pay_path(intent.reference))).text)
    assert returned(await pay(client, intent.reference, CARD_PAYS), intent.reference)
    row = await provider.intent(intent.reference)
    assert row is not None and (row.status, row.failure_reason) == ("succeeded", "")


async def test_the_authenticate_card_pays_after_the_extra_step_or_goes_back_to_the_card_form(client, provider):
    intent = await new_intent(provider)
    authenticate = f"/test-payments/authenticate/{intent.reference}"
    first = await pay(client, intent.reference, CARD_AUTHENTICATE)
    assert (first.status_code, first.headers["location"]) == (303, authenticate)
    assert (await client.get(pay_path(intent.reference), follow_redirects=False)).headers["location"] == authenticate
    step = await client.get(authenticate)
    assert step.status_code == 200 and "Complete authentication" in step.text and "Fail authentication" in step.text

    failed = await post(client, authenticate, {"outcome": "fail"})
    assert (failed.status_code, failed.headers["location"]) == (303, pay_path(intent.reference))
    assert await status_of(provider, intent.reference) == "requires_payment"
    assert "The card was not authenticated." in text_of((await client.get(pay_path(intent.reference))).text)
    assert (await client.get(authenticate, follow_redirects=False)).headers["location"] == pay_path(intent.reference)

    assert (await pay(client, intent.reference, CARD_AUTHENTICATE)).headers["location"] == authenticate
    assert returned(await post(client, authenticate, {"outcome": "complete"}), intent.reference)
    assert await status_of(provider, intent.reference) == "succeeded"
    assert returned(await client.get(authenticate, follow_redirects=False), intent.reference)


async def test_the_delayed_card_is_processing_until_its_time_comes(client, provider):
    intent = await new_intent(provider)
    assert returned(await pay(client, intent.reference, CARD_DELAYED), intent.reference)
    assert await status_of(provider, intent.reference) == "processing"
    assert await provider.settle_due() == 0  # not yet
    assert await provider.settle_due(datetime.now(UTC) + timedelta(seconds=DELAY + 1)) == 1
    assert await status_of(provider, intent.reference) == "succeeded"
    assert await provider.settle_due(datetime.now(UTC) + timedelta(seconds=DELAY + 1)) == 0  # once


async def test_cancel_returns_to_the_shop_and_an_unknown_payment_is_a_404(client, provider):
    intent = await new_intent(provider)
    cancelled = await post(client, f"{pay_path(intent.reference)}/cancel", {})
    assert returned(cancelled, intent.reference)
    assert await status_of(provider, intent.reference) == "cancelled"
    assert returned(await client.get(pay_path(intent.reference), follow_redirects=False), intent.reference)
    assert returned(await pay(client, intent.reference, CARD_PAYS), intent.reference)  # too late to pay
    assert await status_of(provider, intent.reference) == "cancelled"

    for answer in (
        await client.get(pay_path("tpi_nope")),
        await client.get("/test-payments/authenticate/tpi_nope"),
        await pay(client, "tpi_nope", CARD_PAYS),
        await post(client, "/test-payments/pay/tpi_nope/cancel", {}),
    ):
        assert answer.status_code == 404 and "Payment not found" in answer.text


# --- the service's API: tokens, idempotency, refunds ------------------------------------------


async def test_tokens_confirm_at_once_and_one_key_makes_one_intent(provider):
    paid = await new_intent(provider, token="tok_visa")
    assert (paid.status, paid.card_last4, paid.redirect_url) == (PaymentStatus.SUCCEEDED, "4242", "")
    declined = await new_intent(provider, token="tok_chargeDeclined")
    assert declined.status == PaymentStatus.FAILED and declined.failure_reason == "Your card was declined."
    poor = await new_intent(provider, token="tok_chargeDeclinedInsufficientFunds")
    assert poor.status == PaymentStatus.FAILED and "insufficient funds" in poor.failure_reason
    unknown = await new_intent(provider, token="tok_nonsense")
    assert unknown.status == PaymentStatus.FAILED and "No such token" in unknown.failure_reason
    secure = await new_intent(provider, token="tok_threeDSecureRequired")
    assert secure.status == PaymentStatus.REQUIRES_ACTION
    assert secure.redirect_url.endswith(f"/test-payments/authenticate/{secure.reference}")
    # A failed intent stays failed when the shop cancels it.
    assert (await provider.cancel_intent(declined.reference)).status == PaymentStatus.FAILED

    # The same key, even concurrently and with a token the second time: the first intent, unchanged.
    first, second, third = await asyncio.gather(*(new_intent(provider, key="intent-WS-TP-1-abc") for _ in range(3)))
    assert first.reference == second.reference == third.reference
    again = await new_intent(provider, key="intent-WS-TP-1-abc", token="tok_visa")
    assert again.reference == first.reference and again.status == PaymentStatus.SUCCEEDED  # confirmed now
    assert (await new_intent(provider, key="intent-WS-TP-1-abc", token="tok_chargeDeclined")).status == "succeeded"
    async with provider.alchemy.get_session() as session:
        rows = list(await session.scalars(select(TestPaymentIntent).where(TestPaymentIntent.order_number == "WS-TP-1")))
    assert len([r for r in rows if r.idempotency_key == "intent-WS-TP-1-abc"]) == 1


async def test_refunds_are_partial_idempotent_and_never_more_than_was_paid(provider):
    unpaid = await new_intent(provider, amount=1000)
    refused = await provider.refund(reference=unpaid.reference, amount=100, currency="USD", idempotency_key="r-0")
    assert not refused.ok and refused.failure_reason

    paid = await new_intent(provider, amount=1000, token="tok_visa")
    ref = paid.reference
    first = await provider.refund(reference=ref, amount=300, currency="USD", idempotency_key="r-1")
    assert first.ok and first.reference.startswith("tre_")
    assert await provider.refund(reference=ref, amount=300, currency="USD", idempotency_key="r-1") == first
    other = await provider.refund(reference=ref, amount=500, currency="USD", idempotency_key="r-1")
    assert not other.ok and "another refund" in other.failure_reason
    assert not (await provider.refund(reference=ref, amount=0, currency="USD", idempotency_key="r-2")).ok
    assert not (await provider.refund(reference=ref, amount=100, currency="EUR", idempotency_key="r-3")).ok

    # 700 left: of four concurrent refunds of 300 with their own keys, two pass; of two with one key, one.
    results = await asyncio.gather(
        *(provider.refund(reference=ref, amount=300, currency="USD", idempotency_key=f"c-{i}") for i in range(4))
    )
    assert sum(r.ok for r in results) == 2
    same = await asyncio.gather(
        *(provider.refund(reference=ref, amount=100, currency="USD", idempotency_key="c-same") for _ in range(2))
    )
    assert same[0] == same[1] and same[0].ok
    row = await provider.intent(ref)
    assert row is not None and row.amount_refunded == 1000
    assert not (await provider.refund(reference=ref, amount=1, currency="USD", idempotency_key="r-4")).ok


# --- webhooks -------------------------------------------------------------------------------------


def test_parse_webhook_refuses_a_bad_signature_a_stale_one_and_what_is_not_an_event():
    provider = TestProvider(None, base_url="http://shop", secret=webhook_secret(SECRET), tolerance=300)  # type: ignore[arg-type]
    now = int(time.time())
    event = {"id": "evt_1", "type": "payment_intent.succeeded", "created": now, "data": {"object": {"id": "tpi_1"}}}
    body = json.dumps(event).encode()

    def headers(signed: bytes, at: int, secret: str = provider.secret) -> dict[str, str]:
        return {"test-signature": sign(secret, signed, at)}

    parsed = provider.parse_webhook(body, headers(body, now), now=datetime.now(UTC))
    assert (parsed.id, parsed.intent_reference, parsed.status) == ("evt_1", "tpi_1", PaymentStatus.SUCCEEDED)

    tampered = body.replace(b"tpi_1", b"tpi_2")
    stale = now - 301
    not_events = [b"[]", b"not json", json.dumps({**event, "data": {"object": "tpi_1"}}).encode(), b'{"id": "evt_1"}']
    for label, raw, sent in [
        ("no header", body, {}),
        ("malformed header", body, {"test-signature": "v1=abc"}),
        ("another secret", body, headers(body, now, secret="wrong")),
        ("tampered body", tampered, headers(body, now)),
        ("stale", body, headers(body, stale)),
        ("from the future", body, headers(body, now + 301)),
        *((f"not an event {raw!r}", raw, headers(raw, now)) for raw in not_events),
    ]:
        with pytest.raises(WebhookRejected):
            provider.parse_webhook(raw, sent, now=datetime.now(UTC))
            pytest.fail(label)


async def test_the_sender_delivers_signed_events_retries_and_settles_the_delayed_card(
    settings, alchemy: ShopAlchemyConfig, receiver
):
    # A provider whose delayed card pays at once, and a sender called round by round (no app running).
    provider = TestProvider(alchemy, base_url=settings.shop.base_url, secret=webhook_secret(SECRET), delay_seconds=0)
    sender = TestPaymentSender(provider, alchemy, settings.webhooks)
    paid = await new_intent(provider, token="tok_visa")
    delayed = await new_intent(provider)
    await provider.pay_with_card(delayed.reference, CARD_DELAYED)  # processing; due right away

    receiver.fail_next = 1  # the first POST gets a 500: retried
    assert await sender.send_due() == 3  # settles the delayed card first: 3 events due
    assert await status_of(provider, delayed.reference) == "succeeded"
    await asyncio.sleep(0.1)  # past the first retry's back-off (0.05 s)
    await sender.send_due()
    requests = await receiver.wait_for(4)
    assert [status for status, _, _ in requests] == [500, 200, 200, 200]
    events = [provider.parse_webhook(body, headers, now=datetime.now(UTC)) for _, headers, body in requests[1:]]
    assert sorted((e.intent_reference, e.type) for e in events) == sorted(
        [
            (paid.reference, "payment_intent.succeeded"),
            (delayed.reference, "payment_intent.processing"),
            (delayed.reference, "payment_intent.succeeded"),
        ]
    )
    async with write_session(alchemy) as session:
        rows = list(await session.scalars(select(TestPaymentEvent).order_by(TestPaymentEvent.id)))
        await session.commit()
    assert [(r.status, r.last_error) for r in rows] == [("delivered", "")] * 3
    assert [r.attempts for r in rows] == [2, 1, 1] and all(r.delivered_at for r in rows)
