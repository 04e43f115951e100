"""The webhook sender: an asyncio task in each app process that POSTs committed deliveries.

The same outbox machinery as e-mail (``webshop.mail.sender``), for ``webhook_deliveries`` rows:

1. read the ids of due rows (``pending`` and due, or ``sending`` whose lease ran out: a process died
   mid-send);
2. claim each with one conditional ``UPDATE ... SET status='sending', attempts=attempts+1,
   next_attempt_at=<lease end> WHERE id=:id AND <still due>`` in its own short write transaction (a row
   count of 0: another worker has it), on PostgreSQL and SQLite alike;
3. POST the event's JSON body with its signature headers (``webshop.webhooks.signing``) and
   ``content-type: application/json``, with no transaction open, redirects not followed, the whole
   attempt bounded by ``WEBSHOP_WEBHOOK_TIMEOUT`` seconds; the answer's body is not read;
4. record the outcome, fenced by the attempt number: a 2xx answer is ``delivered`` (with its status and
   ``delivered_at``); anything else (another status, a refused connection, a timeout) is ``pending``
   again after ``retry_seconds`` × 2^(attempts-1) (at most 6 h), or ``failed`` after
   ``WEBSHOP_WEBHOOK_MAX_ATTEMPTS`` attempts. ``response_status`` and ``last_error`` say what happened.

In production without ``WEBSHOP_WEBHOOK_ALLOW_PRIVATE`` every attempt first resolves the URL's host
and fails the delivery at once (``failed``, with the reason in ``last_error``) when an address is not
public; otherwise it connects to the address it checked (the ``Host`` header and the TLS server name
stay the URL's), so a DNS answer that changes between the check and the connection (DNS rebinding)
cannot send it inside (OWASP SSRF Prevention Cheat Sheet).

Delivery is at least once: the event id (``webhook-id``) stays the same on every attempt, so a
receiver that got an event whose ``delivered`` mark was lost de-duplicates it. A disabled endpoint's
due deliveries fail with that reason instead of waiting. The sender runs a round at start, after
every commit that queued a delivery or an e-mail (``webshop.mail.outbox.wake_senders``) and every
``WEBSHOP_WEBHOOK_POLL_SECONDS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from webshop.db.engine import WRITE_OPTION, create_engine
from webshop.db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webshop.mail.outbox import register_waker, unregister_waker
from webshop.webhooks.service import UnsafeDestination, public_addresses
from webshop.webhooks.signing import sign

if TYPE_CHECKING:
    from sqlalchemy.sql.elements import ColumnElement

    from webshop.config import ServerSettings, WebhookSettings
    from webshop.db.engine import ShopAlchemyConfig

logger = logging.getLogger("webshop.webhooks")

BATCH = 20
MAX_BACKOFF = timedelta(hours=6)
MAX_IDLE_AFTER_DB_ERROR = 30.0
STOP_GRACE_SECONDS = 5.0
USER_AGENT = "webshop-webhooks/1"
PENDING, SENDING = DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value


def backoff(webhooks: WebhookSettings, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: ``retry_seconds`` × 2^(attempts-1),
    at most 6 h."""
    seconds = webhooks.retry_seconds * 2 ** max(attempts - 1, 0)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def body_of(payload: dict[str, Any]) -> bytes:
    """The request body of a delivery: its stored JSON, compact, UTF-8 (the bytes that are signed)."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def pinned(
    url: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """``url`` with its host replaced by ``address``, plus the ``Host`` header and (https) the TLS
    server name of the original host: a request that reaches the checked address and nothing else.

    Returns:
        ``(url, headers, httpx request extensions)``.
    """
    parts = urlsplit(url)
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = host + (f":{parts.port}" if parts.port else "")
    original = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    extensions: dict[str, Any] = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), {"host": original}, extensions


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(
            WebhookDelivery.status == PENDING,
            or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
        ),
        and_(WebhookDelivery.status == SENDING, WebhookDelivery.next_attempt_at <= now),
    )


class _Failed(Exception):
    """One attempt failed: ``permanent`` ones are not retried; ``status`` is the answer's, if any."""

    def __init__(self, message: str, *, status: int | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.permanent = permanent


@dataclass
class _Run:
    """The sender's task on one event loop, with its own database engine and HTTP client (neither may
    be shared between event loops; see ``webshop.mail.sender._Run``)."""

    wake: asyncio.Event
    stop: asyncio.Event
    engine: AsyncEngine
    client: httpx.AsyncClient
    task: asyncio.Task[None] | None = None
    waker: int = 0


class WebhookSender:
    """Sends webhook deliveries in the background of one app process (see the module docstring).

    Args:
        webhooks: Timeout, poll interval, back-off, attempts, private addresses.
        alchemy: The app's database config, made by ``create_alchemy_config``.
        server: Whether this is production (where addresses are checked unless ``allow_private``).
    """

    def __init__(
        self, webhooks: WebhookSettings, alchemy: ShopAlchemyConfig, *, server: ServerSettings | None = None
    ) -> None:
        if alchemy.database is None:
            raise ValueError("the webhook sender needs a database config made by create_alchemy_config()")
        self.webhooks = webhooks
        self.alchemy = alchemy
        self.database = alchemy.database
        self.checks_addresses = bool(server and server.production) and not webhooks.allow_private
        self._runs: dict[asyncio.AbstractEventLoop, _Run] = {}

    def _new_client(self) -> httpx.AsyncClient:
        # trust_env=False: no proxy from the environment, which would bypass the address checks. With the
        # checks, requests go to an address with the URL's host as TLS name: connections are not reused,
        # so one made for one host name never carries another's request.
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            timeout=httpx.Timeout(self.webhooks.timeout),
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(max_keepalive_connections=0 if self.checks_addresses else 20),
        )

    async def start(self) -> None:
        """Start the background task on the running loop (the app's ``on_startup``)."""
        loop = asyncio.get_running_loop()
        if loop in self._runs:
            return
        run = _Run(
            wake=asyncio.Event(),
            stop=asyncio.Event(),
            engine=create_engine(replace(self.database, pool_size=1)),
            client=self._new_client(),
        )
        run.waker = register_waker(loop, run.wake)
        run.task = asyncio.create_task(self._loop(run), name="webshop-webhook-sender")
        self._runs[loop] = run

    async def stop(self) -> None:
        """Stop the task (the app's ``on_shutdown``): a POST in flight gets a few seconds, then is cancelled
        (its delivery stays ``sending`` until its lease ends and is then sent again by any worker)."""
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
            await run.client.aclose()
            await run.engine.dispose()

    def _session(self, *, write: bool) -> AsyncSession:
        """A new session on this loop's run engine, else (``send_due`` called directly) the app's config."""
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
                more = True
                while more and not run.stop.is_set():
                    more = await self.send_due(run.stop) == BATCH
                failures = 0
            except Exception as exc:  # the database is down or busy: keep the task alive, back off
                failures += 1
                logger.warning("webhook sender could not read its deliveries (%s: %s)", type(exc).__name__, exc)
            idle = self.webhooks.poll_seconds
            if failures:
                idle = min(idle * 2**failures, MAX_IDLE_AFTER_DB_ERROR)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.wake.wait(), timeout=idle)

    async def send_due(self, stop: asyncio.Event | None = None) -> int:
        """One round: claim and send up to ``BATCH`` due deliveries, one at a time (until ``stop`` is set).

        Returns:
            How many due rows were found (claimed by this sender or not).
        """
        now = datetime.now(UTC)
        async with self._session(write=False) as session:
            ids = list(
                await session.scalars(
                    select(WebhookDelivery.id).where(_due(now)).order_by(WebhookDelivery.id).limit(BATCH)
                )
            )
        if not ids:
            return 0
        run = self._runs.get(asyncio.get_running_loop())
        async with contextlib.AsyncExitStack() as stack:
            client = run.client if run is not None else await stack.enter_async_context(self._new_client())
            for delivery_id in ids:
                if stop is not None and stop.is_set():
                    break
                claimed = await self._claim(delivery_id)
                if claimed is not None:
                    await self._send(client, *claimed)
        return len(ids)

    async def _claim(self, delivery_id: int) -> tuple[WebhookDelivery, WebhookEndpoint | None] | None:
        """Take ``delivery_id`` for one attempt (with its endpoint), or ``None`` when another sender has it."""
        now = datetime.now(UTC)
        lease_end = now + timedelta(seconds=self.webhooks.timeout + 60)
        async with self._session(write=True) as session:
            result = await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, _due(now))
                .values(status=SENDING, attempts=WebhookDelivery.attempts + 1, next_attempt_at=lease_end)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                await session.rollback()
                return None
            row = await session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id))
            endpoint = await session.get(WebhookEndpoint, row.endpoint_id) if row is not None else None
            await session.commit()
        return (row, endpoint) if row is not None else None

    async def _send(self, client: httpx.AsyncClient, row: WebhookDelivery, endpoint: WebhookEndpoint | None) -> None:
        """POST ``row`` to its endpoint and record how it went."""
        try:
            if endpoint is None or not endpoint.is_active:
                raise _Failed("The endpoint was disabled before this delivery was sent.", permanent=True)
            status = await asyncio.wait_for(self._post(client, row, endpoint), self.webhooks.timeout)
        except _Failed as failure:
            await self._failed(row, failure)
            return
        except TimeoutError:
            await self._failed(row, _Failed(f"No answer within {self.webhooks.timeout:g} s."))
            return
        except Exception as exc:  # refused, reset, TLS, a URL httpx cannot use: retried like a bad answer
            await self._failed(row, _Failed(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__))
            return
        logger.info("webhook %s (%s) delivered to endpoint %s: %s", row.event_id, row.event_type, endpoint.id, status)
        await self._finish(
            row,
            status=DeliveryStatus.DELIVERED.value,
            response_status=status,
            delivered_at=datetime.now(UTC),
            last_error="",
            next_attempt_at=None,
        )

    async def _post(self, client: httpx.AsyncClient, row: WebhookDelivery, endpoint: WebhookEndpoint) -> int:
        """One POST; returns the 2xx status, or raises ``_Failed`` (another status, an unsafe address)."""
        body = body_of(row.payload)
        headers = {"content-type": "application/json", **sign(endpoint.secret, row.event_id, body)}
        url, extensions = endpoint.url, dict[str, Any]()
        if self.checks_addresses:
            try:
                addresses = await public_addresses(endpoint.url, wait=self.webhooks.timeout)
            except UnsafeDestination as exc:  # checked at registration: its DNS answer has changed since
                raise _Failed(f"Not sent: {exc.detail}", permanent=True) from exc
            url, host, extensions = pinned(endpoint.url, addresses[0])
            headers.update(host)
        request = client.build_request("POST", url, content=body, headers=headers, extensions=extensions)
        response = await client.send(request, stream=True)  # the answer's body is never read
        await response.aclose()
        if 200 <= response.status_code < 300:
            return response.status_code
        try:
            phrase = HTTPStatus(response.status_code).phrase
        except ValueError:
            phrase = ""
        raise _Failed(
            f"The endpoint answered {response.status_code} {phrase}".rstrip() + ".", status=response.status_code
        )

    async def _failed(self, row: WebhookDelivery, failure: _Failed) -> None:
        error = str(failure)[:500]
        limit = self.webhooks.max_attempts
        if failure.permanent or row.attempts >= limit:
            logger.error(
                "webhook %s (%s) to endpoint %s failed for good after %d attempt(s): %s",
                row.event_id,
                row.event_type,
                row.endpoint_id,
                row.attempts,
                error,
            )
            await self._finish(
                row,
                status=DeliveryStatus.FAILED.value,
                response_status=failure.status,
                last_error=error,
                next_attempt_at=None,
            )
            return
        delay = backoff(self.webhooks, row.attempts)
        logger.warning(
            "webhook %s (%s) to endpoint %s: attempt %d of %d failed: %s; next attempt in %.1f s",
            row.event_id,
            row.event_type,
            row.endpoint_id,
            row.attempts,
            limit,
            error,
            delay.total_seconds(),
        )
        await self._finish(
            row,
            status=PENDING,
            response_status=failure.status,
            last_error=error,
            next_attempt_at=datetime.now(UTC) + delay,
        )

    async def _finish(self, row: WebhookDelivery, **values: object) -> None:
        # Fenced by the attempt number: a sender whose lease ran out cannot overwrite a newer attempt.
        async with self._session(write=True) as session:
            await session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == row.id,
                    WebhookDelivery.status == SENDING,
                    WebhookDelivery.attempts == row.attempts,
                )
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
