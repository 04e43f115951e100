"""The test provider: a small payment service inside the project, behaving like a real one.

It is the default provider (``WEBSHOP_PAYMENT_PROVIDER=test``), so the demo needs no account anywhere.
Like a real payment service it keeps its own records (``test_payment_*`` tables), has a **hosted
payment page** under its own path (``/test-payments/...``, ``webshop.payments.testing_web``) where the
shopper types a test card, sends **signed webhooks** to the shop from a background sender, and accepts
**tokens** from API clients. It never keeps a card number: only the last four digits of a card that paid.

Test cards (typed on the hosted page; spaces allowed):

====================  =====================================================================
4242 4242 4242 4242   pays
4000 0000 0000 0002   declined ("Your card was declined."); the shopper may try another card
4000 0000 0000 9995   declined, insufficient funds; the shopper may try another card
4000 0025 0000 3155   asks for an extra "authenticate" step (3-D Secure), then pays or fails
4000 0000 0000 0077   processing; pays ``WEBSHOP_TEST_PAYMENT_DELAY_SECONDS`` later, by webhook
====================  =====================================================================

Tokens for API clients (``"payment": {"token": ...}``), in the style of Stripe's test tokens:
``tok_visa`` pays; ``tok_chargeDeclined`` and ``tok_chargeDeclinedInsufficientFunds`` fail;
``tok_threeDSecureRequired`` needs the authenticate step on the hosted page (``redirect_url``).

Webhooks are signed like Stripe's: header ``Test-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`` with a secret derived from ``WEBSHOP_SECRET_KEY``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from webshop.db.engine import write_session
from webshop.db.models import PaymentStatus, TestPaymentEvent, TestPaymentIntent, TestPaymentRefund
from webshop.mail.outbox import mark_queued
from webshop.payments.provider import (
    FINAL_STATUSES,
    Intent,
    IntentRequest,
    ProviderEvent,
    RefundResult,
    WebhookRejected,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import CursorResult
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.db.engine import ShopAlchemyConfig, WriteSessions

NAME = "test"
PAGE_PATH = "/test-payments"
"""Where the test provider's hosted pages live (``webshop.payments.testing_web``)."""
SIGNATURE_HEADER = "Test-Signature"

CARD_PAYS = "4242424242424242"
CARD_DECLINED = "4000000000000002"
CARD_INSUFFICIENT_FUNDS = "4000000000009995"
CARD_AUTHENTICATE = "4000002500003155"
CARD_DELAYED = "4000000000000077"

DECLINED = "Your card was declined. Try another card."
INSUFFICIENT_FUNDS = "Your card has insufficient funds. Try another card."
TOKENS: dict[str, tuple[PaymentStatus, str]] = {
    "tok_visa": (PaymentStatus.SUCCEEDED, ""),
    "tok_chargeDeclined": (PaymentStatus.FAILED, "Your card was declined."),
    "tok_chargeDeclinedInsufficientFunds": (PaymentStatus.FAILED, "Your card has insufficient funds."),
    "tok_threeDSecureRequired": (PaymentStatus.REQUIRES_ACTION, ""),
}
"""What each test token does when an intent is confirmed with it."""
TOKEN_LAST4 = {"tok_visa": "4242", "tok_threeDSecureRequired": "3155"}


