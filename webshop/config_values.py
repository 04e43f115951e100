"""Reading one ``WEBSHOP_*`` value: booleans, numbers in a range, URLs, lists, rate limits, the
database URL and the tax rates, each refused with a ``SettingsError`` that names the variable and
what was expected. ``webshop.config`` builds the ``Settings`` from them.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TypeVar
from urllib.parse import urlsplit

# Tax rate per tax category in basis points (2000 = 20 %), as in Vendure's demo set-up.
DEFAULT_TAX_RATES_BP = {"standard": 2000, "reduced": 1000, "zero": 0}


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what is wrong."""


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


Number = TypeVar("Number", int, float)


def _env_number(
    name: str,
    default: Number,
    parse: Callable[[str], Number],
    what: str,
    minimum: Number | None,
    maximum: Number | None,
) -> Number:
    """The variable ``name`` read by ``parse`` (``default`` when unset or blank), checked against ``minimum`` and
    ``maximum`` (inclusive) when given; ``SettingsError`` says it must be ``what`` when ``parse`` refuses it."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = parse(raw)
    except SettingsError:
        raise
    except ValueError as exc:
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from exc
    _check_range(name, value, minimum, maximum)
    return value


def _env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole-number variable, checked against ``minimum``/``maximum`` (inclusive) when given."""
    return _env_number(name, default, int, "a whole number", minimum, maximum)


def _env_float(name: str, default: float, *, minimum: float | None = None, maximum: float | None = None) -> float:
    """A number of seconds (or another decimal quantity), checked against ``minimum``/``maximum``."""

    def finite(raw: str) -> float:
        value = float(raw)
        if not math.isfinite(value):  # NaN or infinite
            raise SettingsError(f"{name} must be a finite number, got {raw!r}")
        return value

    return _env_number(name, default, finite, "a number", minimum, maximum)


def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise SettingsError(f"{name} must be at least {minimum:g}, got {value:g}")
    if maximum is not None and value > maximum:
        raise SettingsError(f"{name} must be at most {maximum:g}, got {value:g}")


def _http_url(name: str, raw: str) -> str:
    """Check that ``raw`` is an absolute ``http(s)://host[:port][/path]`` URL; return it without a final ``/``."""
    parts = urlsplit(raw.strip())
    try:
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in 0-65535
    except ValueError as exc:
        raise SettingsError(f"{name} has an invalid port: {raw!r}") from exc
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SettingsError(f"{name} must be an absolute http:// or https:// URL, got {raw!r}")
    if parts.query or parts.fragment:
        raise SettingsError(f"{name} must not have a query or a fragment, got {raw!r}")
    return raw.strip().rstrip("/")


RATE_LIMIT_UNITS = ("second", "minute", "hour", "day")


def parse_rate_limit(name: str, raw: str) -> tuple[str, int] | None:
    """Parse a rate limit like ``20/minute`` into Litestar's ``("minute", 20)``; ``off`` (or ``0``) is ``None``.

    Raises:
        SettingsError: not ``N/second``, ``N/minute``, ``N/hour``, ``N/day`` or ``off``.
    """
    value = raw.strip().lower()
    if value in {"off", "0", "none", "false"}:
        return None
    count, _, unit = value.partition("/")
    if not count.strip().isdigit() or int(count) < 1 or unit.strip() not in RATE_LIMIT_UNITS:
        raise SettingsError(f"{name} must look like 20/minute (per second, minute, hour or day) or off, got {raw!r}")
    return unit.strip(), int(count)


def _env_list(name: str) -> tuple[str, ...]:
    """A comma-separated variable as a tuple of its trimmed, non-empty items."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


def _trusted_proxies(items: tuple[str, ...]) -> tuple[str, ...]:
    """Check ``WEBSHOP_TRUSTED_PROXIES``: each item an IP address or a CIDR network.

    Raises:
        SettingsError: an item is neither (host names are refused: the check compares socket addresses).
    """

    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError as exc:
            raise SettingsError(
                f"WEBSHOP_TRUSTED_PROXIES must list IP addresses or networks like 10.0.0.0/8, got {item!r}"
            ) from exc
    return items


def _allowed_hosts(items: tuple[str, ...]) -> tuple[str, ...]:
    """Check ``WEBSHOP_ALLOWED_HOSTS``: host names (``*.example.com`` wildcards), optional ``:port``, or ``*``.

    Raises:
        SettingsError: a wildcard anywhere but at the start, or a character no host name has.
    """
    for item in items:
        if item != "*" and (
            ("*" in item and not item.startswith("*.")) or not re.fullmatch(r"[A-Za-z0-9.*\-\[\]:]+", item)
        ):
            raise SettingsError(
                f"WEBSHOP_ALLOWED_HOSTS must list host names like shop.example.com or *.example.com, got {item!r}"
            )
    return items


def _database_url(raw: str) -> str:
    """Check ``WEBSHOP_DATABASE_URL``: a supported driver, and a host and database name for PostgreSQL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not raw.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            "WEBSHOP_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
            f"got {raw.split('://')[0]}://..."
        )
    try:
        url = make_url(raw)
        url.port  # noqa: B018 - a port that is not a number raises ValueError
    except (ArgumentError, ValueError) as exc:
        raise SettingsError("WEBSHOP_DATABASE_URL is not a valid database URL") from exc
    if url.get_backend_name() == "postgresql" and not url.database:
        raise SettingsError("WEBSHOP_DATABASE_URL must name a database: postgresql+asyncpg://USER@HOST:PORT/DBNAME")
    if url.get_backend_name() == "sqlite" and not url.database:
        raise SettingsError("WEBSHOP_DATABASE_URL must name a file: sqlite+aiosqlite:///PATH (an in-memory database)")
    return raw


def _tax_rates(raw: str | None) -> dict[str, int]:
    """Parse ``WEBSHOP_TAX_RATES`` (``standard=20,reduced=10,zero=0``, percent) into basis points."""
    if not raw or not raw.strip():
        return dict(DEFAULT_TAX_RATES_BP)
    rates: dict[str, int] = {}
    for part in raw.split(","):
        name, _, value = part.partition("=")
        try:
            percent = Decimal(value.strip())
        except InvalidOperation as exc:
            raise SettingsError(f"WEBSHOP_TAX_RATES: {part.strip()!r} is not category=percent") from exc
        if not name.strip() or percent < 0 or percent > 100 or (percent * 100) % 1:
            raise SettingsError(f"WEBSHOP_TAX_RATES: {part.strip()!r} is not category=percent (0-100, 2 decimals)")
        rates[name.strip()] = int(percent * 100)
    return rates
