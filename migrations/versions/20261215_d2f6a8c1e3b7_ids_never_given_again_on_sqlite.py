"""Variant and category ids are never given again on SQLite (AUTOINCREMENT)

Variants and categories are deleted for good, and SQLite gives the largest freed ``INTEGER PRIMARY KEY``
to the next row unless the table is ``AUTOINCREMENT``. A reused id made a new variant inherit what was said
of the deleted one: its promotions (QA: a discount on another shop's new variant), its audit trail on the
product page, and the identity an integration knows it by (webhooks and the API name variants by id).
PostgreSQL's identity columns never give an id again; this makes SQLite do the same, by rebuilding the two
tables as ``AUTOINCREMENT`` (their rows, ids, indexes and constraints kept; ``sqlite_sequence`` starts at
the largest id). PostgreSQL is left as it is. Downgrade rebuilds them without it.

Promotions that still name variants or categories deleted before this revision lose those ids (on both
engines, as ``webshop.promotions.targets.forget_targets`` now does at each deletion): on SQLite such an id
could otherwise still be the next one given. A promotion left with nothing to apply to is switched off, not
widened to the whole cart. Downgrade leaves promotions as they are.

Revision ID: d2f6a8c1e3b7
Revises: c7d1e5a9f2b4
Create Date: 2026-12-15 08:00:00.000000
"""

import logging

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d2f6a8c1e3b7"
down_revision = "c7d1e5a9f2b4"
branch_labels = None
depends_on = None

TABLES = ("variants", "categories")

log = logging.getLogger("alembic.runtime.migration")

promotions = sa.table(
    "promotions",
    sa.column("id", sa.Integer),
    sa.column("active", sa.Boolean),
    sa.column("variant_ids", sa.JSON),
    sa.column("category_ids", sa.JSON),
    sa.column("product_ids", sa.JSON),
)


def _forget_deleted_targets() -> None:
    """Take ids of variants and categories that no longer exist out of every promotion."""
    bind = op.get_bind()
    variants = {row[0] for row in bind.execute(sa.text("SELECT id FROM variants"))}
    categories = {row[0] for row in bind.execute(sa.text("SELECT id FROM categories"))}
    for row in bind.execute(sa.select(promotions)).all():
        kept_variants = [i for i in row.variant_ids or [] if i in variants]
        kept_categories = [i for i in row.category_ids or [] if i in categories]
        if kept_variants == list(row.variant_ids or []) and kept_categories == list(row.category_ids or []):
            continue
        active = bool(row.active) and bool(kept_variants or kept_categories or row.product_ids)
        bind.execute(
            sa.update(promotions)
            .where(promotions.c.id == row.id)
            .values(variant_ids=kept_variants, category_ids=kept_categories, active=active)
        )
        log.warning(
            "promotion %s named deleted variants or categories; they are taken out%s",
            row.id,
            "" if active or not row.active else ", and with nothing left to apply to it is switched off",
        )


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        # A batch "recreate" copies the table (reflected: columns, indexes, foreign keys, checks) into a new
        # one and renames it; the migration environment turns foreign keys off meanwhile and checks them after.
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}):
            pass


def upgrade() -> None:
    _forget_deleted_targets()
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
