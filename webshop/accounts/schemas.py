"""Account shapes for the JSON API (msgspec Structs; unknown fields are rejected, never trusted)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from webshop.api.schemas import Money, from_row
from webshop.security.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from webshop.text import EMAIL_PATTERN, Line, VisibleLine

if TYPE_CHECKING:
    from webshop.db.models import User

# The rules of ``UserService.register`` and ``update_profile`` (webshop/accounts/service.py), stated so
# that a client and the OpenAPI schema know them; the service checks them again for the pages.
MAX_NAME_LENGTH = 120
"""``webshop.accounts.service.MAX_NAME_LENGTH``."""

Email = Annotated[str, msgspec.Meta(max_length=320, pattern=EMAIL_PATTERN, examples=["ada@example.com"])]
PersonName = Annotated[
    VisibleLine, msgspec.Meta(max_length=MAX_NAME_LENGTH, description="Trimmed; at least one visible character")
]
NewPassword = Annotated[
    Line,
    msgspec.Meta(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        description="Length is the only rule (OWASP); no control characters",
    ),
]
Password = Annotated[Line, msgspec.Meta(max_length=MAX_PASSWORD_LENGTH)]
"""A password typed to sign in or to confirm a change (a longer one cannot be right)."""


class RegisterIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/register``: a new customer account (a ``role`` field is refused)."""

    email: Email
    password: NewPassword
    name: PersonName


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

    username: Annotated[Line, msgspec.Meta(max_length=320)]
    password: Password
    grant_type: Literal["password", ""] = "password"
    scope: Annotated[Line, msgspec.Meta(max_length=200)] = ""


class TokenOut(msgspec.Struct):
    """An OAuth 2.0 token response (RFC 6749 §5.1) with a single-use refresh token."""

    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str


RefreshToken = Annotated[Line, msgspec.Meta(max_length=500, description="As issued by the token endpoint")]


class RefreshIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/refresh``."""

    refresh_token: RefreshToken


class LogoutIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/logout`` (the body is optional; the bearer token names the sign-in)."""

    refresh_token: RefreshToken | None = None


class UserPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/users/me``: a new name and/or a new password (with the current one)."""

    name: PersonName | None = None
    password: NewPassword | None = None
    current_password: Password | None = None


def user_out(user: User) -> UserOut:
    """``UserOut`` from a ``User`` row."""
    return from_row(UserOut, user, email_verified=user.email_verified_at is not None)


# --- user administration and erasure (issue 17) ------------------------------------------------------


RoleName = Literal["customer", "admin"]
"""``webshop.db.models.UserRole``'s values."""


class AdminUserOut(msgspec.Struct, kw_only=True):
    """A user as an admin sees them through the API (``UserOut``'s fields; erased accounts are not shown)."""

    id: int
    email: str
    name: str
    role: RoleName
    is_active: bool
    email_verified: bool
    created_at: datetime


class AdminUserDetail(AdminUserOut, kw_only=True):
    """One user for an admin, with their orders in figures: how many they placed, how many were
    cancelled, and ``total_spent`` (the totals of their paid, shipped and delivered orders in the
    shop's currency, minor units: cancelled, refunded and unpaid orders do not count)."""

    order_count: int
    cancellations: int
    total_spent: Money


class AdminUserPage(msgspec.Struct, kw_only=True):
    """A page of users, newest first; pass ``next_cursor`` as ``cursor`` for the next one (``null`` at the end)."""

    items: list[AdminUserOut]
    next_cursor: str | None


class AdminUserPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``PATCH /api/users/{id}`` (admins): the fields sent change, nothing else can (an ``email`` or
    ``password_hash`` is refused, OWASP Mass Assignment Cheat Sheet)."""

    name: PersonName | None = None
    role: RoleName | None = None
    is_active: bool | None = None


class EraseMeIn(msgspec.Struct, forbid_unknown_fields=True):
    """``DELETE /api/users/me``: the account's password, to confirm the erasure."""

    password: Password


def admin_user_out(user: User) -> AdminUserOut:
    """``AdminUserOut`` from a ``User`` row."""
    return from_row(AdminUserOut, user, email_verified=user.email_verified_at is not None)


def admin_user_detail(user: User, *, order_count: int, cancellations: int, total_spent: Money) -> AdminUserDetail:
    """``AdminUserDetail`` from a ``User`` row and their order figures (``UserService.order_figures``)."""
    return from_row(
        AdminUserDetail,
        user,
        email_verified=user.email_verified_at is not None,
        order_count=order_count,
        cancellations=cancellations,
        total_spent=total_spent,
    )


# --- e-mail flows (``webshop/accounts/email_api.py``) -----------------------------------------------

LinkToken = Annotated[
    Line,
    msgspec.Meta(
        min_length=1,
        max_length=500,
        description=(
            "The token of an e-mailed link: the link's last path segment, e.g. `<token>` in "
            "`https://shop.example/account/reset-password/<token>`"
        ),
    ),
]


class ForgotPasswordIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/forgot-password``: the address of the account whose password was forgotten."""

    email: Email


ResetPassword = Annotated[
    Line,
    msgspec.Meta(
        max_length=MAX_PASSWORD_LENGTH,
        description=(
            f"The new password: at least {MIN_PASSWORD_LENGTH} characters, the only rule (OWASP). Checked after "
            "the token, by the same rule as the page's (422 with `errors.password`)"
        ),
    ),
]


class ResetPasswordIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/reset-password``: a reset link's token and the new password.

    The password's length is checked by the service, after the token, as on the reset page: a dead link
    says so first (400), a short password is a 422 with the page's message."""

    token: LinkToken
    password: ResetPassword


class LinkTokenIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/auth/verify-email`` and ``/api/auth/confirm-email-change``: an e-mailed link's token."""

    token: LinkToken


class EmailChangeIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/users/me/email-change``: the new address and the current password (as the page asks)."""

    new_email: Email
    password: Password


class AcceptedOut(msgspec.Struct):
    """A request was taken (202): ``detail`` says what happens next, for the person."""

    detail: str


class EmailOut(msgspec.Struct):
    """The account's address after a link was followed; it counts as confirmed."""

    email: str
    email_verified: bool
