"""Webhook shapes: what ``WebhookService`` takes (also the API's request bodies) and what the API returns.

The constraints are the API's decoding rules, stated in the OpenAPI schema; ``WebhookService`` checks
them again for the admin pages' forms (``validated``), with the rules a schema cannot state (where the
URL's host resolves to, a ``whsec_`` secret's base64).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from webshop.api.schemas import from_row
from webshop.db.models.webhooks import WEBHOOK_SECRET, WEBHOOK_URL, WebhookEvent
from webshop.text import PATTERN_MESSAGES, Line

if TYPE_CHECKING:
    from webshop.db.models import WebhookDelivery, WebhookEndpoint

TEST_EVENT = "webhook.test"
"""The type of the event ``POST /api/webhooks/{id}/test`` sends: to that endpoint only, never subscribed to."""
EVENT_NAMES: tuple[str, ...] = tuple(event.value for event in WebhookEvent)
"""The events an endpoint may subscribe to, in the order the pages list them."""

EVENT_PATTERN = "^(" + "|".join(re.escape(name) for name in EVENT_NAMES) + r")\Z"
URL_PATTERN = r"^https?://[^\x00-\x20\x7f-\x9f]+\Z"
"""``http://`` or ``https://`` and no white space or control character (the service checks the rest)."""
SECRET_PATTERN = r"^[!-~]*\Z"  # noqa: S105 (a pattern, not a password)
"""Printable ASCII without spaces."""
PATTERN_MESSAGES[EVENT_PATTERN] = "Expected one of the events " + ", ".join(EVENT_NAMES)
PATTERN_MESSAGES[URL_PATTERN] = "Expected an http:// or https:// URL without spaces, like https://example.com/hooks"
PATTERN_MESSAGES[SECRET_PATTERN] = "Expected printable ASCII characters without spaces"

EventName = Annotated[
    str,
    msgspec.Meta(
        pattern=EVENT_PATTERN,
        description="An event name: " + ", ".join(EVENT_NAMES),
        examples=[WebhookEvent.ORDER_PLACED.value],
    ),
]
Events = Annotated[
    list[EventName],
    msgspec.Meta(
        min_length=1,
        max_length=len(EVENT_NAMES),
        description="The events the endpoint receives, at least one of: " + ", ".join(EVENT_NAMES),
        examples=[[WebhookEvent.ORDER_PLACED.value, WebhookEvent.ORDER_PAID.value]],
    ),
]
Url = Annotated[
    str, msgspec.Meta(max_length=WEBHOOK_URL, pattern=URL_PATTERN, examples=["https://example.com/hooks/shop"])
]
Secret = Annotated[
    str,
    msgspec.Meta(
        min_length=24,
        max_length=WEBHOOK_SECRET,
        pattern=SECRET_PATTERN,
        description="The signing secret: at least 24 characters; ``whsec_`` + base64 is decoded as Standard "
        "Webhooks does. Left out: one is generated.",
    ),
]
Description = Annotated[Line, msgspec.Meta(max_length=200)]
Status = Literal["pending", "sending", "delivered", "failed"]


class WebhookWrite(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new endpoint (``POST /api/webhooks``, the admin's "Register endpoint" form).

    Attributes:
        url: Where deliveries are POSTed (http or https; in production not a private address).
        events: The event names it receives (at least one; see ``EVENT_NAMES``).
        secret: The signing secret; ``None`` or left out: a ``whsec_`` secret is generated.
        description: A note for the admins.
        is_active: Whether it receives deliveries now.
    """

    url: Url
    events: Events
    secret: Secret | None = None
    description: Description = ""
    is_active: bool = True


class WebhookPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Changes to an endpoint (``PATCH /api/webhooks/{id}``, its edit form): fields left out stay.

    A new ``secret`` replaces the old one at once (receivers must accept both while they switch over).
    """

    url: Url | msgspec.UnsetType = msgspec.UNSET
    events: Events | msgspec.UnsetType = msgspec.UNSET
    secret: Secret | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class WebhookOut(msgspec.Struct, kw_only=True):
    """An endpoint as admins see it, its signing secret included (only admins reach the webhook routes)."""

    id: int
    url: str
    events: list[str]
    description: str
    is_active: bool
    secret: str
    created_at: datetime
    updated_at: datetime


class DeliveryOut(msgspec.Struct, kw_only=True):
    """One event sent (or to be sent) to one endpoint, and how that went.

    Attributes:
        id: The delivery's id.
        event_id: The event's id: the ``webhook-id`` header, the same on every attempt.
        event_type: The event's name (``order.placed``, ``webhook.test``...).
        status: ``pending`` (waiting, or waiting to retry), ``sending``, ``delivered`` or ``failed`` (given up).
        attempts: Attempts made so far.
        response_status: The HTTP status of the last answer (``null``: none yet, or no answer).
        last_error: Why the last attempt failed (empty when it did not).
        next_attempt_at: When the next attempt is due (``null`` when none is).
        delivered_at: When the endpoint accepted it (2xx).
        created_at / updated_at: When it was queued and last changed.
    """

    id: int
    event_id: str
    event_type: str
    status: Status
    attempts: int
    response_status: int | None
    last_error: str
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class DeliveryPage(msgspec.Struct, kw_only=True):
    """A page of an endpoint's deliveries, newest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[DeliveryOut]
    next_cursor: str | None


def webhook_out(endpoint: WebhookEndpoint) -> WebhookOut:
    """``WebhookOut`` from a ``WebhookEndpoint`` row."""
    return from_row(WebhookOut, endpoint, events=list(endpoint.events or []))


def delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    """``DeliveryOut`` from a ``WebhookDelivery`` row."""
    return from_row(DeliveryOut, delivery)
