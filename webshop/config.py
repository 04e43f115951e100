"""Settings: one frozen dataclass read from ``WEBSHOP_*`` environment variables.

Every setting is documented in the README's "Configuration" table. ``get_settings()`` caches the
result for the life of the process; tests build their own ``Settings`` and pass it to ``create_app``.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

DEFAULT_DATABASE_FILE = "webshop.db"
# Tax rate per tax category in basis points (2000 = 20 %), as in Vendure's demo set-up.
DEFAULT_TAX_RATES_BP = {"standard": 2000, "reduced": 1000, "zero": 0}
STATE_DIR = ".webshop"


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


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from exc


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
        base_url: Public URL of the shop; an ``https`` URL turns on ``Secure`` cookies.
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
        database_url = os.environ.get("WEBSHOP_DATABASE_URL") or f"sqlite+aiosqlite:///{DEFAULT_DATABASE_FILE}"
        if not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise SettingsError(
                "WEBSHOP_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://, "
                f"got {database_url.split('://')[0]}://..."
            )
        secret_key = os.environ.get("WEBSHOP_SECRET_KEY", "")
        if not secret_key:
            if environment == "production":
                raise SettingsError("WEBSHOP_SECRET_KEY must be set in production (at least 32 characters)")
            secret_key = _development_secret(cwd / STATE_DIR)
        if len(secret_key) < 32:
            raise SettingsError("WEBSHOP_SECRET_KEY must be at least 32 characters long")
        media_dir = Path(os.environ.get("WEBSHOP_MEDIA_DIR") or cwd / "media").resolve()
        return cls(
            database_url=database_url,
            secret_key=secret_key,
            media_dir=media_dir,
            environment=environment,
            base_url=os.environ.get("WEBSHOP_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            currency=os.environ.get("WEBSHOP_CURRENCY", "USD").upper(),
            debug=_env_bool("WEBSHOP_DEBUG", False) and environment != "production",
            admin_email=os.environ.get("WEBSHOP_ADMIN_EMAIL") or None,
            admin_password=os.environ.get("WEBSHOP_ADMIN_PASSWORD") or None,
            sqlite_busy_timeout_ms=_env_int("WEBSHOP_SQLITE_BUSY_TIMEOUT_MS", 30_000),
            page_size=_env_int("WEBSHOP_PAGE_SIZE", 24),
            db_pool_size=_env_int("WEBSHOP_DB_POOL_SIZE", 10),
            echo_sql=_env_bool("WEBSHOP_ECHO_SQL", False),
            tax_rates_bp=_tax_rates(os.environ.get("WEBSHOP_TAX_RATES")),
            require_verified_email=_env_bool("WEBSHOP_REQUIRE_VERIFIED_EMAIL", False),
            access_token_minutes=_env_int("WEBSHOP_ACCESS_TOKEN_MINUTES", 15),
            refresh_token_days=_env_int("WEBSHOP_REFRESH_TOKEN_DAYS", 30),
            jwt_issuer=os.environ.get("WEBSHOP_JWT_ISSUER", ""),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings.from_env()
