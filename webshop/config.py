"""Settings: one frozen dataclass read from ``WEBSHOP_*`` environment variables.

Every setting is documented in the README's "Configuration" table. ``get_settings()`` caches the
result for the life of the process; tests build their own ``Settings`` and pass it to ``create_app``.
"""

from __future__ import annotations

import difflib
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webshop.config_values import (
    DEFAULT_TAX_RATES_BP as DEFAULT_TAX_RATES_BP,
)
from webshop.config_values import (
    SettingsError as SettingsError,
)
from webshop.config_values import (
    _allowed_hosts,
    _database_url,
    _env_bool,
    _env_float,
    _env_int,
    _env_list,
    _http_url,
    _tax_rates,
    _trusted_proxies,
)
from webshop.config_values import (
    parse_rate_limit as parse_rate_limit,
)

DEFAULT_DATABASE_FILE = "webshop.db"
STATE_DIR = ".webshop"


def _development_secret(state_dir: Path) -> str:
    """Return the development secret key kept in ``state_dir/secret_key``, creating it once."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


@dataclass(frozen=True)
class Settings:
    """Application settings.

    Attributes:
        database_url: SQLAlchemy async URL (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``).
        secret_key: Key for session cookies, CSRF tokens and signed links (at least 32 characters).
        media_dir: Directory that holds uploaded and imported product images and their derivatives.
        environment: ``development`` or ``production``; production refuses a generated secret key.
        base_url: Public URL of the shop; an ``https`` URL turns on ``Secure`` cookies. Not set,
            ``webshop serve`` and ``webshop demo`` make it the address they listen on (``served_base_url``).
        currency: ISO 4217 code of the shop's prices.
        debug: Litestar debug mode (tracebacks in responses): never in production.
        admin_email / admin_password: Credentials ``webshop demo`` gives the admin it creates.
        sqlite_busy_timeout_ms: How long a SQLite writer waits for the lock before giving up.
        page_size: Products per catalog page.
        tax_rates_bp: Tax rate per tax category, in basis points (``{"standard": 2000}`` is 20 %).
        require_verified_email: Checkout asks for a verified e-mail address first.
        access_token_minutes: Lifetime of an API access token (JWT ``exp``), minutes.
        refresh_token_days: Lifetime of an API refresh token, days.
        jwt_issuer: The ``iss`` claim of API tokens (default: ``base_url``).
        host / port / workers: Where and with how many worker processes ``webshop serve`` listens.
        graceful_timeout: Seconds ``webshop serve`` lets in-flight requests finish after SIGTERM.
        db_connect_timeout: Seconds to wait for a new PostgreSQL connection before answering 503.
        db_pool_timeout: Seconds a request waits for a free pooled connection before answering 503.
        max_active_requests: Requests a worker runs at once; the others queue, writes first
            (``webshop.web.admission``); ``0``: no limit.
        queue_timeout: Seconds a queued request waits for its turn before answering 503.
        migrate_on_start: ``webshop serve`` applies pending migrations (else it refuses to start behind).
        smtp_host: SMTP server for outgoing mail; empty: write each message as a ``.eml`` file to
            ``mail_outbox_dir`` instead (the development default).
        smtp_port / smtp_tls: Its port, and ``none``, ``starttls`` (RFC 3207) or ``tls`` (implicit, RFC 8314).
        smtp_username / smtp_password: SMTP AUTH credentials (empty: no AUTH).
        smtp_timeout: Seconds one SMTP conversation may take before it counts as a failed attempt.
        mail_from: The ``From`` address of every e-mail (``Name <address>`` or a bare address).
        mail_outbox_dir: Folder the development transport writes ``.eml`` files to.
        mail_poll_interval: Seconds between the sender's looks at the outbox (it also wakes on commit).
        mail_retry_base: Seconds before the first retry of a failed message; doubles per attempt (max 6 h).
        mail_max_attempts: Attempts before a message is marked ``failed``.
        email_token_hours: Lifetime of e-mail verification and e-mail change links, hours.
        reset_token_minutes: Lifetime of password reset links, minutes (OWASP: short).
        log_format: ``console`` (readable, the development default) or ``json`` (one object per line,
            the production default).
        log_level: Level of the root logger (``DEBUG``, ``INFO``, ``WARNING``...).
        trusted_proxies: IP addresses / CIDR networks of reverse proxies whose ``X-Forwarded-For``,
            ``X-Forwarded-Proto`` and ``X-Request-ID`` are believed (empty: nobody's).
        allowed_hosts: ``Host`` header values the shop answers (empty: any in development, the host of
            ``base_url`` in production); see ``effective_allowed_hosts``.
        redis_url: ``redis://`` URL of a Redis shared by the workers for rate limits and sign-in
            throttling (empty: each process counts on its own, in memory).
        rate_limit_auth: Per-address limit on sign-in, registration, password reset and API token
            requests, e.g. ``20/minute``; ``off`` disables it.
        rate_limit_refresh: Per-address limit on ``POST /api/auth/refresh``.
        rate_limit_general: Per-address limit on every other request (static files, media, probes and
            metrics excepted).
        slow_request_ms: Requests slower than this many milliseconds are logged as slow.
        metrics_token: Bearer token ``/metrics`` requires (empty: open; required in production).
    """

    database_url: str
    secret_key: str
    media_dir: Path
    environment: str = "development"
    base_url: str = "http://127.0.0.1:8000"
    currency: str = "USD"
    debug: bool = False
    admin_email: str | None = None
    admin_password: str | None = None
    sqlite_busy_timeout_ms: int = 30_000
    page_size: int = 24
    db_pool_size: int = 10
    echo_sql: bool = False
    tax_rates_bp: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_TAX_RATES_BP))
    require_verified_email: bool = False
    access_token_minutes: int = 15
    refresh_token_days: int = 30
    jwt_issuer: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    graceful_timeout: int = 30
    db_connect_timeout: float = 5.0
    db_pool_timeout: float = 5.0
    max_active_requests: int = 4
    queue_timeout: float = 10.0
    migrate_on_start: bool = True
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_tls: str = "starttls"
    smtp_username: str = ""
    smtp_password: str = field(default="", repr=False)
    smtp_timeout: float = 30.0
    mail_from: str = "webshop <noreply@localhost>"
    mail_outbox_dir: Path = Path(STATE_DIR) / "outbox"
    mail_poll_interval: float = 1.0
    mail_retry_base: float = 30.0
    mail_max_attempts: int = 8
    email_token_hours: int = 24
    reset_token_minutes: int = 60
    log_format: str = "console"
    log_level: str = "INFO"
    trusted_proxies: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    redis_url: str = ""
    rate_limit_auth: str = "20/minute"
    rate_limit_refresh: str = "30/minute"
    rate_limit_general: str = "1200/minute"
    slow_request_ms: int = 500
    metrics_token: str = field(default="", repr=False)

    @property
    def effective_allowed_hosts(self) -> list[str]:
        """``Host`` values to accept: ``allowed_hosts``, else ``*`` in development and the host of
        ``base_url`` (with and without its port) in production."""
        if self.allowed_hosts:
            return list(self.allowed_hosts)
        if self.environment != "production":
            return ["*"]
        parts = urlsplit(self.base_url)
        hosts = [parts.netloc.rpartition("@")[2]]
        if parts.hostname and parts.hostname not in hosts:
            hosts.append(parts.hostname)
        return hosts

    @property
    def token_issuer(self) -> str:
        """The ``iss`` claim of API tokens: ``WEBSHOP_JWT_ISSUER`` or the shop's base URL."""
        return self.jwt_issuer or self.base_url

    @property
    def is_sqlite(self) -> bool:
        """True when the database is SQLite (the embedded default)."""
        return self.database_url.startswith("sqlite")

    @property
    def secure_cookies(self) -> bool:
        """Cookies carry ``Secure`` when the shop is served over https (OWASP Session Management)."""
        return self.base_url.startswith("https://")

    @classmethod
    def from_env(cls) -> Settings:
        """Read settings from ``WEBSHOP_*`` environment variables.

        Raises:
            SettingsError: a variable is malformed, or production runs without a real secret key.
        """
        cwd = Path.cwd()
        environment = os.environ.get("WEBSHOP_ENV", "development").strip().lower()
        if environment not in {"development", "production"}:
            raise SettingsError(f"WEBSHOP_ENV must be development or production, got {environment!r}")
        database_url = _database_url(
            os.environ.get("WEBSHOP_DATABASE_URL") or f"sqlite+aiosqlite:///{DEFAULT_DATABASE_FILE}"
        )
        secret_key = _secret_key(os.environ.get("WEBSHOP_SECRET_KEY", ""), environment, cwd / STATE_DIR)
        if environment == "production" and _env_bool("WEBSHOP_DEBUG", False):
            raise SettingsError("WEBSHOP_DEBUG must be off in production: debug pages show tracebacks to visitors")
        media_dir = Path(os.environ.get("WEBSHOP_MEDIA_DIR") or cwd / "media").resolve()
        if media_dir.exists() and not media_dir.is_dir():
            raise SettingsError(f"WEBSHOP_MEDIA_DIR must be a folder, but {media_dir} is a file")
        currency = os.environ.get("WEBSHOP_CURRENCY", "USD").strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise SettingsError(f"WEBSHOP_CURRENCY must be a three-letter ISO 4217 code such as USD, got {currency!r}")
        admin_email = os.environ.get("WEBSHOP_ADMIN_EMAIL", "").strip() or None
        if admin_email is not None and "@" not in admin_email:
            raise SettingsError(f"WEBSHOP_ADMIN_EMAIL must be an e-mail address, got {admin_email!r}")
        host = (os.environ.get("WEBSHOP_HOST") or "127.0.0.1").strip()
        if not host or any(c.isspace() or c in "/?#" for c in host):
            raise SettingsError(f"WEBSHOP_HOST must be a host name or IP address, got {host!r}")
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            media_dir=media_dir,
            environment=environment,
            base_url=_http_url("WEBSHOP_BASE_URL", os.environ.get("WEBSHOP_BASE_URL") or "http://127.0.0.1:8000"),
            currency=currency,
            debug=_env_bool("WEBSHOP_DEBUG", False) and environment != "production",
            admin_email=admin_email,
            admin_password=os.environ.get("WEBSHOP_ADMIN_PASSWORD") or None,
            sqlite_busy_timeout_ms=_env_int("WEBSHOP_SQLITE_BUSY_TIMEOUT_MS", 30_000, minimum=0, maximum=600_000),
            page_size=_env_int("WEBSHOP_PAGE_SIZE", 24, minimum=1, maximum=500),
            db_pool_size=_env_int("WEBSHOP_DB_POOL_SIZE", 10, minimum=1, maximum=1000),
            echo_sql=_env_bool("WEBSHOP_ECHO_SQL", False),
            tax_rates_bp=_tax_rates(os.environ.get("WEBSHOP_TAX_RATES")),
            require_verified_email=_env_bool("WEBSHOP_REQUIRE_VERIFIED_EMAIL", False),
            access_token_minutes=_env_int("WEBSHOP_ACCESS_TOKEN_MINUTES", 15, minimum=1, maximum=24 * 60),
            refresh_token_days=_env_int("WEBSHOP_REFRESH_TOKEN_DAYS", 30, minimum=1, maximum=3650),
            jwt_issuer=os.environ.get("WEBSHOP_JWT_ISSUER", ""),
            host=host,
            port=_env_int("WEBSHOP_PORT", 8000, minimum=1, maximum=65535),
            workers=_env_int("WEBSHOP_WORKERS", 1, minimum=1, maximum=64),
            graceful_timeout=_env_int("WEBSHOP_GRACEFUL_TIMEOUT", 30, minimum=0, maximum=3600),
            db_connect_timeout=_env_float("WEBSHOP_DB_CONNECT_TIMEOUT", 5.0, minimum=0.1, maximum=300),
            db_pool_timeout=_env_float("WEBSHOP_DB_POOL_TIMEOUT", 5.0, minimum=0.1, maximum=300),
            max_active_requests=_env_int("WEBSHOP_MAX_ACTIVE_REQUESTS", 4, minimum=0, maximum=10_000),
            queue_timeout=_env_float("WEBSHOP_QUEUE_TIMEOUT", 10.0, minimum=0.1, maximum=300),
            migrate_on_start=_env_bool("WEBSHOP_MIGRATE_ON_START", True),
            **_operations_settings(environment),
            **_mail_settings(cwd),
        )


