"""Browser sessions: an encrypted cookie (Litestar's client-side sessions) holding a sign-in token.

The cookie is AES-GCM encrypted by Litestar, HttpOnly, SameSite=Lax, and Secure when the shop is
served over https. A signed-in cookie carries a random token whose digest lives in ``auth_sessions``;
signing out or changing the password deletes those rows, so copies of an old cookie stop working
(OWASP Session Management Cheat Sheet). Signing in writes a brand-new cookie (session rotation).

The middleware also keeps a ``UserSnapshot`` of the signed-in user (plain values) in the request's
state: when a request fails after its database session did (a unique violation rolls the session back
and expires every loaded object), the error page shows the header from the snapshot instead of asking
the broken session for ``User.is_admin`` (``webshop.web.errors``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.session.client_side import CookieBackendConfig
from sqlalchemy import inspect

from webshop.accounts.service import SESSION_LIFETIME, UserService
from webshop.db.models import UserRole

if TYPE_CHECKING:
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp

    from webshop.config import SecuritySettings
    from webshop.db.engine import ShopAlchemyConfig

SESSION_COOKIE = "webshop_session"
AUTH_KEY = "auth"
SNAPSHOT_KEY = "webshop_user_snapshot"
"""Key of the signed-in user's ``UserSnapshot`` in ``scope["state"]``."""
RUNS_SHOP_KEY = "runs_shop"
"""Key in ``scope["state"]``: True when the signed-in user is a member of a shop (the header's "Manage shop")."""


@dataclass(frozen=True)
class UserSnapshot:
    """What pages show of a user, as plain values: reading them never needs the database.

    It has the attributes templates read from ``request.user`` (``id``, ``email``, ``name``, ``role``,
    ``is_admin``, ``is_active``, ``email_verified_at``), so a page can render with it in place of the
    ``User`` row when the request's database session can no longer be used.
    """

    id: int
    email: str
    name: str
    role: str
    is_active: bool
    email_verified_at: datetime | None

    @property
    def is_admin(self) -> bool:
        """True for admins."""
        return self.role == UserRole.ADMIN.value


def snapshot_of(user: Any, fallback: UserSnapshot | None = None) -> UserSnapshot | None:
    """A ``UserSnapshot`` of ``user`` from the attributes it has loaded, without any database access.

    Attributes that a rollback expired are taken from ``fallback`` (the snapshot made when the request
    was authenticated); ``None`` when ``user`` is ``None``. A ``UserSnapshot`` is returned as it is.
    """
    if user is None or isinstance(user, UserSnapshot):
        return user
    try:
        loaded: dict[str, Any] = dict(inspect(user).dict)
    except Exception:  # not a mapped object: read what it has
        loaded = {k: getattr(user, k) for k in ("id", "email", "name", "role", "is_active") if hasattr(user, k)}
    base = fallback if fallback is not None and fallback.id == loaded.get("id", fallback.id) else None

    def value(name: str, default: Any) -> Any:
        if name in loaded:
            return loaded[name]
        return getattr(base, name) if base is not None else default

    return UserSnapshot(
        id=value("id", 0),
        email=value("email", ""),
        name=value("name", ""),
        role=value("role", UserRole.CUSTOMER.value),
        is_active=value("is_active", True),
        email_verified_at=value("email_verified_at", None),
    )


def plain_user(connection: ASGIConnection[Any, Any, Any, Any]) -> UserSnapshot | None:
    """The request's user as a ``UserSnapshot`` (``None`` when signed out), never touching the database."""
    scope = connection.scope
    fallback = scope.get("state", {}).get(SNAPSHOT_KEY)
    return snapshot_of(scope.get("user"), fallback if isinstance(fallback, UserSnapshot) else None)


def session_config(security: SecuritySettings) -> CookieBackendConfig:
    """Litestar cookie-session config; the 256-bit AES key is derived from ``security.secret_key``."""
    key = hashlib.sha256(b"webshop-session:" + security.secret_key.encode()).digest()
    return CookieBackendConfig(
        secret=key,
        key=SESSION_COOKIE,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=security.secure_cookies,
        exclude=["^/static/", "^/media/", "^/api/"],
    )


class SessionUserMiddleware(AbstractAuthenticationMiddleware):
    """Sets ``request.user`` to the signed-in ``User`` or ``None``; never rejects a request itself.

    Pages that need a user say so with the ``requires_user`` / ``requires_admin`` guards.
    """

    def __init__(self, app: ASGIApp, alchemy: ShopAlchemyConfig, exclude: list[str] | None = None) -> None:
        super().__init__(app, exclude=exclude)
        self.alchemy = alchemy

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        """Resolve the session's sign-in token to a user (one indexed query), or ``None``."""
        session = connection.scope.get("session")
        token = session.get(AUTH_KEY) if isinstance(session, dict) else None
        if not token or not isinstance(token, str):
            return AuthenticationResult(user=None, auth=None)
        db_session = self.alchemy.provide_session(connection.app.state, connection.scope)
        signed_in = await UserService(session=db_session).resolve_session(token)
        if signed_in is None:
            return AuthenticationResult(user=None, auth=None)
        user, runs_shop = signed_in
        state = connection.scope.setdefault("state", {})
        state[SNAPSHOT_KEY], state[RUNS_SHOP_KEY] = snapshot_of(user), runs_shop
        return AuthenticationResult(user=user, auth=token)


def requires_user(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the request must come from a signed-in user.

    Raises:
        NotAuthorizedException: nobody is signed in (pages redirect to the sign-in form).
    """
    if connection.scope.get("user") is None:
        raise NotAuthorizedException("Please sign in to continue.")


def requires_admin(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Guard: the request must come from a signed-in admin.

    Raises:
        NotAuthorizedException: nobody is signed in.
        PermissionDeniedException: the user is not an admin.
    """
    requires_user(connection, handler)
    if not connection.scope["user"].is_admin:
        raise PermissionDeniedException("This page is for administrators.")
