"""Settings are validated at start: every ``WEBSHOP_*`` variable is checked and a bad one is named.

Production (``WEBSHOP_ENV=production``) refuses a missing, short, placeholder or development secret
key, debug mode and open metrics (no ``WEBSHOP_METRICS_TOKEN``). Unknown ``WEBSHOP_*`` names are
reported as likely typos. The field table (``webshop.config.fields``) declares each setting once:
reading goes through it, the groups hold exactly its attributes, and the README's configuration table
lists exactly its variables with its defaults.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
from pathlib import Path

import pytest

from webshop.config import (
    FIELDS,
    IGNORED_VARIABLES,
    KNOWN_VARIABLES,
    Settings,
    SettingsError,
    settings_warnings,
    unknown_variables,
)
from webshop.config.settings import DERIVED, GROUPS, group_attributes

ROOT = Path(__file__).resolve().parents[2]
GOOD_KEY = secrets.token_urlsafe(48)
METRICS_TOKEN = secrets.token_urlsafe(32)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No WEBSHOP_* variable from the outside; work in an empty folder (the development key goes there)."""
    import os

    for name in list(os.environ):
        if name.startswith("WEBSHOP_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def from_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> Settings:
    for name, value in variables.items():
        monkeypatch.setenv(f"WEBSHOP_{name}", value)
    return Settings.from_env()


def test_defaults_in_development(monkeypatch, tmp_path):
    settings = from_env(monkeypatch)
    assert settings.server.environment == "development"
    assert settings.database.url == "sqlite+aiosqlite:///webshop.db"
    assert (settings.server.host, settings.server.port, settings.server.workers) == ("127.0.0.1", 8000, 1)
    assert settings.server.graceful_timeout == 30
    assert (settings.database.connect_timeout, settings.database.pool_timeout) == (5.0, 5.0)
    assert settings.database.migrate_on_start is True
    assert settings.shop.tax_rates_bp == {"standard": 2000, "reduced": 1000, "zero": 0}
    assert (
        settings.shop.media_dir == tmp_path / "media" and settings.mail.outbox_dir == tmp_path / ".webshop" / "outbox"
    )
    assert (settings.mail.smtp_tls, settings.mail.smtp_port) == ("starttls", 587)
    assert settings.security.token_issuer == settings.shop.base_url == "http://127.0.0.1:8000"
    assert settings.security.effective_allowed_hosts == ("*",) and not settings.security.secure_cookies
    # The development key is generated once and kept in .webshop/secret_key.
    key_file = tmp_path / ".webshop" / "secret_key"
    assert key_file.read_text() == settings.security.secret_key
    assert from_env(monkeypatch).security.secret_key == settings.security.secret_key


def test_values_are_read(monkeypatch):
    settings = from_env(
        monkeypatch,
        DATABASE_URL="postgresql+asyncpg://shop:pw@db.internal:5433/shop",
        BASE_URL="https://shop.example.com/",
        HOST="10.0.0.5",
        PORT="9000",
        WORKERS="4",
        GRACEFUL_TIMEOUT="10",
        DB_CONNECT_TIMEOUT="2.5",
        DB_POOL_TIMEOUT="1",
        MIGRATE_ON_START="false",
        CURRENCY="eur",
        SECRET_KEY=GOOD_KEY,
    )
    assert settings.shop.base_url == "https://shop.example.com"
    server = settings.server
    assert (server.host, server.port, server.workers, server.graceful_timeout) == ("10.0.0.5", 9000, 4, 10)
    assert (settings.database.connect_timeout, settings.database.pool_timeout) == (2.5, 1.0)
    assert settings.database.migrate_on_start is False
    assert settings.shop.currency == "EUR"
    assert settings.security.token_issuer == "https://shop.example.com" and settings.security.secure_cookies


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("ENV", "staging", "WEBSHOP_ENV must be development or production"),
        ("PORT", "http", "WEBSHOP_PORT must be a whole number"),
        ("PORT", "0", "WEBSHOP_PORT must be at least 1"),
        ("PORT", "65536", "WEBSHOP_PORT must be at most 65535"),
        ("WORKERS", "0", "WEBSHOP_WORKERS must be at least 1"),
        ("WORKERS", "65", "WEBSHOP_WORKERS must be at most 64"),
        ("HOST", "my host", "WEBSHOP_HOST must be a host name or IP address"),
        ("GRACEFUL_TIMEOUT", "-1", "WEBSHOP_GRACEFUL_TIMEOUT must be at least 0"),
        ("DB_CONNECT_TIMEOUT", "0", "WEBSHOP_DB_CONNECT_TIMEOUT must be at least 0.1"),
        ("DB_CONNECT_TIMEOUT", "soon", "WEBSHOP_DB_CONNECT_TIMEOUT must be a number"),
        ("DB_CONNECT_TIMEOUT", "nan", "WEBSHOP_DB_CONNECT_TIMEOUT must be a finite number"),
        ("DB_POOL_TIMEOUT", "inf", "WEBSHOP_DB_POOL_TIMEOUT must be a finite number"),
        ("DB_POOL_SIZE", "0", "WEBSHOP_DB_POOL_SIZE must be at least 1"),
        ("PAGE_SIZE", "-3", "WEBSHOP_PAGE_SIZE must be at least 1"),
        ("PAGE_SIZE", "twelve", "WEBSHOP_PAGE_SIZE must be a whole number"),
        ("SQLITE_BUSY_TIMEOUT_MS", "-5", "WEBSHOP_SQLITE_BUSY_TIMEOUT_MS must be at least 0"),
        ("ACCESS_TOKEN_MINUTES", "0", "WEBSHOP_ACCESS_TOKEN_MINUTES must be at least 1"),
        ("REFRESH_TOKEN_DAYS", "0", "WEBSHOP_REFRESH_TOKEN_DAYS must be at least 1"),
        ("DEBUG", "maybe", "WEBSHOP_DEBUG must be true or false"),
        ("ECHO_SQL", "2", "WEBSHOP_ECHO_SQL must be true or false"),
        ("MIGRATE_ON_START", "perhaps", "WEBSHOP_MIGRATE_ON_START must be true or false"),
        ("REQUIRE_VERIFIED_EMAIL", "sure", "WEBSHOP_REQUIRE_VERIFIED_EMAIL must be true or false"),
        ("BASE_URL", "shop.example.com", "WEBSHOP_BASE_URL must be an absolute http:// or https:// URL"),
        ("BASE_URL", "ftp://shop.example.com", "WEBSHOP_BASE_URL must be an absolute http:// or https:// URL"),
        ("BASE_URL", "https://", "WEBSHOP_BASE_URL must be an absolute http:// or https:// URL"),
        ("BASE_URL", "https://shop.example.com:99999", "WEBSHOP_BASE_URL has an invalid port"),
        ("BASE_URL", "https://shop.example.com/?a=1", "WEBSHOP_BASE_URL must not have a query"),
        ("DATABASE_URL", "mysql://root@localhost/shop", "WEBSHOP_DATABASE_URL must start with"),
        ("DATABASE_URL", "postgresql://u@h/shop", "WEBSHOP_DATABASE_URL must start with"),
        ("DATABASE_URL", "postgresql+asyncpg://u@db.internal", "WEBSHOP_DATABASE_URL must name a database"),
        ("DATABASE_URL", "postgresql+asyncpg://u@db:port/shop", "WEBSHOP_DATABASE_URL is not a valid database URL"),
        ("DATABASE_URL", "sqlite+aiosqlite://", "WEBSHOP_DATABASE_URL must name a file"),
        ("CURRENCY", "dollars", "WEBSHOP_CURRENCY must be a three-letter ISO 4217 code"),
        ("ADMIN_EMAIL", "admin", "WEBSHOP_ADMIN_EMAIL must be an e-mail address"),
        ("TAX_RATES", "standard=lots", "WEBSHOP_TAX_RATES"),
        ("TAX_RATES", "standard=120", "WEBSHOP_TAX_RATES"),
        ("SECRET_KEY", "too-short", "WEBSHOP_SECRET_KEY must be at least 32 characters long"),
    ],
)
def test_a_bad_value_is_named(monkeypatch, name, value, message):
    with pytest.raises(SettingsError) as caught:
        from_env(monkeypatch, **{name: value})
    assert message in str(caught.value)


