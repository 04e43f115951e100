"""The outbox sender: an asyncio task in each app process that sends committed e-mails.

One round (``send_due``):

1. read the ids of due rows (``pending`` and due, or ``sending`` whose lease ran out: a process died
   mid-send);
2. claim each with one conditional ``UPDATE ... SET status='sending', attempts=attempts+1,
   next_attempt_at=<lease end> WHERE id=:id AND <still due>`` in its own short write transaction; a
   row count of 0 means another worker got it first. This works the same on PostgreSQL (row lock,
   re-check after the other commits) and SQLite (``BEGIN IMMEDIATE`` serialises writers), so several
   workers never send one message twice while it is in flight;
3. send it with no transaction open (a slow SMTP server holds no lock and no connection);
4. record the outcome, fenced by the attempt number so a sender whose lease expired cannot overwrite
   a newer attempt: ``sent``; or ``pending`` again with exponential back-off; or ``failed`` after
   ``WEBSHOP_MAIL_MAX_ATTEMPTS`` attempts or a permanent (5xx) refusal.

Delivery is at least once: if a process dies after the server accepted a message but before the
``sent`` mark commits, the message is sent again when its lease ends. The sender runs a round at
start, after every commit that queued mail (``outbox.wake_senders``) and every
``WEBSHOP_MAIL_POLL_SECONDS`` seconds. Nothing here runs on a request's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from webshop.db.engine import WRITE_OPTION, create_engine
from webshop.db.models import OutboundEmail
from webshop.mail.outbox import register_waker, unregister_waker
from webshop.mail.transport import PermanentFailure, Transport, build_message, transport_for

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from webshop.config import MailSettings
    from webshop.db.engine import ShopAlchemyConfig

logger = logging.getLogger("webshop.mail")

BATCH = 20
MAX_BACKOFF = timedelta(hours=6)
MAX_IDLE_AFTER_DB_ERROR = 30.0
STOP_GRACE_SECONDS = 5.0


def backoff(mail: MailSettings, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: ``mail.retry_seconds`` × 2^(attempts-1),
    at most 6 h."""
    seconds = mail.retry_seconds * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(
            OutboundEmail.status == "pending",
            or_(OutboundEmail.next_attempt_at.is_(None), OutboundEmail.next_attempt_at <= now),
        ),
        and_(OutboundEmail.status == "sending", OutboundEmail.next_attempt_at <= now),
    )


@dataclass
class _Run:
    """The sender's task on one event loop, with its own database engine.

    An ``AsyncEngine`` must not be shared between event loops (SQLAlchemy's asyncio docs). In
    production the lifespan and the requests share one loop, but a test client runs the lifespan in a
    loop of its own; a small engine per run keeps the sender's connections on its own loop either way.
    """

    wake: asyncio.Event
    stop: asyncio.Event
    engine: AsyncEngine
    task: asyncio.Task[None] | None = None
    waker: int = 0


