"""The background sender of a transactional outbox table: e-mails (``webshop.mail.sender``) and webhook
deliveries (``webshop.webhooks.sender``) leave the same way.

A row is written in the same transaction as what caused it (``pending``), so a rolled-back change
sends nothing and a committed one is never lost. Each app process runs one asyncio task per event loop
that sends the committed rows. One round (``send_due``):

1. read the ids of due rows (``pending`` and due, or ``sending`` whose lease ran out: a process died
   mid-send);
2. claim each with one conditional ``UPDATE ... SET status='sending', attempts=attempts+1,
   next_attempt_at=<lease end> WHERE id=:id AND <still due>`` in its own short write transaction; a
   row count of 0 means another worker got it first. This works the same on PostgreSQL (row lock,
   re-check after the other commits) and SQLite (``BEGIN IMMEDIATE`` serialises writers), so several
   workers never send one row twice while it is in flight;
3. send it with no transaction open (a slow server holds no lock and no connection);
4. record the outcome, fenced by the attempt number so a sender whose lease expired cannot overwrite
   a newer attempt: done; or ``pending`` again with exponential back-off; or ``failed`` after the
   last attempt or a permanent refusal.

Delivery is at least once: if a process dies after the other side accepted a row but before the mark
commits, it is sent again when its lease ends. The sender runs a round at start, after every commit
that queued a row (``webshop.mail.outbox.wake_senders``) and every ``poll_seconds``. Nothing here runs
on a request's path. (The "transactional outbox" pattern: Richardson, *Microservices Patterns*, ch. 3.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from webshop.config import SenderPace
from webshop.db.engine import WRITE_OPTION, create_engine
from webshop.db.models import OutboundEmail, TestPaymentEvent, WebhookDelivery
from webshop.mail.outbox import register_waker, unregister_waker

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from webshop.db.engine import ShopAlchemyConfig

BATCH = 20
"""Rows one round reads at most (a full batch starts another round at once)."""
MAX_BACKOFF = timedelta(hours=6)
"""The longest wait between two attempts of one row."""
MAX_IDLE_AFTER_DB_ERROR = 30.0
"""Seconds the task waits at most between rounds while the database fails."""
STOP_GRACE_SECONDS = 5.0
"""Seconds a send in flight may finish when the app stops."""
PENDING, SENDING, FAILED = "pending", "sending", "failed"

RowT = TypeVar("RowT", OutboundEmail, WebhookDelivery, TestPaymentEvent)
"""An outbox row: ``id``, ``status``, ``attempts``, ``next_attempt_at`` and ``last_error`` columns."""


def backoff(retry_seconds: float, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: ``retry_seconds`` × 2^(attempts-1),
    at most ``MAX_BACKOFF`` (6 h). Capped in seconds before it becomes a ``timedelta``, which would
    overflow past about 2^40 s (any attempt count is safe)."""
    seconds = retry_seconds * 2.0 ** min(max(attempts - 1, 0), 64)
    return timedelta(seconds=min(seconds, MAX_BACKOFF.total_seconds()))


@dataclass(frozen=True)
class Pace(SenderPace):
    """How a sender works through its table: the settings' ``SenderPace`` (poll, retry, attempts) and
    the lease.

    Attributes:
        lease_seconds: How long a claimed row stays ``sending`` before another sender may take it.
    """

    lease_seconds: float

    @classmethod
    def of(cls, settings: SenderPace, lease_seconds: float) -> Pace:
        """The pace ``settings`` (``MailSettings``, ``WebhookSettings``) give, with ``lease_seconds``."""
        return cls(settings.poll_seconds, settings.retry_seconds, settings.max_attempts, lease_seconds)


class Failure(Exception):
    """One attempt failed; a ``permanent`` failure is not retried. ``values`` are columns to record
    with the outcome (a webhook's ``response_status``)."""

    def __init__(self, message: str, *, permanent: bool = False, **values: Any) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.values = values


@dataclass
class _Run:
    """The sender's task on one event loop, with its own database engine and resources.

    An ``AsyncEngine`` must not be shared between event loops (SQLAlchemy's asyncio docs). In
    production the lifespan and the requests share one loop, but a test client runs the lifespan in a
    loop of its own; a small engine per run keeps the sender's connections on its own loop either way.
    """

    wake: asyncio.Event
    stop: asyncio.Event
    engine: AsyncEngine
    resources: Any
    task: asyncio.Task[None] | None = None
    waker: int = 0


