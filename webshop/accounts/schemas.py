"""Account shapes for the JSON API (msgspec Structs; unknown fields are rejected, never trusted)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

if TYPE_CHECKING:
    from webshop.db.models import User


class RegisterIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/register``: a new customer account (a ``role`` field is refused)."""

    email: str
    password: str
    name: str


class UserOut(msgspec.Struct):
    """A user as the API shows it."""

    id: int
    email: str
    name: str
    role: str
    is_active: bool
    email_verified: bool
    created_at: datetime


class PasswordForm(msgspec.Struct):
    """The OAuth 2.0 password grant's form fields (RFC 6749 §4.3.2); ``username`` is the e-mail address."""

    username: str
    password: str
    grant_type: str = "password"
    scope: str = ""


class TokenOut(msgspec.Struct):
    """An OAuth 2.0 token response (RFC 6749 §5.1) with a single-use refresh token."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/refresh``."""

    refresh_token: str


class LogoutIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/logout`` (the body is optional; the bearer token names the sign-in)."""

    refresh_token: str | None = None


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/users/me``: a new name and/or a new password (with the current one)."""

    name: str | None = None
    password: str | None = None
    current_password: str | None = None


def user_out(user: User) -> UserOut:
    """``UserOut`` from a ``User`` row."""
    return UserOut(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        created_at=user.created_at,
    )
