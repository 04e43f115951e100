"""The PostgreSQL test database is set back to the template before each test (``tests/postgres_reset.py``):
rows, sequences and the sessions a test left behind, and the schema too when a test changed it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.conftest import POSTGRES_URL, _admin_url, _pg_database_url, in_thread, require_postgres
from tests.postgres_reset import ResettableDatabase


@pytest.fixture
async def database() -> AsyncIterator[ResettableDatabase]:
    require_postgres()
    template: str = in_thread(_template())
    name = f"webshop_reset_{uuid.uuid4().hex[:12]}"
    database = ResettableDatabase(_admin_url(POSTGRES_URL), _admin_url(_pg_database_url(name)), name, template)
    try:
        yield database
    finally:
        await database.drop()
        connection = await asyncpg.connect(_admin_url(POSTGRES_URL))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{template}"')
        finally:
            await connection.close()


async def _template() -> str:
    """A small template: a table with a row, a foreign key to it, a sequence moved on, a trigger."""
    name = f"webshop_reset_tpl_{uuid.uuid4().hex[:12]}"
    connection = await asyncpg.connect(_admin_url(POSTGRES_URL))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    connection = await asyncpg.connect(_admin_url(_pg_database_url(name)))
    try:
        await connection.execute(
            """
            CREATE TABLE shops (id serial PRIMARY KEY, name text NOT NULL);
            CREATE TABLE products (id serial PRIMARY KEY, shop_id integer NOT NULL REFERENCES shops (id));
            CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN RAISE EXCEPTION 'trigger fired'; END $$;
            CREATE TRIGGER shops_refuse BEFORE DELETE ON shops FOR EACH ROW EXECUTE FUNCTION refuse();
            INSERT INTO shops (name) VALUES ('Default shop');
            """
        )
    finally:
        await connection.close()
    return name


async def _rows(database: ResettableDatabase) -> tuple[list[str], int, int, str]:
    connection = await asyncpg.connect(database.dsn)
    try:
        shops = [row[0] for row in await connection.fetch("SELECT name FROM shops ORDER BY id")]
        products = await connection.fetchval("SELECT count(*) FROM products")
        next_shop = await connection.fetchval("SELECT nextval('shops_id_seq')")
        enabled = await connection.fetchval("SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'shops_refuse'")
        return shops, products, next_shop, enabled
    finally:
        await connection.close()


async def test_a_reset_brings_back_the_templates_rows_and_sequences_and_ends_other_sessions(
    database: ResettableDatabase,
) -> None:
    await database.reset()
    assert database.copies == 1
    connection = await asyncpg.connect(database.dsn)
    await connection.execute("INSERT INTO shops (name) VALUES ('Second'), ('Third')")
    await connection.execute("INSERT INTO products (shop_id) SELECT id FROM shops")
    await connection.close()
    left_open = await asyncpg.connect(database.dsn)  # as a test's live server might leave it, mid-transaction
    await left_open.execute("BEGIN; LOCK TABLE products IN ACCESS EXCLUSIVE MODE")

    # A row trigger that refuses deletes and the foreign key do not stop the reset (replica mode).
    await database.reset()

    assert database.copies == 1, "the rows were put back in place, not by a new copy"
    assert await _rows(database) == (["Default shop"], 0, 2, "O")
    assert left_open.is_closed() or await _closed(left_open)


async def _closed(connection: asyncpg.Connection) -> bool:
    try:
        await asyncio.wait_for(connection.fetchval("SELECT 1"), 5)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError):
        return True
    return False


async def test_a_changed_schema_is_copied_afresh(database: ResettableDatabase) -> None:
    await database.reset()
    connection = await asyncpg.connect(database.dsn)
    try:
        await connection.execute("ALTER TABLE shops DISABLE TRIGGER shops_refuse")
        await connection.execute("INSERT INTO shops (name) VALUES ('Second')")
    finally:
        await connection.close()

    await database.reset()

    assert database.copies == 2
    assert await _rows(database) == (["Default shop"], 0, 2, "O")
