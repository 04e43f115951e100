"""Migrations through the real command line (``webshop db upgrade`` / ``webshop db downgrade``).

Each test starts from an empty database (a new SQLite file, or a PostgreSQL database with a random
name that is dropped afterwards) and drives Alembic the way an operator does, then looks at the
schema with SQLAlchemy's inspector: head creates every table of the models, base removes them all,
every revision steps up and back down one at a time, and the schema at head is what the models
describe (Alembic's autogenerate comparison finds nothing to do).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, column, inspect, select, table, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import POSTGRES_URL, _pg_database_url, _pg_exec, in_thread, make_settings, require_postgres
from tests.live import CLI, run_cli, shop_env
from webshop.catalog.search import is_search_index_object
from webshop.db.engine import PROJECT_ROOT, create_alchemy_config, run_migrations
from webshop.db.models import Product

METADATA = Product.metadata  # every model registers on this one metadata
VERSION_TABLE = "alembic_version"
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgres"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with nothing in it: no tables, no version table."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
        return
    require_postgres()
    name = f"webshop_mig_{uuid.uuid4().hex[:12]}"
    in_thread(_pg_exec(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    try:
        yield _pg_database_url(name)
    finally:
        in_thread(_pg_exec(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def webshop_db(url: str, workdir: Path, command: str, revision: str) -> str:
    """Run ``webshop db COMMAND --no-prompt -- REVISION``; assert it succeeded and return its output.

    The ``--`` lets a relative revision such as ``-1`` through (click would read it as an option).
    """
    result = run_cli(["db", command, "--no-prompt", "--", revision], shop_env(url, workdir), workdir)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"webshop db {command} {revision} failed:\n{output}"
    assert "Traceback" not in output, output
    return output


def with_connection(url: str, work: Callable[[Connection], T]) -> T:
    """Run ``work(connection)`` on a fresh connection to ``url`` (reads only) and return its result."""

    async def run() -> T:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(work)
        finally:
            await engine.dispose()

    # SQLite cannot reflect expression indexes (uq_users_email_lower, on lower(email)); SQLAlchemy
    # and Alembic warn and skip them. index_names() below checks that index by name instead.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based index", SAWarning)
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression-based index")
        return in_thread(run())


def table_names(connection: Connection) -> set[str]:
    """The tables but the search index's own (the FTS5 table and its shadow tables on SQLite)."""
    return {name for name in inspect(connection).get_table_names() if not is_search_index_object(name)}


def versions(connection: Connection) -> list[str]:
    """The revisions stamped in the version table ([] when it is empty or absent)."""
    if VERSION_TABLE not in table_names(connection):
        return []
    return list(connection.scalars(select(column("version_num")).select_from(table(VERSION_TABLE))))


def index_names(connection: Connection) -> set[str]:
    """The database's indexes but the version table's, expression indexes included (see ``with_connection``)."""
    if connection.dialect.name == "sqlite":
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%' AND tbl_name <> :v"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> :v"
    return set(connection.scalars(text(query), {"v": VERSION_TABLE}))


def schema(connection: Connection) -> dict[str, Any]:
    """Tables with their columns, keys, constraints and indexes, in a form that compares with ==."""
    inspector = inspect(connection)
    tables: dict[str, Any] = {}
    for name in sorted(table_names(connection)):
        tables[name] = {
            "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(name)],
            "primary_key": inspector.get_pk_constraint(name)["constrained_columns"],
            "foreign_keys": sorted(
                (fk["name"] or "", *fk["constrained_columns"], fk["referred_table"], *fk["referred_columns"])
                for fk in inspector.get_foreign_keys(name)
            ),
            "unique": sorted((u["name"] or "", *u["column_names"]) for u in inspector.get_unique_constraints(name)),
            "checks": sorted(c["name"] or "" for c in inspector.get_check_constraints(name)),
        }
    return {"tables": tables, "indexes": sorted(index_names(connection))}


def differences_from_models(connection: Connection) -> list[Any]:
    """What ``alembic revision --autogenerate`` would write to bring the database in line with the models."""
    context = MigrationContext.configure(
        connection,
        opts={
            "compare_type": True,
            "compare_server_default": True,
            "version_table": VERSION_TABLE,
            # The search index's engine-specific objects (FTS5 tables, GIN indexes) are not in the models.
            "include_object": lambda _object, name, _type, reflected, compare_to: (
                not (reflected and compare_to is None and is_search_index_object(name))
            ),
        },
    )
    return list(compare_metadata(context, METADATA))