class OutboxSender(Generic[RowT]):
    """Sends one outbox table in the background of an app process (see the module docstring).

    Subclasses set ``model``, ``done_status``, ``name`` and ``logger``, and implement ``_deliver``
    (and ``_describe`` for the logs); ``_open``/``_close`` make and free what one run shares between
    sends (a webhook sender's HTTP client); ``_before_round`` does work that precedes each round.

    Args:
        alchemy: The app's database config, made by ``create_alchemy_config`` (the sender opens its own
            short sessions, and a one-connection engine of the same database per event loop).
        pace: Poll interval, back-off, attempts and lease.

    Raises:
        ValueError: ``alchemy`` was not made by ``create_alchemy_config``.
    """

    model: ClassVar[type[Any]]
    done_status: ClassVar[str]
    name: ClassVar[str]
    logger: ClassVar[logging.Logger]

    def __init__(self, alchemy: ShopAlchemyConfig, pace: Pace) -> None:
        if alchemy.database is None:
            raise ValueError(f"the {self.name} sender needs a database config made by create_alchemy_config()")
        self.alchemy = alchemy
        self.database = alchemy.database
        self.pace = pace
        # One run per event loop: an app served twice in one process (two test clients) has two loops.
        self._runs: dict[asyncio.AbstractEventLoop, _Run] = {}

    # --- what a subclass provides -------------------------------------------------------------------

    async def _deliver(self, row: RowT, resources: Any) -> dict[str, Any]:
        """Send ``row`` once; the columns to record with success (``sent_at``...).

        Raises:
            Failure: it was refused (permanently or not); any other exception counts as a failure to retry.
        """
        raise NotImplementedError

    def _describe(self, row: RowT) -> str:
        """``row`` in the logs (``mail 12 (order_confirmation) to ada@example.com``)."""
        return f"{self.name} {row.id}"

    async def _before_round(self) -> None:
        """Work to do at the start of every round, before the due rows are read (default: none; the
        test payment service settles its delayed payments here, queueing their events)."""

    async def _open(self) -> Any:
        """What one run shares between its sends (default: nothing)."""
        return None

    async def _close(self, resources: Any) -> None:
        """Free what ``_open`` made."""

    # --- the task -----------------------------------------------------------------------------------

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
            resources=await self._open(),
        )
        run.waker = register_waker(loop, run.wake)
        run.task = asyncio.create_task(self._loop(run), name=f"webshop-{self.name}-sender")
        self._runs[loop] = run

    async def stop(self) -> None:
        """Stop the task (the app's ``on_shutdown``): let a send in flight finish for a few seconds, then
        cancel. A row cut off here stays ``sending`` until its lease ends and is then sent by any worker."""
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
            await self._close(run.resources)
            await run.engine.dispose()

    def _session(self, *, write: bool) -> AsyncSession:
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
                self.logger.warning(
                    "%s sender could not read its outbox (%s: %s); will retry", self.name, type(exc).__name__, exc
                )
            idle = self.pace.poll_seconds
            if failures:
                idle = min(idle * 2**failures, MAX_IDLE_AFTER_DB_ERROR)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.wake.wait(), timeout=idle)

    def _due(self, now: datetime) -> ColumnElement[bool]:
        model = self.model
        return or_(
            and_(model.status == PENDING, or_(model.next_attempt_at.is_(None), model.next_attempt_at <= now)),
            and_(model.status == SENDING, model.next_attempt_at <= now),
        )

    async def send_due(self, stop: asyncio.Event | None = None) -> int:
        """One round: claim and send up to ``BATCH`` due rows, one at a time (until ``stop`` is set).

        Returns:
            How many due rows were found (claimed by this sender or not).
        """
        await self._before_round()
        now = datetime.now(UTC)
        async with self._session(write=False) as session:
            ids = list(
                await session.scalars(select(self.model.id).where(self._due(now)).order_by(self.model.id).limit(BATCH))
            )
        if not ids:
            return 0
        run = self._runs.get(asyncio.get_running_loop())
        resources = run.resources if run is not None else await self._open()
        try:
            for row_id in ids:
                if stop is not None and stop.is_set():
                    break
                row = await self._claim(row_id)
                if row is not None:
                    await self._attempt(row, resources)
        finally:
            if run is None:
                await self._close(resources)
        return len(ids)

    async def _claim(self, row_id: int) -> RowT | None:
        """Take ``row_id`` for one attempt, or ``None`` when another sender has it or it is done."""
        now = datetime.now(UTC)
        lease_end = now + timedelta(seconds=self.pace.lease_seconds)
        model = self.model
        async with self._session(write=True) as session:
            result = await session.execute(
                update(model)
                .where(model.id == row_id, self._due(now))
                .values(status=SENDING, attempts=model.attempts + 1, next_attempt_at=lease_end)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return None
            row: RowT | None = await session.scalar(select(model).where(model.id == row_id))
            await session.commit()
        return row

    async def _attempt(self, row: RowT, resources: Any) -> None:
        """Deliver ``row`` and record the outcome."""
        try:
            values = await self._deliver(row, resources)
        except Failure as failure:
            await self._failed(row, failure)
            return
        except Exception as exc:  # refused, reset, timed out: retried
            await self._failed(row, Failure(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
            return
        await self._finish(row, status=self.done_status, last_error="", next_attempt_at=None, **values)

    async def _failed(self, row: RowT, failure: Failure) -> None:
        error = str(failure)[:500]
        limit = self.pace.max_attempts
        if failure.permanent or row.attempts >= limit:
            self.logger.error("%s failed for good after %d attempt(s): %s", self._describe(row), row.attempts, error)
            await self._finish(row, status=FAILED, last_error=error, next_attempt_at=None, **failure.values)
            return
        delay = backoff(self.pace.retry_seconds, row.attempts)
        self.logger.warning(
            "%s: attempt %d of %d failed: %s; next attempt in %.1f s",
            self._describe(row),
            row.attempts,
            limit,
            error,
            delay.total_seconds(),
        )
        next_attempt = datetime.now(UTC) + delay
        await self._finish(row, status=PENDING, last_error=error, next_attempt_at=next_attempt, **failure.values)

    async def _finish(self, row: RowT, **values: object) -> None:
        # Fenced by the attempt number: a sender whose lease ran out cannot overwrite a newer attempt.
        model = self.model
        async with self._session(write=True) as session:
            await session.execute(
                update(model)
                .where(model.id == row.id, model.status == SENDING, model.attempts == row.attempts)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
