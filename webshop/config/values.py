"""Parsers for one ``WEBSHOP_*`` value: booleans, numbers in a range, URLs, lists, rate limits, the
database URL, the tax rates and the secret key, each refused with a ``SettingsError`` that names the
variable and what was expected.

A parser is called as ``parse(name, raw, context)``: ``name`` is the variable (for messages), ``raw``
its text (the field's default text when the variable is unset or blank) and ``context`` the values
read before it (``webshop.config.fields`` reads the table top to bottom).
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from webshop.text import whole_number_text

STATE_DIR = ".webshop"
"""Folder (in the current directory) for the development secret key and the development outbox."""
SMTP_TLS_MODES = {"none": 25, "starttls": 587, "tls": 465}
"""``WEBSHOP_SMTP_TLS`` values and the port each one uses by default."""
# Fragments of well-known placeholder keys (compared lower-case, without punctuation): a key that
# contains one was copied from an example, not generated (OWASP Secrets Management Cheat Sheet).
PLACEHOLDER_KEY_WORDS = ("changeme", "yoursecret", "secretkey", "placeholder", "example", "insecure", "default")
MIN_KEY_DISTINCT_CHARACTERS = 12
RATE_LIMIT_UNITS = ("second", "minute", "hour", "day")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is wrong."""


@dataclass
class Context:
    """What a parser may look at besides its own text.

    Attributes:
        cwd: The directory relative paths (media, outbox, development key) are resolved against.
        values: Values read so far, by variable name (``{"WEBSHOP_ENV": "production", ...}``).
    """

    cwd: Path
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def production(self) -> bool:
        """True when ``WEBSHOP_ENV`` (read first) is ``production``."""
        return self.values.get("WEBSHOP_ENV") == "production"


Parser = Callable[[str, str, Context], Any]
"""``parse(name, raw, context) -> value``; raises ``SettingsError``."""


def text(name: str, raw: str, context: Context) -> str:
    """The text as it is."""
    return raw


def shop_name(name: str, raw: str, context: Context) -> str:
    """A shop's name: 1-120 characters once trimmed."""
    value = raw.strip()
    if not 1 <= len(value) <= 120:
        raise SettingsError(f"{name} must be 1 to 120 characters, got {raw!r}")
    return value


def optional_text(name: str, raw: str, context: Context) -> str | None:
    """The text, or ``None`` when it is empty."""
    return raw or None


PAYMENT_PROVIDERS = ("test", "stripe")
"""The payment providers ``WEBSHOP_PAYMENT_PROVIDER`` may name (``webshop.payments.registry``)."""


def one_of(*choices: str) -> Parser:
    """A parser for one of ``choices`` (any case), returned in lower case."""
    expected = f"{', '.join(choices[:-1])} or {choices[-1]}"

    def parse(name: str, raw: str, context: Context) -> str:
        value = raw.lower()
        if value not in choices:
            raise SettingsError(f"{name} must be {expected}, got {raw!r}")
        return value

    return parse


payment_provider = one_of(*PAYMENT_PROVIDERS)
"""One of ``PAYMENT_PROVIDERS``."""
environment = one_of("development", "production")
"""``development`` or ``production``."""
price_mode = one_of("net", "gross")
"""``net`` (prices exclude tax, B2B/US style) or ``gross`` (prices include tax, EU consumer style)."""
smtp_tls = one_of(*SMTP_TLS_MODES)
"""One of ``SMTP_TLS_MODES``."""


def stripe_key(name: str, raw: str, context: Context) -> str:
    """A Stripe key (``sk_...`` or ``whsec_...``); required when ``WEBSHOP_PAYMENT_PROVIDER`` is ``stripe``."""
    value = raw.strip()
    if not value and context.values.get("WEBSHOP_PAYMENT_PROVIDER") == "stripe":
        raise SettingsError(f"{name} must be set when WEBSHOP_PAYMENT_PROVIDER is stripe")
    return value


def boolean(name: str, raw: str, context: Context) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off`` (any case)."""
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _check_range(name: str, value: float, minimum: float, maximum: float) -> None:
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, got {value:g}")
    if value > maximum:
        raise SettingsError(f"{name} must be at most {maximum:g}, got {value:g}")


def integer(minimum: int, maximum: int) -> Parser:
    """A parser for a whole number between ``minimum`` and ``maximum`` (inclusive)."""
    return _bounded(int, "a whole number", minimum, maximum)


def number(minimum: float, maximum: float) -> Parser:
    """A parser for a finite decimal number (seconds, mostly) between ``minimum`` and ``maximum``."""
    return _bounded(float, "a number", minimum, maximum)


def _bounded(convert: Callable[[str], float], what: str, minimum: float, maximum: float) -> Parser:
    """A parser that reads ``convert(raw)`` and refuses what is not ``what``, not finite or out of range."""

    def parse(name: str, raw: str, context: Context) -> float:
        try:
            value = convert(raw)
        except ValueError as exc:
            raise SettingsError(f"{name} must be {what}, got {raw!r}") from exc
        if not math.isfinite(value):  # NaN or infinite
            raise SettingsError(f"{name} must be a finite number, got {raw!r}")
        _check_range(name, value, minimum, maximum)
        return value

    return parse


def debug(name: str, raw: str, context: Context) -> bool:
    """A boolean that production refuses to turn on (debug pages show tracebacks to visitors)."""
    value = boolean(name, raw, context)
    if value and context.production:
        raise SettingsError(f"{name} must be off in production: debug pages show tracebacks to visitors")
    return value


def http_url(name: str, raw: str, context: Context) -> str:
    """An absolute ``http(s)://host[:port][/path]`` URL, returned without a final ``/``."""
    parts = urlsplit(raw)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise SettingsError(f"{name} has an invalid port: {raw!r}") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SettingsError(f"{name} must be an absolute http:// or https:// URL, got {raw!r}")
    if parts.query or parts.fragment:
        raise SettingsError(f"{name} must not have a query or a fragment, got {raw!r}")
    return raw.rstrip("/")


