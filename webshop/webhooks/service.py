"""``WebhookService``: the endpoints admins register, their delivery logs, and test events.

The rules, enforced here once for the admin pages and the API:

- only platform admins manage endpoints (the routes' guards say so too);
- a URL is ``http`` or ``https`` with a host and no user name or password in it;
- in production (``WEBSHOP_ENV=production``) a URL whose host resolves to a loopback, private,
  link-local, shared, reserved or multicast address is refused, unless ``WEBSHOP_WEBHOOK_ALLOW_PRIVATE``
  is on (server-side request forgery: OWASP SSRF Prevention Cheat Sheet, "application layer" defences).
  The sender checks again before every attempt and connects to the address it checked, so a host
  whose DNS answer changes after registration (DNS rebinding) reaches nothing inside either;
- events are names of ``WebhookEvent``; an unknown name is refused with the list of known ones;
- a secret given is at least 24 characters (``webshop.webhooks.signing.secret_problem``); none given,
  a ``whsec_`` secret is generated;
- every change is in the audit trail (entity ``webhook``), the secret never: only that it changed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.audit.service import Audited, diff
from webshop.config import ServerSettings, WebhookSettings
from webshop.db.models import DeliveryStatus, User, WebhookDelivery, WebhookEndpoint
from webshop.db.repository import repository_for
from webshop.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from webshop.mail.outbox import mark_queued
from webshop.webhooks.events import event_body, new_event_id
from webshop.webhooks.schemas import EVENT_NAMES, TEST_EVENT, WebhookPatch, WebhookWrite
from webshop.webhooks.signing import generate_secret, secret_problem

MISSING = "There is no such webhook endpoint."
DNS_TIMEOUT = 5.0
"""Seconds a registration waits for the URL's host to resolve (production's address check)."""
FIELD_MESSAGES = {
    "url": "Enter an http:// or https:// URL without spaces (at most 500 characters).",
    "events": "Choose at least one event.",
    "secret": "Use a secret of 24 to 200 printable characters without spaces, or leave it empty.",
    "description": "Keep the description to one line of at most 200 characters.",
    "is_active": "Say whether the endpoint is active (true or false).",
}
"""What a field that breaks ``WebhookWrite``'s limits says (msgspec's own message is for developers)."""

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeDestination(ValidationFailed):
    """A webhook URL's host resolves to an address the shop must not call (or does not resolve at all)."""


def blocked_address(address: IPAddress) -> bool:
    """True for an address a webhook must not reach: anything not globally routable (loopback, private,
    link-local, shared 100.64/10, documentation, reserved, unspecified), multicast, or an IPv4-mapped
    IPv6 address that carries one of those: IPv4-mapped, IPv4-compatible (``::a.b.c.d``), 6to4, Teredo
    or NAT64 (``64:ff9b::/96``, ``64:ff9b:1::/48``) (OWASP SSRF Prevention Cheat Sheet)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return blocked_address(embedded)
    return not address.is_global or address.is_multicast


_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address reaches through a translation or tunnel, if it is one of those."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # (server, client): the client is where the traffic goes
    if any(address in network for network in _NAT64) or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def public_addresses(url: str, *, wait: float = DNS_TIMEOUT) -> list[IPAddress]:
    """The addresses ``url``'s host resolves to, once every one of them is public.

    Args:
        url: An ``http(s)`` URL with a host (an IP literal resolves to itself).
        wait: Seconds to wait for the resolver.

    Returns:
        The addresses, in the resolver's order (at least one).

    Raises:
        UnsafeDestination: the host does not resolve, or one of its addresses is ``blocked_address``.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = await asyncio.wait_for(
            asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM), wait
        )
    except (OSError, TimeoutError, UnicodeError) as exc:
        message = f"The host {host} could not be resolved ({type(exc).__name__})."
        raise UnsafeDestination(message, field_errors={"url": message}) from exc
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])  # an IPv6 zone id is not part of it
        if address not in addresses:
            addresses.append(address)
    bad = [str(a) for a in addresses if blocked_address(a)]
    if bad or not addresses:
        message = (
            f"The host {host} resolves to a private, loopback or reserved address ({', '.join(bad) or 'none'}); "
            "webhooks may only call public addresses (WEBSHOP_WEBHOOK_ALLOW_PRIVATE allows others)."
        )
        raise UnsafeDestination(message, field_errors={"url": message})
    return addresses