def test_media_dir_must_be_a_folder(monkeypatch, tmp_path):
    (tmp_path / "media").write_text("not a folder")
    with pytest.raises(SettingsError, match="WEBSHOP_MEDIA_DIR must be a folder"):
        from_env(monkeypatch, MEDIA_DIR=str(tmp_path / "media"))


def test_empty_values_mean_the_default(monkeypatch):
    settings = from_env(monkeypatch, PORT="", WORKERS=" ", HOST="", BASE_URL="", DEBUG="")
    assert (settings.server.port, settings.server.workers, settings.server.host) == (8000, 1, "127.0.0.1")
    assert settings.shop.base_url == "http://127.0.0.1:8000"


class TestProduction:
    """``WEBSHOP_ENV=production`` refuses what is only fit for development."""

    def test_a_random_key_starts(self, monkeypatch):
        settings = from_env(
            monkeypatch,
            ENV="production",
            SECRET_KEY=GOOD_KEY,
            BASE_URL="https://shop.example.com",
            METRICS_TOKEN=METRICS_TOKEN,
        )
        assert settings.server.environment == "production"
        assert settings.security.secret_key == GOOD_KEY
        assert settings.security.metrics_token == METRICS_TOKEN
        assert settings.server.log_format == "json"
        assert settings.security.effective_allowed_hosts == ("shop.example.com",)
        assert not [w for w in settings_warnings(settings, {}) if "WEBSHOP_BASE_URL" in w]

    def test_a_missing_key_is_refused(self, monkeypatch, tmp_path):
        with pytest.raises(SettingsError, match="WEBSHOP_SECRET_KEY must be set in production") as caught:
            from_env(monkeypatch, ENV="production")
        assert "secrets.token_urlsafe(48)" in str(caught.value)  # says how to make one
        assert not (tmp_path / ".webshop").exists()  # and no development key was generated

    @pytest.mark.parametrize(
        "key",
        [
            "change-me-change-me-change-me-change-me",
            "CHANGEME_please_0123456789_abcdefghijklmn",
            "your-secret-key-goes-here-0123456789abcdef",
            "my super secret key for the example shop!!",
            "insecure-development-only-0123456789-abcdef",
            "a" * 64,
            "0123456789" * 4,
        ],
    )
    def test_a_placeholder_or_monotonous_key_is_refused(self, monkeypatch, key):
        with pytest.raises(SettingsError, match="looks like a placeholder"):
            from_env(monkeypatch, ENV="production", SECRET_KEY=key)

    def test_a_short_key_is_refused(self, monkeypatch):
        with pytest.raises(SettingsError, match="at least 32 characters"):
            from_env(monkeypatch, ENV="production", SECRET_KEY=GOOD_KEY[:31])

    def test_the_development_key_is_refused(self, monkeypatch):
        development_key = from_env(monkeypatch).security.secret_key  # generated in .webshop/secret_key
        with pytest.raises(SettingsError, match="development key"):
            from_env(monkeypatch, ENV="production", SECRET_KEY=development_key)

    def test_debug_is_refused(self, monkeypatch):
        with pytest.raises(SettingsError, match="WEBSHOP_DEBUG must be off in production"):
            from_env(monkeypatch, ENV="production", SECRET_KEY=GOOD_KEY, DEBUG="true")

    @pytest.mark.parametrize("token", ["", "   "])
    def test_open_metrics_are_refused(self, monkeypatch, token):
        """``/metrics`` tells anyone the routes, traffic and latencies: production needs the bearer token."""
        with pytest.raises(SettingsError) as caught:
            from_env(monkeypatch, ENV="production", SECRET_KEY=GOOD_KEY, METRICS_TOKEN=token)
        message = str(caught.value)
        assert message.startswith("WEBSHOP_METRICS_TOKEN must be set in production") and "\n" not in message
        assert "secrets.token_urlsafe(32)" in message  # says how to make one
        assert from_env(monkeypatch, ENV="development", METRICS_TOKEN=token).security.metrics_token == ""  # open

    def test_plain_http_is_warned_about(self, monkeypatch):
        settings = from_env(
            monkeypatch,
            ENV="production",
            SECRET_KEY=GOOD_KEY,
            BASE_URL="http://shop.example.com",
            METRICS_TOKEN=METRICS_TOKEN,
        )
        assert [w for w in settings_warnings(settings, {}) if "WEBSHOP_BASE_URL" in w and "not marked Secure" in w]

    def test_sqlite_with_several_workers_is_allowed(self, monkeypatch):
        """A decision (README, "Running in production"): SQLite's locking works across processes."""
        settings = from_env(
            monkeypatch, ENV="production", SECRET_KEY=GOOD_KEY, WORKERS="4", METRICS_TOKEN=METRICS_TOKEN
        )
        assert settings.database.is_sqlite and settings.server.workers == 4


