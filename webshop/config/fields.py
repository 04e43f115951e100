"""The field table: every setting declared once, with its variable, group, attribute, parser,
default and a one-line description.

The table drives reading the environment (``read_environment``), the defaults of settings built in
code (``default_values``), the list of known variable names (typo warnings) and the test that holds
the README's configuration table to it (``tests/unit/test_settings.py``). A new setting is one new
row here and one attribute on its group in ``webshop.config.settings``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from webshop.config import values as v
from webshop.config.values import STATE_DIR, Context, Parser

DEFAULT_DATABASE_FILE = "webshop.db"


@dataclass(frozen=True)
class Field:
    """One setting.

    Attributes:
        env: Its environment variable, ``WEBSHOP_...`` (a public name: never renamed).
        group: The ``Settings`` attribute of its group (``"database"``, ``"mail"``...).
        attribute: Its attribute on that group.
        parse: Turns the variable's text into the value (see ``webshop.config.values``).
        default: The text used when the variable is unset or blank (``""``: empty).
        description: One line on what it does.
        shown_default: What the README's "Default" column starts with, when it is not the default
            text in backticks (or ``empty``): a default that depends on other settings or commands.
        strip: Trim surrounding blanks (not for passwords, which may hold any character).
    """

    env: str
    group: str
    attribute: str
    parse: Parser
    default: str
    description: str
    shown_default: str = ""
    strip: bool = True

    @property
    def flat(self) -> str:
        """Its flat keyword for ``Settings.from_flat``/``with_values``: the variable without
        ``WEBSHOP_``, lower case (``WEBSHOP_DB_POOL_SIZE`` is ``db_pool_size``)."""
        return self.env.removeprefix("WEBSHOP_").lower()

    @property
    def readme_default(self) -> str:
        """The beginning of the README's "Default" cell for this setting."""
        return self.shown_default or (f"`{self.default}`" if self.default else "empty")


