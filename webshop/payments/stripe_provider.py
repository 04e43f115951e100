"""The Stripe provider: payment intents at Stripe, through the official ``stripe`` library (async calls).

``WEBSHOP_PAYMENT_PROVIDER=stripe`` with ``WEBSHOP_STRIPE_SECRET_KEY`` and ``WEBSHOP_STRIPE_WEBHOOK_SECRET``
(the README's "Taking payments with Stripe" says how to set it up). The shop never sees a card number:
the shopper types it on Stripe's page, or an API client sends a token Stripe.js gave it.

Two roads, and what an order's ``payment_reference`` then is:

* **A token** (``tok_...`` from Stripe.js or a Stripe test token such as ``tok_visa``; or a PaymentMethod
  id ``pm_...``): a **PaymentIntent** (``pi_...``) for the order, card only, captured automatically,
  confirmed at once in the same checkout call. A declined card answers ``failed`` with Stripe's message
  for the shopper, and the PaymentIntent is cancelled at Stripe, so nothing can pay it later. A card that
  needs 3-D Secure answers ``requires_action`` with Stripe's page in ``redirect_url``.
* **No token**: a **Checkout Session** (``cs_...``), Stripe's hosted payment page: mode ``payment``, one
  line "Order WS-..." of the order's total, back to ``return_url`` whether paid or not,
  ``client_reference_id`` the order number, open for the shop's payment time limit (Stripe's minimum is
  30 minutes). The session id is the reference: ``retrieve_intent`` reads the session (and its
  PaymentIntent), ``cancel_intent`` expires it, ``refund`` refunds its PaymentIntent. Its webhooks are
  the ``checkout.session.*`` events, which carry the session id. The PaymentIntent Checkout makes for it
  carries ``metadata.webshop_via = "checkout_session"``; ``payment_intent.*`` events about such a
  PaymentIntent are read as saying nothing (the session's events say it all), so they can never be
  mistaken for an order's reference.

Webhook events and what they say (``parse_webhook``; enable these on the Stripe endpoint):

===============================================  ===================================================
``payment_intent.succeeded``                     succeeded
``payment_intent.processing``                    processing
``payment_intent.requires_action``               requires_action
``payment_intent.canceled``                      cancelled
``payment_intent.payment_failed``                nothing (``None``): one attempt failed; on Stripe's
                                                 page the shopper may try another card, and a
                                                 declined token already answered ``failed``
``checkout.session.completed``                   succeeded if ``payment_status`` is ``paid``,
                                                 else processing (a bank debit still on its way)
``checkout.session.async_payment_succeeded``     succeeded
``checkout.session.async_payment_failed``        failed
``checkout.session.expired``                     cancelled
``charge.refunded``                              nothing (the shop records its refunds when it asks)
===============================================  ===================================================

Errors: Stripe unreachable, a 5xx, a rate limit or a rejected key → ``ProviderUnavailable`` (logged with
Stripe's request id, never the key); a declined card → an ``Intent`` ``failed`` with a reason; a refund
Stripe refuses → ``RefundResult(ok=False)``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import stripe

from webshop.db.models.payments import PaymentStatus
from webshop.payments.provider import (
    EXPIRED,
    Intent,
    IntentRequest,
    ProviderEvent,
    ProviderUnavailable,
    RefundResult,
    WebhookRejected,
)

if TYPE_CHECKING:
    from webshop.config import PaymentSettings

logger = logging.getLogger("webshop.payments.stripe")

NAME = "stripe"
SIGNATURE_HEADER = "Stripe-Signature"
VIA_CHECKOUT = "checkout_session"
"""``metadata.webshop_via`` of the PaymentIntents Checkout Sessions make for the shop."""
DECLINED = "Your card was declined."
NOT_PAID = "The payment was not made, so nothing can be refunded."

INTENT_STATUS: dict[str, PaymentStatus] = {
    "requires_payment_method": PaymentStatus.REQUIRES_PAYMENT,
    "requires_confirmation": PaymentStatus.REQUIRES_PAYMENT,
    "requires_action": PaymentStatus.REQUIRES_ACTION,
    "processing": PaymentStatus.PROCESSING,
    "requires_capture": PaymentStatus.PROCESSING,  # not used: the shop's intents capture automatically
    "succeeded": PaymentStatus.SUCCEEDED,
    "canceled": PaymentStatus.CANCELLED,
}
"""A Stripe PaymentIntent's ``status`` in the shop's terms."""

EVENT_STATUS: dict[str, PaymentStatus | None] = {
    "payment_intent.succeeded": PaymentStatus.SUCCEEDED,
    "payment_intent.processing": PaymentStatus.PROCESSING,
    "payment_intent.requires_action": PaymentStatus.REQUIRES_ACTION,
    "payment_intent.canceled": PaymentStatus.CANCELLED,
    "payment_intent.payment_failed": None,
    "checkout.session.async_payment_succeeded": PaymentStatus.SUCCEEDED,
    "checkout.session.async_payment_failed": PaymentStatus.FAILED,
    "checkout.session.expired": PaymentStatus.CANCELLED,
    # checkout.session.completed depends on its payment_status (_session_event_status)
}
"""What each Stripe event says of the order's payment (see the module docstring's table)."""


def _get(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or ``None`` where a step is missing or not a mapping."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _card_last4(payment_intent: Mapping[str, Any]) -> str:
    """The last four digits of the card of a PaymentIntent whose ``payment_method`` was expanded."""
    method = payment_intent.get("payment_method")
    last4 = _get(method, "card", "last4") or _get(method, "last4")  # a PaymentMethod, or a legacy Card
    return str(last4 or "")


def _failure_message(payment_intent: Mapping[str, Any]) -> str:
    return str(_get(payment_intent, "last_payment_error", "message") or "")


def _session_event_status(session: Mapping[str, Any]) -> PaymentStatus:
    """``checkout.session.completed``: paid, or still on its way (an asynchronous bank debit)."""
    if session.get("payment_status") in ("paid", "no_payment_required"):
        return PaymentStatus.SUCCEEDED
    return PaymentStatus.PROCESSING


class _HTTPXClient(stripe.HTTPXClient):
    """The library's httpx client, handing the request body to httpx as ``content=`` (stripe 16 passes
    bytes as ``data=``, which httpx 0.28+ deprecates with a warning on every request)."""

    def _get_request_args_kwargs(self, method: str, url: str, headers: Mapping[str, str], post_data: Any) -> list[Any]:
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(kwargs.get("data"), bytes | str):
            kwargs["content"] = kwargs.pop("data")
        return [args, kwargs]


class StripeProvider:
    """Payments through Stripe (see the module docstring), one ``stripe.StripeClient`` per app.

    Args:
        payments: The ``payments`` settings: ``stripe_secret_key``, ``stripe_webhook_secret``,
            ``stripe_api_base`` (Stripe's API, or a local fake in tests), ``webhook_tolerance`` (seconds a
            webhook's signed timestamp may be old) and ``timeout_minutes`` (how long a Checkout Session
            stays open, at least Stripe's 30).
        max_network_retries: Retries of a request that could not reach Stripe (the library's backoff,
            with the same idempotency key).
        timeout: Seconds one request to Stripe may take.
    """

    name = NAME

    def __init__(self, payments: PaymentSettings, *, max_network_retries: int = 2, timeout: float = 20.0) -> None:
        self.webhook_secret = payments.stripe_webhook_secret
        self.tolerance = payments.webhook_tolerance
        self.session_minutes = min(max(payments.timeout_minutes, 30), 24 * 60)
        self._http = _HTTPXClient(timeout=timeout)
        self.client = stripe.StripeClient(
            payments.stripe_secret_key,
            base_addresses={"api": payments.stripe_api_base.rstrip("/")},
            http_client=self._http,
            max_network_retries=max_network_retries,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections (at the app's shutdown)."""
        await self._http.close_async()  # type: ignore[no-untyped-call]

    # -- the provider interface (webshop.payments.provider.PaymentProvider) --------------------------

    async def create_intent(self, request: IntentRequest) -> Intent:
        """A PaymentIntent confirmed with ``request.token`` at once, or a Checkout Session without one.

        ``request.idempotency_key`` is Stripe's idempotency key for the creation (and, suffixed, for the
        confirmation), so a retried checkout finds the first intent or session.
        """
        if request.token is None:
            return await self._create_session(request)
        method: dict[str, Any] = (
            {"payment_method": request.token}
            if request.token.startswith("pm_")
            else {"payment_method_data": {"type": "card", "card": {"token": request.token}}}
        )
        params: dict[str, Any] = {
            "amount": request.amount,
            "currency": request.currency.lower(),
            "metadata": {"order_number": request.order_number},
            "capture_method": "automatic",
            "payment_method_types": ["card"],
            **method,
        }
        if request.email:
            params["receipt_email"] = request.email
        async with _calls("create a payment intent"):
            try:
                created = await self.client.v1.payment_intents.create_async(
                    params,  # type: ignore[arg-type]
                    {"idempotency_key": request.idempotency_key},
                )
            except stripe.CardError as error:  # an unusable token is refused when it is attached
                refused = str(_get(error.json_body, "error", "payment_intent", "id") or "")
                if refused:
                    await self._cancel_quietly(refused)
                return Intent(
                    refused,
                    PaymentStatus.FAILED,
                    request.amount,
                    request.currency.upper(),
                    failure_reason=_reason(error),
                )
            if created.status != "requires_confirmation":  # a replay of a confirmed intent: ask Stripe
                return await self.retrieve_intent(created.id)
            try:
                confirmed = await self.client.v1.payment_intents.confirm_async(
                    created.id,
                    {"return_url": request.return_url, "expand": ["payment_method"]},
                    {"idempotency_key": f"{request.idempotency_key}-confirm"},
                )
            except stripe.CardError as error:
                await self._cancel_quietly(created.id)
                return Intent(
                    created.id,
                    PaymentStatus.FAILED,
                    request.amount,
                    request.currency.upper(),
                    failure_reason=_reason(error),
                )
        return self._intent(confirmed.to_dict())

    async def retrieve_intent(self, reference: str) -> Intent:
        """The PaymentIntent ``pi_...`` or the Checkout Session ``cs_...``, as Stripe has it now.

        Raises:
            LookupError: Stripe has no such object.
        """
        async with _calls("retrieve a payment", missing=reference):
            if reference.startswith("cs_"):
                session = await self.client.v1.checkout.sessions.retrieve_async(
                    reference, {"expand": ["payment_intent", "payment_intent.payment_method"]}
                )
                return self._session_intent(session.to_dict())
            intent = await self.client.v1.payment_intents.retrieve_async(reference, {"expand": ["payment_method"]})
            return self._intent(intent.to_dict())

    async def cancel_intent(self, reference: str) -> Intent:
        """Cancel the PaymentIntent (or expire the Checkout Session); then say how it is at Stripe.

        Stripe refuses to cancel what has succeeded (or is already cancelled or expired): that refusal
        is not an error here, the answer is simply the object as it is."""
        async with _calls("cancel a payment", missing=reference):
            try:
                if reference.startswith("cs_"):
                    await self.client.v1.checkout.sessions.expire_async(reference)
                else:
                    await self.client.v1.payment_intents.cancel_async(reference)
            except stripe.InvalidRequestError as error:
                if error.http_status == 404:
                    raise
        return await self.retrieve_intent(reference)

    async def refund(self, *, reference: str, amount: int, currency: str, idempotency_key: str) -> RefundResult:
        """Refund ``amount`` of the paid PaymentIntent (or the Checkout Session's), once per key.

        The key is Stripe's idempotency key and is also kept in the refund's metadata: a refund with a
        key already used is found among the payment's refunds and answered again, even after Stripe
        forgot the key (24 hours). More than what is left of the payment is refused here, with the
        amounts, before Stripe would refuse it.
        """
        async with _calls("refund a payment"):
            try:
                payment_intent_id = await self._payment_intent_of(reference)
                if not payment_intent_id:
                    return RefundResult(ok=False, failure_reason=NOT_PAID)
                refunds = await self.client.v1.refunds.list_async({"payment_intent": payment_intent_id, "limit": 100})
                for done in refunds.data:
                    if _get(done.to_dict(), "metadata", "idempotency_key") == idempotency_key:
                        return RefundResult(ok=done.status != "failed", reference=done.id)
                intent = (
                    await self.client.v1.payment_intents.retrieve_async(
                        payment_intent_id, {"expand": ["latest_charge"]}
                    )
                ).to_dict()
                refusal = _refusal(intent, amount, currency)
                if refusal:
                    return RefundResult(ok=False, failure_reason=refusal)
                refund = await self.client.v1.refunds.create_async(
                    {
                        "payment_intent": payment_intent_id,
                        "amount": amount,
                        "metadata": {"idempotency_key": idempotency_key[:500]},
                    },
                    {"idempotency_key": idempotency_key},
                )
            except stripe.InvalidRequestError as error:
                return RefundResult(ok=False, failure_reason=error.user_message or "Stripe refused the refund.")
        return RefundResult(ok=refund.status not in ("failed", "canceled"), reference=refund.id)

    def parse_webhook(self, body: bytes, headers: Mapping[str, str], *, now: datetime) -> ProviderEvent:
        """Verify ``Stripe-Signature`` with the endpoint's secret (the library's check, with the replay
        window ``webhook_tolerance``, also against ``now``), then read the event (module docstring)."""
        header = headers.get(SIGNATURE_HEADER.lower(), "")
        try:
            stripe.WebhookSignature.verify_header(body.decode("utf-8"), header, self.webhook_secret, self.tolerance)
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as error:
            raise WebhookRejected(f"Stripe-Signature refused: {error}") from None
        signed_at = int(dict(part.split("=", 1) for part in header.split(",") if "=" in part)["t"])
        if abs(now.timestamp() - signed_at) > self.tolerance:
            raise WebhookRejected("the signature's timestamp is outside the replay window")
        try:
            event = json.loads(body)
            event_type = str(event["type"])
            data = event["data"]["object"]
            created = datetime.fromtimestamp(int(event["created"]), UTC)
            event_id = str(event["id"])
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected("the body is not an event") from None
        if not isinstance(data, dict):
            raise WebhookRejected("the body is not an event")
        reference, status = "", None
        if event_type.startswith("payment_intent."):
            if _get(data, "metadata", "webshop_via") != VIA_CHECKOUT:  # else the session's events speak
                reference, status = str(data.get("id", "")), EVENT_STATUS.get(event_type)
        elif event_type.startswith("checkout.session."):
            reference = str(data.get("id", ""))
            if event_type == "checkout.session.completed":
                status = _session_event_status(data)
            else:
                status = EVENT_STATUS.get(event_type)
        elif event_type == "charge.refunded":
            reference = str(data.get("payment_intent") or "")
        return ProviderEvent(
            id=event_id,
            type=event_type,
            intent_reference=reference,
            status=status,
            created=created,
            failure_reason=_failure_message(data) if event_type.startswith("payment_intent.") else "",
            card_last4=_card_last4(data) if event_type.startswith("payment_intent.") else "",
        )

    # -- Stripe's objects in the shop's terms ------------------------------------------------------------

    async def _create_session(self, request: IntentRequest) -> Intent:
        params: dict[str, Any] = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount,
                        "product_data": {"name": f"Order {request.order_number}"},
                    },
                }
            ],
            "success_url": request.return_url,
            "cancel_url": request.return_url,
            "client_reference_id": request.order_number,
            "metadata": {"order_number": request.order_number},
            "payment_intent_data": {"metadata": {"order_number": request.order_number, "webshop_via": VIA_CHECKOUT}},
            "expires_at": int(time.time()) + self.session_minutes * 60,
        }
        if request.email:
            params["customer_email"] = request.email
        async with _calls("create a checkout session"):
            session = await self.client.v1.checkout.sessions.create_async(
                params,  # type: ignore[arg-type]
                {"idempotency_key": request.idempotency_key},
            )
        return self._session_intent(session.to_dict())

    def _intent(self, payment_intent: Mapping[str, Any]) -> Intent:
        status = INTENT_STATUS.get(str(payment_intent.get("status")), PaymentStatus.REQUIRES_PAYMENT)
        redirect = ""
        if status == PaymentStatus.REQUIRES_ACTION:
            redirect = str(_get(payment_intent, "next_action", "redirect_to_url", "url") or "")
        return Intent(
            reference=str(payment_intent["id"]),
            status=status,
            amount=int(payment_intent["amount"]),
            currency=str(payment_intent["currency"]).upper(),
            redirect_url=redirect,
            failure_reason=_failure_message(payment_intent),
            card_last4=_card_last4(payment_intent) if status == PaymentStatus.SUCCEEDED else "",
        )

    def _session_intent(self, session: Mapping[str, Any]) -> Intent:
        """A Checkout Session as an intent: open → waits for the shopper on ``session.url``; expired →
        cancelled; complete → its PaymentIntent's outcome (paid, on its way, or failed for good)."""
        payment_intent = session.get("payment_intent")
        inner = self._intent(payment_intent) if isinstance(payment_intent, Mapping) else None
        state = session.get("status")
        if state == "open":
            status, redirect = PaymentStatus.REQUIRES_PAYMENT, str(session.get("url") or "")
        elif session.get("payment_status") in ("paid", "no_payment_required"):
            status, redirect = PaymentStatus.SUCCEEDED, ""
        elif state == "expired":  # the session's time ran out (at most 24 hours: Stripe's limit)
            status, redirect = PaymentStatus.CANCELLED, ""
        elif inner is not None and inner.status in (PaymentStatus.PROCESSING, PaymentStatus.SUCCEEDED):
            status, redirect = inner.status, ""
        else:  # complete but unpaid, and its payment no longer on its way: an asynchronous payment failed
            status, redirect = PaymentStatus.FAILED, ""
        return Intent(
            reference=str(session["id"]),
            status=status,
            amount=int(session.get("amount_total") or 0),
            currency=str(session.get("currency") or "").upper(),
            redirect_url=redirect,
            failure_reason=EXPIRED
            if state == "expired"
            else (inner.failure_reason if inner is not None and status != PaymentStatus.SUCCEEDED else ""),
            card_last4=inner.card_last4 if inner is not None and status == PaymentStatus.SUCCEEDED else "",
        )

    async def _payment_intent_of(self, reference: str) -> str:
        """The PaymentIntent id behind ``reference`` (itself, or a Checkout Session's; empty if none yet)."""
        if not reference.startswith("cs_"):
            return reference
        session = await self.client.v1.checkout.sessions.retrieve_async(reference)
        payment_intent = session.payment_intent
        return str(getattr(payment_intent, "id", payment_intent) or "")

    async def _cancel_quietly(self, payment_intent_id: str) -> None:
        """Cancel a PaymentIntent whose token was declined, so it is final at Stripe too (best effort:
        if this fails, the order is cancelled all the same and the intent is never confirmed again)."""
        try:
            await self.client.v1.payment_intents.cancel_async(payment_intent_id)
        except stripe.StripeError as error:
            logger.warning("could not cancel the declined payment intent %s: %s", payment_intent_id, error)