def revisions_base_to_head() -> list[str]:
    """The migration scripts' revision ids, oldest first; asserts the history is one straight line."""
    script = ScriptDirectory(str(PROJECT_ROOT / "migrations"))
    assert len(script.get_heads()) == 1, f"migrations have several heads: {script.get_heads()}"
    scripts = list(reversed(list(script.walk_revisions())))
    for previous, current in zip([None, *scripts], scripts, strict=False):
        assert current.down_revision == (previous.revision if previous else None), current.revision
    return [s.revision for s in scripts]


def test_upgrade_head_creates_the_tables_downgrade_base_removes_them_upgrade_again(
    empty_db_url: str, tmp_path: Path
) -> None:
    """head -> base -> head through the CLI: all model tables, then none, then the same schema again."""
    head = revisions_base_to_head()[-1]
    model_tables = set(METADATA.tables)

    webshop_db(empty_db_url, tmp_path, "upgrade", "head")
    assert with_connection(empty_db_url, table_names) == model_tables | {VERSION_TABLE}
    assert with_connection(empty_db_url, versions) == [head]
    first = with_connection(empty_db_url, schema)

    webshop_db(empty_db_url, tmp_path, "downgrade", "base")
    assert with_connection(empty_db_url, table_names) <= {VERSION_TABLE}
    assert with_connection(empty_db_url, versions) == []
    assert with_connection(empty_db_url, index_names) == set()

    webshop_db(empty_db_url, tmp_path, "upgrade", "head")
    assert with_connection(empty_db_url, versions) == [head]
    assert with_connection(empty_db_url, schema) == first


def test_schema_at_head_matches_the_models(empty_db_url: str, tmp_path: Path) -> None:
    """Autogenerate finds no difference; CHECK constraints and expression indexes (which it skips) exist too."""
    webshop_db(empty_db_url, tmp_path, "upgrade", "head")

    assert with_connection(empty_db_url, differences_from_models) == []

    # compare_metadata does not look at CHECK constraints, and skips expression indexes on SQLite.
    expected_indexes = {index.name for model_table in METADATA.tables.values() for index in model_table.indexes}
    assert expected_indexes <= with_connection(empty_db_url, index_names)
    actual = with_connection(empty_db_url, schema)["tables"]
    for model_table in METADATA.tables.values():
        checks = {c.name for c in model_table.constraints if isinstance(c, CheckConstraint)}
        assert checks <= set(actual[model_table.name]["checks"]), model_table.name
    assert "ck_variants_stock_not_negative" in actual["variants"]["checks"]


def test_every_revision_steps_up_and_down_one_at_a_time(empty_db_url: str, tmp_path: Path) -> None:
    """``upgrade +1`` from base to head, then ``downgrade -1`` back: each step undoes exactly one upgrade.

    The first and the last step go through the command line (``webshop db upgrade -- +1``, ``webshop db
    downgrade -- -1``); the steps between call what that command calls (``run_migrations``: advanced-alchemy's
    Alembic commands with the app's config) in this process, which saves a process start per revision.
    """
    config = create_alchemy_config(make_settings(empty_db_url, tmp_path / "media"), null_pool=True)
    revisions = revisions_base_to_head()
    after_upgrade: dict[str, dict[str, Any]] = {}
    for index, revision in enumerate(revisions):
        if index == 0:
            webshop_db(empty_db_url, tmp_path, "upgrade", "+1")
        else:
            run_migrations(config, "+1")
        assert with_connection(empty_db_url, versions) == [revision]
        after_upgrade[revision] = with_connection(empty_db_url, schema)
    assert set(after_upgrade[revisions[-1]]["tables"]) == set(METADATA.tables) | {VERSION_TABLE}

    for index in range(len(revisions) - 1, 0, -1):
        run_migrations(config, "-1", downgrade=True)
        previous = revisions[index - 1]
        assert with_connection(empty_db_url, versions) == [previous]
        assert with_connection(empty_db_url, schema) == after_upgrade[previous], f"downgrade of {revisions[index]}"

    webshop_db(empty_db_url, tmp_path, "downgrade", "-1")
    assert with_connection(empty_db_url, versions) == []
    assert with_connection(empty_db_url, table_names) <= {VERSION_TABLE}


