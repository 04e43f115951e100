"""Throttling: failed sign-ins per account, and requests per client address.

**Per account** (OWASP Authentication Cheat Sheet, "Account Lockout"; NIST SP 800-63B §5.2.2): every
failed sign-in adds one to ``users.failed_sign_ins`` in a single ``UPDATE ... SET failed_sign_ins =
failed_sign_ins + 1`` (concurrent guesses all count). The first ``FREE_FAILURES`` failures cost
nothing; from then on each failure locks the account for a back-off that doubles (1, 2, 4, 8, 16
minutes), and from ``LONG_LOCK_AFTER`` failures on each failure locks it for ``LONG_LOCK``. A locked
account refuses even the right password until the lock ends, with "too many attempts, try again in N
minutes" (429 and ``Retry-After``). A successful sign-in resets the counter. Locks are temporary on
purpose: a permanent lock would let anyone lock a customer out by guessing.

The **current password** asked for by a password change (``POST /account/password``, ``PATCH
/api/users/me``) or an e-mail change (``POST /account/email``, ``POST /api/users/me/email-change``) is a
guess like any other: it is checked against the same lock and a wrong one adds
to the same counter (OWASP Authentication Cheat Sheet, "Change Password Feature": re-authentication
must not be an unthrottled password oracle for whoever holds a session or an access token).

**Unknown e-mail addresses** are counted the same way in the rate-limit store (by a SHA-256 digest of
the address, never the address itself), so a locked-out answer does not reveal whether an account
exists: an address without an account is "locked" after the same number of failures. With several
worker processes this needs ``WEBSHOP_REDIS_URL`` (shared store); without it each process counts
unknown addresses on its own, and a patient attacker could tell the two apart. Accounts are always
counted in the database.

**Per client address**: Litestar's rate limiting (``RateLimitConfig``), one bucket per limit and
address: ``auth`` (sign-in, registration, password reset, e-mail sending, API token and registration), ``refresh``
(``/api/auth/refresh``) and ``general`` (everything but static files, media, probes and metrics).
The address is the socket peer, or the forwarded client when the peer is a trusted proxy
(``webshop.security.proxies``). The store is Litestar's memory store per process, or Redis when
``WEBSHOP_REDIS_URL`` is set so that all workers share the counts. If the store fails, requests go
through (logged): a broken Redis must not take the shop down with 5xx answers.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from time import time
from typing import TYPE_CHECKING, Any, cast

from litestar.exceptions import TooManyRequestsException
from litestar.middleware.rate_limit import RateLimitConfig, RateLimitMiddleware
from litestar.serialization import decode_json, encode_json
from sqlalchemy import update

from webshop.config import LimitsSettings, parse_rate_limit
from webshop.db.models import User
from webshop.errors import TooManyAttempts
from webshop.observability.logging import get_logger
from webshop.observability.metrics import ACCOUNT_LOCKS, RATE_LIMITED, SIGN_IN_FAILURES
from webshop.web import AnyRequest

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.stores.base import Store
    from litestar.types import Receive, Scope, Send
    from sqlalchemy.ext.asyncio import AsyncSession

log = get_logger("webshop.security")

FREE_FAILURES = 5
"""Failed sign-ins in a row before the first lock."""
FIRST_LOCK = timedelta(minutes=1)
"""The first lock; each further failure doubles it until ``LONG_LOCK_AFTER``."""
LONG_LOCK_AFTER = 10
"""From this many failures in a row on, every failure locks for ``LONG_LOCK``."""
LONG_LOCK = timedelta(hours=1)
UNKNOWN_EMAIL_MEMORY = timedelta(days=1)
"""How long failures for an address without an account are remembered after the last one."""
STORE_NAME = "rate_limit"
"""The Litestar store holding rate-limit windows and unknown-address failure counts."""

AUTH_PATHS = re.compile(
    r"^/(account/(sign-in|register|forgot-password|reset-password|password-reset|verify-email|email)"
    r"|api/auth/(token|register|forgot-password|reset-password|password-reset|verification-email|verify-email"
    r"|confirm-email-change)|api/users/me/email-change)(/.*)?$"
)
"""POSTs to these paths share the strict ``auth`` limit per address, pages and API alike: sign-in,
registration, password reset (request and new password), the requests that send an e-mail (verification
again, e-mail change) and those that follow an e-mailed link."""
REFRESH_PATH = "/api/auth/refresh"
UNLIMITED_PATHS = ["^/static/", "^/media/", "^/health$", "^/ready$", "^/metrics$"]


def lock_duration(failures: int) -> timedelta | None:
    """How long ``failures`` failed sign-ins in a row lock an account for (``None``: not locked).

    >>> [lock_duration(n) for n in (4, 5, 6, 9, 10)]  # doctest: +NORMALIZE_WHITESPACE
    [None, datetime.timedelta(seconds=60), datetime.timedelta(seconds=120), datetime.timedelta(seconds=960),
     datetime.timedelta(seconds=3600)]
    """
    if failures < FREE_FAILURES:
        return None
    if failures >= LONG_LOCK_AFTER:
        return LONG_LOCK
    return cast("timedelta | None", FIRST_LOCK * 2 ** (failures - FREE_FAILURES))


def locked_message(seconds: int) -> str:
    """The message for a locked account: "Too many failed sign-in attempts. Try again in N minutes."."""
    minutes = max(1, math.ceil(seconds / 60))
    return f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."


def _email_key(email: str) -> str:
    return "sign-in-failures:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class SignInThrottle:
    """Failure counting and locks for ``UserService.authenticate`` (see the module docstring).

    Args:
        store: Where failures of unknown e-mail addresses are counted; ``None`` counts accounts only.
    """

    def __init__(self, store: Store | None = None) -> None:
        self.store = store

    @classmethod
    def for_app(cls, app: Litestar) -> SignInThrottle:
        """The throttle using ``app``'s rate-limit store."""
        return cls(app.stores.get(STORE_NAME))

    async def check(self, user: User | None, email: str) -> None:
        """Refuse an attempt while the account (or the unknown address) is locked.

        Raises:
            TooManyAttempts: locked; ``retry_after`` is the seconds left.
        """
        now = datetime.now(UTC)
        until: datetime | None = None
        if user is not None:
            until = _as_utc(user.locked_until) if user.locked_until else None
        elif email.strip():
            until = (await self._unknown(email))[1]
        if until is not None and until > now:
            seconds = math.ceil((until - now).total_seconds())
            log.info(
                "sign-in refused: locked",
                security_event="sign_in_locked",
                user_id=user.id if user else None,
                email_digest=None if user else _email_key(email)[-16:],
                retry_after=seconds,
            )
            raise TooManyAttempts(locked_message(seconds), retry_after=seconds)

    async def failed(self, session: AsyncSession, user: User | None, email: str, *, attempt: str = "sign_in") -> None:
        """Count a failed sign-in and lock when the count calls for it; commits for an account.

        The count must survive the error response (the request's own transaction rolls back), so
        the account's row is updated and committed here.

        Args:
            session: The request's session (committed here when ``user`` is an account).
            user: The account, or ``None`` for an address without one.
            email: The address typed (only counted when there is no account).
            attempt: What was guessed, for the log: ``sign_in`` or ``current_password``.
        """
        SIGN_IN_FAILURES.inc()
        now = datetime.now(UTC)
        if user is not None:
            failures = (
                await session.execute(
                    update(User)
                    .where(User.id == user.id)
                    .values(failed_sign_ins=User.failed_sign_ins + 1)
                    .returning(User.failed_sign_ins)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one()
            lock = lock_duration(failures)
            if lock is not None:
                await session.execute(
                    update(User)
                    .where(User.id == user.id)
                    .values(locked_until=now + lock)
                    .execution_options(synchronize_session=False)
                )
            await session.commit()
            subject: dict[str, Any] = {"user_id": user.id}
        else:
            if not email.strip() or self.store is None:
                log.warning("sign-in failed", security_event="sign_in_failed", user_id=None, failures=None)
                return
            failures = (await self._unknown(email))[0] + 1
            lock = lock_duration(failures)
            record = {"failures": failures, "locked_until": (now + lock).timestamp() if lock else None}
            try:
                await self.store.set(
                    _email_key(email), encode_json(record), expires_in=int(UNKNOWN_EMAIL_MEMORY.total_seconds())
                )
            except Exception as exc:  # a store outage must not turn sign-in into a 5xx
                log.warning("sign-in throttle store unavailable", error=type(exc).__name__)
            subject = {"user_id": None, "email_digest": _email_key(email)[-16:]}
        log.warning("sign-in failed", security_event="sign_in_failed", attempt=attempt, failures=failures, **subject)
        if lock is not None:
            ACCOUNT_LOCKS.inc()
            log.warning(
                "account locked",
                security_event="account_locked",
                failures=failures,
                locked_seconds=int(lock.total_seconds()),
                **subject,
            )

    async def succeeded(self, session: AsyncSession, user: User) -> None:
        """Reset the account's failure count after a successful sign-in (committed with the sign-in)."""
        if user.failed_sign_ins or user.locked_until is not None:
            await session.execute(
                update(User)
                .where(User.id == user.id)
                .values(failed_sign_ins=0, locked_until=None)
                .execution_options(synchronize_session=False)
            )
            user.failed_sign_ins, user.locked_until = 0, None

    async def _unknown(self, email: str) -> tuple[int, datetime | None]:
        """``(failures, locked_until)`` remembered for an address without an account."""
        if self.store is None:
            return 0, None
        try:
            raw = await self.store.get(_email_key(email))
        except Exception as exc:  # a store outage must not turn sign-in into a 5xx
            log.warning("sign-in throttle store unavailable", error=type(exc).__name__)
            return 0, None
        if not raw:
            return 0, None
        record = decode_json(raw)
        until = record.get("locked_until")
        return int(record.get("failures", 0)), datetime.fromtimestamp(until, UTC) if until else None


def provide_sign_in_throttle(request: AnyRequest) -> SignInThrottle:
    """Dependency ``sign_in_throttle``: the app's ``SignInThrottle``."""
    return SignInThrottle.for_app(request.app)


# --- per client address ---------------------------------------------------------------------------


class ShopRateLimitMiddleware(RateLimitMiddleware):
    """Litestar's rate-limit middleware, made to answer 429 with ``Retry-After`` and to fail open.

    Each limit keeps its own bucket per address (``name:address``). A refused request is logged
    (``security_event=rate_limited``) and counted; a store error lets the request through.
    """

    config: ShopRateLimitConfig

    def cache_key_from_request(self, request: AnyRequest) -> str:
        """``rate-limit:<limit name>:<client address>``."""
        return f"rate-limit:{self.config.name}:{self.get_identifier_for_request(request)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request in its bucket; refuse it with 429 when the bucket is full."""
        app = scope["litestar_app"]
        request: AnyRequest = app.request_class(scope)
        if not await self.should_check_request(request=request):
            await self.app(scope, receive, send)
            return
        key = self.cache_key_from_request(request)
        try:
            store = self.config.get_store_from_app(app)
            async with self._lock:
                window = await self.retrieve_cached_history(key, store)
                full = len(window.history) >= self.max_requests
                if not full:
                    await self.set_cached_history(key=key, cache_object=window, store=store)
        except Exception as exc:  # fail open: a store outage must not become a 5xx
            log.warning("rate limit store unavailable", limit=self.config.name, error=type(exc).__name__)
            await self.app(scope, receive, send)
            return
        if full:
            retry_after = max(1, window.reset - int(time()))
            RATE_LIMITED.labels(limit=self.config.name).inc()
            log.warning(
                "rate limit exceeded",
                security_event="rate_limited",
                limit=self.config.name,
                client=self.get_identifier_for_request(request),
                method=request.method,
                path=request.url.path,
                retry_after=retry_after,
            )
            headers = self.create_response_headers(cache_object=window)
            headers["Retry-After"] = str(retry_after)
            raise TooManyRequestsException(
                detail=f"Too many requests from your address. Please wait {retry_after} seconds and try again.",
                headers=headers,
            )
        await self.app(scope, receive, send)


@dataclass
class ShopRateLimitConfig(RateLimitConfig):
    """Litestar's ``RateLimitConfig`` with a name (the bucket key, the log field and the metric label) and
    this shop's defaults: ``ShopRateLimitMiddleware``, the ``rate_limit`` store, static files, media and
    probes never limited, and no ``RateLimit-*`` headers on answers that were let through (a refusal
    says ``Retry-After``, RFC 9110 §10.2.3)."""

    name: str = "general"
    exclude: str | list[str] | None = field(default_factory=lambda: list(UNLIMITED_PATHS))
    middleware_class: type[RateLimitMiddleware] = ShopRateLimitMiddleware
    set_rate_limit_headers: bool = False
    store: str = STORE_NAME


# Coroutines, not plain functions: Litestar runs a plain ``check_throttle_handler`` in a worker thread,
# two thread hops on every request for a comparison of strings.
async def _is_auth(request: AnyRequest) -> bool:
    return request.method == "POST" and AUTH_PATHS.match(request.url.path) is not None


async def _is_refresh(request: AnyRequest) -> bool:
    return request.method == "POST" and request.url.path == REFRESH_PATH


def rate_limit_middleware(limits: LimitsSettings) -> list[Any]:
    """The per-address limits of ``limits`` as middleware (the ``off`` ones left out), strictest first."""
    per_route = [
        ("auth", limits.rate_limit_auth, _is_auth),
        ("refresh", limits.rate_limit_refresh, _is_refresh),
        ("general", limits.rate_limit_general, None),
    ]
    middleware = []
    for name, raw, applies in per_route:
        limit = parse_rate_limit(f"WEBSHOP_RATE_LIMIT_{name.upper()}", raw)
        if limit is None:
            continue
        config = ShopRateLimitConfig(rate_limit=limit, name=name, check_throttle_handler=applies)  # type: ignore[arg-type]
        middleware.append(config.middleware)
    return middleware


def rate_limit_stores(limits: LimitsSettings) -> dict[str, Store]:
    """The ``rate_limit`` store: Redis when ``WEBSHOP_REDIS_URL`` is set (shared by all workers), else memory.

    Redis calls time out after a second, so an unreachable Redis costs little before the request goes on.
    """
    if not limits.redis_url:
        from litestar.stores.memory import MemoryStore

        return {STORE_NAME: MemoryStore()}
    from litestar.stores.redis import RedisStore
    from redis.asyncio import Redis

    client = Redis.from_url(limits.redis_url, socket_connect_timeout=1, socket_timeout=1)
    return {STORE_NAME: RedisStore(client, namespace="webshop", handle_client_shutdown=True)}
