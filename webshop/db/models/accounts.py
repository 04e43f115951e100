"""Accounts: users and their signed-in browser sessions."""

from __future__ import annotations

import enum
from datetime import datetime

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, Integer, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship


class UserRole(enum.StrEnum):
    """What a user may do: shop, or also run the shop."""

    CUSTOMER = "customer"
    ADMIN = "admin"


class User(BigIntAuditBase):
    """A shopper or an admin.

    ``email`` is stored as typed and unique regardless of case (a unique index on ``lower(email)``).
    ``password_hash`` is an argon2id PHC string.
    """

    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=UserRole.CUSTOMER.value)
    is_active: Mapped[bool] = mapped_column(default=True)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Sign-in throttling per account (OWASP Authentication Cheat Sheet: back-off, then a lock).
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Set when the account was erased (GDPR art. 17): personal data replaced, orders kept.
    erased_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    @property
    def is_admin(self) -> bool:
        """True for admins."""
        return self.role == UserRole.ADMIN.value


Index("uq_users_email_lower", func.lower(User.email), unique=True)


class AuthSession(BigIntAuditBase):
    """A signed-in browser session.

    The cookie carries a random token; only its SHA-256 digest (``token_hash``) is stored, so a copy
    of the database does not sign anyone in. Deleting the row signs that browser out, and every copy
    of its cookie with it (OWASP Session Management Cheat Sheet).
    """

    __tablename__ = "auth_sessions"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    user_agent: Mapped[str] = mapped_column(String(255), default="")

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