def test_servers_started_together_on_postgres_migrate_once(tmp_path: Path) -> None:
    """Several hosts running ``webshop db upgrade`` (or ``serve``, which migrates first) at the same
    moment against one empty PostgreSQL database: all succeed, and the schema is at head once."""
    require_postgres()
    name = f"webshop_mig_{uuid.uuid4().hex[:12]}"
    in_thread(_pg_exec(POSTGRES_URL, f'CREATE DATABASE "{name}"'))
    try:
        url = _pg_database_url(name)
        processes = []
        # The exit stack closes every output pipe and waits for every process, also when one times out.
        with contextlib.ExitStack() as started:
            for index in range(3):
                workdir = tmp_path / f"host{index}"
                workdir.mkdir()
                processes.append(
                    started.enter_context(
                        subprocess.Popen(
                            [*CLI, "db", "upgrade", "--no-prompt", "--", "head"],
                            env=shop_env(url, workdir),
                            cwd=workdir,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT,
                            text=True,
                        )
                    )
                )
            outputs = [process.communicate(timeout=120)[0] for process in processes]
        for process, output in zip(processes, outputs, strict=True):
            assert process.returncode == 0, output
        assert with_connection(url, versions) == revisions_base_to_head()[-1:]
        assert with_connection(url, differences_from_models) == []
    finally:
        in_thread(_pg_exec(POSTGRES_URL, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _write(url: str, statements: list[tuple[str, dict[str, Any]]]) -> None:
    """Run ``statements`` (SQL text, parameters) in one committed transaction on ``url``."""

    async def run() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.begin() as connection:
                for sql, params in statements:
                    await connection.execute(text(sql), params)
        finally:
            await engine.dispose()

    in_thread(run())


def _products_with_shops(connection: Connection) -> list[tuple[Any, ...]]:
    rows = connection.execute(
        text(
            "SELECT p.slug, s.name, s.slug, s.is_default, p.shop_active, "
            "(SELECT count(*) FROM variants v WHERE v.product_id = p.id) "
            "FROM products p JOIN shops s ON s.id = p.shop_id ORDER BY p.slug"
        )
    )
    return [tuple(row) for row in rows]


def _orders_with_parts(connection: Connection) -> list[tuple[Any, ...]]:
    rows = connection.execute(
        text(
            "SELECT o.number, l.shop_name, f.shop_name, f.status, f.shipping_amount FROM orders o"
            " JOIN order_lines l ON l.order_id = o.id JOIN fulfilments f ON f.order_id = o.id"
            " WHERE l.shop_id = f.shop_id ORDER BY o.number"
        )
    )
    return [tuple(row) for row in rows]


def test_shops_migration_moves_existing_products_to_the_default_shop_and_back(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Issue 16: upgrading a shop that has products puts every one in the default shop, named by
    ``WEBSHOP_SHOP_NAME``; downgrading drops the shops and leaves the products and their variants."""
    revisions = revisions_base_to_head()
    shops_revision = "a7c3e91f0d52"
    before = revisions[revisions.index(shops_revision) - 1]
    webshop_db(empty_db_url, tmp_path, "upgrade", before)
    statements: list[tuple[str, dict[str, Any]]] = []
    for index, slug in enumerate(["kettle", "toaster"], start=1):
        statements.append(
            (
                "INSERT INTO products (id, slug, name, description, option_groups, is_active, min_price, max_price,"
                " in_stock, created_at, updated_at) VALUES (:id, :slug, :slug, '', '[]', true, 100, 100, true,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                {"id": index, "slug": slug},
            )
        )
        statements.append(
            (
                "INSERT INTO variants (product_id, sku, option_values, price, currency, tax_category, stock,"
                " low_stock_threshold, position, created_at, updated_at) VALUES (:id, :sku, '[]', 100, 'USD',"
                " 'standard', 3, 5, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                {"id": index, "sku": f"SKU-{slug}"},
            )
        )
    statements.append(
        (
            "INSERT INTO users (id, email, name, password_hash, role, is_active, failed_sign_ins, created_at,"
            " updated_at) VALUES (1, 'ada@example.com', 'Ada', 'x', 'customer', true, 0, CURRENT_TIMESTAMP,"
            " CURRENT_TIMESTAMP)",
            {},
        )
    )
    for number, status in (("WS-1", "shipped"), ("WS-2", "paid")):
        statements.append(
            (
                "INSERT INTO orders (number, user_id, checkout_token, status, currency, subtotal, shipping_total,"
                " tax_total, total, shipping_method, shipping_method_name, ship_name, ship_line1, ship_line2,"
                " ship_city, ship_postal_code, ship_country, payment_provider, payment_reference, card_last4,"
                " refund_amount, created_at, updated_at) VALUES (:number, 1, :number, :status, 'USD', 100, 500, 0,"
                " 600, 'standard', 'Standard', 'Ada', '1 Way', '', 'London', 'N1', 'GB', '', '', '', 0,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                {"number": number, "status": status},
            )
        )
        statements.append(
            (
                "INSERT INTO order_lines (order_id, variant_id, product_id, product_name, product_slug, sku, options,"
                " unit_price, currency, quantity, tax_category, tax_rate_bp, line_total, tax_amount, created_at,"
                " updated_at) SELECT id, 1, 1, 'kettle', 'kettle', 'SKU-kettle', '{}', 100, 'USD', 1, 'standard',"
                " 0, 100, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM orders WHERE number = :number",
                {"number": number},
            )
        )
    _write(empty_db_url, statements)

    env = shop_env(empty_db_url, tmp_path, WEBSHOP_SHOP_NAME="Ann's Kitchen Shop")
    result = run_cli(["db", "upgrade", "--no-prompt", "--", "head"], env, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert with_connection(empty_db_url, _products_with_shops) == [
        ("kettle", "Ann's Kitchen Shop", "ann-s-kitchen-shop", True, True, 1),
        ("toaster", "Ann's Kitchen Shop", "ann-s-kitchen-shop", True, True, 1),
    ]
    # Past orders were the default shop's: their lines say so, and each got one part carrying its shipping.
    assert with_connection(empty_db_url, _orders_with_parts) == [
        ("WS-1", "Ann's Kitchen Shop", "Ann's Kitchen Shop", "shipped", 500),
        ("WS-2", "Ann's Kitchen Shop", "Ann's Kitchen Shop", "pending", 500),
    ]

    webshop_db(empty_db_url, tmp_path, "downgrade", before)
    assert "shops" not in with_connection(empty_db_url, table_names)
    rows = with_connection(
        empty_db_url,
        lambda c: [
            tuple(r)
            for r in c.execute(
                text(
                    "SELECT p.slug, v.sku, v.stock FROM products p"
                    " JOIN variants v ON v.product_id = p.id ORDER BY p.slug"
                )
            )
        ],
    )
    assert rows == [("kettle", "SKU-kettle", 3), ("toaster", "SKU-toaster", 3)]


def test_facet_spelling_migration_gives_each_value_one_spelling(empty_db_url: str, tmp_path: Path) -> None:
    """Values stored in several cases before writes kept one spelling ("Blue", "blue") are merged into
    the one most products use; a product that had two spellings keeps one row."""
    revisions = revisions_base_to_head()
    before = revisions[revisions.index("e7b2c9d4f1a3") - 1]
    webshop_db(empty_db_url, tmp_path, "upgrade", before)
    statements: list[tuple[str, dict[str, Any]]] = []
    for index, slug in enumerate(["kettle", "toaster", "mug"], start=1):
        statements.append(
            (
                "INSERT INTO products (id, slug, name, description, option_groups, is_active, min_price, max_price,"
                " in_stock, shop_id, created_at, updated_at) SELECT :id, :slug, :slug, '', '[]', true, 100, 100,"
                " true, id, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM shops WHERE is_default",
                {"id": index, "slug": slug},
            )
        )
    facets = [(1, "color", "blue"), (2, "color", "blue"), (3, "color", "Blue"), (3, "color", "BLUE")]
    facets += [(1, "brand", "Acme"), (2, "brand", "ACME")]  # one each: code-point order decides
    for index, (product_id, facet, value) in enumerate(facets, start=1):
        statements.append(
            (
                "INSERT INTO product_facets (id, product_id, facet, value, created_at, updated_at)"
                " VALUES (:id, :product_id, :facet, :value, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
                {"id": index, "product_id": product_id, "facet": facet, "value": value},
            )
        )
    _write(empty_db_url, statements)
    version = with_connection(empty_db_url, lambda c: c.execute(text("SELECT version FROM catalog_state")).scalar())

    webshop_db(empty_db_url, tmp_path, "upgrade", "head")
    # Cached facet counts are read again: the catalog version went up.
    assert with_connection(empty_db_url, lambda c: c.execute(text("SELECT version FROM catalog_state")).scalar()) == (
        version + 1
    )
    rows = with_connection(
        empty_db_url,
        lambda c: sorted(tuple(r) for r in c.execute(text("SELECT product_id, facet, value FROM product_facets"))),
    )
    merged = [(1, "brand", "ACME"), (1, "color", "blue"), (2, "brand", "ACME"), (2, "color", "blue")]
    assert rows == [*merged, (3, "color", "blue")]


def _filled_insert(url: str, table_name: str, given: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An ``INSERT`` into ``table_name`` of ``given``, every other required column (not null, no default)
    filled with a plain value of its type (0, ``''``-like text, false, now, ``[]``): rows for a migration
    to read, whatever columns the revision under test has."""

    def required(connection: Connection) -> list[dict[str, Any]]:
        return [
            c
            for c in inspect(connection).get_columns(table_name)
            if not c["nullable"] and c["default"] is None and c["name"] not in given and c["name"] != "id"
        ]

    values = dict(given)
    for col in with_connection(url, required):
        kind = str(col["type"]).upper()
        if "INT" in kind:
            values[col["name"]] = 0
        elif "BOOL" in kind:
            values[col["name"]] = False
        elif "JSON" in kind:
            values[col["name"]] = "[]"
        elif "TIME" in kind or "DATE" in kind:
            values[col["name"]] = datetime(2026, 12, 1, tzinfo=UTC)
        else:
            values[col["name"]] = "x"
    names, slots = ", ".join(values), ", ".join(f":{name}" for name in values)
    return f"INSERT INTO {table_name} ({names}) VALUES ({slots})", values  # noqa: S608 (the catalog's names)


def test_refunds_pending_before_the_retry_worker_are_left_to_the_admins(empty_db_url: str, tmp_path: Path) -> None:
    """Refunds pending before ``a9d4c1e7b352`` (and orders owing their whole refund) may have been made by
    hand at the provider since: they start past the worker's last attempt, so it never asks for them;
    refunds that were answered, and orders owing nothing, start with no attempt."""
    revisions = revisions_base_to_head()
    webshop_db(empty_db_url, tmp_path, "upgrade", revisions[revisions.index("a9d4c1e7b352") - 1])
    owed = {"id": 1, "number": "WS-OLD1", "checkout_token": "t1", "refund_amount": 500, "status": "cancelled"}
    settled = {"id": 2, "number": "WS-OLD2", "checkout_token": "t2", "refund_amount": 0, "status": "paid"}
    pending = {"id": 1, "order_id": 2, "amount": 100, "status": "pending", "idempotency_key": "k1", "currency": "USD"}
    done = {"id": 2, "order_id": 2, "amount": 100, "status": "succeeded", "idempotency_key": "k2", "currency": "USD"}
    statements = [_filled_insert(empty_db_url, "orders", row) for row in (owed, settled)]
    statements += [_filled_insert(empty_db_url, "refunds", row) for row in (pending, done)]
    _write(empty_db_url, statements)

    webshop_db(empty_db_url, tmp_path, "upgrade", "head")

    def attempts(connection: Connection) -> tuple[list[Any], list[Any]]:
        orders = connection.execute(text("SELECT id, refund_retry_attempts FROM orders ORDER BY id"))
        refunds = connection.execute(text("SELECT id, retry_attempts, next_retry_at FROM refunds ORDER BY id"))
        return [tuple(r) for r in orders], [tuple(r) for r in refunds]

    assert with_connection(empty_db_url, attempts) == ([(1, 1000), (2, 0)], [(1, 1000, None), (2, 0, None)])


def test_addresses_stored_in_an_old_form_are_rewritten_so_their_owners_are_found(
    empty_db_url: str, tmp_path: Path
) -> None:
    """Before ``c7d1e5a9f2b4`` an address was stored with full-width letters or the root's trailing dot as
    typed; lookups now use the NFKC form without the dot, so the stored ones are rewritten, unless that
    form is already another account's (the pair is left for an admin)."""
    revisions = revisions_base_to_head()
    webshop_db(empty_db_url, tmp_path, "upgrade", revisions[revisions.index("c7d1e5a9f2b4") - 1])
    users = {
        1: "ａｎｎ@example.com",
        2: "bob@example.com.",
        3: "carl@example.com",
        4: "CARL@example.com.",
        5: "zoë@ex.com",
    }
    statements = [_filled_insert(empty_db_url, "users", {"id": i, "email": e}) for i, e in users.items()]
    guest = {"id": 1, "number": "WS-OLD1", "checkout_token": "t1", "email": "ｄａｎ@example.com."}
    skipped = {"id": 2, "number": "WS-OLD2", "checkout_token": "t2", "email": "CARL@example.com."}  # user 4's
    statements += [_filled_insert(empty_db_url, "orders", row) for row in (guest, skipped)]
    promotion = {"id": 1, "name": "Once", "kind": "percentage", "value": 10, "code": "ONCE"}
    statements.append(_filled_insert(empty_db_url, "promotions", promotion))
    use = {"id": 1, "promotion_id": 1, "order_id": 1, "email": "ｄａｎ@example.com."}
    statements.append(_filled_insert(empty_db_url, "promotion_usages", use))
    _write(empty_db_url, statements)

    webshop_db(empty_db_url, tmp_path, "upgrade", "head")

    def emails(connection: Connection) -> tuple[list[Any], list[Any], list[Any]]:
        stored = connection.execute(text("SELECT id, email FROM users ORDER BY id"))
        orders = connection.execute(text("SELECT email FROM orders ORDER BY id"))
        uses = connection.execute(text("SELECT email FROM promotion_usages"))
        return [tuple(r) for r in stored], [tuple(r) for r in orders], [tuple(r) for r in uses]

    assert with_connection(empty_db_url, emails) == (
        [
            (1, "ann@example.com"),
            (2, "bob@example.com"),
            (3, "carl@example.com"),
            (4, "CARL@example.com."),
            (5, "zoë@ex.com"),
        ],
        [("dan@example.com",), ("CARL@example.com.",)],  # the left account's order keeps its address
        [("dan@example.com",)],  # a once-per-customer code still counts the use
    )


def test_promotions_lose_deleted_targets_and_sqlite_ids_are_never_given_again(
    empty_db_url: str, tmp_path: Path
) -> None:
    """``d2f6a8c1e3b7``: a promotion naming a variant or category deleted before it loses that id (on SQLite the
    id could be the next one given, and the discount with it); one left with nothing to apply to is switched
    off, not widened to the whole cart. On SQLite the two tables become ``AUTOINCREMENT``."""
    revisions = revisions_base_to_head()
    webshop_db(empty_db_url, tmp_path, "upgrade", revisions[revisions.index("d2f6a8c1e3b7") - 1])
    statements = [
        _filled_insert(empty_db_url, "categories", {"id": 1, "name": "Kept", "slug": "kept"}),
        _filled_insert(
            empty_db_url, "promotions", {"id": 1, "name": "A", "kind": "percentage", "category_ids": "[1, 9]"}
        ),
        _filled_insert(empty_db_url, "promotions", {"id": 2, "name": "B", "kind": "percentage", "category_ids": "[9]"}),
        _filled_insert(
            empty_db_url,
            "promotions",
            {"id": 3, "name": "C", "kind": "percentage", "variant_ids": "[7]", "product_ids": "[3]"},
        ),
    ]
    _write(empty_db_url, statements)

    webshop_db(empty_db_url, tmp_path, "upgrade", "head")

    def promotions(connection: Connection) -> list[tuple[Any, ...]]:
        rows = connection.execute(text("SELECT id, category_ids, variant_ids, active FROM promotions ORDER BY id"))
        return [(r[0], _json(r[1]), _json(r[2]), bool(r[3])) for r in rows]

    assert with_connection(empty_db_url, promotions) == [
        (1, [1], [], True),
        (2, [], [], False),  # nothing left: switched off, not a whole-cart promotion
        (3, [], [], True),  # its product still names what it applies to
    ]
    if empty_db_url.startswith("sqlite"):

        def schema(connection: Connection) -> list[str]:
            rows = connection.execute(text("SELECT sql FROM sqlite_master WHERE name IN ('variants', 'categories')"))
            return [r[0] for r in rows]

        assert all("AUTOINCREMENT" in sql for sql in with_connection(empty_db_url, schema))


def _json(value: Any) -> Any:
    """A JSON column's value as read with plain SQL: text on SQLite, decoded already on PostgreSQL."""
    return json.loads(value) if isinstance(value, str) else value
