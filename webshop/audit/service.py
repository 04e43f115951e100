"""Audit trail service: written by the services that make admin changes, read by the admin pages.

Each event is added to the caller's session, so it commits or rolls back with the change it records
(OWASP Logging Cheat Sheet: who, what, when; never a secret in the record).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from webshop.db.models import AuditEvent, Order, User
from webshop.db.repository import repository_for
from webshop.observability.logging import get_logger

log = get_logger("webshop.security")


def diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Return ``{field: [before, after]}`` for the fields of ``after`` whose value differs from ``before``.

    ``None`` (no value yet: a new row) and ``""`` are both "nothing": a new shop's blank description is
    no change worth a line in its history."""
    return {
        key: [before.get(key), value]
        for key, value in after.items()
        if before.get(key) != value and not (before.get(key) in (None, "") and value in (None, ""))
    }


class AuditService(SQLAlchemyAsyncRepositoryService[AuditEvent]):
    """Records and lists audit events."""

    repository_type = repository_for(AuditEvent)

    def record(
        self,
        actor: User | None,
        entity_type: str,
        entity_id: int,
        action: str,
        *,
        summary: str = "",
        changes: Mapping[str, Any] | None = None,
    ) -> AuditEvent:
        """Add an audit event to the current transaction (it commits with the change it describes).

        Args:
            actor: The admin who made the change; ``None`` for the command line.
            entity_type: ``product``, ``variant``, ``category``, ``stock``, ``order`` or ``user``.
            entity_id: The changed row's id.
            action: A short verb: ``create``, ``update``, ``delete``, ``restore``, ``status``, ``role``...
            summary: One human sentence shown on the admin page.
            changes: ``{field: [before, after]}`` (see :func:`diff`); JSON-serialisable values only.
        """
        event = AuditEvent(
            actor_id=actor.id if actor else None,
            actor_email=actor.email if actor else "",
            entity_type=entity_type,
            entity_id=entity_id,
            action=action,
            summary=summary[:500],
            changes=dict(changes or {}),
        )
        self.repository.session.add(event)
        if entity_type == "user":
            # Role changes and (de)activations are security events too (OWASP Logging Cheat Sheet).
            log.warning(
                "user account changed",
                security_event=f"user_{action}",
                actor_id=actor.id if actor else None,
                user_id=entity_id,
                changes=dict(changes or {}),
            )
        return event

    def on_order(
        self, actor: User | None, order: Order, action: str, what: str, changes: Mapping[str, Any]
    ) -> AuditEvent:
        """``record`` an event on ``order``'s trail, summarised ``"Order {number}: {what}"`` (``actor``
        None: the shop itself, a payment's outcome, the expiry worker or a guest)."""
        return self.record(actor, "order", order.id, action, summary=f"Order {order.number}: {what}", changes=changes)

    async def record_many(
        self, actor: User | None, entity_type: str, action: str, summaries: Mapping[int, str]
    ) -> None:
        """Add one event per ``{entity id: summary}`` in a single executemany (a catalog import writes
        thousands); same fields and transaction as ``record``, without per-row change details.
        """
        if summaries:
            rows: list[dict[str, Any]] = [
                {
                    "actor_id": actor.id if actor else None,
                    "actor_email": actor.email if actor else "",
                    "entity_type": entity_type,
                    "entity_id": entity_id,
                    "action": action,
                    "summary": summary[:500],
                    "changes": {},
                }
                for entity_id, summary in summaries.items()
            ]
            await self.repository.session.execute(insert(AuditEvent), rows)

    async def for_entity(self, entity_type: str, entity_ids: Sequence[int], *, limit: int = 100) -> list[AuditEvent]:
        """Return the newest ``limit`` events about ``entity_type`` rows ``entity_ids``, newest first."""
        rows = await self.repository.session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id.in_(list(entity_ids)))
            .order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
        return list(rows)


class Audited:
    """Mixin for the services that make admin changes: ``self.audit`` is an ``AuditService`` on the
    service's own session, made once per service, so each event commits or rolls back with the
    change it records. The services get it this way instead of building one at every change."""

    repository: Any  # the service's repository (advanced-alchemy), whose session the events join

    @cached_property
    def audit(self) -> AuditService:
        """The audit trail, in this service's session."""
        return AuditService(session=self.repository.session)

    async def delete_audited(self, actor: User | None, entity_type: str, row: Any, summary: str) -> None:
        """Delete ``row`` and record the ``delete`` event (with ``summary``) in one commit."""
        session = self.repository.session
        self.audit.record(actor, entity_type, row.id, "delete", summary=summary)
        await session.delete(row)
        await session.commit()

    async def commit_audited(
        self,
        actor: User | None,
        entity_type: str,
        row: Any,
        action: str,
        summary: str,
        *,
        conflict: Callable[[IntegrityError], Exception],
    ) -> None:
        """Write ``row``'s change with its audit event in one commit (the row is flushed first, so a new
        one has its id for the event).

        Raises:
            Exception: ``conflict(error)``, after a rollback, when the database refuses the change (a
                unique or check constraint another request won meanwhile): the caller's field error.
        """
        session = self.repository.session
        try:
            await session.flush()
            self.audit.record(actor, entity_type, row.id, action, summary=summary)
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise conflict(exc) from exc