def webhook_secret(secret_key: str) -> str:
    """The test provider's webhook signing secret, derived from the shop's ``WEBSHOP_SECRET_KEY``."""
    return hmac.new(secret_key.encode(), b"webshop test payments webhook", hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The ``Test-Signature`` header value for ``body`` at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def digits(raw: str) -> str:
    """A typed card number's ASCII digits (spaces and dashes dropped)."""
    return "".join(ch for ch in raw if "0" <= ch <= "9")


async def _locked(session: AsyncSession, reference: str) -> TestPaymentIntent | None:
    """The intent ``reference``, its row locked until the transaction ends (PostgreSQL's ``FOR UPDATE``;
    SQLite's write transactions, begun ``IMMEDIATE``, are one at a time anyway): two concurrent posts of
    the hosted page's form change it, and announce the change, once."""
    return await session.scalar(
        select(TestPaymentIntent).where(TestPaymentIntent.reference == reference).with_for_update()
    )


async def _intent_with_key(session: AsyncSession, idempotency_key: str) -> TestPaymentIntent | None:
    """The intent created with ``idempotency_key``, or ``None``."""
    return await session.scalar(select(TestPaymentIntent).where(TestPaymentIntent.idempotency_key == idempotency_key))


async def _refund_with_key(session: AsyncSession, idempotency_key: str) -> TestPaymentRefund | None:
    """The refund made with ``idempotency_key``, or ``None``."""
    return await session.scalar(select(TestPaymentRefund).where(TestPaymentRefund.idempotency_key == idempotency_key))


def _refund_result(done: TestPaymentRefund, reference: str, amount: int, currency: str) -> RefundResult:
    """The answer to a refund whose idempotency key was seen before: the first refund, if it is the same."""
    if (done.intent_reference, done.amount, done.currency) != (reference, amount, currency):
        return RefundResult(ok=False, failure_reason="This idempotency key was used for another refund.")
    return RefundResult(ok=True, reference=done.reference)


def _intent(row: TestPaymentIntent, base_url: str) -> Intent:
    status = PaymentStatus(row.status)
    page = ""
    if status == PaymentStatus.REQUIRES_PAYMENT:
        page = f"{base_url}{PAGE_PATH}/pay/{row.reference}"
    elif status == PaymentStatus.REQUIRES_ACTION:
        page = f"{base_url}{PAGE_PATH}/authenticate/{row.reference}"
    return Intent(
        reference=row.reference,
        status=status,
        amount=row.amount,
        currency=row.currency,
        redirect_url=page,
        failure_reason=row.failure_reason,
        card_last4=row.card_last4,
    )


class TestProvider:
    """The built-in test payment service (see the module docstring), on the shop's own database.

    Args:
        alchemy: The app's database config; the provider writes its own rows in short sessions of its
            own (``write_session``), never inside the shop's transactions.
        base_url: The shop's public base URL (hosted page links; webhooks go to
            ``{base_url}/api/payments/webhooks/test``).
        secret: The webhook signing secret (``webhook_secret(WEBSHOP_SECRET_KEY)``).
        tolerance: Seconds a webhook's timestamp may be old (the replay window).
        delay_seconds: How long after it is typed the delayed test card pays.
    """

    __test__ = False  # not a pytest test class
    name = NAME

    def __init__(
        self,
        alchemy: ShopAlchemyConfig | WriteSessions,
        *,
        base_url: str,
        secret: str,
        tolerance: int = 300,
        delay_seconds: float = 5.0,
    ) -> None:
        self.alchemy = alchemy
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.tolerance = tolerance
        self.delay_seconds = delay_seconds

    # -- the provider interface (webshop.payments.provider.PaymentProvider) --------------------------

    async def create_intent(self, request: IntentRequest) -> Intent:
        """Create (or, for a key seen before, find) an intent; with ``token``, confirm it at once."""
        async with write_session(self.alchemy) as session:
            row = await _intent_with_key(session, request.idempotency_key)
            if row is None:
                row = TestPaymentIntent(
                    reference="tpi_" + secrets.token_hex(12),
                    idempotency_key=request.idempotency_key,
                    order_number=request.order_number,
                    amount=request.amount,
                    currency=request.currency,
                    return_url=request.return_url,
                )
                try:
                    async with session.begin_nested():
                        session.add(row)
                except IntegrityError:  # a concurrent request with the same key made it first
                    await session.rollback()
                    row = await _intent_with_key(session, request.idempotency_key)
                    if row is None:
                        raise
            if request.token is not None and row.status == PaymentStatus.REQUIRES_PAYMENT.value:
                status, reason = TOKENS.get(
                    request.token, (PaymentStatus.FAILED, f"No such token: {request.token[:40]!r}.")
                )
                await self._move(
                    session, row, status, failure_reason=reason, card_last4=TOKEN_LAST4.get(request.token, "")
                )
            await session.commit()
            return _intent(row, self.base_url)

    async def retrieve_intent(self, reference: str) -> Intent:
        """The intent as this service has it (raises ``LookupError`` for an unknown reference)."""
        async with write_session(self.alchemy) as session:
            row = await session.scalar(select(TestPaymentIntent).where(TestPaymentIntent.reference == reference))
            await session.commit()
        if row is None:
            raise LookupError(f"no test payment intent {reference!r}")
        return _intent(row, self.base_url)

    async def cancel_intent(self, reference: str, *, failure_reason: str | None = None) -> Intent:
        """Cancel an intent not paid yet (a paid one is returned as it is, the caller refunds it; a failed
        or cancelled one too). ``failure_reason``: why (``CANCELLED_BY_SHOPPER`` from the payment page);
        None keeps the last attempt's."""
        async with write_session(self.alchemy) as session:
            row = await _locked(session, reference)
            if row is None:
                await session.commit()
                raise LookupError(f"no test payment intent {reference!r}")
            if PaymentStatus(row.status) not in FINAL_STATUSES:  # failed, paid or cancelled: it stays so
                why = row.failure_reason if failure_reason is None else failure_reason
                await self._move(session, row, PaymentStatus.CANCELLED, failure_reason=why)
            await session.commit()
            return _intent(row, self.base_url)

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Refund part or all of a paid intent, once per key; never more than what is left of it."""
        async with write_session(self.alchemy) as session:
            done = await _refund_with_key(session, idempotency_key)
            if done is not None:
                await session.commit()
                return _refund_result(done, reference, amount, currency)
            if amount <= 0:
                await session.commit()
                return RefundResult(ok=False, failure_reason="A refund must be a positive amount.")
            taken = await session.execute(
                update(TestPaymentIntent)
                .where(
                    TestPaymentIntent.reference == reference,
                    TestPaymentIntent.status == PaymentStatus.SUCCEEDED.value,
                    TestPaymentIntent.currency == currency,
                    TestPaymentIntent.amount_refunded + amount <= TestPaymentIntent.amount,
                )
                .values(amount_refunded=TestPaymentIntent.amount_refunded + amount, updated_at=datetime.now(UTC))
                .execution_options(synchronize_session=False)
            )
            if cast("CursorResult[Any]", taken).rowcount != 1:
                await session.rollback()
                # A concurrent refund with the same key may have taken what was left: that one stands.
                done = await _refund_with_key(session, idempotency_key)
                await session.commit()
                if done is not None and (done.intent_reference, done.amount) == (reference, amount):
                    return RefundResult(ok=True, reference=done.reference)
                return RefundResult(
                    ok=False, failure_reason=f"There is no paid payment {reference!r} with {amount} left to refund."
                )
            row = TestPaymentRefund(
                reference="tre_" + secrets.token_hex(12),
                idempotency_key=idempotency_key,
                intent_reference=reference,
                amount=amount,
                currency=currency,
            )
            session.add(row)
            self._queue(session, "charge.refunded", {"id": reference, "amount_refunded": amount})
            try:
                await session.commit()
            except IntegrityError:  # a concurrent refund with the same key made it first: that one stands
                await session.rollback()
                done = await _refund_with_key(session, idempotency_key)
                await session.commit()
                if done is None:
                    raise
                return _refund_result(done, reference, amount, currency)
            return RefundResult(ok=True, reference=row.reference)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> ProviderEvent:
        """Check ``Test-Signature`` (constant time) and its age, then read the event."""
        header = headers.get(SIGNATURE_HEADER.lower(), "")
        parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            timestamp = int(parts.get("t", ""))
        except ValueError:
            raise WebhookRejected("missing or malformed Test-Signature header") from None
        if not hmac.compare_digest(sign(self.secret, body, timestamp), f"t={timestamp},v1={parts.get('v1', '')}"):
            raise WebhookRejected("the signature does not match")
        if abs(now.timestamp() - timestamp) > self.tolerance:
            raise WebhookRejected("the signature's timestamp is outside the replay window")
        try:
            event = json.loads(body)
            data = event["data"]["object"]
            event_type = str(event["type"])
            created = datetime.fromtimestamp(int(event["created"]), UTC)
            event_id = str(event["id"])
            if not isinstance(data, dict):
                raise TypeError("data.object is not an object")
        except (ValueError, KeyError, TypeError, OverflowError, OSError):
            raise WebhookRejected("the body is not an event") from None
        status = EVENT_STATUS.get(event_type)
        return ProviderEvent(
            id=event_id,
            type=event_type,
            intent_reference=str(data.get("id", "")) if event_type.startswith("payment_intent.") else "",
            status=status,
            created=created,
            failure_reason=str(data.get("failure_reason", "")),
            card_last4=str(data.get("card_last4", "")),
        )

    # -- the service's own side: the hosted page and the background sender use these ---------------

    async def intent(self, reference: str) -> TestPaymentIntent | None:
        """The stored intent (for the hosted page), or ``None``."""
        async with write_session(self.alchemy) as session:
            row = await session.scalar(select(TestPaymentIntent).where(TestPaymentIntent.reference == reference))
            await session.commit()
            return row

    async def pay_with_card(self, reference: str, card_number: str) -> TestPaymentIntent:
        """The hosted page's form: try ``card_number`` on the intent (see the module's card table).

        Only the last four digits are kept, and only for a card that paid. A declined card leaves the
        intent waiting for another card (``failure_reason`` says why), as real hosted pages do.

        Raises:
            LookupError: no such intent.
        """
        number = digits(card_number)
        async with write_session(self.alchemy) as session:
            row = await _locked(session, reference)
            if row is None:
                await session.commit()
                raise LookupError(f"no test payment intent {reference!r}")
            if row.status != PaymentStatus.REQUIRES_PAYMENT.value:
                await session.commit()
                return row
            if number == CARD_PAYS:
                await self._move(session, row, PaymentStatus.SUCCEEDED, card_last4=number[-4:])
            elif number == CARD_AUTHENTICATE:
                await self._move(session, row, PaymentStatus.REQUIRES_ACTION, card_last4=number[-4:])
            elif number == CARD_DELAYED:
                row.settles_at = datetime.now(UTC) + timedelta(seconds=self.delay_seconds)
                await self._move(session, row, PaymentStatus.PROCESSING, card_last4=number[-4:])
            else:
                reason = INSUFFICIENT_FUNDS if number == CARD_INSUFFICIENT_FUNDS else DECLINED
                if number not in (CARD_DECLINED, CARD_INSUFFICIENT_FUNDS):
                    reason = "That is not one of the test cards. Try 4242 4242 4242 4242."
                row.failure_reason = reason
                self._queue(session, "payment_intent.payment_failed", self._object(row))
            await session.commit()
            return row

    async def authenticate(self, reference: str, *, approve: bool) -> TestPaymentIntent:
        """The authenticate step: approved, the intent pays; refused, it waits for another card.

        Raises:
            LookupError: no such intent.
        """
        async with write_session(self.alchemy) as session:
            row = await _locked(session, reference)
            if row is None:
                await session.commit()
                raise LookupError(f"no test payment intent {reference!r}")
            if row.status == PaymentStatus.REQUIRES_ACTION.value:
                if approve:
                    await self._move(session, row, PaymentStatus.SUCCEEDED)
                else:
                    row.card_last4 = ""
                    await self._move(
                        session, row, PaymentStatus.REQUIRES_PAYMENT, failure_reason="The card was not authenticated."
                    )
            await session.commit()
            return row

    async def settle_due(self, now: datetime | None = None, *, session: AsyncSession | None = None) -> int:
        """Pay the delayed card's intents whose time has come (the background sender calls this, in a
        write ``session`` of its own engine: an engine is never shared between event loops).

        Returns how many were paid."""
        moment = now or datetime.now(UTC)
        if session is not None:
            return await self._settle_due(session, moment)
        async with write_session(self.alchemy) as own:
            return await self._settle_due(own, moment)

    async def _settle_due(self, session: AsyncSession, moment: datetime) -> int:
        rows = list(
            await session.scalars(
                select(TestPaymentIntent)
                .where(
                    TestPaymentIntent.status == PaymentStatus.PROCESSING.value,
                    TestPaymentIntent.settles_at <= moment,
                )
                .limit(50)
                .with_for_update(skip_locked=True)  # two processes never settle one intent twice
            )
        )
        for row in rows:
            await self._move(session, row, PaymentStatus.SUCCEEDED)
        await session.commit()
        return len(rows)

    def return_url_of(self, row: TestPaymentIntent) -> str:
        """Where the hosted page sends the shopper back: the shop's ``return_url`` with the intent's id."""
        joiner = "&" if "?" in row.return_url else "?"
        return f"{row.return_url}{joiner}payment_intent={row.reference}"

    @staticmethod
    def _object(row: TestPaymentIntent) -> dict[str, Any]:
        return {
            "id": row.reference,
            "object": "payment_intent",
            "amount": row.amount,
            "currency": row.currency.lower(),
            "status": row.status,
            "metadata": {"order_number": row.order_number},
            "failure_reason": row.failure_reason,
            "card_last4": row.card_last4,
        }

    async def _move(
        self,
        session: AsyncSession,
        row: TestPaymentIntent,
        status: PaymentStatus,
        *,
        failure_reason: str = "",
        card_last4: str | None = None,
    ) -> None:
        """Change the intent's status and queue the webhook event that announces it."""
        row.status = status.value
        row.failure_reason = failure_reason
        if card_last4 is not None:
            row.card_last4 = card_last4
        row.updated_at = datetime.now(UTC)
        await session.flush()
        self._queue(session, STATUS_EVENT[status], self._object(row))

    @staticmethod
    def _queue(session: AsyncSession, event_type: str, data: dict[str, Any]) -> None:
        """Add a webhook event to the test provider's outbox (sent after the commit)."""
        event_id = "evt_" + secrets.token_hex(12)
        payload = {"id": event_id, "type": event_type, "created": int(time.time()), "data": {"object": data}}
        session.add(TestPaymentEvent(event_id=event_id, event_type=event_type, payload=payload))
        mark_queued(session)  # the background sender (testing_sender.py) wakes once this commits


STATUS_EVENT = {
    PaymentStatus.SUCCEEDED: "payment_intent.succeeded",
    PaymentStatus.FAILED: "payment_intent.payment_failed",
    PaymentStatus.CANCELLED: "payment_intent.canceled",
    PaymentStatus.REQUIRES_ACTION: "payment_intent.requires_action",
    PaymentStatus.PROCESSING: "payment_intent.processing",
    PaymentStatus.REQUIRES_PAYMENT: "payment_intent.requires_payment_method",
}
"""The event announcing each status (Stripe's event names)."""
EVENT_STATUS: dict[str, PaymentStatus | None] = {
    "payment_intent.succeeded": PaymentStatus.SUCCEEDED,
    "payment_intent.canceled": PaymentStatus.CANCELLED,
    "payment_intent.processing": PaymentStatus.PROCESSING,
    "payment_intent.requires_action": PaymentStatus.REQUIRES_ACTION,
    "payment_intent.requires_payment_method": PaymentStatus.REQUIRES_PAYMENT,
}
"""What each event says of the intent; ``payment_intent.payment_failed`` is left out on purpose: an
attempt failed, but the intent still waits for another card (the order stays pending). An intent
confirmed with a failing token is ``failed`` for good; the shop learns that from the API's answer."""
