"""Settings: frozen groups by concern (server, database, security, limits, shop, mail, webhooks), read from
``WEBSHOP_*`` environment variables through the field table (``webshop.config.fields``).

``Settings`` holds one object per group (``settings.mail.smtp_host``, ``settings.database.url``);
a component that needs one concern is given that group only (the mail transport ``MailSettings``,
the engine ``DatabaseSettings``). Build settings with ``Settings.from_env()`` (the process, through
``get_settings()``) or ``Settings.from_flat(...)`` (tests, benchmarks: flat keyword names, the
variable without ``WEBSHOP_`` in lower case), and change them with ``settings.with_values(...)``,
which keeps the derived values right.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webshop.config.fields import FIELDS, FIELDS_BY_FLAT, default_values, read_environment


@dataclass(frozen=True)
class ServerSettings:
    """How the process runs: ``webshop serve`` and logging.

    Attributes:
        environment: ``development`` or ``production``; production refuses a generated secret key,
            open metrics and debug, logs JSON and sends ``Server-Timing`` to admins only.
        debug: Litestar debug mode (tracebacks in responses): never in production.
        host / port / workers: Where and with how many worker processes ``webshop serve`` listens.
        graceful_timeout: Seconds ``webshop serve`` lets in-flight requests finish after SIGTERM.
        log_format: ``console`` (readable) or ``json`` (one object per line).
        log_level: Level of the root logger (``DEBUG``, ``INFO``, ``WARNING``...).
        slow_request_ms: Requests slower than this many milliseconds are logged as slow.
    """

    environment: str
    debug: bool
    host: str
    port: int
    workers: int
    graceful_timeout: int
    log_format: str
    log_level: str
    slow_request_ms: int

    @property
    def production(self) -> bool:
        """True in production (``WEBSHOP_ENV=production``)."""
        return self.environment == "production"


@dataclass(frozen=True)
class DatabaseSettings:
    """The database and its connection pool.

    Attributes:
        url: SQLAlchemy async URL (``sqlite+aiosqlite:///...`` or ``postgresql+asyncpg://...``).
        pool_size: Connections per worker process (PostgreSQL: as many again in overflow).
        pool_timeout: Seconds a request waits for a free pooled connection before answering 503.
        connect_timeout: Seconds to wait for a new PostgreSQL connection before answering 503.
        sqlite_busy_timeout_ms: Milliseconds a SQLite writer waits for the lock before giving up.
        echo_sql: Log every SQL statement.
        migrate_on_start: ``webshop serve`` applies pending migrations (else it refuses to start behind).
    """

    url: str = field(repr=False)  # may hold a password
    pool_size: int
    pool_timeout: float
    connect_timeout: float
    sqlite_busy_timeout_ms: int
    echo_sql: bool
    migrate_on_start: bool

    @property
    def is_sqlite(self) -> bool:
        """True when the database is SQLite (the embedded default)."""
        return self.url.startswith("sqlite")


@dataclass(frozen=True)
class SecuritySettings:
    """Keys, hosts, proxies, token and link lifetimes.

    Attributes:
        secret_key: Key for session cookies, CSRF tokens, signed links and API tokens (32+ characters).
        allowed_hosts: ``Host`` values the shop answers as configured (empty: see
            ``effective_allowed_hosts``).
        trusted_proxies: IP addresses / CIDR networks of reverse proxies whose ``X-Forwarded-For``,
            ``X-Forwarded-Proto`` and ``X-Request-ID`` are believed (empty: nobody's).
        cors_origins: Origins whose browser apps may call ``/api`` (CORS; empty: none, ``*``: any,
            without credentials).
        access_token_minutes: Lifetime of an API access token (JWT ``exp``), minutes.
        refresh_token_days: Lifetime of an API refresh token, days.
        jwt_issuer: ``WEBSHOP_JWT_ISSUER`` as configured (empty: the base URL; see ``token_issuer``).
        email_token_hours: Lifetime of e-mail verification and e-mail change links, hours.
        reset_token_minutes: Lifetime of password reset links, minutes (OWASP: short).
        metrics_token: Bearer token ``/metrics`` requires (empty: open; required in production).
        token_issuer: Derived: the ``iss`` claim of API tokens, ``jwt_issuer`` or the shop's base URL.
        secure_cookies: Derived: cookies carry ``Secure`` (and HSTS is sent) because the base URL is
            https (OWASP Session Management).
        effective_allowed_hosts: Derived: ``Host`` values to accept: ``allowed_hosts``, else ``*`` in
            development and the host of the base URL (with and without its port) in production.
    """

    secret_key: str = field(repr=False)
    allowed_hosts: tuple[str, ...]
    trusted_proxies: tuple[str, ...]
    cors_origins: tuple[str, ...]
    access_token_minutes: int
    refresh_token_days: int
    jwt_issuer: str
    email_token_hours: int
    reset_token_minutes: int
    metrics_token: str = field(repr=False)
    token_issuer: str
    secure_cookies: bool
    effective_allowed_hosts: tuple[str, ...]


@dataclass(frozen=True)
class LimitsSettings:
    """How much each client and each worker may ask for at once.

    Attributes:
        max_active_requests: Requests a worker runs at once; the others queue, writes first
            (``webshop.web.admission``); ``0``: no limit.
        queue_timeout: Seconds a queued request waits for its turn before answering 503.
        redis_url: ``redis://`` URL of a Redis shared by the workers for rate limits and sign-in
            throttling (empty: each process counts on its own, in memory).
        rate_limit_auth: Per-address limit on sign-in, registration, password reset and API token
            requests, e.g. ``20/minute``; ``off`` disables it.
        rate_limit_refresh: Per-address limit on ``POST /api/auth/refresh``.
        rate_limit_general: Per-address limit on every other request (static files, media, probes and
            metrics excepted).
    """

    max_active_requests: int
    queue_timeout: float
    redis_url: str
    rate_limit_auth: str
    rate_limit_refresh: str
    rate_limit_general: str


@dataclass(frozen=True)
class ShopSettings:
    """What the shop sells and shows.

    Attributes:
        base_url: Public URL of the shop (links in e-mails, canonical URLs); an ``https`` URL turns on
            ``Secure`` cookies. Not set, ``webshop serve``/``demo`` make it the address they listen on.
        currency: ISO 4217 code of the shop's prices.
        tax_rates_bp: Tax rate per tax category, in basis points (``{"standard": 2000}`` is 20 %): the
            rates the migration seeds for every country; after that the ``tax_rates`` table rules.
        price_mode: ``net`` (prices exclude tax) or ``gross`` (prices include tax).
        default_country: ISO 3166-1 alpha-2 code the cart prices tax and shipping for before an address.
        page_size: Products per catalog page.
        media_dir: Directory that holds uploaded and imported product images and their derivatives.
        require_verified_email: Checkout asks for a verified e-mail address first.
        shop_name: Name of the default shop, which the migration creates (``webshop.shops``).
        admin_email / admin_password: Credentials ``webshop demo`` gives the admin it creates
            (``None``: ``admin@example.com`` and a generated password).
    """

    base_url: str
    currency: str
    tax_rates_bp: dict[str, int]
    page_size: int
    media_dir: Path
    require_verified_email: bool
    shop_name: str
    admin_email: str | None
    admin_password: str | None = field(repr=False)
    price_mode: str = "net"
    default_country: str = "US"


@dataclass(frozen=True)
class SenderPace:
    """How a background sender works through its outbox table (``webshop.db.outbox_sender``): the pace
    the mail and the webhook settings share.

    Attributes:
        poll_seconds: Seconds between the sender's looks for due rows (it also wakes on commit).
        retry_seconds: Seconds before the first retry of a failed row; doubles per attempt (max 6 h).
        max_attempts: Attempts before a row is marked ``failed``.
    """

    poll_seconds: float
    retry_seconds: float
    max_attempts: int


@dataclass(frozen=True)
class MailSettings(SenderPace):
    """Outgoing e-mail: the SMTP server or the development outbox, and the sender's pace.

    Attributes:
        smtp_host: SMTP server; empty: write each message as a ``.eml`` file to ``outbox_dir``.
        smtp_tls: ``none``, ``starttls`` (RFC 3207) or ``tls`` (implicit, RFC 8314).
        smtp_port: The server's port.
        smtp_username / smtp_password: SMTP AUTH credentials (empty: no AUTH).
        smtp_timeout: Seconds one SMTP conversation may take before it counts as a failed attempt.
        from_address: The ``From`` of every e-mail (``Name <address>`` or a bare address).
        outbox_dir: Folder the development transport writes ``.eml`` files to.
        poll_seconds / retry_seconds / max_attempts: the sender's pace over the outbox (``SenderPace``).
    """

    smtp_host: str
    smtp_tls: str
    smtp_port: int
    smtp_username: str
    smtp_password: str = field(repr=False)
    smtp_timeout: float
    from_address: str
    outbox_dir: Path


@dataclass(frozen=True)
class WebhookSettings(SenderPace):
    """Outbound webhooks: where they may go and the background sender's pace.

    Attributes:
        allow_private: In production, endpoint URLs may resolve to loopback, private or link-local
            addresses (off: refused, against SSRF; OWASP SSRF Prevention Cheat Sheet). Development
            always allows them.
        timeout: Seconds one delivery (connect, send, answer) may take before it counts as failed.
        poll_seconds / retry_seconds / max_attempts: the sender's pace over the deliveries (``SenderPace``).
    """

    allow_private: bool
    timeout: float


@dataclass(frozen=True)
class PaymentSettings:
    """Payments: the provider, how long an order waits for its payment, and the provider's keys.

    Attributes:
        provider: ``test`` (``webshop.payments.testing``, the default) or ``stripe``.
        timeout_minutes: A pending order not paid within this is cancelled by the background worker
            and its stock returned (the shop's time-limited stock reservation).
        poll_seconds: Seconds between the background worker's looks for such orders (and for refunds
            to ask for again, ``refund_retry_seconds``).
        webhook_tolerance: Seconds a webhook's signed timestamp may be old (replay window).
        test_delay_seconds: The test provider's delayed card pays this long after it is typed.
        stripe_secret_key: Stripe's secret API key (with ``provider`` ``stripe``).
        stripe_webhook_secret: The Stripe webhook endpoint's signing secret.
        stripe_api_base: Where the Stripe library sends requests (``https://api.stripe.com``).
        refund_retry_seconds: Seconds before the worker asks the provider again for a refund it did
            not answer (``webshop.orders.refund_retries``); doubles per attempt, at most 6 h.
        refund_max_attempts: How many times it asks again before leaving the refund to an admin's Retry.
    """

    provider: str
    timeout_minutes: int
    poll_seconds: float
    webhook_tolerance: int
    test_delay_seconds: float
    stripe_secret_key: str = field(repr=False)
    stripe_webhook_secret: str = field(repr=False)
    stripe_api_base: str
    refund_retry_seconds: float
    refund_max_attempts: int


@dataclass(frozen=True)
class InvoiceSettings:
    """What invoices and credit notes say of the seller, and how they are numbered.

    Attributes:
        seller_name: The seller's legal name (empty: the shop's name).
        seller_address: The seller's address, lines separated by ``|``.
        seller_vat_id: The seller's VAT number (empty: not shown).
        invoice_prefix: Invoice numbers are ``<prefix>-<year>-<6-digit sequence>``.
        credit_note_prefix: Credit note numbers, likewise.
    """

    seller_name: str
    seller_address: str
    seller_vat_id: str
    invoice_prefix: str
    credit_note_prefix: str


GROUPS: dict[str, type] = {
    "server": ServerSettings,
    "database": DatabaseSettings,
    "security": SecuritySettings,
    "limits": LimitsSettings,
    "shop": ShopSettings,
    "mail": MailSettings,
    "webhooks": WebhookSettings,
    "payments": PaymentSettings,
    "invoices": InvoiceSettings,
}
"""Each group's ``Settings`` attribute and its class."""
DERIVED = {"security": ("token_issuer", "secure_cookies", "effective_allowed_hosts")}
"""Group attributes computed from other settings when the settings are built (not in the field table)."""


def _derived(flat: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The ``DERIVED`` attributes of each group, from the flat values."""
    base_url: str = flat["base_url"]
    hosts: tuple[str, ...] = flat["allowed_hosts"]
    if not hosts:
        if flat["env"] != "production":
            hosts = ("*",)
        else:
            parts = urlsplit(base_url)
            hosts = (parts.netloc.rpartition("@")[2],)
            if parts.hostname and parts.hostname not in hosts:
                hosts = (*hosts, parts.hostname)
    return {
        "security": {
            "token_issuer": flat["jwt_issuer"] or base_url,
            "secure_cookies": base_url.startswith("https://"),
            "effective_allowed_hosts": hosts,
        }
    }


@dataclass(frozen=True)
class Settings:
    """Application settings, one frozen object per group (see the module docstring).

    Attributes:
        server: ``ServerSettings`` (environment, debug, listening, logging).
        database: ``DatabaseSettings`` (URL, pool, timeouts, migrations).
        security: ``SecuritySettings`` (secret key, hosts, proxies, token and link lifetimes, metrics).
        limits: ``LimitsSettings`` (admission queue, rate limits and their Redis).
        shop: ``ShopSettings`` (base URL, currency, taxes, page size, media, checkout rule, demo admin).
        mail: ``MailSettings`` (SMTP or outbox folder, sender, retries).
        webhooks: ``WebhookSettings`` (private addresses, timeout, sender's retries).
        payments: ``PaymentSettings`` (provider, payment time limit, Stripe keys).
        invoices: ``InvoiceSettings`` (seller details and number prefixes).
    """

    server: ServerSettings
    database: DatabaseSettings
    security: SecuritySettings
    limits: LimitsSettings
    shop: ShopSettings
    mail: MailSettings
    webhooks: WebhookSettings
    payments: PaymentSettings
    invoices: InvoiceSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, *, cwd: Path | None = None) -> Settings:
        """Read settings from ``WEBSHOP_*`` environment variables (``environ``, default ``os.environ``).

        Args:
            environ: The variables to read.
            cwd: Where relative paths and the development secret key live (default: the current directory).

        Raises:
            SettingsError: a variable is malformed, or production runs without a real secret key,
                with debug on or without a metrics token.
        """
        return cls._build(read_environment(os.environ if environ is None else environ, cwd or Path.cwd()))

    @classmethod
    def from_flat(cls, *, database_url: str, secret_key: str, media_dir: Path, **values: Any) -> Settings:
        """Settings built in code: the given values by flat name (already typed: ``Path``, ``float``,
        ``dict``...), the table's defaults for the rest (development's, relative to the current directory).

        Example: ``Settings.from_flat(database_url=url, secret_key=key, media_dir=media, queue_timeout=1.0)``.

        Raises:
            TypeError: a keyword is no setting's flat name.
        """
        given = {"database_url": database_url, "secret_key": secret_key, "media_dir": media_dir, **values}
        return cls._build({**default_values(given, Path.cwd()), **given})

    def with_values(self, **values: Any) -> Settings:
        """A copy with the settings named by flat name (``rate_limit_auth="1/minute"``) changed.

        Derived values follow (``base_url="https://..."`` turns ``security.secure_cookies`` on).

        Raises:
            TypeError: a keyword is no setting's flat name.
        """
        unknown = sorted(set(values) - set(FIELDS_BY_FLAT))
        if unknown:
            raise TypeError(f"not a setting: {', '.join(unknown)}")
        return self._build({**self.flat(), **values})

    def flat(self) -> dict[str, Any]:
        """Every setting by flat name (``{"database_url": ..., "smtp_host": ...}``)."""
        return {f.flat: getattr(getattr(self, f.group), f.attribute) for f in FIELDS}

    @classmethod
    def _build(cls, flat: Mapping[str, Any]) -> Settings:
        derived = _derived(flat)
        kwargs: dict[str, dict[str, Any]] = {name: dict(derived.get(name, {})) for name in GROUPS}
        for f in FIELDS:
            kwargs[f.group][f.attribute] = flat[f.flat]
        return cls(**{name: group(**kwargs[name]) for name, group in GROUPS.items()})


def group_attributes(group: str) -> set[str]:
    """The attribute names of a group's class (for the tests that hold the table to the classes)."""
    return {f.name for f in fields(GROUPS[group])}