F = Field
# Read top to bottom: WEBSHOP_ENV first (production is stricter), WEBSHOP_SMTP_TLS before the port.
FIELDS: tuple[Field, ...] = (
    F("WEBSHOP_ENV", "server", "environment", v.environment, "development",
      "development or production (strict: real secret key and metrics token, no debug)."),
    F("WEBSHOP_DEBUG", "server", "debug", v.debug, "false", "Litestar debug mode (tracebacks in responses)."),
    F("WEBSHOP_HOST", "server", "host", v.host, "127.0.0.1", "Interface `webshop serve` listens on."),
    F("WEBSHOP_PORT", "server", "port", v.integer(1, 65535), "8000", "Port `webshop serve` listens on."),
    F("WEBSHOP_WORKERS", "server", "workers", v.integer(1, 64), "1", "Worker processes of `webshop serve`."),
    F("WEBSHOP_GRACEFUL_TIMEOUT", "server", "graceful_timeout", v.integer(0, 3600), "30",
      "Seconds requests in flight may finish after SIGTERM."),
    F("WEBSHOP_LOG_FORMAT", "server", "log_format", v.log_format, "", "console or json log lines.",
      shown_default="`console` in development, `json` in production"),
    F("WEBSHOP_LOG_LEVEL", "server", "log_level", v.log_level, "INFO", "Level of the root logger."),
    F("WEBSHOP_SLOW_REQUEST_MS", "server", "slow_request_ms", v.integer(1, 3_600_000), "500",
      "Requests slower than this many milliseconds are logged as slow."),
    F("WEBSHOP_DATABASE_URL", "database", "url", v.database_url, f"sqlite+aiosqlite:///{DEFAULT_DATABASE_FILE}",
      "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB."),
    F("WEBSHOP_DB_POOL_SIZE", "database", "pool_size", v.integer(1, 1000), "10",
      "Database connections per worker process."),
    F("WEBSHOP_DB_POOL_TIMEOUT", "database", "pool_timeout", v.number(0.1, 300), "5",
      "Seconds a request waits for a pooled connection before 503."),
    F("WEBSHOP_DB_CONNECT_TIMEOUT", "database", "connect_timeout", v.number(0.1, 300), "5",
      "Seconds to wait for a new PostgreSQL connection before 503."),
    F("WEBSHOP_SQLITE_BUSY_TIMEOUT_MS", "database", "sqlite_busy_timeout_ms", v.integer(0, 600_000), "30000",
      "Milliseconds a SQLite writer waits for the write lock."),
    F("WEBSHOP_ECHO_SQL", "database", "echo_sql", v.boolean, "false", "Log every SQL statement."),
    F("WEBSHOP_MIGRATE_ON_START", "database", "migrate_on_start", v.boolean, "true",
      "`webshop serve` applies pending migrations (else refuses to start behind)."),
    F("WEBSHOP_SECRET_KEY", "security", "secret_key", v.secret_key, "",
      "Signs session cookies, CSRF tokens, links and API tokens; at least 32 characters.",
      shown_default="generated and kept in `.webshop/secret_key` (development only)", strip=False),
    F("WEBSHOP_ALLOWED_HOSTS", "security", "allowed_hosts", v.allowed_hosts, "",
      "Comma-separated Host names the shop answers.",
      shown_default="any host in development; the host of `WEBSHOP_BASE_URL` in production"),
    F("WEBSHOP_TRUSTED_PROXIES", "security", "trusted_proxies", v.trusted_proxies, "",
      "IP addresses/networks of reverse proxies whose X-Forwarded-* headers are believed."),
    F("WEBSHOP_CORS_ORIGINS", "security", "cors_origins", v.cors_origins, "",
      "Comma-separated origins whose browser apps may call /api (empty: no CORS)."),
    F("WEBSHOP_ACCESS_TOKEN_MINUTES", "security", "access_token_minutes", v.integer(1, 24 * 60), "15",
      "Lifetime of an API access token, minutes."),
    F("WEBSHOP_REFRESH_TOKEN_DAYS", "security", "refresh_token_days", v.integer(1, 3650), "30",
      "Lifetime of an API refresh token, days."),
    F("WEBSHOP_JWT_ISSUER", "security", "jwt_issuer", v.text, "", "The iss claim of API tokens.",
      shown_default="the base URL", strip=False),
    F("WEBSHOP_EMAIL_TOKEN_HOURS", "security", "email_token_hours", v.integer(1, 24 * 30), "24",
      "Lifetime of e-mail verification and change links, hours."),
    F("WEBSHOP_RESET_TOKEN_MINUTES", "security", "reset_token_minutes", v.integer(5, 24 * 60), "60",
      "Lifetime of password reset links, minutes."),
    F("WEBSHOP_METRICS_TOKEN", "security", "metrics_token", v.metrics_token, "",
      "Bearer token /metrics requires (required in production)."),
    F("WEBSHOP_MAX_ACTIVE_REQUESTS", "limits", "max_active_requests", v.integer(0, 10_000), "4",
      "Requests a worker runs at once, the rest queue (0: no limit)."),
    F("WEBSHOP_QUEUE_TIMEOUT", "limits", "queue_timeout", v.number(0.1, 300), "10",
      "Seconds a queued request waits for its turn before 503."),
    F("WEBSHOP_REDIS_URL", "limits", "redis_url", v.redis_url, "",
      "Redis shared by the workers for rate limits and sign-in throttling."),
    F("WEBSHOP_RATE_LIMIT_AUTH", "limits", "rate_limit_auth", v.rate_limit, "20/minute",
      "Per-address limit on sign-in, registration, reset and token requests."),
    F("WEBSHOP_RATE_LIMIT_REFRESH", "limits", "rate_limit_refresh", v.rate_limit, "30/minute",
      "Per-address limit on POST /api/auth/refresh."),
    F("WEBSHOP_RATE_LIMIT_GENERAL", "limits", "rate_limit_general", v.rate_limit, "1200/minute",
      "Per-address limit on every other request."),
    F("WEBSHOP_BASE_URL", "shop", "base_url", v.http_url, "http://127.0.0.1:8000",
      "The shop's public URL (links in e-mails; https makes cookies Secure).",
      shown_default="the address `webshop serve`/`demo` listen on, e.g. `http://127.0.0.1:8000`"),
    F("WEBSHOP_CURRENCY", "shop", "currency", v.currency, "USD", "ISO 4217 code of the shop's prices."),
    F("WEBSHOP_TAX_RATES", "shop", "tax_rates_bp", v.tax_rates, "standard=20,reduced=10,zero=0",
      "Tax categories and the rates (percent) `webshop db upgrade` seeds for every country; "
      "after that, tax rates are managed under /admin/tax-rates."),
    F("WEBSHOP_PRICE_MODE", "shop", "price_mode", v.price_mode, "net",
      "How prices are entered and shown: `net` (excluding tax) or `gross` (including tax, EU consumer prices)."),
    F("WEBSHOP_DEFAULT_COUNTRY", "shop", "default_country", v.country, "US",
      "ISO 3166-1 country whose tax and shipping the cart shows before the shopper gives an address."),
    F("WEBSHOP_PAGE_SIZE", "shop", "page_size", v.integer(1, 500), "24", "Products per catalog page."),
    F("WEBSHOP_MEDIA_DIR", "shop", "media_dir", v.folder, "./media", "Where product images are stored."),
    F("WEBSHOP_REQUIRE_VERIFIED_EMAIL", "shop", "require_verified_email", v.boolean, "false",
      "Checkout asks for a verified e-mail address first."),
    F("WEBSHOP_SHOP_NAME", "shop", "shop_name", v.shop_name, "Webshop",
      "Name of the default shop, which `webshop db upgrade` creates and products without a shop go to."),
    F("WEBSHOP_ADMIN_EMAIL", "shop", "admin_email", v.email_address, "", "E-mail of the admin `webshop demo` creates.",
      shown_default="`admin@example.com`"),
    F("WEBSHOP_ADMIN_PASSWORD", "shop", "admin_password", v.optional_text, "",
      "Password of that admin (and of `create-admin`).", shown_default="generated, printed once", strip=False),
    F("WEBSHOP_SMTP_HOST", "mail", "smtp_host", v.text, "", "SMTP server; empty: .eml files in the outbox folder."),
    F("WEBSHOP_SMTP_TLS", "mail", "smtp_tls", v.smtp_tls, "starttls", "none, starttls (RFC 3207) or tls (RFC 8314)."),
    F("WEBSHOP_SMTP_PORT", "mail", "smtp_port", v.smtp_port, "", "SMTP port.",
      shown_default="`587` (`25` with `none`, `465` with `tls`)"),
    F("WEBSHOP_SMTP_USERNAME", "mail", "smtp_username", v.text, "", "SMTP AUTH user (empty: no AUTH).", strip=False),
    F("WEBSHOP_SMTP_PASSWORD", "mail", "smtp_password", v.text, "", "SMTP AUTH password.", strip=False),
    F("WEBSHOP_SMTP_TIMEOUT", "mail", "smtp_timeout", v.number(1, 600), "30",
      "Seconds one SMTP conversation may take before the attempt fails."),
    F("WEBSHOP_MAIL_FROM", "mail", "from_address", v.mail_from, "webshop <noreply@localhost>",
      "The From of every e-mail."),
    F("WEBSHOP_MAIL_OUTBOX_DIR", "mail", "outbox_dir", v.folder, f"{STATE_DIR}/outbox",
      "Where the development transport writes .eml files."),
    F("WEBSHOP_MAIL_POLL_SECONDS", "mail", "poll_seconds", v.number(0.01, 3600), "1",
      "Seconds between the sender's looks at the outbox."),
    F("WEBSHOP_MAIL_RETRY_SECONDS", "mail", "retry_seconds", v.number(0.01, 86400), "30",
      "Seconds before the first retry of a failed message (doubles per attempt)."),
    F("WEBSHOP_MAIL_MAX_ATTEMPTS", "mail", "max_attempts", v.integer(1, 100), "8",
      "Attempts before a message is marked failed."),
    F("WEBSHOP_WEBHOOK_ALLOW_PRIVATE", "webhooks", "allow_private", v.boolean, "false",
      "Production: webhook URLs may point at loopback or private addresses."),
    F("WEBSHOP_WEBHOOK_TIMEOUT", "webhooks", "timeout", v.number(1, 120), "10",
      "Seconds one webhook delivery may take before it counts as failed."),
    F("WEBSHOP_WEBHOOK_POLL_SECONDS", "webhooks", "poll_seconds", v.number(0.01, 3600), "1",
      "Seconds between the webhook sender's looks for due deliveries."),
    F("WEBSHOP_WEBHOOK_RETRY_SECONDS", "webhooks", "retry_seconds", v.number(0.01, 86400), "30",
      "Seconds before the first retry of a failed delivery (doubles per attempt)."),
    F("WEBSHOP_WEBHOOK_MAX_ATTEMPTS", "webhooks", "max_attempts", v.integer(1, 100), "10",
      "Attempts before a delivery is marked failed."),
    F("WEBSHOP_PAYMENT_PROVIDER", "payments", "provider", v.payment_provider, "test",
      "test (the built-in test payment service, no account needed) or stripe."),
    F("WEBSHOP_PAYMENT_TIMEOUT_MINUTES", "payments", "timeout_minutes", v.integer(1, 10080), "30",
      "Minutes an order may wait for its payment before it is cancelled and its stock returned."),
    F("WEBSHOP_PAYMENT_POLL_SECONDS", "payments", "poll_seconds", v.number(0.01, 3600), "30",
      "Seconds between the background worker's looks for orders whose payment time ran out"
      " and for refunds to ask for again."),
    F("WEBSHOP_REFUND_RETRY_SECONDS", "payments", "refund_retry_seconds", v.number(0.01, 86400), "60",
      "Seconds before the background worker asks the provider again for a refund it did not answer;"
      " doubles per attempt (max 6 h)."),
    F("WEBSHOP_REFUND_MAX_ATTEMPTS", "payments", "refund_max_attempts", v.integer(0, 1000), "20",
      "Times the worker asks again for an unanswered refund (about three days) before leaving it to"
      " the admin's Retry; 0 never."),
    F("WEBSHOP_PAYMENT_WEBHOOK_TOLERANCE_SECONDS", "payments", "webhook_tolerance", v.integer(1, 86400), "300",
      "How old a payment webhook's signed timestamp may be before it is refused as a replay."),
    F("WEBSHOP_TEST_PAYMENT_DELAY_SECONDS", "payments", "test_delay_seconds", v.number(0, 3600), "5",
      "Test provider: seconds before the delayed test card's payment succeeds (by webhook)."),
    F("WEBSHOP_STRIPE_SECRET_KEY", "payments", "stripe_secret_key", v.stripe_key, "",
      "Stripe secret API key (sk_live_... or sk_test_...); required with the stripe provider."),
    F("WEBSHOP_STRIPE_WEBHOOK_SECRET", "payments", "stripe_webhook_secret", v.stripe_key, "",
      "The signing secret (whsec_...) of the Stripe webhook endpoint; required with the stripe provider."),
    F("WEBSHOP_STRIPE_API_BASE", "payments", "stripe_api_base", v.http_url, "https://api.stripe.com",
      "Where the Stripe library sends its requests (a local fake such as localstripe in tests)."),
    F("WEBSHOP_SELLER_NAME", "invoices", "seller_name", v.text, "",
      "The seller's legal name on invoices.", shown_default="`WEBSHOP_SHOP_NAME`"),
    F("WEBSHOP_SELLER_ADDRESS", "invoices", "seller_address", v.text, "",
      "The seller's address on invoices, lines separated by |."),
    F("WEBSHOP_SELLER_VAT_ID", "invoices", "seller_vat_id", v.text, "",
      "The seller's VAT or tax number on invoices (empty: none shown)."),
    F("WEBSHOP_INVOICE_PREFIX", "invoices", "invoice_prefix", v.text, "INV",
      "Invoice numbers start with this, then the year and the sequence: INV-2026-000001."),
    F("WEBSHOP_CREDIT_NOTE_PREFIX", "invoices", "credit_note_prefix", v.text, "CN",
      "Credit note numbers start with this: CN-2026-000001."),
)  # fmt: skip
"""Every setting, in reading order."""