def host(name: str, raw: str, context: Context) -> str:
    """A host name or IP address to listen on."""
    if not raw or any(c.isspace() or c in "/?#" for c in raw):
        raise SettingsError(f"{name} must be a host name or IP address, got {raw!r}")
    return raw


def currency(name: str, raw: str, context: Context) -> str:
    """A three-letter ISO 4217 code, upper case."""
    value = raw.upper()
    if not re.fullmatch(r"[A-Z]{3}", value):
        raise SettingsError(f"{name} must be a three-letter ISO 4217 code such as USD, got {value!r}")
    return value


def country(name: str, raw: str, context: Context) -> str:
    """An ISO 3166-1 alpha-2 country code (``pycountry``), upper case."""
    import pycountry

    value = raw.strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", value) or pycountry.countries.get(alpha_2=value) is None:
        raise SettingsError(f"{name} must be an ISO 3166-1 alpha-2 country code such as US or FR, got {value!r}")
    return value


def email_address(name: str, raw: str, context: Context) -> str | None:
    """An e-mail address, or ``None`` when empty."""
    if raw and "@" not in raw:
        raise SettingsError(f"{name} must be an e-mail address, got {raw!r}")
    return raw or None


def mail_from(name: str, raw: str, context: Context) -> str:
    """A ``From`` header value: ``Name <address>`` or a bare address."""
    if "@" not in parseaddr(raw)[1]:
        raise SettingsError(f"{name} must be an address like Shop <shop@example.com>, got {raw!r}")
    return raw


def folder(name: str, raw: str, context: Context) -> Path:
    """A folder, resolved against the current directory; refused when a file is in its place."""
    path = (context.cwd / raw).resolve()
    if path.exists() and not path.is_dir():
        raise SettingsError(f"{name} must be a folder, but {path} is a file")
    return path


def parse_rate_limit(name: str, raw: str) -> tuple[str, int] | None:
    """Parse a rate limit like ``20/minute`` into Litestar's ``("minute", 20)``; ``off`` (or ``0``) is ``None``.

    Raises:
        SettingsError: not ``N/second``, ``N/minute``, ``N/hour``, ``N/day`` or ``off``.
    """
    value = raw.strip().lower()
    if value in {"off", "0", "none", "false"}:
        return None
    count, _, unit = value.partition("/")
    number = whole_number_text(count, max_digits=9)
    if number is None or number < 1 or unit.strip() not in RATE_LIMIT_UNITS:
        raise SettingsError(f"{name} must look like 20/minute (per second, minute, hour or day) or off, got {raw!r}")
    return unit.strip(), number


def rate_limit(name: str, raw: str, context: Context) -> str:
    """A rate limit (see ``parse_rate_limit``), kept as written."""
    parse_rate_limit(name, raw)
    return raw


def _items(raw: str) -> tuple[str, ...]:
    """A comma-separated value as a tuple of its trimmed, non-empty items."""
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def trusted_proxies(name: str, raw: str, context: Context) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks (host names are refused: the check compares
    socket addresses)."""
    items = _items(raw)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise SettingsError(f"{name} must list IP addresses or networks like 10.0.0.0/8, got {item!r}") from exc
    return items


def allowed_hosts(name: str, raw: str, context: Context) -> tuple[str, ...]:
    """Comma-separated host names (``*.example.com`` wildcards), each with an optional ``:port``, or ``*``."""
    items = _items(raw)
    for item in items:
        if item != "*" and (
            ("*" in item and not item.startswith("*.")) or not re.fullmatch(r"[A-Za-z0-9.*\-\[\]:]+", item)
        ):
            raise SettingsError(f"{name} must list host names like shop.example.com or *.example.com, got {item!r}")
    return items


def cors_origins(name: str, raw: str, context: Context) -> tuple[str, ...]:
    """Comma-separated origins (``https://app.example.com``, scheme and host, an optional port, no
    path) or ``*`` (any origin, and then never with credentials: the Fetch standard forbids it)."""
    items = _items(raw)
    for item in items:
        if item == "*":
            continue
        parts = urlsplit(item)
        if parts.scheme not in {"http", "https"} or not parts.hostname or parts.path or parts.query:
            raise SettingsError(f"{name} must list origins like https://app.example.com, got {item!r}")
    return items


def database_url(name: str, raw: str, context: Context) -> str:
    """A supported driver's URL, with a host and database name for PostgreSQL and a file for SQLite."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not raw.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            f"{name} must start with sqlite+aiosqlite:// or postgresql+asyncpg://, got {raw.split('://')[0]}://..."
        )
    try:
        url = make_url(raw)
        url.port  # noqa: B018 - a port that is not a number raises ValueError
    except (ArgumentError, ValueError) as exc:
        raise SettingsError(f"{name} is not a valid database URL") from exc
    if url.get_backend_name() == "postgresql" and not url.database:
        raise SettingsError(f"{name} must name a database: postgresql+asyncpg://USER@HOST:PORT/DBNAME")
    if url.get_backend_name() == "sqlite" and not url.database:
        raise SettingsError(f"{name} must name a file: sqlite+aiosqlite:///PATH (an in-memory database)")
    return raw


