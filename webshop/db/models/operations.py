"""Operations: the admin audit trail, one-time account links and the e-mail outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column


class AuditEvent(BigIntAuditBase):
    """Who changed what, and when: one row per admin change, written in the same transaction.

    ``entity_type`` is ``product``, ``variant``, ``category``, ``stock``, ``order`` or ``user``;
    ``entity_id`` the row's id; ``action`` a verb (``update``, ``status``, ``role``...);
    ``changes`` maps each field to ``[before, after]``. ``actor_id`` is null for the CLI.
    (OWASP Logging Cheat Sheet: record who, what, when for administrative changes.)
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_id", "created_at"),)

    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), index=True)
    actor_email: Mapped[str] = mapped_column(String(320), default="")
    entity_type: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40))
    summary: Mapped[str] = mapped_column(String(500), default="")
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AccountToken(BigIntAuditBase):
    """A one-time account link (verify e-mail, reset password, change e-mail) by its random ``nonce``.

    The link itself is an itsdangerous signed, timestamped value carrying the nonce; this row makes it
    single use (``used_at``) and lets a newer link of the same ``purpose`` supersede older ones
    (``superseded_at``). ``new_email`` is the address an e-mail change is confirmed at.
    (OWASP Forgot Password Cheat Sheet: single use, expiring, invalidated when superseded.)
    """

    __tablename__ = "account_tokens"
    __table_args__ = (Index("ix_account_tokens_user_purpose", "user_id", "purpose"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(30))
    nonce: Mapped[str] = mapped_column(String(64), unique=True)
    new_email: Mapped[str | None] = mapped_column(String(320), default=None)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    superseded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class OutboundEmail(BigIntAuditBase):
    """An e-mail waiting to be sent, written in the same transaction as what caused it.

    A sender outside the request sends ``pending`` rows once the transaction has committed, retrying
    failures with back-off (``attempts``, ``next_attempt_at``, ``last_error``) until ``sent`` or ``failed``
    (the transactional outbox pattern: a rolled-back order sends nothing, a committed one is never lost).
    """

    __tablename__ = "outbound_emails"
    __table_args__ = (Index("ix_outbound_emails_status_next", "status", "next_attempt_at"),)

    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(200))
    text_body: Mapped[str] = mapped_column(Text)
    html_body: Mapped[str] = mapped_column(Text, default="")
    kind: Mapped[str] = mapped_column(String(40), default="")
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_error: Mapped[str] = mapped_column(String(500), default="")
