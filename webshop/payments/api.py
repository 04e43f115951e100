"""The payment provider's webhooks: ``POST /api/payments/webhooks/{provider}``.

The provider's signature is checked first (``PaymentProvider.parse_webhook``: HMAC over the exact body
bytes, with a replay window of ``WEBSHOP_PAYMENT_WEBHOOK_TOLERANCE_SECONDS``); a bad one is answered 400
and changes nothing. A good event is acted on once (``PaymentService.handle_event``: by event id, and by
the conditional updates of the settle) and answered 200, also when it was seen before, so the provider
stops retrying. Anything else (the database down) is a 5xx, which the provider retries later.
"""

from datetime import UTC, datetime

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, SkipValidation

from webshop.api.responses import problems
from webshop.errors import DomainError, NotFound
from webshop.payments.provider import PaymentProvider, WebhookRejected
from webshop.payments.service import PaymentService
from webshop.security.jwt import PUBLIC
from webshop.web import AnyRequest


class WebhookRefused(DomainError, status_code=400, title="Webhook refused"):
    """A payment webhook whose signature, timestamp or body is not right; nothing was done."""


class WebhookReceived(msgspec.Struct):
    """The answer to a payment webhook: ``received`` always true; ``acted`` false for an event seen
    before or about no order of this shop."""

    received: bool
    acted: bool


class PaymentWebhookController(Controller):
    """Webhooks from the payment provider (no bearer token: the provider's signature authenticates)."""

    path = "/api/payments"
    tags = ["payments"]

    @post(
        "/webhooks/{provider_name:str}",
        opt=PUBLIC,
        operation_id="receivePaymentWebhook",
        status_code=200,
        responses=problems(400, 404),
    )
    async def receive(
        self,
        request: AnyRequest,
        provider_name: FromPath[str],
        payment_provider: NamedDependency[SkipValidation[PaymentProvider]],
        payment_service: NamedDependency[PaymentService],
    ) -> WebhookReceived:
        """Receive one event from the payment provider ``provider_name`` (``test`` or ``stripe``).

        The body is the provider's JSON event, signed in its header (``Test-Signature`` or
        ``Stripe-Signature``). 400 for a bad signature, a timestamp outside the replay window or a body
        that is no event; 404 for a provider this shop does not use.
        """
        if provider_name != payment_provider.name:
            raise NotFound(f"This shop takes no payments through {provider_name[:40]!r}.")
        body = await request.body()
        headers = {key.lower(): value for key, value in request.headers.items()}
        try:
            event = payment_provider.parse_webhook(body, headers, now=datetime.now(UTC))
        except WebhookRejected as exc:
            raise WebhookRefused(f"This webhook was refused: {exc}.") from exc
        acted = await payment_service.handle_event(event)
        return WebhookReceived(received=True, acted=acted)
