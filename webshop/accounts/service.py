"""Account rules: registration, sign-in, profile and password changes, browser sign-in sessions, and
administration: roles, access and erasure (the erasing itself is in ``webshop.accounts.erasure``)."""

from __future__ import annotations

import hashlib
import re
import secrets
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import cast

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import ColumnElement, case, delete, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from webshop.accounts.erasure import forget_personal_data
from webshop.audit.service import Audited
from webshop.db.folding import fold, folded
from webshop.db.models import AccountToken, AuthSession, Order, OrderStatus, ShopMember, TokenFamily, User, UserRole
from webshop.db.repository import repository_for
from webshop.errors import AuthenticationFailed, Conflict, ValidationFailed
from webshop.mail.outbox import queue_email, settings_of
from webshop.security.passwords import hash_password, password_problem, verify_password
from webshop.security.throttle import SignInThrottle
from webshop.text import address_search_forms, ascii_domain, email_forms

# Deliberately loose (RFC 5321 allows far more than any regex checks well): something@domain.tld, whose
# domain has no empty label (``example..com``, ``.example.com``, ``example.com..``: RFC 1035 section 2.3.1).
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@(?!\.)(?![^@]*\.\.)[^@\s]+\.[^@\s]+(?<!\.)$")
MAX_NAME_LENGTH = 120
SESSION_LIFETIME = timedelta(days=14)
# One message for an unknown e-mail and a wrong password (OWASP Authentication Cheat Sheet).
SIGN_IN_FAILED = "The e-mail address or password is incorrect."
LAST_ADMIN = "The shop needs at least one active administrator: make someone else an admin first."
EMAIL_TAKEN = "An account with this e-mail address already exists. Sign in instead."
ERASED = "This account was erased: it cannot be changed any more."
WRONG_PASSWORD = "This is not your password: your account was not deleted."  # noqa: S105 (a message)


def normalize_email(email: str) -> str:
    """``email`` as stored: trimmed and in Unicode NFKC, its domain lower-cased, without the DNS root's
    trailing dot, and in IDNA ASCII form (``webshop.text.ascii_domain``: what a browser's e-mail field
    sends, and what mail servers take); the local part keeps its case (RFC 5321 §2.4).

    NFKC makes one address of the ways an input method can type it: an "ë" typed as e and a combining
    mark is one character, and full-width letters and signs (``ａｌｉｃｅ@ｅｘ．ｃｏｍ``) are the ASCII
    ones (the width mapping of RFC 8265 §3.3's identifier profile; IDNA maps a domain the same way). The
    pages take a full-width ``＠`` too; the API's ``EMAIL_PATTERN`` wants the ASCII one.
    ``alice@ex.com.`` names the same mailbox as ``alice@ex.com`` (RFC 1034 §3.1: the dot is the root,
    which RFC 5321 §4.1.2's ``Domain`` leaves out), so it is left out here too."""
    email = unicodedata.normalize("NFKC", email.strip())
    local, _, domain = email.rpartition("@")
    if not local:
        return email
    if domain.endswith(".") and not domain.endswith(".."):
        domain = domain[:-1]
    return ascii_domain(f"{local}@{domain.lower()}")


