"""One-time account links by e-mail: verify an address, reset a password, change the address.

A link carries an itsdangerous ``URLSafeTimedSerializer`` value (signed with the secret key, a salt per
purpose, and a timestamp) whose payload is a random nonce. The ``AccountToken`` row with that nonce
makes the link single use (``used_at``, set by one conditional ``UPDATE``, so two clicks racing each
other cannot both win) and lets a newer link of the same purpose supersede older ones
(``superseded_at``). A link is refused when its signature is wrong (tampered or cut off), its
timestamp or row is older than its lifetime, or its row is used or superseded (OWASP Forgot Password
Cheat Sheet: single use, expiring, random, invalidated when superseded).

The flows that send and follow links live here too, each in one transaction with the e-mail it queues
(``webshop.mail.outbox``), committed explicitly before the caller answers.
"""

from __future__ import annotations

import enum
import logging
import secrets
from datetime import UTC, datetime, timedelta
from math import ceil
from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from webshop.accounts.service import EMAIL_RE, UserService, email_is, normalize_email
from webshop.audit.service import Audited
from webshop.db.engine import write_session
from webshop.db.models import AccountToken, User
from webshop.db.repository import repository_for
from webshop.errors import Conflict, DomainError, TooManyAttempts, ValidationFailed
from webshop.mail.outbox import queue_email
from webshop.orders.service import adopt_guest_orders
from webshop.security.passwords import hash_password, password_problem, verify_password
from webshop.security.throttle import SignInThrottle
from webshop.text import readable_email

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import SecuritySettings, Settings, ShopSettings
    from webshop.db.engine import ShopAlchemyConfig

logger = logging.getLogger("webshop.accounts")

ALREADY_VERIFIED = "Your e-mail address is already confirmed."


RESEND_WAIT = timedelta(seconds=60)
"""How long after a verification link the next may be asked for (``resend_verification``)."""


class LinkPurpose(enum.StrEnum):
    """What a link does; also the itsdangerous salt's suffix, so a link of one purpose never works for another."""

    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 (a purpose, not a password)
    CHANGE_EMAIL = "change_email"


class LinkProblem(enum.StrEnum):
    """Why a link was refused."""

    INVALID = "invalid"
    EXPIRED = "expired"
    USED = "used"
    SUPERSEDED = "superseded"


LINK_MESSAGES = {
    LinkProblem.INVALID: "This link is not valid. It may have been cut off or mistyped.",
    LinkProblem.EXPIRED: "This link has expired.",
    LinkProblem.USED: "This link has already been used. Each link works only once.",
    LinkProblem.SUPERSEDED: "A newer link was sent after this one, and only the newest link works.",
}


class AccountLinkError(DomainError):
    """A one-time link was refused; ``problem`` says why and ``purpose`` what it was for.

    Maps to 410 Gone for a link that once worked (expired, used, superseded) and 400 for one that never
    could (bad signature). The pages show ``accounts/link_error.html``, which offers a new link.
    """

    title = "Link no longer valid"

    def __init__(self, problem: LinkProblem, purpose: LinkPurpose) -> None:
        super().__init__(LINK_MESSAGES[problem])
        self.problem = problem
        self.purpose = purpose
        self.status_code = 400 if problem == LinkProblem.INVALID else 410


def _serializer(security: SecuritySettings, purpose: LinkPurpose) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(security.secret_key, salt=f"webshop.account-link.{purpose.value}")


def link_lifetime(security: SecuritySettings, purpose: LinkPurpose) -> timedelta:
    """How long a ``purpose`` link works: ``reset_token_minutes`` for resets, else ``email_token_hours``."""
    if purpose == LinkPurpose.RESET_PASSWORD:
        return timedelta(minutes=security.reset_token_minutes)
    return timedelta(hours=security.email_token_hours)


LINK_PATHS = {
    LinkPurpose.VERIFY_EMAIL: "/account/verify-email/",
    LinkPurpose.RESET_PASSWORD: "/account/reset-password/",
    LinkPurpose.CHANGE_EMAIL: "/account/email/confirm/",
}
"""Where each purpose's link points (the routes in ``webshop/accounts/web.py``), followed by the token."""


