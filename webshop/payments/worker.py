"""The background worker that ends pending orders whose payment time ran out, and asks again for the
refunds the payment provider did not answer.

Each app process runs one asyncio task that, every ``WEBSHOP_PAYMENT_POLL_SECONDS``, runs
``PaymentService.expire_due`` in a session of its own: the provider is asked first (a payment made at
the last moment makes the order paid), else the order is cancelled and its stock returned, once, even
when several processes look at the same moment or the payment's webhook arrives then (conditional
updates; see ``webshop.payments.service``). Then it runs ``retry_due_refunds``
(``webshop.orders.refund_retries``): the pending refunds that are due are asked for again, each by one
process. Nothing here runs on a request's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from webshop.db.engine import WriteSessions, write_session, write_sessions
from webshop.orders.refund_retries import RetryRound, retry_due_refunds
from webshop.payments.registry import build_provider
from webshop.payments.service import PaymentService

if TYPE_CHECKING:
    from webshop.config import Settings
    from webshop.db.engine import ShopAlchemyConfig
    from webshop.payments.provider import PaymentProvider

logger = logging.getLogger("webshop.payments")


class PaymentExpirer:
    """Runs ``expire_due`` and ``retry_due_refunds`` every ``settings.payments.poll_seconds`` while the app runs.

    The task works with a database config and a provider of its own, made on its own event loop: an
    engine (and SQLite's writer queue) must not be shared between loops, and a test client runs the
    app's lifespan in a loop apart from its requests (as ``webshop.db.outbox_sender`` explains).

    Args:
        settings: The app's settings (database, payments and invoices groups).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def run_once(self, alchemy: ShopAlchemyConfig | WriteSessions, provider: PaymentProvider) -> int:
        """One round on ``alchemy`` with ``provider``: returns how many due orders were looked at."""
        async with write_session(alchemy) as session:
            service = PaymentService(
                session=session,
                provider=provider,
                payments=self.settings.payments,
                invoices=self.settings.invoices,
            )
            return await service.expire_due()

    async def retry_refunds(self, alchemy: ShopAlchemyConfig | WriteSessions, provider: PaymentProvider) -> RetryRound:
        """One round of ``retry_due_refunds`` on ``alchemy`` with ``provider``: what it asked for again."""
        async with write_session(alchemy) as session:
            return await retry_due_refunds(session, provider, self.settings.payments, self.settings.invoices)

    async def _loop(self) -> None:
        alchemy, engine = write_sessions(self.settings)
        provider = build_provider(self.settings, alchemy)
        try:
            while not self._stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=self.settings.payments.poll_seconds)
                if self._stop.is_set():
                    break
                try:
                    await self.run_once(alchemy, provider)
                except Exception:  # the database or provider is down: try again next round
                    logger.exception("the payment expiry round failed; trying again later")
                try:
                    await self.retry_refunds(alchemy, provider)
                except Exception:  # the database is down: the refunds are still pending next round
                    logger.exception("the refund retry round failed; trying again later")
        finally:
            await engine.dispose()

    async def start(self) -> None:
        """Start the task (the app's ``on_startup``)."""
        self._stop = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="payment-expirer")

    async def stop(self) -> None:
        """Stop the task and wait for its round to end (the app's ``on_shutdown``)."""
        self._stop.set()
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, timeout=5)
            self._task = None
