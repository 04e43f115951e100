"""Settings read from ``WEBSHOP_*`` environment variables, grouped by concern.

Every setting is declared once in the field table (``webshop.config.fields``) and documented in the
README's "Configuration" table (a test holds the two together). ``get_settings()`` caches the result
for the life of the process; tests build their own ``Settings`` and pass it to ``create_app``.
"""

from __future__ import annotations

from functools import lru_cache

from webshop.config.checks import served_base_url, settings_warnings, unknown_variables
from webshop.config.fields import (
    DEFAULT_DATABASE_FILE,
    FIELDS,
    IGNORED_VARIABLES,
    KNOWN_VARIABLES,
    Field,
)
from webshop.config.settings import (
    DatabaseSettings,
    InvoiceSettings,
    LimitsSettings,
    MailSettings,
    PaymentSettings,
    SecuritySettings,
    SenderPace,
    ServerSettings,
    Settings,
    ShopSettings,
    WebhookSettings,
)
from webshop.config.values import SMTP_TLS_MODES, STATE_DIR, SettingsError, parse_rate_limit

__all__ = [
    "DEFAULT_DATABASE_FILE",
    "FIELDS",
    "IGNORED_VARIABLES",
    "KNOWN_VARIABLES",
    "SMTP_TLS_MODES",
    "STATE_DIR",
    "DatabaseSettings",
    "Field",
    "InvoiceSettings",
    "LimitsSettings",
    "MailSettings",
    "PaymentSettings",
    "SecuritySettings",
    "SenderPace",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "ShopSettings",
    "WebhookSettings",
    "get_settings",
    "parse_rate_limit",
    "served_base_url",
    "settings_warnings",
    "unknown_variables",
]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment.

    Raises:
        SettingsError: a variable is malformed (see ``Settings.from_env``).
    """
    return Settings.from_env()
