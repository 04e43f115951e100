"""Variant and category ids are never given again on SQLite (AUTOINCREMENT)

Variants and categories are deleted for good, and SQLite gives the largest freed ``INTEGER PRIMARY KEY``
to the next row unless the table is ``AUTOINCREMENT``. A reused id made a new variant inherit what was said
of the deleted one: its promotions (QA: a discount on another shop's new variant), its audit trail on the
product page, and the identity an integration knows it by (webhooks and the API name variants by id).
PostgreSQL's identity columns never give an id again; this makes SQLite do the same, by rebuilding the two
tables as ``AUTOINCREMENT`` (their rows, ids, indexes and constraints kept; ``sqlite_sequence`` starts at
the largest id). PostgreSQL is left as it is. Downgrade rebuilds them without it.

Revision ID: d2f6a8c1e3b7
Revises: c7d1e5a9f2b4
Create Date: 2026-12-15 08:00:00.000000
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "d2f6a8c1e3b7"
down_revision = "c7d1e5a9f2b4"
branch_labels = None
depends_on = None

TABLES = ("variants", "categories")


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # A batch "recreate" copies the table (reflected: columns, indexes, foreign keys, checks) into a new
        # one and renames it; the migration environment turns foreign keys off meanwhile and checks them after.
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
