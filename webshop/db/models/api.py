"""API credentials and idempotency: refresh-token families, revoked access tokens, idempotency keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column


class TokenFamily(BigIntAuditBase):
    """One sign-in of an API client: every refresh token rotated from it belongs to this family.

    Revoking the family (logout, or a refresh token presented twice) ends the sign-in: its refresh
    tokens stop working and so do its access tokens, which carry the family id in their ``fam`` claim
    (OAuth 2.0 Security Best Current Practice, RFC 9700 §4.14: refresh token rotation and reuse detection).
    """

    __tablename__ = "token_families"

    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    revoked_reason: Mapped[str] = mapped_column(String(40), default="")


class RefreshToken(BigIntAuditBase):
    """A single-use refresh token; only the SHA-256 digest of the opaque token is stored."""

    __tablename__ = "refresh_tokens"

    family_id: Mapped[int] = mapped_column(ForeignKey("token_families.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class RevokedAccessToken(BigIntAuditBase):
    """An access token revoked before it expires (logout), by its ``jti``; kept until ``expires_at``."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)


class IdempotencyRecord(BigIntAuditBase):
    """An ``Idempotency-Key`` a user sent, the fingerprint of its request and, once done, the response.

    ``response_status`` is null while the first request with the key is still running
    (draft-ietf-httpapi-idempotency-key-header: a concurrent request gets 409, a different body 422).
    """

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "scope", "key", name="uq_idempotency_user_scope_key"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