class AccountLinkService(Audited, SQLAlchemyAsyncRepositoryService[AccountToken]):
    """One-time account links and the e-mail flows built on them."""

    repository_type = repository_for(AccountToken)

    def __init__(
        self, session: AsyncSession, *, security: SecuritySettings, shop: ShopSettings, **repo_kwargs: Any
    ) -> None:
        """A service on ``session`` that signs links with ``security.secret_key`` (lifetimes from ``security``)
        and writes them under ``shop.base_url``; given at construction by the app's provider."""
        super().__init__(session=session, **repo_kwargs)
        self.security = security
        self.shop = shop

    # -- links -----------------------------------------------------------------------------------

    async def issue(self, user: User, purpose: LinkPurpose, *, new_email: str | None = None) -> str:
        """Create a link token for ``user``; every older unused link of the same purpose stops working.

        Args:
            user: Whose link it is.
            purpose: What following it does.
            new_email: The address the link is about (verified, or changed to).

        Returns:
            The URL-safe token (the last path segment of the link). Flushed, not committed.
        """
        session = self.repository.session
        now = datetime.now(UTC)
        await session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user.id,
                AccountToken.purpose == purpose.value,
                AccountToken.used_at.is_(None),
                AccountToken.superseded_at.is_(None),
            )
            .values(superseded_at=now)
            .execution_options(synchronize_session=False)
        )
        nonce = secrets.token_urlsafe(32)
        session.add(
            AccountToken(
                user_id=user.id,
                purpose=purpose.value,
                nonce=nonce,
                new_email=new_email,
                expires_at=now + link_lifetime(self.security, purpose),
            )
        )
        await session.flush()
        return str(_serializer(self.security, purpose).dumps(nonce))

    def link(self, token: str, purpose: LinkPurpose) -> str:
        """The absolute URL of a link (``base_url`` + the purpose's path + ``token``)."""
        return f"{self.shop.base_url}{LINK_PATHS[purpose]}{token}"

    async def check(self, token: str, purpose: LinkPurpose) -> AccountToken:
        """The link's row if the link still works (without using it up).

        Raises:
            AccountLinkError: bad signature, expired, used or superseded.
        """
        max_age = int(link_lifetime(self.security, purpose).total_seconds())
        try:
            nonce = _serializer(self.security, purpose).loads(token, max_age=max_age)
        except SignatureExpired as exc:
            raise AccountLinkError(LinkProblem.EXPIRED, purpose) from exc
        except BadSignature as exc:
            raise AccountLinkError(LinkProblem.INVALID, purpose) from exc
        row = await self.repository.session.scalar(
            select(AccountToken).where(AccountToken.nonce == str(nonce), AccountToken.purpose == purpose.value)
        )
        if row is None:
            raise AccountLinkError(LinkProblem.INVALID, purpose)
        if row.used_at is not None:
            raise AccountLinkError(LinkProblem.USED, purpose)
        if row.superseded_at is not None:
            raise AccountLinkError(LinkProblem.SUPERSEDED, purpose)
        if row.expires_at <= datetime.now(UTC):
            raise AccountLinkError(LinkProblem.EXPIRED, purpose)
        return cast("AccountToken", row)

    async def use(self, token: str, purpose: LinkPurpose) -> tuple[AccountToken, User]:
        """Check the link and mark it used, exactly once even when two requests race.

        Returns:
            The link's row and its (active) user.

        Raises:
            AccountLinkError: as ``check``; ``USED`` for the loser of a race.
        """
        row = await self.check(token, purpose)
        session = self.repository.session
        now = datetime.now(UTC)
        result = await session.execute(
            update(AccountToken)
            .where(
                AccountToken.id == row.id,
                AccountToken.used_at.is_(None),
                AccountToken.superseded_at.is_(None),
                AccountToken.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise AccountLinkError(LinkProblem.USED, purpose)
        user = await session.get(User, row.user_id, populate_existing=True)
        if user is None or not user.is_active:
            raise AccountLinkError(LinkProblem.INVALID, purpose)
        return row, user

    async def _supersede_all(self, user_id: int) -> None:
        """Every open link of the user stops working (its address or password just changed)."""
        await self.repository.session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.used_at.is_(None),
                AccountToken.superseded_at.is_(None),
            )
            .values(superseded_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )

    # -- flows -----------------------------------------------------------------------------------

    async def send_verification(self, user: User) -> None:
        """Queue a verification link to ``user.email`` (older ones stop working). The caller commits."""
        token = await self.issue(user, LinkPurpose.VERIFY_EMAIL, new_email=user.email)
        queue_email(
            self.repository.session,
            to=user.email,
            kind="verify_email",
            context={
                "user": user,
                "email": user.email,
                "link": self.link(token, LinkPurpose.VERIFY_EMAIL),
                "hours": self.security.email_token_hours,
            },
        )

    async def sign_up(self, *, email: str, name: str, password: str) -> User:
        """Create a customer account and queue the link that confirms its address; committed together.

        The pages and ``POST /api/auth/register`` both sign up through here, so an account never
        exists without its verification e-mail in the outbox.

        Raises:
            ValidationFailed: from ``UserService.register`` (bad fields, address taken); nothing saved.
        """
        user = await UserService(session=self.repository.session).register(email=email, name=name, password=password)
        await self.send_verification(user)
        await self.repository.session.commit()
        return user

    async def resend_verification(self, user: User) -> None:
        """``send_verification`` for the "send the link again" button (page and API); committed.

        One link per ``RESEND_WAIT`` at most: the button cannot flood an inbox (an account can be made
        with anyone's address; OWASP Forgot Password Cheat Sheet on e-mail flooding).

        Raises:
            Conflict: the address is confirmed already; nothing is sent.
            TooManyAttempts: a link went out less than ``RESEND_WAIT`` ago (``retry_after``: seconds left).
        """
        if user.email_verified_at is not None:
            raise Conflict(ALREADY_VERIFIED)
        last = await self.repository.session.scalar(
            select(func.max(AccountToken.created_at)).where(
                AccountToken.user_id == user.id, AccountToken.purpose == LinkPurpose.VERIFY_EMAIL.value
            )
        )
        if last is not None:
            left = (last.replace(tzinfo=last.tzinfo or UTC) + RESEND_WAIT - datetime.now(UTC)).total_seconds()
            if left > 0:
                raise TooManyAttempts(
                    f"We sent a link to {readable_email(user.email)} less than a minute ago: look for it in your "
                    f"inbox (and spam folder), or ask again in {ceil(left)} seconds.",
                    retry_after=ceil(left),
                )
        await self.send_verification(user)
        await self.repository.session.commit()

    async def verify_email(self, token: str) -> User:
        """Follow a verification link: the address it was sent to becomes verified, and the guest orders
        placed with it become the account's (``adopt_guest_orders``); committed.

        Raises:
            AccountLinkError: the link does not work (also when the account's address changed since).
        """
        session = self.repository.session
        async with session.begin_nested():
            row, user = await self.use(token, LinkPurpose.VERIFY_EMAIL)
            if (row.new_email or "").lower() != user.email.lower():
                raise AccountLinkError(LinkProblem.SUPERSEDED, LinkPurpose.VERIFY_EMAIL)
            if user.email_verified_at is None:
                user.email_verified_at = datetime.now(UTC)
            await adopt_guest_orders(session, user)
            await session.flush()
        await session.commit()
        return user

    async def request_password_reset(self, email: str) -> bool:
        """Queue a reset link if ``email`` belongs to an active account; committed.

        The caller answers the same way either way (and should call this off the request path, so the
        response time does not tell either: OWASP Forgot Password Cheat Sheet).

        Returns:
            True when a link was queued.
        """
        session = self.repository.session
        known = EMAIL_RE.match(normalize_email(email))  # as registration reads it (a trailing dot, full width)
        user = await UserService(session=session).get_by_email(email) if known else None
        if user is None or not user.is_active:
            return False
        token = await self.issue(user, LinkPurpose.RESET_PASSWORD, new_email=user.email)
        queue_email(
            session,
            to=user.email,
            kind="reset_password",
            context={
                "user": user,
                "link": self.link(token, LinkPurpose.RESET_PASSWORD),
                "minutes": self.security.reset_token_minutes,
            },
        )
        await session.commit()
        return True

    async def reset_password(self, token: str, new_password: str) -> User:
        """Follow a reset link with a new password; committed.

        The password is replaced, every sign-in of the account (browser sessions and API token
        families) ends, the failed sign-in counter and any lock are cleared, the address counts as
        verified (the link reached it), other open links stop working, and a notice is queued.

        Raises:
            ValidationFailed: the new password breaks the rules (the link stays usable).
            AccountLinkError: the link does not work.
        """
        if problem := password_problem(new_password):
            await self.check(token, LinkPurpose.RESET_PASSWORD)  # a dead link says so first
            raise ValidationFailed("Your password was not changed.", field_errors={"password": problem})
        session = self.repository.session
        async with session.begin_nested():
            row, user = await self.use(token, LinkPurpose.RESET_PASSWORD)
            if (row.new_email or "").lower() != user.email.lower():
                raise AccountLinkError(LinkProblem.SUPERSEDED, LinkPurpose.RESET_PASSWORD)
            user.password_hash = await hash_password(new_password)
            user.failed_sign_ins = 0
            user.locked_until = None
            if user.email_verified_at is None:
                user.email_verified_at = datetime.now(UTC)
            await adopt_guest_orders(session, user)
            await UserService(session=session).end_all_sessions(user.id)
            await self._supersede_all(user.id)
            queue_email(
                session,
                to=user.email,
                kind="password_changed",
                context={"user": user, "forgot_url": f"{self.shop.base_url}/account/forgot-password"},
            )
            await session.flush()
        await session.commit()
        return user

    async def request_email_change(
        self, user: User, *, new_email: str, password: str, throttle: SignInThrottle | None = None
    ) -> str:
        """Send a confirmation link to ``new_email``; the address changes only when it is followed. Committed.

        The current password is a guess like a sign-in's: a wrong one counts as a failed sign-in and
        shares its lock and back-off (``webshop.security.throttle``; OWASP Authentication Cheat Sheet,
        "Change Password Feature"), so a stolen session or token is no unthrottled password oracle.

        Args:
            user: The signed-in account.
            new_email: The address to change to (normalised here).
            password: The account's current password.
            throttle: The app's sign-in throttle (default: one counting in the database only).

        Returns:
            The normalised new address.

        Raises:
            TooManyAttempts: too many wrong passwords in a row; locked for ``retry_after`` seconds.
            ValidationFailed: wrong current password, a malformed address, the current address, or an
                address another account uses (``field_errors`` on ``new_email`` / ``password``).
        """
        throttle = throttle or SignInThrottle()
        await throttle.check(user, user.email)
        new_email = normalize_email(new_email)
        errors: dict[str, str] = {}
        if not EMAIL_RE.match(new_email) or len(new_email) > 320:
            errors["new_email"] = "Enter an e-mail address like name@example.com."
        elif new_email.lower() == user.email.lower():
            errors["new_email"] = "This is already your e-mail address."
        elif await self._email_taken(new_email, user.id):
            errors["new_email"] = "Another account already uses this e-mail address."
        if not (await verify_password(user.password_hash, password)).ok:
            await throttle.failed(self.repository.session, user, user.email, attempt="current_password")
            errors["password"] = "This is not your current password."  # noqa: S105 (a message)
        else:
            await throttle.succeeded(self.repository.session, user)
        if errors:
            raise ValidationFailed("Your e-mail address was not changed.", field_errors=errors)
        session = self.repository.session
        token = await self.issue(user, LinkPurpose.CHANGE_EMAIL, new_email=new_email)
        queue_email(
            session,
            to=new_email,
            kind="change_email",
            context={
                "user": user,
                "new_email": new_email,
                "link": self.link(token, LinkPurpose.CHANGE_EMAIL),
                "hours": self.security.email_token_hours,
            },
        )
        await session.commit()
        return new_email

    async def confirm_email_change(self, token: str) -> User:
        """Follow an e-mail change link: the account's address becomes the new one; committed.

        The new address is checked for uniqueness again now (another account may have taken it since
        the link was sent; the unique index on ``lower(email)`` is the last guard), counts as verified,
        and the old address gets a notice. Every other open link of the account stops working. The change
        is on the account's audit trail (action ``email``, by the account itself).

        Raises:
            AccountLinkError: the link does not work.
            Conflict: another account uses the new address by now.
        """
        session = self.repository.session
        taken = Conflict("Another account uses this e-mail address by now, so yours was not changed.")
        try:
            async with session.begin_nested():
                row, user = await self.use(token, LinkPurpose.CHANGE_EMAIL)
                new_email = row.new_email or ""
                if await self._email_taken(new_email, user.id):
                    raise taken
                old_email = user.email
                user.email = new_email
                user.email_verified_at = datetime.now(UTC)
                # On the account's trail (OWASP Logging Cheat Sheet: a changed address is how accounts are
                # taken over), which erasure also reads to find every address the account has had.
                self.audit.record(
                    user,
                    "user",
                    user.id,
                    "email",
                    summary=f"{old_email} changed the account's address to {new_email} (confirmed by its link)",
                    changes={"email": [old_email, new_email]},
                )
                await adopt_guest_orders(session, user)
                await self._supersede_all(user.id)
                await session.flush()
                queue_email(
                    session,
                    to=old_email,
                    kind="email_changed",
                    context={"user": user, "old_email": old_email, "new_email": new_email},
                )
                await session.flush()
        except IntegrityError as exc:  # lost a race for the address to another account
            raise taken from exc
        await session.commit()
        return user

    async def _email_taken(self, email: str, user_id: int) -> bool:
        return (
            await self.repository.session.scalar(select(User.id).where(email_is(email), User.id != user_id))
        ) is not None


async def request_reset_in_background(alchemy: ShopAlchemyConfig, email: str, settings: Settings) -> None:
    """Look up ``email`` and queue a reset link if it has an account, after the response has been sent.

    Run as a response background task by the page and by ``POST /api/auth/forgot-password``, so the
    answer is the same, sent just as fast, whether or not the address exists (OWASP Forgot Password
    Cheat Sheet). Errors are logged, never raised (the response is gone already).
    """
    try:
        async with write_session(alchemy) as session:
            links = AccountLinkService(session=session, security=settings.security, shop=settings.shop)
            await links.request_password_reset(email)
    except Exception:
        logger.exception("a password reset request could not be processed")
