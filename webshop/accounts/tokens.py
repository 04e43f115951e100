"""API sign-ins: access tokens, single-use refresh tokens with rotation and reuse detection, logout.

A sign-in (``POST /api/auth/token``) starts a *family*. Each refresh token works once and is replaced
by a new one in the same family; presenting a used refresh token again means it was stolen or
replayed, so the whole family is revoked, and with it every access token issued for it
(OAuth 2.0 Security BCP, RFC 9700 §4.14.2). Logout revokes the family and the presented access
token's ``jti`` until it expires. Only SHA-256 digests of refresh tokens are stored.

Except within ``REUSE_GRACE`` of its first use: a used refresh token presented again that soon gets a new
pair of the same family instead, as Okta's "grace period for token rotation" and Auth0's "reuse
interval" do. A mobile app refreshes from several requests at once, or retries a refresh whose answer
the network lost; without it, that app's user was signed out (its first new pair revoked with the rest).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError

from webshop.config import SecuritySettings
from webshop.db.models import RefreshToken, RevokedAccessToken, TokenFamily, User
from webshop.db.repository import repository_for
from webshop.errors import AuthenticationFailed
from webshop.observability.logging import get_logger
from webshop.security.jwt import ALGORITHM, AUDIENCE, ApiToken, signing_key

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

INVALID_REFRESH = "The refresh token is invalid, expired or already used. Sign in again."
REUSE_GRACE = timedelta(seconds=30)
"""How long after its first use a refresh token still gets a new pair instead of revoking its family
(Okta's default grace period; the module docstring)."""
log = get_logger("webshop.security")


@dataclass(frozen=True)
class TokenPair:
    """What ``/api/auth/token`` and ``/api/auth/refresh`` return (RFC 6749 §5.1).

    Attributes:
        access_token: A signed JWT for the ``Authorization: Bearer`` header.
        expires_in: Seconds until the access token expires.
        refresh_token: An opaque single-use token for ``/api/auth/refresh``.
    """

    access_token: str
    expires_in: int
    refresh_token: str
    token_type: str = "bearer"  # noqa: S105 - the RFC 6750 token type, not a secret


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiTokenService(SQLAlchemyAsyncRepositoryService[TokenFamily]):
    """Issues, rotates and revokes API tokens; owns its commits (revocations must survive an error)."""

    repository_type = repository_for(TokenFamily)

    def __init__(self, session: AsyncSession, *, security: SecuritySettings, **repo_kwargs: Any) -> None:
        """A service on ``session`` that signs tokens with ``security`` (key, issuer, lifetimes), given at
        construction by the app's provider."""
        super().__init__(session=session, **repo_kwargs)
        self.security = security

    async def issue(self, user: User) -> TokenPair:
        """Start a new sign-in for ``user``: a family, its first refresh token and an access token.

        Args:
            user: The signed-in user.
        """
        family = TokenFamily(public_id=uuid.uuid4().hex, user_id=user.id)
        self.repository.session.add(family)
        await self.repository.session.flush()
        pair = await self._pair(user, family)
        await self.repository.session.commit()
        return pair

    async def refresh(self, raw_refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; the presented token is used up.

        Args:
            raw_refresh_token: The refresh token as the client sent it.

        Raises:
            AuthenticationFailed: unknown, expired or revoked token, inactive user, or a token used
                before, over ``REUSE_GRACE`` ago (its whole family is then revoked and the revocation committed).
        """
        session = self.repository.session
        now = datetime.now(UTC)
        row = (
            await session.execute(
                select(RefreshToken, TokenFamily, User)
                .join(TokenFamily, TokenFamily.id == RefreshToken.family_id)
                .join(User, User.id == TokenFamily.user_id)
                .where(RefreshToken.token_hash == _digest(raw_refresh_token or ""))
            )
        ).first()
        if row is None:
            raise AuthenticationFailed(INVALID_REFRESH)
        token, family, user = row
        if family.revoked_at is not None or not user.is_active or token.expires_at <= now:
            raise AuthenticationFailed(INVALID_REFRESH)
        used = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == token.id, RefreshToken.used_at.is_(None))
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if used.rowcount != 1 and not await self._just_used(token.id, now):
            await self._revoke_family(family.id, "refresh token reuse")
            await session.commit()
            log.warning(
                "refresh token reuse: sign-in revoked",
                security_event="refresh_token_reuse",
                user_id=user.id,
                token_family=family.public_id,
            )
            raise AuthenticationFailed(INVALID_REFRESH + " This sign-in has been ended for your safety.")
        pair = await self._pair(user, family)
        await session.commit()
        return pair

    async def logout(self, token: ApiToken) -> None:
        """Revoke the token's sign-in family and the access token itself (until it expires)."""
        session = self.repository.session
        family_id = await session.scalar(select(TokenFamily.id).where(TokenFamily.public_id == token.fam))
        if family_id is not None:
            await self._revoke_family(family_id, "logout")
        with contextlib.suppress(IntegrityError):  # already revoked: logging out twice is fine
            async with session.begin_nested():
                session.add(RevokedAccessToken(jti=str(token.jti), expires_at=token.exp))
        await session.commit()

    async def revoke_all(self, user_id: int, reason: str) -> None:
        """End every API sign-in of a user (password change, deactivation). The caller commits."""
        await self._revoke(TokenFamily.user_id == user_id, reason)

    async def _just_used(self, token_id: int, now: datetime) -> bool:
        """True when refresh token ``token_id`` was first used less than ``REUSE_GRACE`` before ``now``
        (read as committed: a concurrent refresh that used it has committed once our update saw it used)."""
        used_at = await self.repository.session.scalar(select(RefreshToken.used_at).where(RefreshToken.id == token_id))
        return used_at is not None and now - used_at < REUSE_GRACE

    async def _revoke_family(self, family_id: int, reason: str) -> None:
        await self._revoke(TokenFamily.id == family_id, reason)

    async def _revoke(self, which: ColumnElement[bool], reason: str) -> None:
        """Revoke the families ``which`` selects that are not revoked yet, saying why (not committed)."""
        await self.repository.session.execute(
            update(TokenFamily)
            .where(which, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
        )

    async def _pair(self, user: User, family: TokenFamily) -> TokenPair:
        security = self.security
        now = datetime.now(UTC).replace(microsecond=0)
        lifetime = timedelta(minutes=security.access_token_minutes)
        access = ApiToken(
            exp=now + lifetime,
            sub=str(user.id),
            iat=now,
            nbf=now,
            iss=security.token_issuer,
            aud=AUDIENCE,
            jti=uuid.uuid4().hex,
            role=user.role,
            fam=family.public_id,
        ).encode(signing_key(security), ALGORITHM)
        refresh = secrets.token_urlsafe(32)
        self.repository.session.add(
            RefreshToken(
                family_id=family.id,
                token_hash=_digest(refresh),
                expires_at=now + timedelta(days=security.refresh_token_days),
            )
        )
        await self.repository.session.flush()
        return TokenPair(access_token=access, expires_in=int(lifetime.total_seconds()), refresh_token=refresh)
