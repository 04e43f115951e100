"""Browser sessions: an encrypted cookie (Litestar's client-side sessions) holding a sign-in token.

The cookie is AES-GCM encrypted by Litestar, HttpOnly, SameSite=Lax, and Secure when the shop is
served over https. A signed-in cookie carries a random token whose digest lives in ``auth_sessions``;
signing out or changing the password deletes those rows, so copies of an old cookie stop working
(OWASP Session Management Cheat Sheet). Signing in writes a brand-new cookie (session rotation).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.session.client_side import CookieBackendConfig

from webshop.accounts.service import SESSION_LIFETIME, UserService

if TYPE_CHECKING:
    from litestar.handlers.base import BaseRouteHandler
    from litestar.types import ASGIApp

    from webshop.config import Settings
    from webshop.db.engine import ShopAlchemyConfig

SESSION_COOKIE = "webshop_session"
AUTH_KEY = "auth"


def session_config(settings: Settings) -> CookieBackendConfig:
    """Litestar cookie-session config; the 256-bit AES key is derived from the secret key."""
    key = hashlib.sha256(b"webshop-session:" + settings.secret_key.encode()).digest()
    return CookieBackendConfig(
        secret=key,
        key=SESSION_COOKIE,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
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
        token = connection.scope.get("session", {}).get(AUTH_KEY) if connection.scope.get("session") else None
        if not token or not isinstance(token, str):
            return AuthenticationResult(user=None, auth=None)
        db_session = self.alchemy.provide_session(connection.app.state, connection.scope)
        user = await UserService(session=db_session).resolve_session(token)
        return AuthenticationResult(user=user, auth=token if user else None)


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
        raise PermissionDeniedException("This page is for shop administrators.")