FIELDS_BY_FLAT = {f.flat: f for f in FIELDS}
KNOWN_VARIABLES = frozenset(f.env for f in FIELDS)
"""Every ``WEBSHOP_*`` setting (from ``FIELDS``)."""
IGNORED_VARIABLES = frozenset({"WEBSHOP_TEST_POSTGRES_URL", "WEBSHOP_REQUIRE_BROWSER"})
"""``WEBSHOP_*`` variables of the test suite and CI, not settings; never reported as typos."""


def _read(fields: Iterable[Field], raw_of: Mapping[str, str], context: Context) -> dict[str, Any]:
    """Parse each field's text (``raw_of[env]``, else its default) in order into ``{flat name: value}``."""
    values: dict[str, Any] = {}
    for f in fields:
        raw = raw_of.get(f.env)
        if raw is None or not raw.strip():
            raw = f.default
        value = f.parse(f.env, raw.strip() if f.strip else raw, context)
        context.values[f.env] = values[f.flat] = value
    return values


def read_environment(environ: Mapping[str, str], cwd: Path) -> dict[str, Any]:
    """Every setting read from ``environ`` (unset or blank: the default), as ``{flat name: value}``.

    Args:
        environ: The environment (``os.environ``); only the ``FIELDS`` variables are looked up.
        cwd: The directory relative paths and the development key are resolved against.

    Raises:
        SettingsError: a variable is malformed, or production runs without what it needs.
    """
    return _read(FIELDS, environ, Context(cwd))