def email_is(email: str) -> ColumnElement[bool]:
    """The condition "``User.email`` is ``email``" (already ``normalize_email``-ed), regardless of case,
    Unicode form or how the domain is written (``webshop.text.email_forms``).

    ``lower(email)`` uses the unique index ``uq_users_email_lower``, but SQLite's ``lower`` folds A-Z only:
    an account stored as ``ZOË@example.com`` would not be found by ``zoë@example.com``, which would then
    register a second account for one mailbox. An address whose local part has other letters is matched
    with ``folded`` (every script's case, ``webshop.db.folding``) instead: no index on SQLite, so a scan,
    but such addresses are few and PostgreSQL's ``lower`` (the same index) folds them anyway."""
    forms = email_forms(email)
    if all(form.rpartition("@")[0].isascii() for form in forms):
        return func.lower(User.email).in_(forms)
    return folded(User.email).in_(forms)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a session token, as stored in ``auth_sessions.token_hash``."""
    return hashlib.sha256(token.encode()).hexdigest()


class UserService(Audited, SQLAlchemyAsyncRepositoryService[User]):
    """Users and their browser sessions."""

    repository_type = repository_for(User)

    async def get_by_email(self, email: str) -> User | None:
        """Return the user whose e-mail matches ``email`` regardless of case, Unicode form, or whether its
        domain is written in IDNA ASCII (``webshop.text.email_forms``), or ``None``."""
        found: User | None = await self.repository.session.scalar(select(User).where(email_is(normalize_email(email))))
        return found

    async def register(self, *, email: str, name: str, password: str, role: UserRole = UserRole.CUSTOMER) -> User:
        """Create an account.

        Args:
            email: Address to sign in with; unique regardless of case.
            name: Display name, 1-120 characters.
            password: Plain text, 8-256 characters (OWASP Authentication Cheat Sheet: length, no
                composition rules).
            role: ``customer`` unless an admin is being created from the command line.

        Returns:
            The new ``User`` (flushed, not committed).

        Raises:
            ValidationFailed: with ``field_errors`` for each bad field, including a taken e-mail. The
                same address registered twice at once gets this answer too: the second insert hits
                the unique index on ``lower(email)`` (on PostgreSQL after the first commits) in a
                savepoint, which leaves the request's session usable.
        """
        email = normalize_email(email)
        name = name.strip()
        errors: dict[str, str] = {}
        if not EMAIL_RE.match(email) or len(email) > 320:
            errors["email"] = "Enter an e-mail address like name@example.com."
        if not name:
            errors["name"] = "Enter your name."
        elif len(name) > MAX_NAME_LENGTH:
            errors["name"] = f"Use at most {MAX_NAME_LENGTH} characters."
        if problem := password_problem(password):
            errors["password"] = problem
        if errors:
            if "email" not in errors and await self.get_by_email(email) is not None:
                errors["email"] = EMAIL_TAKEN
            raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
        # Hash before any database work: the slow hash must not hold a pooled connection (or SQLite's
        # write lock) while many people register at once; a taken address costs the same time.
        password_hash = await hash_password(password)
        if await self.get_by_email(email) is not None:
            raise ValidationFailed("Please correct the marked fields.", field_errors={"email": EMAIL_TAKEN})
        user = User(email=email, name=name, password_hash=password_hash, role=role.value)
        session = self.repository.session
        try:
            async with session.begin_nested():
                session.add(user)
                await session.flush()
        except IntegrityError:
            raise ValidationFailed("Please correct the marked fields.", field_errors={"email": EMAIL_TAKEN}) from None
        return user

    async def authenticate(self, *, email: str, password: str, throttle: SignInThrottle | None = None) -> User:
        """Check credentials and return the user; re-hash the password if its parameters changed.

        Failed attempts are counted and lock the account for a while (``webshop.security.throttle``);
        the count is committed even though the sign-in fails, and reset by a successful one.

        Args:
            email: The address typed.
            password: The password typed.
            throttle: Counts failures; the app's one also counts addresses without an account
                (default: accounts only).

        Raises:
            AuthenticationFailed: unknown e-mail, wrong password or deactivated account (one message); an
                empty e-mail address or password (its own message).
            TooManyAttempts: too many failures in a row; locked for ``retry_after`` seconds.
        """
        if not email.strip() or not password:  # nothing to check, nor to count as a failure
            raise AuthenticationFailed("Enter your e-mail address and your password.")
        throttle = throttle or SignInThrottle()
        user = await self.get_by_email(email)
        await throttle.check(user, email)
        result = await verify_password(user.password_hash if user else None, password)
        if user is None or not result.ok or not user.is_active:
            await throttle.failed(self.repository.session, user, email)
            raise AuthenticationFailed(SIGN_IN_FAILED)
        await throttle.succeeded(self.repository.session, user)
        if result.new_hash:
            user.password_hash = result.new_hash
            await self.repository.session.flush()
        return user

    async def update_profile(self, user: User, *, name: str) -> User:
        """Change the display name.

        Raises:
            ValidationFailed: the name is empty or too long.
        """
        user.name = _checked_name(name)
        await self.repository.session.flush()
        return user

    async def change_password(
        self, user: User, *, current: str, new: str, throttle: SignInThrottle | None = None
    ) -> None:
        """Replace the password after checking the current one; ends all the user's sessions.

        The caller starts a fresh session for the browser that made the change, so copies of any
        older cookie stop working (OWASP Session Management: renew after privilege changes).

        A wrong current password counts as a failed sign-in and shares its lock and back-off
        (``webshop.security.throttle``): a stolen session must not be a way to guess the password
        without limit (OWASP Authentication Cheat Sheet, "Account Lockout" and "Change Password
        Feature"). The failure is committed even though the change fails.

        Raises:
            TooManyAttempts: too many wrong passwords in a row (here or at sign-in); locked for
                ``retry_after`` seconds, even the right password is refused meanwhile.
            ValidationFailed: the current password is wrong or the new one is unacceptable.
        """
        throttle = throttle or SignInThrottle()
        await throttle.check(user, user.email)
        errors: dict[str, str] = {}
        if not current:  # no guess at all: nothing to count
            errors["current_password"] = "Enter your current password."  # noqa: S105 (a message)
        elif not (await verify_password(user.password_hash, current)).ok:
            await throttle.failed(self.repository.session, user, user.email, attempt="current_password")
            errors["current_password"] = "This is not your current password."  # noqa: S105 (a message)
        else:
            await throttle.succeeded(self.repository.session, user)
        if problem := password_problem(new):
            errors["new_password"] = problem
        elif current and new == current and "current_password" not in errors:
            errors["new_password"] = "Choose a new password, not the one you have now."  # noqa: S105 (a message)
        if errors:
            raise ValidationFailed("Your password was not changed.", field_errors=errors)
        user.password_hash = await hash_password(new)
        await self.end_all_sessions(user.id)
        await self._password_changed(user)

    async def _password_changed(self, user: User) -> None:
        """After a password change on the account page or by the API, in its transaction: the reset links
        asked for before it stop working, and the account's address hears of the change, with a way to
        take the account back (OWASP Forgot Password Cheat Sheet: notify the user, invalidate old tokens)."""
        session = self.repository.session
        await session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user.id,
                AccountToken.purpose == "reset_password",
                AccountToken.used_at.is_(None),
                AccountToken.superseded_at.is_(None),
            )
            .values(expires_at=datetime.now(UTC))  # its page then says it expired
            .execution_options(synchronize_session=False)
        )
        base_url = settings_of(session).shop.base_url
        context = {"user": user, "forgot_url": f"{base_url}/account/forgot-password", "with_reset_link": False}
        queue_email(session, to=user.email, kind="password_changed", context=context)

    async def update_account(
        self,
        user: User,
        *,
        name: str | None = None,
        current_password: str | None = None,
        new_password: str | None = None,
        throttle: SignInThrottle | None = None,
    ) -> User:
        """Change the name and/or the password (``PATCH /api/users/me``); committed.

        The password goes first: a wrong current password commits its failure count
        (``change_password``) and nothing else goes with it.

        Raises:
            TooManyAttempts: from ``change_password``.
            ValidationFailed: a wrong current password, an unacceptable new one or a bad name.
        """
        if new_password is not None:
            await self.change_password(user, current=current_password or "", new=new_password, throttle=throttle)
        if name is not None:
            await self.update_profile(user, name=name)
        await self.repository.session.commit()
        return user

    async def ensure_admin(self, *, email: str, password: str, name: str = "Shop admin") -> bool:
        """Make ``email`` an admin (``webshop create-admin``): promote the account, or create it with
        its address verified (the shop owner typed it on the server); committed.

        Returns:
            True when a new account was created, False when an existing one was promoted.

        Raises:
            ValidationFailed: a new account's fields are not acceptable (see ``register``).
        """
        existing = await self.get_by_email(email)
        if existing is not None:
            existing.role = UserRole.ADMIN.value
            await self.repository.session.commit()
            return False
        admin = await self.register(email=email, name=name, password=password, role=UserRole.ADMIN)
        admin.email_verified_at = datetime.now(UTC)
        await self.repository.session.commit()
        return True

    async def start_session(self, user: User, *, user_agent: str = "") -> str:
        """Create a browser sign-in session for ``user`` and return its token (for the cookie)."""
        token = secrets.token_urlsafe(32)
        self.repository.session.add(
            AuthSession(
                user_id=user.id,
                token_hash=token_digest(token),
                expires_at=datetime.now(UTC) + SESSION_LIFETIME,
                user_agent=user_agent[:255],
            )
        )
        await self.repository.session.flush()
        return token

    async def resolve_session(self, token: str) -> tuple[User, bool] | None:
        """The active user signed in with ``token`` and whether they are a member of a shop (pages then link
        to their shop's management), in one query; ``None``: unknown, expired or inactive."""
        row = (
            await self.repository.session.execute(
                select(AuthSession, exists().where(ShopMember.user_id == AuthSession.user_id)).where(
                    AuthSession.token_hash == token_digest(token), AuthSession.expires_at > datetime.now(UTC)
                )
            )
        ).first()
        if row is None or not row[0].user.is_active:
            return None
        return cast("User", row[0].user), bool(row[1])

    async def end_session(self, token: str) -> None:
        """Sign out the browser holding ``token``; every copy of its cookie stops working."""
        await self.repository.session.execute(delete(AuthSession).where(AuthSession.token_hash == token_digest(token)))

    async def end_all_sessions(self, user_id: int) -> None:
        """Sign ``user_id`` out everywhere: browser sessions and API sign-ins (their tokens stop working)."""
        await self.repository.session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
        await self.repository.session.execute(
            update(TokenFamily)
            .where(TokenFamily.user_id == user_id, TokenFamily.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC), revoked_reason="signed out everywhere")
        )

    # --- administration: search, roles and activation (issue 5) ---------------------------------

    async def search_users(
        self,
        *,
        q: str = "",
        role: UserRole | None = None,
        active: bool | None = None,
        erased: bool | None = None,
        limit: int = 25,
        offset: int = 0,
        before_id: int | None = None,
    ) -> tuple[list[User], int]:
        """Users for the admin list, newest (highest id) first, one page at a time.

        Args:
            q: Part of the e-mail address or name (case-insensitive); empty for everyone.
            role: Only users with this role.
            active: Only active (``True``) or deactivated (``False``) users.
            erased: Only erased (``True``) or not erased (``False``) accounts; ``None`` for both.
            limit: Rows per page.
            offset: Rows to skip (the pages' list).
            before_id: Only users with a smaller id (the API's keyset cursor: ``keyset_page``).

        Returns:
            ``(users, total)``: this page and how many users match in all (``before_id`` aside).
        """
        conditions: list[ColumnElement[bool]] = []
        if q.strip():
            needle = fold(q.strip())
            conditions.append(
                or_(
                    *(folded(User.email).contains(form, autoescape=True) for form in address_search_forms(q)),
                    folded(User.name).contains(needle, autoescape=True),
                )
            )
        if role is not None:
            conditions.append(User.role == role.value)
        if active is not None:
            conditions.append(User.is_active.is_(active))
        if erased is not None:
            conditions.append(User.erased_at.is_not(None) if erased else User.erased_at.is_(None))
        session = self.repository.session
        total = await session.scalar(select(func.count()).select_from(User).where(*conditions)) or 0
        if before_id is not None:
            conditions.append(User.id < before_id)
        rows = await session.scalars(
            select(User).where(*conditions).order_by(User.id.desc()).limit(limit).offset(offset)
        )
        return list(rows), total

    async def get_user(self, user_id: int, *, erased: bool = True) -> User:
        """The user with ``user_id``, read afresh from the database.

        Args:
            user_id: The user's id.
            erased: ``False``: an erased account counts as no such user (the API's view: erased is gone).

        Raises:
            NotFoundError: (advanced-alchemy's, answered as ``NotFound``) no such user.
        """
        conditions = [User.id == user_id] if erased else [User.id == user_id, User.erased_at.is_(None)]
        return await self.get_one(
            *conditions,
            execution_options={"populate_existing": True},
            error_messages={"not_found": "There is no such user."},
        )

    async def _check_keeps_an_admin(self, user: User) -> None:
        """Refuse a change that would leave the shop without an active admin, if ``user`` is one.

        The active admins' rows are read ``FOR UPDATE``: on PostgreSQL two admins demoting each other
        at once are serialised, and the second sees the first's change (SQLite ignores the clause but
        takes its write lock at the start of the transaction, which serialises them just the same).

        Raises:
            Conflict: ``user`` is the last active admin.
        """
        if not (user.is_admin and user.is_active):
            return
        admins = await self.repository.session.scalars(
            select(User.id).where(User.role == UserRole.ADMIN.value, User.is_active.is_(True)).with_for_update()
        )
        if set(admins) <= {user.id}:
            raise Conflict(LAST_ADMIN)

    async def set_role(self, user_id: int, role: UserRole, *, actor: User | None) -> User:
        """Promote a user to admin or demote them to customer (``update_user``); committed.

        Raises:
            NotFound: no such user.
            Conflict: demoting the last active admin (see ``LAST_ADMIN``), or the account was erased.
        """
        return await self.update_user(user_id, role=role, actor=actor)

    async def set_active(self, user_id: int, active: bool, *, actor: User | None) -> User:
        """Deactivate or reactivate an account (``update_user``); committed.

        Deactivating ends every browser session and API sign-in of the account at once
        (``end_all_sessions``); the session and bearer checks also refuse inactive users, and
        ``authenticate`` refuses their sign-in with the usual message.

        Raises:
            NotFound: no such user.
            Conflict: deactivating the last active admin (see ``LAST_ADMIN``), or the account was erased.
        """
        return await self.update_user(user_id, is_active=active, actor=actor)

    async def update_user(
        self,
        user_id: int,
        *,
        actor: User | None,
        name: str | None = None,
        role: UserRole | None = None,
        is_active: bool | None = None,
    ) -> User:
        """An admin's change of an account's name, role and/or access, all or nothing; committed.

        The admin pages change one thing at a time (``set_role``, ``set_active``), the API any of the
        three at once (``PATCH /api/users/{id}``); the rules are these for both:

        - the shop keeps an active admin: demoting or deactivating the last one is refused;
        - deactivating ends every browser session and API sign-in of the account (``end_all_sessions``);
        - an erased account stays as the erasure left it.

        Each field that changes gets its audit event (``rename``, ``role``, ``deactivate``/``reactivate``);
        a field that already holds the value is left alone (no event).

        Args:
            user_id: The account to change.
            actor: The admin making the change (``None``: the command line).
            name: A new display name (1-120 characters after trimming), or ``None`` to keep it.
            role: A new role, or ``None``.
            is_active: ``False`` to deactivate, ``True`` to reactivate, or ``None``.

        Raises:
            NotFound: no such user.
            ValidationFailed: the name is empty or too long.
            Conflict: the change would leave no active admin (``LAST_ADMIN``), or the account was erased.
        """
        session = self.repository.session
        async with session.begin_nested():
            user = await self.get_user(user_id)
            wanted = {
                "name": None if name is None else _checked_name(name),
                "role": None if role is None else role.value,
                "is_active": is_active,
            }
            changes = {k: [getattr(user, k), v] for k, v in wanted.items() if v is not None and getattr(user, k) != v}
            if not changes:
                return user
            if user.erased_at is not None:
                raise Conflict(ERASED)
            after = {field: changes.get(field, [None, getattr(user, field)])[1] for field in ("role", "is_active")}
            if not (after["role"] == UserRole.ADMIN.value and after["is_active"]):
                await self._check_keeps_an_admin(user)
            for field, (_, value) in changes.items():
                setattr(user, field, value)
            if not user.is_active and "is_active" in changes:
                await self.end_all_sessions(user.id)
            for field, change in changes.items():
                action, summary = _event(field, change[1])
                self.audit.record(
                    actor, "user", user.id, action, summary=f"{user.email} {summary}", changes={field: change}
                )
        await session.commit()
        return user

    # --- erasure (GDPR art. 17) and order figures (issue 17) --------------------------------------

    async def erase(self, user_id: int, *, actor: User | None) -> User:
        """Erase an account (an admin's request, or the user's own through ``erase_self``); committed.

        Its personal data goes (``webshop.accounts.erasure.forget_personal_data``: name, e-mail,
        password, address book, shop memberships, cart, account links), every browser session and API
        sign-in ends (``end_all_sessions``), and its orders stay as they were, snapshots and totals
        included. One audit event (``erase``) says who did it and what was removed.

        Erasing an erased account again changes nothing and succeeds (no second event), so a form sent
        twice is harmless. (The API answers 404 for an erased account before it gets here, see
        ``webshop.accounts.users_api``.)

        Args:
            user_id: The account to erase.
            actor: Who asks: an admin, the user themselves, or ``None`` (the command line).

        Returns:
            The erased user (``erased_at`` set).

        Raises:
            NotFound: no such user.
            Conflict: the account is the shop's last active admin (``LAST_ADMIN``).
        """
        session = self.repository.session
        async with session.begin_nested():
            user = await self.get_user(user_id)
            if user.erased_at is not None:
                return user
            await self._check_keeps_an_admin(user)
            await self.end_all_sessions(user.id)
            removed = await forget_personal_data(session, user)
            self.audit.record(
                actor,
                "user",
                user.id,
                "erase",
                summary=f"{user.email} erased (GDPR art. 17): personal data removed, orders kept",
                changes={kind: [count, 0] for kind, count in removed.items() if count},
            )
        await session.commit()
        return user

    async def erase_self(self, user: User, *, password: str, throttle: SignInThrottle | None = None) -> User:
        """Erase the signed-in user's own account (``erase``) once their password confirms it; committed.

        A wrong password changes nothing but counts as a failed sign-in and shares its lock (as in
        ``change_password``: a stolen session must not erase an account or guess its password).

        Args:
            user: The signed-in user.
            password: Their password, typed again.
            throttle: Counts failures (default: accounts only).

        Raises:
            ValidationFailed: the password is empty or wrong (``WRONG_PASSWORD``; field ``password``), as a
                wrong current password when changing the password or the e-mail address.
            TooManyAttempts: too many wrong passwords in a row; locked for ``retry_after`` seconds.
            Conflict: the user is the shop's last active admin (``LAST_ADMIN``).
        """
        throttle = throttle or SignInThrottle()
        user = await self.get_user(user.id)
        await throttle.check(user, user.email)
        if not password:  # no guess at all: nothing to count
            message = "Enter your password: your account was not deleted."
            raise ValidationFailed(message, field_errors={"password": "Enter your password."})
        if not (await verify_password(user.password_hash, password)).ok:
            await throttle.failed(self.repository.session, user, user.email, attempt="current_password")
            raise ValidationFailed(WRONG_PASSWORD, field_errors={"password": "This is not your password."})
        return await self.erase(user.id, actor=user)

    async def order_figures(self, user_id: int, currency: str) -> tuple[int, int, int]:
        """The user's orders in figures: ``(order_count, cancellations, total_spent)``.

        Args:
            user_id: The customer.
            currency: The shop's currency (ISO 4217); ``total_spent`` adds up orders in it only.

        Returns:
            How many orders they placed, how many of those were cancelled, and the totals (minor units
            of ``currency``) of their paid, shipped and delivered ones: unpaid, cancelled and refunded
            orders are not money spent.
        """
        spent = Order.status.in_([OrderStatus.PAID.value, OrderStatus.SHIPPED.value, OrderStatus.DELIVERED.value])
        row = (
            await self.repository.session.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(case((Order.status == OrderStatus.CANCELLED.value, 1), else_=0)), 0),
                    func.coalesce(func.sum(case((spent & (Order.currency == currency), Order.total), else_=0)), 0),
                ).where(Order.user_id == user_id)
            )
        ).one()
        return int(row[0]), int(row[1]), int(row[2])


def _checked_name(name: str) -> str:
    """``name`` trimmed, if it is an acceptable display name (1-``MAX_NAME_LENGTH`` characters).

    Raises:
        ValidationFailed: the name is empty or too long.
    """
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationFailed(
            "Please correct the marked fields.",
            field_errors={"name": f"Enter a name of 1 to {MAX_NAME_LENGTH} characters."},
        )
    return name


def _event(field: str, value: object) -> tuple[str, str]:
    """The audit ``action`` and summary (after the user's address) of setting ``field`` to ``value``."""
    if field == "role":
        return "role", "promoted to admin" if value == UserRole.ADMIN.value else f"changed to {value}"
    if field == "is_active":
        return ("reactivate", "reactivated") if value else ("deactivate", "deactivated (signed out everywhere)")
    return "rename", "renamed"