def _field_type(name: str) -> Any:
    """The type of ``WebhookWrite``'s field ``name``, its ``Annotated`` constraints included."""
    return next(field.type for field in msgspec.structs.fields(WebhookWrite) if field.name == name)


def clean_url(value: Any) -> str:
    """``value`` trimmed, once it is an ``http``/``https`` URL with a host and no credentials.

    Raises:
        ValidationFailed: it is not (``field_errors["url"]`` says why).
    """

    def refuse(message: str) -> ValidationFailed:
        return ValidationFailed(message, field_errors={"url": message})

    url = value.strip() if isinstance(value, str) else ""
    if not url:
        raise refuse("Enter the URL that receives the events.")
    try:
        msgspec.convert(url, _field_type("url"))
        parts = urlsplit(url)
        port = parts.port
    except (msgspec.ValidationError, ValueError):
        # urlsplit itself refuses some (a stray "[" or "]" is an unclosed IPv6 address): read the scheme.
        if url.partition(":")[0].lower() not in ("http", "https"):
            raise refuse("Use an http:// or https:// URL.") from None
        raise refuse(FIELD_MESSAGES["url"]) from None
    if not parts.hostname:
        raise refuse("Enter a URL with a host name, like https://example.com/hooks.")
    if parts.username is not None or parts.password is not None:
        raise refuse("Leave user names and passwords out of the URL: the signature tells receivers it is the shop.")
    if port == 0:
        raise refuse("Enter a URL with a valid port.")
    return url


def clean_events(value: Any) -> list[str]:
    """``value`` (a list of names, or one name) as known event names in ``EVENT_NAMES`` order.

    Raises:
        ValidationFailed: none chosen, or unknown names (the message lists the known ones).
    """
    names = [value] if isinstance(value, str) else list(value or [])
    unknown = [str(name) for name in names if name not in EVENT_NAMES]
    if unknown:
        message = f"Unknown event {', '.join(unknown)}. The events are: {', '.join(EVENT_NAMES)}."
        raise ValidationFailed(message, field_errors={"events": message})
    if not names:
        raise ValidationFailed(FIELD_MESSAGES["events"], field_errors={"events": FIELD_MESSAGES["events"]})
    return [name for name in EVENT_NAMES if name in names]


def _clean(raw: Mapping[str, Any], *, partial: bool) -> dict[str, Any]:
    """The fields of ``raw`` checked and normalised; with ``partial`` (a patch) fields left out stay out.

    Raises:
        ValidationFailed: ``field_errors`` names every field that breaks a rule, each with its message.
    """
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    required = () if partial else ("url", "events")
    for name in ("url", "events", "secret", "description", "is_active"):
        if name not in raw or raw[name] is msgspec.UNSET:
            if name in required:
                errors[name] = FIELD_MESSAGES[name] if name != "url" else "Enter the URL that receives the events."
            continue
        value = raw[name]
        try:
            if name == "url":
                values[name] = clean_url(value)
            elif name == "events":
                values[name] = clean_events(value)
            elif name == "secret":
                if value is None or (isinstance(value, str) and not value.strip()):
                    if partial:
                        continue  # an empty "new secret" field keeps the secret
                    values[name] = generate_secret()
                    continue
                secret = str(value).strip()
                if (problem := secret_problem(secret)) is not None or len(secret) > 200:
                    raise ValidationFailed(problem or FIELD_MESSAGES["secret"], field_errors={"secret": ""})
                values[name] = secret
            elif name == "description":
                values[name] = msgspec.convert(" ".join(str(value).split()), _field_type("description"))
            else:
                values[name] = msgspec.convert(value, bool)
        except ValidationFailed as exc:
            errors[name] = exc.field_errors.get(name) or exc.detail
        except msgspec.ValidationError:
            errors[name] = FIELD_MESSAGES[name]
    if errors:
        first = next(iter(errors.values()))
        detail = first if len(errors) == 1 else "The endpoint was not saved. Please correct the marked fields."
        raise ValidationFailed(detail, field_errors=errors)
    return values


