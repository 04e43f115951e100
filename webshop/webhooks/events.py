"""Queueing webhook events: one ``WebhookDelivery`` per subscribed endpoint, in the caller's transaction.

A domain service calls ``queue_event`` inside the transaction of the change the event reports (an
order placed, a product updated). If that transaction rolls back, the deliveries vanish with it and
nothing is sent; once it commits they are durable, and the background sender
(``webshop.webhooks.sender``) sends them even if the process dies right after (the transactional
outbox pattern, as for e-mail in ``webshop.mail.outbox``).

Every delivery of one event carries the same ``event_id`` (``evt_`` + 32 hex digits), kept across
retries, so a receiver de-duplicates by it (Standard Webhooks: ``webhook-id``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from webshop.db.models import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webshop.mail.outbox import mark_queued

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def new_event_id() -> str:
    """A fresh event id: ``evt_`` and 32 hex digits (a random UUID)."""
    return f"evt_{uuid.uuid4().hex}"


def event_body(event_id: str, event: WebhookEvent | str, data: dict[str, Any]) -> dict[str, Any]:
    """The JSON body every endpoint receives: ``{"id", "type", "created_at" (RFC 3339, UTC), "data"}``."""
    return {
        "id": event_id,
        "type": str(event),
        "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }


async def queue_event(session: AsyncSession, event: WebhookEvent, data: dict[str, Any]) -> list[WebhookDelivery]:
    """Add one pending delivery of ``event`` for each active endpoint subscribed to it.

    Args:
        session: The session of the change the event reports; the caller commits (or rolls back,
            and then nothing is sent).
        event: What happened (``WebhookEvent.ORDER_PLACED``...).
        data: The event's object as JSON-ready values (ids, numbers, strings; money in minor units
            with its currency).

    Returns:
        The deliveries added (none when no endpoint listens: the common case costs one small query).
    """
    endpoints = list(
        await session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.is_active.is_(True)).order_by(WebhookEndpoint.id)
        )
    )
    listening = [endpoint for endpoint in endpoints if str(event) in (endpoint.events or [])]
    if not listening:
        return []
    event_id = new_event_id()
    body = event_body(event_id, event, data)
    deliveries = [
        WebhookDelivery(
            endpoint_id=endpoint.id,
            event_id=event_id,
            event_type=str(event),
            payload=body,
            status=DeliveryStatus.PENDING.value,
            attempts=0,
            last_error="",
        )
        for endpoint in listening
    ]
    session.add_all(deliveries)
    mark_queued(session)
    return deliveries