class MailSender:
    """Sends the outbox in the background of one app process (see the module docstring).

    Args:
        mail: Poll interval, back-off, attempts, and the transport's settings.
        alchemy: The app's database config, made by ``create_alchemy_config`` (the sender opens its own
            short sessions, and a one-connection engine of the same database per event loop).
        transport: Where mail goes (default: ``transport_for(mail)``).
    """

    def __init__(self, mail: MailSettings, alchemy: ShopAlchemyConfig, transport: Transport | None = None) -> None:
        if alchemy.database is None:
            raise ValueError("the mail sender needs a database config made by create_alchemy_config()")
        self.mail = mail
        self.database = alchemy.database
        self.alchemy = alchemy
        self.transport = transport or transport_for(mail)
        # One run per event loop: an app served twice in one process (two test clients) has two loops.
        self._runs: dict[asyncio.AbstractEventLoop, _Run] = {}

    async def start(self) -> None:
        """Start the background task on the running loop (the app's ``on_startup``)."""
        loop = asyncio.get_running_loop()
        if loop in self._runs:
            return
        run = _Run(
            wake=asyncio.Event(),
            stop=asyncio.Event(),
            # One connection is all the sender needs (PostgreSQL: pool of 1, plus 1 overflow).
            engine=create_engine(replace(self.database, pool_size=1)),
        )
        run.waker = register_waker(loop, run.wake)
        run.task = asyncio.create_task(self._loop(run), name="webshop-mail-sender")
        self._runs[loop] = run

    async def stop(self) -> None:
        """Stop the task (the app's ``on_shutdown``): let a send in flight finish for a few seconds, then cancel.

        A message cut off here stays ``sending`` until its lease ends and is then sent by any worker.
        """
        run = self._runs.pop(asyncio.get_running_loop(), None)
        if run is None or run.task is None:
            return
        unregister_waker(run.waker)
        run.stop.set()
        run.wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(run.task), timeout=STOP_GRACE_SECONDS)
        except TimeoutError:
            run.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run.task
        finally:
            await run.engine.dispose()

    def _sessions(self, *, write: bool) -> AsyncSession:
        """A new session: on this loop's run engine, else (``send_due`` called directly) the app's config.

        Write sessions begin with ``BEGIN IMMEDIATE`` on SQLite (see ``webshop.db.engine``).
        """
        # The app's session info: its settings, which ``outbox.settings_of`` reads.
        app_info = self.alchemy.session_config.info
        info = dict(app_info) if isinstance(app_info, dict) else {}
        run = self._runs.get(asyncio.get_running_loop())
        if run is not None:
            bind = run.engine.execution_options(**{WRITE_OPTION: True}) if write else run.engine
            return async_sessionmaker(bind=bind, expire_on_commit=False, info=info)()
        if write and self.alchemy.write_session_maker is not None:
            return self.alchemy.write_session_maker()
        return self.alchemy.create_session_maker()()

    async def _loop(self, run: _Run) -> None:
        failures = 0
        while not run.stop.is_set():
            run.wake.clear()
            try:
                more = True  # after a full batch there may be more due right away
                while more and not run.stop.is_set():
                    more = await self.send_due(run.stop) == BATCH
                failures = 0
            except Exception as exc:  # the database is down or busy: keep the task alive, back off
                failures += 1
                logger.warning("mail sender could not read the outbox (%s: %s); will retry", type(exc).__name__, exc)
            idle = self.mail.poll_seconds
            if failures:
                idle = min(idle * 2**failures, MAX_IDLE_AFTER_DB_ERROR)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.wake.wait(), timeout=idle)

    async def send_due(self, stop: asyncio.Event | None = None) -> int:
        """One round: claim and send up to ``BATCH`` due messages, one at a time (until ``stop`` is set).

        Returns:
            How many due rows were found (claimed by this sender or not).
        """
        now = datetime.now(UTC)
        async with self._sessions(write=False) as session:
            ids = list(
                await session.scalars(select(OutboundEmail.id).where(_due(now)).order_by(OutboundEmail.id).limit(BATCH))
            )
        for email_id in ids:
            if stop is not None and stop.is_set():
                break
            row = await self._claim(email_id)
            if row is not None:
                await self._send(row)
        return len(ids)

    async def _claim(self, email_id: int) -> OutboundEmail | None:
        """Take ``email_id`` for one attempt, or ``None`` when another sender has it or it is done."""
        now = datetime.now(UTC)
        lease_end = now + timedelta(seconds=self.mail.smtp_timeout + 60)
        async with self._sessions(write=True) as session:
            result = await session.execute(
                update(OutboundEmail)
                .where(OutboundEmail.id == email_id, _due(now))
                .values(status="sending", attempts=OutboundEmail.attempts + 1, next_attempt_at=lease_end)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return None
            row = await session.scalar(select(OutboundEmail).where(OutboundEmail.id == email_id))
            await session.commit()
        return row

    async def _send(self, row: OutboundEmail) -> None:
        """Hand ``row`` to the transport, log where it went or why not, then record the outcome."""
        try:
            where = await self.transport.deliver(build_message(row, self.mail), row)
        except Exception as exc:
            await self._failed(row, exc)
            return
        verb = "sent via" if where.startswith("smtp://") else "written to"
        logger.info("mail %s (%s) to %s %s %s", row.id, row.kind, row.to_address, verb, where)
        await self._finish(row, status="sent", sent_at=datetime.now(UTC), last_error="", next_attempt_at=None)

    async def _failed(self, row: OutboundEmail, exc: Exception) -> None:
        error = f"{type(exc).__name__}: {exc}"[:500]
        limit = self.mail.max_attempts
        if isinstance(exc, PermanentFailure) or row.attempts >= limit:
            logger.error(
                "mail %s (%s) to %s failed for good after %d attempt(s): %s",
                row.id,
                row.kind,
                row.to_address,
                row.attempts,
                error,
            )
            await self._finish(row, status="failed", last_error=error, next_attempt_at=None)
            return
        delay = backoff(self.mail, row.attempts)
        logger.warning(
            "mail %s (%s) to %s: attempt %d of %d failed: %s; next attempt in %.1f s",
            row.id,
            row.kind,
            row.to_address,
            row.attempts,
            limit,
            error,
            delay.total_seconds(),
        )
        await self._finish(row, status="pending", last_error=error, next_attempt_at=datetime.now(UTC) + delay)

    async def _finish(self, row: OutboundEmail, **values: object) -> None:
        # Fenced by the attempt number: a sender whose lease ran out cannot overwrite a newer attempt.
        async with self._sessions(write=True) as session:
            await session.execute(
                update(OutboundEmail)
                .where(
                    OutboundEmail.id == row.id,
                    OutboundEmail.status == "sending",
                    OutboundEmail.attempts == row.attempts,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