class WebhookService(Audited, SQLAlchemyAsyncRepositoryService[WebhookEndpoint]):
    """Webhook endpoints: register, change, delete, their deliveries, and test events."""

    repository_type = repository_for(WebhookEndpoint)

    def __init__(
        self,
        session: AsyncSession,
        *,
        webhooks: WebhookSettings | None = None,
        server: ServerSettings | None = None,
        **repo_kwargs: Any,
    ) -> None:
        """A service on ``session``; ``server`` says whether this is production and ``webhooks`` whether
        private addresses are allowed there (both given by the app's provider; none: development)."""
        super().__init__(session=session, **repo_kwargs)
        self.webhooks = webhooks
        self.server = server

    @property
    def checks_addresses(self) -> bool:
        """True when URLs must resolve to public addresses: production without ``allow_private``."""
        production = self.server is not None and self.server.production
        return production and not (self.webhooks is not None and self.webhooks.allow_private)

    # --- reads ---------------------------------------------------------------------------------

    async def list_endpoints(self) -> list[WebhookEndpoint]:
        """Every endpoint, oldest first."""
        return list(await self.repository.session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)))

    async def get_endpoint(self, endpoint_id: int) -> WebhookEndpoint:
        """Endpoint ``endpoint_id``.

        Raises:
            NotFoundError: there is no such endpoint (advanced-alchemy's, answered as a 404 with that message).
        """
        return await self.get(endpoint_id, error_messages={"not_found": MISSING})

    async def deliveries(
        self, endpoint_id: int, *, limit: int = 25, offset: int = 0, before_id: int | None = None
    ) -> tuple[list[WebhookDelivery], int]:
        """A page of endpoint ``endpoint_id``'s deliveries, newest (highest id) first, and how many it has
        in all; ``offset`` skips rows (the page's list), ``before_id`` starts below that id (the API's cursor).

        Raises:
            NotFound: there is no such endpoint.
        """
        await self.get_endpoint(endpoint_id)
        session = self.repository.session
        total = await session.scalar(
            select(func.count()).select_from(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        below = [WebhookDelivery.id < before_id] if before_id is not None else []
        rows = await session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id, *below)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return list(rows), int(total or 0)

    # --- writes --------------------------------------------------------------------------------

    async def create_endpoint(self, actor: User | None, data: WebhookWrite | Mapping[str, Any]) -> WebhookEndpoint:
        """Register an endpoint (admins; ``actor`` ``None`` is the command line); committed.

        Raises:
            PermissionDenied: ``actor`` is not an admin.
            ValidationFailed: a field breaks a rule (``field_errors`` names it; see the module docstring).
        """
        self._check_admin(actor)
        raw = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else dict(data)
        raw.setdefault("secret", None)
        values = _clean(raw, partial=False)
        await self._check_destination(values["url"])
        endpoint = WebhookEndpoint(
            url=values["url"],
            events=values["events"],
            secret=values["secret"],
            description=values.get("description", ""),
            is_active=values.get("is_active", True),
        )
        session = self.repository.session
        session.add(endpoint)
        await session.flush()
        shown = {key: value for key, value in values.items() if key != "secret"}
        self.audit.record(
            actor,
            "webhook",
            endpoint.id,
            "create",
            summary=f"Registered webhook {endpoint.url}",
            changes=diff({}, shown),
        )
        await session.commit()
        return endpoint

    async def update_endpoint(
        self, actor: User | None, endpoint_id: int, patch: WebhookPatch | Mapping[str, Any]
    ) -> WebhookEndpoint:
        """Change the fields given (enable or disable with ``is_active``; a new ``secret`` replaces the old
        one at once); committed.

        Raises:
            PermissionDenied: ``actor`` is not an admin.
            NotFound: there is no such endpoint.
            ValidationFailed: a field breaks a rule.
        """
        self._check_admin(actor)
        raw = msgspec.to_builtins(patch) if isinstance(patch, msgspec.Struct) else dict(patch)
        values = _clean(raw, partial=True)
        if "url" in values:  # before the first query: a POST's transaction takes SQLite's write lock
            await self._check_destination(values["url"])
        endpoint = await self.get_endpoint(endpoint_id)
        before = {key: getattr(endpoint, key) for key in values}
        for key, value in values.items():
            setattr(endpoint, key, value)
        changes = diff(
            {k: v for k, v in before.items() if k != "secret"}, {k: v for k, v in values.items() if k != "secret"}
        )
        if "secret" in values and values["secret"] != before["secret"]:
            changes["secret"] = ["(hidden)", "(changed)"]
        if changes:
            action = "update"
            if set(changes) == {"is_active"}:
                action = "enable" if endpoint.is_active else "disable"
            verb = {"update": "Changed", "enable": "Enabled", "disable": "Disabled"}[action]
            self.audit.record(
                actor, "webhook", endpoint.id, action, summary=f"{verb} webhook {endpoint.url}", changes=changes
            )
        await self.repository.session.commit()
        return endpoint

    async def delete_endpoint(self, actor: User | None, endpoint_id: int) -> None:
        """Delete an endpoint and its delivery log (pending deliveries are not sent); committed.

        Raises:
            PermissionDenied: ``actor`` is not an admin.
            NotFound: there is no such endpoint.
        """
        self._check_admin(actor)
        endpoint = await self.get_endpoint(endpoint_id)
        session = self.repository.session
        await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
        await session.delete(endpoint)
        self.audit.record(
            actor,
            "webhook",
            endpoint.id,
            "delete",
            summary=f"Deleted webhook {endpoint.url}",
            changes={"url": [endpoint.url, None]},
        )
        await session.commit()

    async def send_test(self, actor: User | None, endpoint_id: int) -> WebhookDelivery:
        """Queue a ``webhook.test`` event to endpoint ``endpoint_id`` only; committed (the sender wakes).

        Its body is like every event's (``{"id", "type": "webhook.test", "created_at", "data"}``, see
        ``webshop.webhooks.events.event_body``); ``data`` is ``{"endpoint_id", "message"}``.

        Raises:
            PermissionDenied: ``actor`` is not an admin.
            NotFound: there is no such endpoint.
            Conflict: the endpoint is disabled (it receives nothing until it is enabled).
        """
        self._check_admin(actor)
        endpoint = await self.get_endpoint(endpoint_id)
        if not endpoint.is_active:
            raise Conflict("This endpoint is disabled: enable it to send it a test event.")
        event_id = new_event_id()
        data = {"endpoint_id": endpoint.id, "message": "A test event: your endpoint receives the shop's webhooks."}
        delivery = WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event_id,
            event_type=TEST_EVENT,
            payload=event_body(event_id, TEST_EVENT, data),
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            last_error="",
        )
        session = self.repository.session
        session.add(delivery)
        await session.flush()
        mark_queued(session)
        await session.commit()
        return delivery

    async def redeliver(self, actor: User | None, endpoint_id: int, delivery_id: int) -> WebhookDelivery:
        """Queue delivery ``delivery_id`` of endpoint ``endpoint_id`` again, delivered or given up, with a
        new round of attempts; committed (the sender wakes). GitHub's "Redeliver", Stripe's "Resend": the
        same event with the same body and ``webhook-id`` (Standard Webhooks), so a receiver that keeps the
        ids it has handled takes it once.

        Raises:
            PermissionDenied: ``actor`` is not an admin.
            NotFound: there is no such endpoint, or it has no such delivery.
            Conflict: the endpoint is disabled, or the delivery is still waiting or being sent.
        """
        self._check_admin(actor)
        endpoint = await self.get_endpoint(endpoint_id)
        session = self.repository.session
        delivery: WebhookDelivery | None = await session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.endpoint_id != endpoint.id:
            raise NotFound("This endpoint has no such delivery.")
        if not endpoint.is_active:
            raise Conflict("This endpoint is disabled: enable it to send it events again.")
        if delivery.status in (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value):
            raise Conflict("This delivery is still to be sent: it needs no second try.")
        delivery.status = DeliveryStatus.PENDING.value
        delivery.attempts = 0
        delivery.next_attempt_at = datetime.now(UTC)
        delivery.delivered_at = None
        await session.flush()
        mark_queued(session)
        await session.commit()
        return delivery

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _check_admin(actor: User | None) -> None:
        if actor is not None and not actor.is_admin:
            raise PermissionDenied("Only a platform admin can manage webhooks.")

    async def _check_destination(self, url: str) -> None:
        """In production (without ``allow_private``), refuse a URL whose host is not public."""
        if self.checks_addresses:
            await public_addresses(url)


__all__ = [
    "UnsafeDestination",
    "WebhookService",
    "blocked_address",
    "clean_events",
    "clean_url",
    "public_addresses",
]
