"""The test payment service's webhook sender: POSTs its queued events to the shop, signed like Stripe's.

An ``OutboxSender`` (``webshop.db.outbox_sender``: claim a due row with a conditional ``UPDATE`` and a
lease, send with no transaction open, record the outcome fenced by the attempt number) over the test
provider's own outbox, ``test_payment_events`` (``TestProvider._queue`` writes a row in the same
transaction as the intent's change). Each attempt:

1. POSTs the event's JSON body to ``{WEBSHOP_BASE_URL}/api/payments/webhooks/test`` with
   ``Content-Type: application/json`` and ``Test-Signature: t=<now>,v1=<HMAC>``
   (``webshop.payments.testing.sign``, signed afresh at every attempt so a retry is inside the shop's
   replay window), redirects not followed, bounded by ``WEBSHOP_WEBHOOK_TIMEOUT`` seconds;
2. records the outcome: a 2xx answer is ``delivered`` (with ``delivered_at``); a 4xx answer is a
   permanent refusal (``failed`` at once: the shop rejected the signature or the event, and sending the
   same bytes again cannot help), except 408, 425 and 429, which are retried; anything else (a 5xx, a
   refused connection, a timeout) is ``pending``
   again after ``WEBSHOP_WEBHOOK_RETRY_SECONDS`` × 2^(attempts-1) (at most 6 h), or ``failed`` after
   ``WEBSHOP_WEBHOOK_MAX_ATTEMPTS`` attempts.

Its pace is the shop's outbound webhooks' (``WEBSHOP_WEBHOOK_POLL_SECONDS``, default 1 s, and the
retry settings above): a round every second at most, so the delayed test card, which the sender
settles at the start of each round (``TestProvider.settle_due``), pays within a second of its
``WEBSHOP_TEST_PAYMENT_DELAY_SECONDS``. The payment worker's ``WEBSHOP_PAYMENT_POLL_SECONDS`` (30 s)
suits the expiry of orders, not this. The sender wakes as soon as a transaction that queued an event
commits (``webshop.mail.outbox.mark_queued``). It runs only in an app whose provider is ``test``; the
shop's address is its own, so no SSRF check applies (the URL comes from settings, never from a user).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import select

from webshop.db.models import PaymentStatus, TestPaymentEvent, TestPaymentIntent
from webshop.db.outbox_sender import Failure
from webshop.payments.testing import SIGNATURE_HEADER, sign
from webshop.webhooks.sender import WebhookPoster, body_of

if TYPE_CHECKING:
    from webshop.config import WebhookSettings
    from webshop.db.engine import ShopAlchemyConfig
    from webshop.payments.testing import TestProvider

logger = logging.getLogger("webshop.payments.testing")

USER_AGENT = "webshop-test-payments/1"
WEBHOOK_PATH = "/api/payments/webhooks/{name}"
"""The shop's webhook endpoint for a provider (``webshop.payments.api``)."""


RETRYABLE = frozenset({408, 425, 429})
"""4xx answers that say "later" rather than "never" (timeout, too early, too many requests): retried."""


class TestPaymentSender(WebhookPoster[TestPaymentEvent]):
    """Sends the test payment service's webhook events to the shop (see the module docstring).

    Args:
        provider: The test provider: its ``base_url`` (the shop) and signing ``secret``; its delayed
            payments are settled at the start of every round.
        alchemy: The app's database config, made by ``create_alchemy_config``.
        webhooks: Timeout, poll interval, back-off and attempts (the shop's outbound webhook settings).

    Raises:
        ValueError: ``alchemy`` was not made by ``create_alchemy_config``.
    """

    __test__ = False  # not a pytest test class
    model: ClassVar[type[Any]] = TestPaymentEvent
    done_status: ClassVar[str] = "delivered"
    name: ClassVar[str] = "test payment webhook"
    logger: ClassVar[logging.Logger] = logger
    user_agent: ClassVar[str] = USER_AGENT

    def __init__(self, provider: TestProvider, alchemy: ShopAlchemyConfig, webhooks: WebhookSettings) -> None:
        super().__init__(webhooks, alchemy)
        self.provider = provider
        self.url = provider.base_url + WEBHOOK_PATH.format(name=provider.name)

    async def _before_round(self) -> None:
        # The delayed card's intents whose time has come: paid now, their events sent in this round. A
        # plain read first: most rounds find none, and take no write lock (SQLite has one per database).
        async with self._session(write=False) as session:
            due = await session.scalar(
                select(TestPaymentIntent.id)
                .where(
                    TestPaymentIntent.status == PaymentStatus.PROCESSING.value,
                    TestPaymentIntent.settles_at <= datetime.now(UTC),
                )
                .limit(1)
            )
            await session.commit()
        if due is not None:
            async with self._session(write=True) as session:
                await self.provider.settle_due(session=session)

    def _describe(self, row: TestPaymentEvent) -> str:
        return f"test payment event {row.event_id} ({row.event_type})"

    async def _deliver(self, row: TestPaymentEvent, resources: Any) -> dict[str, Any]:
        """POST ``row`` to the shop within the timeout; ``delivered_at`` on a 2xx answer.

        Raises:
            Failure: a 4xx answer (permanent), another non-2xx answer, or no answer (retried).
        """
        body = body_of(row.payload)
        headers = {
            "content-type": "application/json",
            SIGNATURE_HEADER: sign(self.provider.secret, body, int(time.time())),
        }
        try:
            response = await asyncio.wait_for(
                resources.post(self.url, content=body, headers=headers), timeout=self.webhooks.timeout
            )
        except TimeoutError:
            raise Failure(f"No answer within {self.webhooks.timeout:g} s.") from None
        status = response.status_code
        if 200 <= status < 300:
            logger.info("test payment event %s (%s) delivered: %s", row.event_id, row.event_type, status)
            return {"delivered_at": datetime.now(UTC)}
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        message = f"The shop answered {status} {phrase}".rstrip() + "."
        raise Failure(message, permanent=400 <= status < 500 and status not in RETRYABLE)