def _operations_settings(environment: str) -> dict[str, Any]:
    """Logging, proxies, allowed hosts, Redis, rate limits and metrics settings (see ``Settings``).

    Raises:
        SettingsError: an unknown log format or level, a malformed proxy, host, URL or rate limit.
    """
    import logging

    log_format = os.environ.get("WEBSHOP_LOG_FORMAT", "").strip().lower() or (
        "json" if environment == "production" else "console"
    )
    if log_format not in {"console", "json"}:
        raise SettingsError(f"WEBSHOP_LOG_FORMAT must be console or json, got {log_format!r}")
    log_level = os.environ.get("WEBSHOP_LOG_LEVEL", "").strip().upper() or "INFO"
    if not isinstance(logging.getLevelName(log_level), int):
        raise SettingsError(f"WEBSHOP_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {log_level!r}")
    redis_url = os.environ.get("WEBSHOP_REDIS_URL", "").strip()
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"WEBSHOP_REDIS_URL must start with redis://, rediss:// or unix://, got {redis_url!r}")
    limits = {}
    for key, default in (("auth", "20/minute"), ("refresh", "30/minute"), ("general", "1200/minute")):
        name = f"WEBSHOP_RATE_LIMIT_{key.upper()}"
        raw = os.environ.get(name, "").strip() or default
        parse_rate_limit(name, raw)
        limits[f"rate_limit_{key}"] = raw
    return {
        "log_format": log_format,
        "log_level": log_level,
        "trusted_proxies": _trusted_proxies(_env_list("WEBSHOP_TRUSTED_PROXIES")),
        "allowed_hosts": _allowed_hosts(_env_list("WEBSHOP_ALLOWED_HOSTS")),
        "redis_url": redis_url,
        **limits,
        "slow_request_ms": _env_int("WEBSHOP_SLOW_REQUEST_MS", 500, minimum=1, maximum=3_600_000),
        "metrics_token": _metrics_token(os.environ.get("WEBSHOP_METRICS_TOKEN", ""), environment),
    }