def tax_rates(name: str, raw: str, context: Context) -> dict[str, int]:
    """``standard=20,reduced=10,zero=0`` (percent, up to 2 decimals) as basis points per tax category."""
    rates: dict[str, int] = {}
    for part in raw.split(","):
        category, _, value = part.partition("=")
        try:
            percent = Decimal(value.strip())
        except InvalidOperation as exc:
            raise SettingsError(f"{name}: {part.strip()!r} is not category=percent") from exc
        if not category.strip() or percent < 0 or percent > 100 or (percent * 100) % 1:
            raise SettingsError(f"{name}: {part.strip()!r} is not category=percent (0-100, 2 decimals)")
        rates[category.strip()] = int(percent * 100)
    return rates


def log_format(name: str, raw: str, context: Context) -> str:
    """``console`` or ``json``; empty: ``json`` in production, else ``console``."""
    value: str = _log_format(name, raw or ("json" if context.production else "console"), context)
    return value


_log_format = one_of("console", "json")


def log_level(name: str, raw: str, context: Context) -> str:
    """A level name of the ``logging`` module, upper case."""
    value = raw.upper()
    if not isinstance(logging.getLevelName(value), int):
        raise SettingsError(f"{name} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {value!r}")
    return value


def redis_url(name: str, raw: str, context: Context) -> str:
    """A ``redis://``, ``rediss://`` or ``unix://`` URL, or empty."""
    if raw and not raw.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"{name} must start with redis://, rediss:// or unix://, got {raw!r}")
    return raw


def smtp_port(name: str, raw: str, context: Context) -> int:
    """A TCP port; empty: the default port of ``WEBSHOP_SMTP_TLS`` (read before it)."""
    if not raw:
        return SMTP_TLS_MODES[context.values.get("WEBSHOP_SMTP_TLS", "starttls")]
    value: int = integer(1, 65535)(name, raw, context)
    return value


def metrics_token(name: str, raw: str, context: Context) -> str:
    """The ``/metrics`` bearer token: production refuses to start without one.

    Open metrics tell anyone the shop's routes, traffic, error rates and latencies (OWASP Top 10
    A05:2021 Security Misconfiguration; OWASP Logging Cheat Sheet: protect what monitoring exposes).
    """
    token = raw.strip()
    if context.production and not token:
        raise SettingsError(
            f"{name} must be set in production: /metrics would be open to anyone; "
            'generate one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'
        )
    return token


def development_secret(state_dir: Path) -> str:
    """Return the development secret key kept in ``state_dir/secret_key``, creating it once."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def secret_key(name: str, raw: str, context: Context) -> str:
    """The signing key; in development an empty one becomes the generated development key.

    Production refuses a missing key, a key shorter than 32 characters, a placeholder copied from an
    example (see ``PLACEHOLDER_KEY_WORDS``), a key with little variety (fewer than 12 different
    characters, e.g. ``aaaa...``) and the development key kept in ``.webshop/secret_key``; each
    message says how to generate a good one.
    """
    how = 'generate one with: python -c "import secrets; print(secrets.token_urlsafe(48))"'
    state_dir = context.cwd / STATE_DIR
    key = raw.strip()
    if not key:
        if context.production:
            raise SettingsError(f"{name} must be set in production; {how}")
        key = development_secret(state_dir)
    if len(key) < 32:
        raise SettingsError(f"{name} must be at least 32 characters long; {how}")
    if context.production:
        folded = re.sub(r"[^a-z0-9]", "", key.lower())
        if any(word in folded for word in PLACEHOLDER_KEY_WORDS) or len(set(key)) < MIN_KEY_DISTINCT_CHARACTERS:
            raise SettingsError(f"{name} looks like a placeholder, not a random key; {how}")
        development_key = state_dir / "secret_key"
        if development_key.is_file() and development_key.read_text().strip() == key:
            raise SettingsError(
                f"{name} is the development key from {development_key}, which must not be used in production; {how}"
            )
    return key
