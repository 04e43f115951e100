"""Alembic environment (advanced-alchemy's async template, importing webshop's models).

Run through ``webshop db upgrade`` / ``webshop db downgrade``: advanced-alchemy hands this script the
app's engine and options, so migrations run exactly as the app connects, on SQLite or PostgreSQL.
"""

import asyncio
from typing import TYPE_CHECKING, cast

from advanced_alchemy.base import metadata_registry
from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_engine_from_config

import webshop.db.models  # noqa: F401  (registers every table on the metadata)

if TYPE_CHECKING:
    from advanced_alchemy.alembic.commands import AlembicCommandConfig
    from sqlalchemy.engine import Connection

config: "AlembicCommandConfig" = context.config  # type: ignore[assignment]


def _options() -> dict:
    return {
        "target_metadata": metadata_registry.get(config.bind_key),
        "compare_type": config.compare_type,
        "version_table": config.version_table_name,
        "version_table_schema": config.version_table_schema,
        "version_table_pk": config.version_table_pk,
        "user_module_prefix": config.user_module_prefix,
        "render_as_batch": config.render_as_batch,
        "include_object": _include_object,
    }


def _include_object(_object: object, name: str | None, _type: str, reflected: bool, compare_to: object) -> bool:
    """Autogenerate leaves alone the search index's engine-specific objects (FTS5 tables, GIN indexes)."""
    from webshop.catalog.search import is_search_index_object

    return not (reflected and compare_to is None and is_search_index_object(name))


def run_migrations_offline() -> None:
    """Emit SQL to standard output instead of running it (``--sql``)."""
    context.configure(url=config.db_url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **_options())
    with context.begin_transaction():
        context.run_migrations()


MIGRATION_LOCK = 0x7765627368_6F70  # "webshop": the advisory lock key every migrating process takes


def do_run_migrations(connection: "Connection") -> None:
    """Run the migrations in one transaction (PostgreSQL's DDL is transactional).

    On PostgreSQL the transaction first takes a transaction-level advisory lock, so hosts that start
    together (each running ``webshop db upgrade`` or ``webshop serve``) migrate one after another: the
    first applies the migrations, the others wait, then find the database at head and do nothing.

    On SQLite foreign keys are off while migrating and checked before the commit: a batch migration
    rebuilds a table by copying it and dropping the old one, and with foreign keys on that drop
    would delete the rows that refer to it (SQLite's "making other kinds of table schema changes",
    https://www.sqlite.org/lang_altertable.html#otheralter). The setting only changes outside a
    transaction, so it is set on the driver's connection before the migration's transaction begins.
    """
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
    try:
        context.configure(connection=connection, **_options())
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
    finally:
        if sqlite:
            _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(connection: "Connection", pragma: str) -> None:
    """Run ``pragma`` on the driver's connection, outside any transaction SQLAlchemy would begin."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(pragma)
    finally:
        cursor.close()


async def run_migrations_online() -> None:
    """Run the migrations on the engine advanced-alchemy passed in (or one built from the config)."""
    configuration = config.get_section(config.config_ini_section) or {}
    configuration["sqlalchemy.url"] = config.db_url
    connectable = cast(
        "AsyncEngine",
        config.engine or async_engine_from_config(configuration, prefix="sqlalchemy.", poolclass=pool.NullPool),
    )
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)


if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