def test_unknown_variables_are_reported_as_typos():
    warnings = unknown_variables(
        {
            "WEBSHOP_PAGESIZE": "10",
            "WEBSHOP_SECERT_KEY": "x",
            "WEBSHOP_COLOUR_SCHEME": "dark",
            "WEBSHOP_PORT": "8000",
            "WEBSHOP_TEST_POSTGRES_URL": "postgresql+asyncpg://postgres@127.0.0.1/test",
            "PATH": "/usr/bin",
        }
    )
    assert warnings == [
        "WEBSHOP_COLOUR_SCHEME is not a webshop setting and is ignored",
        "WEBSHOP_PAGESIZE is not a webshop setting and is ignored (did you mean WEBSHOP_PAGE_SIZE?)",
        "WEBSHOP_SECERT_KEY is not a webshop setting and is ignored (did you mean WEBSHOP_SECRET_KEY?)",
    ]


WEBSHOP_NAME = re.compile(r"\bWEBSHOP_[A-Z0-9_]*[A-Z0-9]\b")


def test_known_variables_are_exactly_those_config_reads():
    """Reading looks up exactly the table's variables, and the config package names no other setting
    (a variable read beside the table would be reported as a typo)."""
    looked_up: list[str] = []

    class Recording(dict[str, str]):
        def get(self, name, default=None):  # type: ignore[override]
            looked_up.append(name)
            return super().get(name, default)

    Settings.from_env(Recording())
    assert sorted(looked_up) == sorted(KNOWN_VARIABLES) == sorted(f.env for f in FIELDS)
    source = "\n".join(path.read_text() for path in sorted((ROOT / "webshop" / "config").glob("*.py")))
    assert set(WEBSHOP_NAME.findall(source)) - IGNORED_VARIABLES == set(KNOWN_VARIABLES)


