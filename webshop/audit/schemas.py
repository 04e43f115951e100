"""The audit trail in the JSON API (``GET /api/products/{id}/history``): one shape for a recorded change."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from webshop.api.schemas import from_row

if TYPE_CHECKING:
    from collections.abc import Iterable

    from webshop.db.models import AuditEvent


class AuditEventOut(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded change (OWASP Logging Cheat Sheet: who, what, when): who made it (``actor_email``; empty
    for the command line), what changed (``entity_type`` and ``entity_id``, ``action``, ``summary`` in words,
    and ``changes``: each field's ``[before, after]``), and when (UTC)."""

    id: int
    entity_type: str
    entity_id: int
    action: str
    summary: str
    changes: dict[str, Any]
    actor_email: str
    created_at: datetime


def audit_event_out(event: AuditEvent) -> AuditEventOut:
    """``AuditEventOut`` of an ``AuditEvent`` row."""
    return from_row(AuditEventOut, event, changes=dict(event.changes or {}))


def audit_trail_out(events: Iterable[AuditEvent]) -> list[AuditEventOut]:
    """The API's answer for an audit trail: each of ``events`` (newest first, as
    ``AuditService.for_entity`` reads them) as an ``AuditEventOut``."""
    return [audit_event_out(event) for event in events]
