"""The webhook sender: an asyncio task in each app process that POSTs committed deliveries.

An ``OutboxSender`` (``webshop.db.outbox_sender``, the same machinery as e-mail: claim a due row
with a conditional ``UPDATE`` and a lease, send with no transaction open, record the outcome fenced by
the attempt number), for ``webhook_deliveries`` rows. Each attempt:

1. POSTs the event's JSON body with its signature headers (``webshop.webhooks.signing``) and
   ``content-type: application/json``, with no transaction open, redirects not followed, the whole
   attempt bounded by ``WEBSHOP_WEBHOOK_TIMEOUT`` seconds; the answer's body is not read;
2. records the outcome: a 2xx answer is ``delivered`` (with its status and
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
import ipaddress
import json
import logging
from datetime import UTC, datetime
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from webshop.db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from webshop.db.outbox_sender import Failure, OutboxSender, Pace, RowT
from webshop.security.tls import client_tls_context
from webshop.webhooks.service import UnsafeDestination, public_addresses
from webshop.webhooks.signing import sign

if TYPE_CHECKING:
    from webshop.config import ServerSettings, WebhookSettings
    from webshop.db.engine import ShopAlchemyConfig

logger = logging.getLogger("webshop.webhooks")

USER_AGENT = "webshop-webhooks/1"


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


class WebhookPoster(OutboxSender[RowT]):
    """An outbox sender that POSTs its rows over HTTP at the outbound webhooks' pace (``WebhookSettings``:
    timeout, poll interval, back-off, attempts): the shop's webhooks (``WebhookSender``) and the test
    payment service's events to the shop (``webshop.payments.testing_sender``).

    Subclasses set ``user_agent`` and implement ``_deliver`` with the ``httpx.AsyncClient`` one run shares.
    """

    user_agent: ClassVar[str]

    def __init__(self, webhooks: WebhookSettings, alchemy: ShopAlchemyConfig) -> None:
        lease = webhooks.timeout + 60  # outlasts any send (bounded by the timeout) by a minute
        super().__init__(alchemy, Pace.of(webhooks, lease))
        self.webhooks = webhooks

    async def _open(self) -> httpx.AsyncClient:
        # trust_env=False: no proxy from the environment (for webhooks it would bypass the address checks;
        # the test payment service reaches the shop directly).
        return httpx.AsyncClient(
            follow_redirects=False,
            trust_env=False,
            verify=client_tls_context(),
            timeout=httpx.Timeout(self.webhooks.timeout),
            headers={"user-agent": self.user_agent},
            limits=self._limits(),
        )

    def _limits(self) -> httpx.Limits:
        """The client's connection limits: httpx's defaults (``WebhookSender`` overrides them)."""
        return httpx.Limits(max_connections=100, max_keepalive_connections=20)

    async def _close(self, resources: Any) -> None:
        await resources.aclose()


class WebhookSender(WebhookPoster[WebhookDelivery]):
    """Sends webhook deliveries in the background of one app process (see the module docstring).

    Args:
        webhooks: Timeout, poll interval, back-off, attempts, private addresses.
        alchemy: The app's database config, made by ``create_alchemy_config``.
        server: Whether this is production (where addresses are checked unless ``allow_private``).

    Raises:
        ValueError: ``alchemy`` was not made by ``create_alchemy_config``.
    """

    model: ClassVar[type[Any]] = WebhookDelivery
    done_status: ClassVar[str] = DeliveryStatus.DELIVERED.value
    name: ClassVar[str] = "webhook"
    logger: ClassVar[logging.Logger] = logger
    user_agent: ClassVar[str] = USER_AGENT

    def __init__(
        self, webhooks: WebhookSettings, alchemy: ShopAlchemyConfig, *, server: ServerSettings | None = None
    ) -> None:
        super().__init__(webhooks, alchemy)
        self.checks_addresses = bool(server and server.production) and not webhooks.allow_private

    def _limits(self) -> httpx.Limits:
        """With address checks, requests go to an address with the URL's host as TLS name: connections
        are not reused, so one made for one host name never carries another's request."""
        return httpx.Limits(max_keepalive_connections=0 if self.checks_addresses else 20)

    def _describe(self, row: WebhookDelivery) -> str:
        return f"webhook {row.event_id} ({row.event_type}) to endpoint {row.endpoint_id}"

    async def _deliver(self, row: WebhookDelivery, resources: Any) -> dict[str, Any]:
        """POST ``row`` to its endpoint within the timeout; the 2xx status and the time on success.

        Raises:
            Failure: no 2xx answer; ``response_status`` is the answer's status, or ``None`` when there
                was none (refused, reset, TLS, timed out: retried like a bad answer).
        """
        try:
            async with self._session(write=False) as session:
                endpoint = await session.get(WebhookEndpoint, row.endpoint_id)
            if endpoint is None or not endpoint.is_active:
                raise Failure("The endpoint was disabled before this delivery was sent.", permanent=True)
            status = await asyncio.wait_for(self._post(resources, row, endpoint), self.webhooks.timeout)
        except Failure as failure:
            failure.values.setdefault("response_status", None)
            raise
        except TimeoutError:
            raise Failure(f"No answer within {self.webhooks.timeout:g} s.", response_status=None) from None
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise Failure(message, response_status=None) from exc
        logger.info("webhook %s (%s) delivered to endpoint %s: %s", row.event_id, row.event_type, endpoint.id, status)
        return {"response_status": status, "delivered_at": datetime.now(UTC)}

    async def _post(self, client: httpx.AsyncClient, row: WebhookDelivery, endpoint: WebhookEndpoint) -> int:
        """One POST; returns the 2xx status, or raises ``Failure`` (another status, an unsafe address)."""
        body = body_of(row.payload)
        headers = {"content-type": "application/json", **sign(endpoint.secret, row.event_id, body)}
        url, extensions = endpoint.url, dict[str, Any]()
        if self.checks_addresses:
            try:
                addresses = await public_addresses(endpoint.url, wait=self.webhooks.timeout)
            except UnsafeDestination as exc:  # checked at registration: its DNS answer has changed since
                raise Failure(f"Not sent: {exc.detail}", permanent=True) from exc
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
        message = f"The endpoint answered {response.status_code} {phrase}".rstrip() + "."
        raise Failure(message, response_status=response.status_code)
