"""Outbound webhooks: the endpoints an admin registers, and one delivery row per event and endpoint.

A delivery is written in the same transaction as the event that causes it (the transactional outbox,
as for e-mail in ``operations.OutboundEmail``) and sent after the commit by the background sender in
``webshop.webhooks.sender``, with retries and back-off. ``event_id`` is stable across retries, so a
receiver de-duplicates by it (the Standard Webhooks specification's ``webhook-id``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, true
from sqlalchemy.orm import Mapped, mapped_column

WEBHOOK_URL = 500
WEBHOOK_SECRET = 200


class WebhookEvent(enum.StrEnum):
    """The events an endpoint may subscribe to (their names are part of the API)."""

    ORDER_PLACED = "order.placed"
    ORDER_PAID = "order.paid"
    ORDER_CANCELLED = "order.cancelled"
    ORDER_REFUNDED = "order.refunded"
    ORDER_SHIPPED = "order.shipped"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    PRODUCT_CREATED = "product.created"
    PRODUCT_UPDATED = "product.updated"
    PRODUCT_DELETED = "product.deleted"
    STOCK_LOW = "stock.low"


class DeliveryStatus(enum.StrEnum):
    """Where one delivery is: waiting (or waiting to retry), in flight, delivered, or given up."""

    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class WebhookEndpoint(BigIntAuditBase):
    """A URL that receives the ``events`` it subscribes to, each body signed with ``secret`` (HMAC-SHA256)."""

    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(WEBHOOK_URL))
    secret: Mapped[str] = mapped_column(String(WEBHOOK_SECRET))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    description: Mapped[str] = mapped_column(String(200), default="")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())


class WebhookDelivery(BigIntAuditBase):
    """One event for one endpoint: the signed body to send and how sending it went.

    ``payload`` is the JSON body as sent (``{"id", "type", "created_at", "data"}``); ``attempts``,
    ``next_attempt_at``, ``last_error`` and ``response_status`` record the tries.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
        Index("uq_webhook_deliveries_endpoint_event", "endpoint_id", "event_id", unique=True),
    )

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str] = mapped_column(String(500), default="")
