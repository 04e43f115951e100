"""API authentication: JWT bearer access tokens (Litestar's ``OAuth2PasswordBearerAuth``) for ``/api``.

Access tokens are HS256 JWTs signed with a key derived from ``WEBSHOP_SECRET_KEY``. Verification pins
the algorithm (``alg: none`` and other algorithms are refused by PyJWT), requires ``exp``, ``iat``,
``nbf``, ``iss``, ``aud``, ``sub`` and ``jti`` and checks ``iss`` and ``aud`` (RFC 8725, JSON Web
Token Best Current Practices). Each request then loads the user in one query that also refuses a
deactivated user, a revoked ``jti`` (logout) and a revoked sign-in family (refresh-token reuse).
Browser pages never look at bearer tokens, and ``/api`` never looks at cookies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.openapi.spec import Components, OAuthFlow, OAuthFlows, SecurityScheme
from litestar.security.jwt import JWTAuth, JWTAuthenticationMiddleware, Token
from sqlalchemy import exists, select

from webshop.db.models import RevokedAccessToken, TokenFamily, User
from webshop.web import AnyRequest

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from litestar.handlers.base import BaseRouteHandler
    from litestar.middleware import DefineMiddleware

    from webshop.config import SecuritySettings
    from webshop.db.engine import ShopAlchemyConfig

ALGORITHM = "HS256"
AUDIENCE = "webshop-api"
SECURITY_SCHEME = "BearerToken"
REQUIRED_CLAIMS = ("exp", "iat", "nbf", "iss", "aud", "sub", "jti")
PUBLIC = {"exclude_from_auth": True}
"""``opt`` for API routes anyone may call without a token (catalog reads, register, token, refresh)."""
BEARER: list[dict[str, list[str]]] = [{SECURITY_SCHEME: []}]
"""OpenAPI security requirement of the routes that need a bearer token."""


def signing_key(security: SecuritySettings) -> str:
    """The HS256 key for API tokens: derived from the secret key, so it differs from the cookie key."""
    return hashlib.sha256(b"webshop-jwt:" + security.secret_key.encode()).hexdigest()


@dataclass
class ApiToken(Token):
    """An access token's claims: the registered ones plus ``nbf``, the user's ``role`` and ``fam``.

    ``fam`` is the public id of the sign-in (refresh-token family) the token was issued for.
    """

    nbf: datetime | None = None
    role: str = "customer"
    fam: str = ""


@dataclass
class BearerAuth(JWTAuth[User, ApiToken]):
    """Litestar's ``JWTAuth`` (the token only from the ``Authorization`` header, never a cookie),
    described in OpenAPI as the OAuth2 password flow so that Swagger UI's "Authorize" works."""

    @property
    def openapi_components(self) -> Components:
        """The ``BearerToken`` security scheme: OAuth2 password flow against ``/api/auth/token``."""
        return Components(
            security_schemes={
                self.openapi_security_scheme_name: SecurityScheme(
                    type="oauth2",
                    description=self.description,
                    flows=OAuthFlows(password=OAuthFlow(token_url="/api/auth/token", scopes={})),  # noqa: S106
                )
            }
        )


def api_auth(security: SecuritySettings, alchemy: ShopAlchemyConfig) -> BearerAuth:
    """The JWT bearer config for ``/api`` (key and issuer from ``security``); its middleware is mounted on
    the API router only."""

    async def retrieve_user(token: ApiToken, connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
        """The token's active user, or ``None`` when the user, the ``jti`` or the sign-in is revoked."""
        try:
            user_id = int(token.sub)
        except ValueError:
            return None
        session = alchemy.provide_session(connection.app.state, connection.scope)
        return await session.scalar(
            select(User).where(
                User.id == user_id,
                User.is_active.is_(True),
                ~exists().where(RevokedAccessToken.jti == str(token.jti)),
                ~exists().where(TokenFamily.public_id == token.fam, TokenFamily.revoked_at.is_not(None)),
            )
        )

    return BearerAuth(
        token_secret=signing_key(security),
        retrieve_user_handler=retrieve_user,
        token_cls=ApiToken,
        algorithm=ALGORITHM,
        accepted_audiences=[AUDIENCE],
        accepted_issuers=[security.token_issuer],
        require_claims=list(REQUIRED_CLAIMS),
        strict_audience=True,
        openapi_security_scheme_name=SECURITY_SCHEME,
        description="OAuth2 password flow: POST e-mail and password to /api/auth/token for a bearer token.",
    )


def guarded_user(connection: ASGIConnection[Any, Any, Any, Any]) -> User | None:
    """The bearer token's user, for a role guard to check; ``None`` for ``OPTIONS``, which passes every
    guard: it only lists the path's methods and changes nothing (RFC 9110 §9.3.7), so no path of the API
    needs a token for it, whether the guard sits on a route or on its controller (whose automatic
    ``OPTIONS`` handler inherits it).

    Raises:
        NotAuthorizedException: no bearer token (401).
    """
    if connection.scope.get("method") == "OPTIONS":
        return None
    user: User | None = connection.scope.get("user")
    if user is None:
        raise NotAuthorizedException("A bearer token is required.")
    return user


def api_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the bearer token's user must be an admin (the role is read from the database, not the token);
    ``OPTIONS`` passes (``guarded_user``).

    Raises:
        NotAuthorizedException: no bearer token (401).
        PermissionDeniedException: the user is a customer (403).
    """
    user = guarded_user(connection)
    if user is not None and not user.is_admin:
        raise PermissionDeniedException("This operation is for administrators.")


def optional_bearer_user(define: DefineMiddleware) -> Callable[[AnyRequest], Awaitable[User | None]]:
    """A dependency for a public API route that also answers for a signed-in caller: the bearer token's
    user when an ``Authorization`` header is sent (checked exactly as on the other routes, by the same
    middleware: a bad or revoked token is a 401), else ``None``."""

    async def noop(scope: Any, receive: Any, send: Any) -> None:  # the middleware's next app, never called
        return None

    async def provide(request: AnyRequest) -> User | None:
        if not request.headers.get("authorization"):
            return None
        middleware = cast("JWTAuthenticationMiddleware", define.middleware(app=noop, **define.kwargs))
        result = await middleware.authenticate_request(request)
        user: User | None = result.user
        return user

    return provide