def _metrics_token(raw: str, environment: str) -> str:
    """Check ``WEBSHOP_METRICS_TOKEN``: production refuses to start without one.

    Open metrics tell anyone the shop's routes, traffic, error rates and latencies (OWASP Top 10
    A05:2021 Security Misconfiguration; OWASP Logging Cheat Sheet: protect what monitoring exposes).

    Raises:
        SettingsError: production without a token.
    """
    token = raw.strip()
    if environment == "production" and not token:
        raise SettingsError(
            "WEBSHOP_METRICS_TOKEN must be set in production: /metrics would be open to anyone; "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return token


SMTP_TLS_MODES = {"none": 25, "starttls": 587, "tls": 465}
"""``WEBSHOP_SMTP_TLS`` values and the port each one uses by default."""


def _mail_settings(cwd: Path) -> dict[str, Any]:
    """The ``WEBSHOP_SMTP_*``, ``WEBSHOP_MAIL_*`` and link-lifetime settings (see ``Settings``).

    Raises:
        SettingsError: an unknown TLS mode, a port out of range, or a ``From`` without an address.
    """
    from email.utils import parseaddr

    tls = os.environ.get("WEBSHOP_SMTP_TLS", "starttls").strip().lower() or "starttls"
    if tls not in SMTP_TLS_MODES:
        raise SettingsError(f"WEBSHOP_SMTP_TLS must be none, starttls or tls, got {tls!r}")
    mail_from = os.environ.get("WEBSHOP_MAIL_FROM", "").strip() or Settings.mail_from
    if "@" not in parseaddr(mail_from)[1]:
        raise SettingsError(f"WEBSHOP_MAIL_FROM must be an address like Shop <shop@example.com>, got {mail_from!r}")
    outbox = os.environ.get("WEBSHOP_MAIL_OUTBOX_DIR", "").strip()
    return {
        "smtp_host": os.environ.get("WEBSHOP_SMTP_HOST", "").strip(),
        "smtp_port": _env_int("WEBSHOP_SMTP_PORT", SMTP_TLS_MODES[tls], minimum=1, maximum=65535),
        "smtp_tls": tls,
        "smtp_username": os.environ.get("WEBSHOP_SMTP_USERNAME", ""),
        "smtp_password": os.environ.get("WEBSHOP_SMTP_PASSWORD", ""),
        "smtp_timeout": _env_float("WEBSHOP_SMTP_TIMEOUT", 30.0, minimum=1, maximum=600),
        "mail_from": mail_from,
        "mail_outbox_dir": Path(outbox).resolve() if outbox else cwd / STATE_DIR / "outbox",
        "mail_poll_interval": _env_float("WEBSHOP_MAIL_POLL_SECONDS", 1.0, minimum=0.01, maximum=3600),
        "mail_retry_base": _env_float("WEBSHOP_MAIL_RETRY_SECONDS", 30.0, minimum=0.01, maximum=86400),
        "mail_max_attempts": _env_int("WEBSHOP_MAIL_MAX_ATTEMPTS", 8, minimum=1, maximum=100),
        "email_token_hours": _env_int("WEBSHOP_EMAIL_TOKEN_HOURS", 24, minimum=1, maximum=24 * 30),
        "reset_token_minutes": _env_int("WEBSHOP_RESET_TOKEN_MINUTES", 60, minimum=5, maximum=24 * 60),
    }


# Fragments of well-known placeholder keys (compared lower-case, without punctuation): a key that
# contains one was copied from an example, not generated (OWASP Secrets Management Cheat Sheet).
PLACEHOLDER_KEY_WORDS = ("changeme", "yoursecret", "secretkey", "placeholder", "example", "insecure", "default")
MIN_KEY_DISTINCT_CHARACTERS = 12


def _secret_key(raw: str, environment: str, state_dir: Path) -> str:
    """Check ``WEBSHOP_SECRET_KEY``; in development an empty one becomes the generated development key.

    Production refuses a missing key, a key shorter than 32 characters, a placeholder copied from an
    example (see ``PLACEHOLDER_KEY_WORDS``), a key with little variety (fewer than 12 different
    characters, e.g. ``aaaa...``) and the development key kept in ``.webshop/secret_key``.

    Raises:
        SettingsError: the key is unusable; the message says how to generate a good one.
    """
    how = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
    key = raw.strip()
    if not key:
        if environment == "production":
            raise SettingsError(f"WEBSHOP_SECRET_KEY must be set in production; {how}")
        key = _development_secret(state_dir)
    if len(key) < 32:
        raise SettingsError(f"WEBSHOP_SECRET_KEY must be at least 32 characters long; {how}")
    if environment == "production":
        folded = re.sub(r"[^a-z0-9]", "", key.lower())
        if any(word in folded for word in PLACEHOLDER_KEY_WORDS) or len(set(key)) < MIN_KEY_DISTINCT_CHARACTERS:
            raise SettingsError(f"WEBSHOP_SECRET_KEY looks like a placeholder, not a random key; {how}")
        development_key = state_dir / "secret_key"
        if development_key.is_file() and development_key.read_text().strip() == key:
            raise SettingsError(
                f"WEBSHOP_SECRET_KEY is the development key from {development_key}, which must not be used "
                f"in production; {how}"
            )
    return key


KNOWN_VARIABLES = frozenset(
    {
        "WEBSHOP_ENV",
        "WEBSHOP_DATABASE_URL",
        "WEBSHOP_SECRET_KEY",
        "WEBSHOP_MEDIA_DIR",
        "WEBSHOP_BASE_URL",
        "WEBSHOP_CURRENCY",
        "WEBSHOP_DEBUG",
        "WEBSHOP_ADMIN_EMAIL",
        "WEBSHOP_ADMIN_PASSWORD",
        "WEBSHOP_SQLITE_BUSY_TIMEOUT_MS",
        "WEBSHOP_PAGE_SIZE",
        "WEBSHOP_DB_POOL_SIZE",
        "WEBSHOP_ECHO_SQL",
        "WEBSHOP_TAX_RATES",
        "WEBSHOP_REQUIRE_VERIFIED_EMAIL",
        "WEBSHOP_ACCESS_TOKEN_MINUTES",
        "WEBSHOP_REFRESH_TOKEN_DAYS",
        "WEBSHOP_JWT_ISSUER",
        "WEBSHOP_HOST",
        "WEBSHOP_PORT",
        "WEBSHOP_WORKERS",
        "WEBSHOP_GRACEFUL_TIMEOUT",
        "WEBSHOP_DB_CONNECT_TIMEOUT",
        "WEBSHOP_DB_POOL_TIMEOUT",
        "WEBSHOP_MAX_ACTIVE_REQUESTS",
        "WEBSHOP_QUEUE_TIMEOUT",
        "WEBSHOP_MIGRATE_ON_START",
        "WEBSHOP_SMTP_HOST",
        "WEBSHOP_SMTP_PORT",
        "WEBSHOP_SMTP_TLS",
        "WEBSHOP_SMTP_USERNAME",
        "WEBSHOP_SMTP_PASSWORD",
        "WEBSHOP_SMTP_TIMEOUT",
        "WEBSHOP_MAIL_FROM",
        "WEBSHOP_MAIL_OUTBOX_DIR",
        "WEBSHOP_MAIL_POLL_SECONDS",
        "WEBSHOP_MAIL_RETRY_SECONDS",
        "WEBSHOP_MAIL_MAX_ATTEMPTS",
        "WEBSHOP_EMAIL_TOKEN_HOURS",
        "WEBSHOP_RESET_TOKEN_MINUTES",
        "WEBSHOP_LOG_FORMAT",
        "WEBSHOP_LOG_LEVEL",
        "WEBSHOP_TRUSTED_PROXIES",
        "WEBSHOP_ALLOWED_HOSTS",
        "WEBSHOP_REDIS_URL",
        "WEBSHOP_RATE_LIMIT_AUTH",
        "WEBSHOP_RATE_LIMIT_REFRESH",
        "WEBSHOP_RATE_LIMIT_GENERAL",
        "WEBSHOP_SLOW_REQUEST_MS",
        "WEBSHOP_METRICS_TOKEN",
    }
)
"""Every ``WEBSHOP_*`` setting. Add a new setting's name here too (tests/unit/test_settings.py checks it)."""
IGNORED_VARIABLES = frozenset({"WEBSHOP_TEST_POSTGRES_URL", "WEBSHOP_REQUIRE_BROWSER"})
"""``WEBSHOP_*`` variables of the test suite and CI, not settings; never reported as typos."""


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for ``WEBSHOP_*`` variables that are no setting, most likely typos.

    Returns:
        One message per unknown name, with the closest known name when there is one:
        ``"<name> is not a webshop setting and is ignored (did you mean WEBSHOP_PAGE_SIZE?)"``.
    """
    environ = os.environ if environ is None else environ
    messages = []
    for name in sorted(environ):
        if not name.startswith("WEBSHOP_") or name in KNOWN_VARIABLES or name in IGNORED_VARIABLES:
            continue
        close = difflib.get_close_matches(name, sorted(KNOWN_VARIABLES), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        messages.append(f"{name} is not a webshop setting and is ignored{hint}")
    return messages


def settings_warnings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Things that work but are probably wrong: unknown ``WEBSHOP_*`` names, production over plain http."""
    messages = unknown_variables(environ)
    if settings.environment == "production" and not settings.secure_cookies:
        messages.append(
            f"WEBSHOP_BASE_URL is {settings.base_url} in production: cookies are not marked Secure and HSTS "
            "is off; serve the shop over https and set WEBSHOP_BASE_URL=https://..."
        )
    if settings.environment == "production" and not settings.smtp_host:
        messages.append(
            f"WEBSHOP_SMTP_HOST is not set in production: e-mails are written to {settings.mail_outbox_dir}, "
            "not sent; set WEBSHOP_SMTP_HOST (and WEBSHOP_SMTP_USERNAME/PASSWORD) to send them"
        )
    return messages


def served_base_url(host: str, port: int) -> str:
    """The base URL for links (in e-mails) when ``WEBSHOP_BASE_URL`` is not set: where the shop serves.

    Args:
        host: The interface ``webshop serve``/``demo`` listens on; a wildcard (``0.0.0.0``, ``::``)
            becomes the loopback address, an IPv6 address gets its brackets.
        port: The TCP port it listens on.

    Returns:
        ``http://HOST:PORT``, e.g. ``http://127.0.0.1:8612``.
    """
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host.strip(), host.strip())  # noqa: S104
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings.from_env()