def read_setting(flat: str, environ: Mapping[str, str], cwd: Path) -> Any:
    """One setting read from ``environ`` (unset or blank: its default), by flat name (``"shop_name"``).

    For code that runs without the whole ``Settings``, such as a migration that needs one value.

    Raises:
        KeyError: ``flat`` is no setting's flat name.
        SettingsError: the variable is malformed.
    """
    return _read([FIELDS_BY_FLAT[flat]], environ, Context(cwd))[flat]


def default_values(given: Mapping[str, Any], cwd: Path) -> dict[str, Any]:
    """The defaults of the settings not in ``given`` (flat names), as if read in development.

    A default that depends on an earlier setting (the SMTP port on the TLS mode) follows ``given``.

    Raises:
        TypeError: a name in ``given`` is no setting.
    """
    unknown = sorted(set(given) - set(FIELDS_BY_FLAT))
    if unknown:
        raise TypeError(f"not a setting: {', '.join(unknown)} (known: {', '.join(sorted(FIELDS_BY_FLAT))})")
    # Defaults are development's (no metrics token required), whatever ``given`` says of WEBSHOP_ENV.
    context = Context(cwd, {FIELDS_BY_FLAT[name].env: value for name, value in given.items() if name != "env"})
    return _read((f for f in FIELDS if f.flat not in given), {}, context)