def test_the_groups_hold_exactly_the_table():
    """Each row names an attribute of its group, once; each group attribute is a row or a derived value."""
    places = [(f.group, f.attribute) for f in FIELDS]
    assert sorted({p for p in places if places.count(p) > 1}) == []
    assert len({f.flat for f in FIELDS}) == len(FIELDS)
    for group in GROUPS:
        declared = {f.attribute for f in FIELDS if f.group == group}
        assert group_attributes(group) == declared | set(DERIVED.get(group, ())), group
    assert {f.name for f in dataclasses.fields(Settings)} == set(GROUPS)


def test_flat_values_round_trip():
    """``flat()`` names every setting once, and building from it gives the same settings back."""
    settings = Settings.from_env({"WEBSHOP_SMTP_TLS": "tls", "WEBSHOP_JWT_ISSUER": "https://issuer.example"})
    assert set(settings.flat()) == {f.flat for f in FIELDS}
    assert settings.with_values(**settings.flat()) == settings
    assert settings.security.token_issuer == "https://issuer.example" and settings.mail.smtp_port == 465


def test_settings_built_in_code_start_from_the_table_defaults(tmp_path):
    media = tmp_path / "media"
    built = Settings.from_flat(database_url="sqlite+aiosqlite:///x.db", secret_key=GOOD_KEY, media_dir=media)
    read = Settings.from_env(
        {
            "WEBSHOP_DATABASE_URL": "sqlite+aiosqlite:///x.db",
            "WEBSHOP_SECRET_KEY": GOOD_KEY,
            "WEBSHOP_MEDIA_DIR": str(media),
        }
    )
    assert built == read
    assert (
        Settings.from_flat(
            database_url="sqlite+aiosqlite:///x.db", secret_key=GOOD_KEY, media_dir=media, smtp_tls="tls"
        ).mail.smtp_port
        == 465
    )
    changed = built.with_values(base_url="https://shop.example.com", env="production", queue_timeout=1.5)
    assert changed.security.secure_cookies and changed.security.token_issuer == "https://shop.example.com"
    assert changed.security.effective_allowed_hosts == ("shop.example.com",)
    assert changed.limits.queue_timeout == 1.5 and changed.server.production
    with pytest.raises(TypeError, match="not a setting: queue_timeout_s"):
        built.with_values(queue_timeout_s=1)


def test_secrets_stay_out_of_repr():
    settings = Settings.from_env(
        {
            "WEBSHOP_SMTP_PASSWORD": "smtp-pw-123",
            "WEBSHOP_METRICS_TOKEN": "metrics-tok-456",
            "WEBSHOP_ADMIN_PASSWORD": "admin-pw-789",
            "WEBSHOP_SECRET_KEY": GOOD_KEY,
        }
    )
    shown = repr(settings)
    assert not [secret for secret in ("smtp-pw-123", "metrics-tok-456", "admin-pw-789", GOOD_KEY) if secret in shown]


def readme_rows() -> dict[str, str]:
    """The README configuration table: ``{variable: its Default cell}``; fails on a variable with two rows."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `WEBSHOP_")]
    names = [WEBSHOP_NAME.findall(line)[0] for line in rows]
    assert sorted({n for n in names if names.count(n) > 1}) == [], "settings with two rows in the README table"
    return {name: re.split(r"(?<!\\)\|", line)[2].strip() for name, line in zip(names, rows, strict=True)}


def test_readme_documents_every_setting_with_its_default():
    """The README's configuration table has a row for every setting of the field table and none for a
    setting that is gone, and each row's "Default" shows the table's default (``Field.readme_default``)."""
    rows = readme_rows()
    assert sorted(KNOWN_VARIABLES - set(rows)) == [], "settings missing from the README table"
    assert sorted(set(rows) - KNOWN_VARIABLES) == [], "README rows for settings the field table does not have"
    wrong = {f.env: (rows[f.env], f.readme_default) for f in FIELDS if not rows[f.env].startswith(f.readme_default)}
    assert wrong == {}, "README default cells that do not start with the field table's default"