def _reason(error: stripe.CardError) -> str:
    """Stripe's message for a declined card (written for the shopper), or a plain one."""
    return error.user_message or DECLINED


def _refusal(payment_intent: Mapping[str, Any], amount: int, currency: str) -> str:
    """Why ``amount`` cannot be refunded from ``payment_intent`` (``latest_charge`` expanded), or empty."""
    if payment_intent.get("status") != "succeeded":
        return NOT_PAID
    if str(payment_intent.get("currency", "")).lower() != currency.lower():
        return f"The payment was in {str(payment_intent.get('currency')).upper()}, not {currency.upper()}."
    charge = payment_intent.get("latest_charge")
    paid = int(_get(charge, "amount") or payment_intent.get("amount") or 0)
    left = paid - int(_get(charge, "amount_refunded") or 0)
    if amount > left:
        return f"Only {left} of the {paid} paid (minor units of {currency.upper()}) is left to refund."
    return ""


class _calls:
    """``async with _calls("what")``: Stripe's errors as the shop's (see the module docstring).

    A 404 becomes ``LookupError`` when ``missing`` names the object asked for; ``CardError`` and
    ``InvalidRequestError`` the caller catches inside pass through unchanged otherwise."""

    def __init__(self, what: str, *, missing: str = "") -> None:
        self.what = what
        self.missing = missing

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        if not isinstance(error, stripe.StripeError):
            return
        if self.missing and isinstance(error, stripe.InvalidRequestError) and error.http_status == 404:
            raise LookupError(f"Stripe has no {self.missing!r}") from error
        logger.warning(
            "Stripe could not %s: %s %s (request %s)",
            self.what,
            type(error).__name__,
            error.http_status,
            error.request_id,
        )
        raise ProviderUnavailable(f"Stripe could not {self.what}; try again later") from error
