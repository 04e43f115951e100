"""Addresses and orders name their state, province or region (ISO 3166-2)

Tax rates could be set per region (``tax_rates.region``) since issue 19, but an address had no region, so
checkout never charged them. ``addresses.region`` keeps the region of a saved address (its ISO 3166-2 code,
else as typed) and ``orders.ship_region`` the one an order was shipped to (and taxed for); both ``""`` for
the rows before this revision, which is what an address without a region reads as.

From this revision on, the region rates already set are charged, and a country that has one asks its
addresses for their region: the upgrade lists them in its log.

Revision ID: e4b9c2d7a1f3
Revises: d2f6a8c1e3b7
Create Date: 2026-12-16 08:00:00.000000
"""

import logging

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e4b9c2d7a1f3"
down_revision = "d2f6a8c1e3b7"
branch_labels = None
depends_on = None


log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    rates = op.get_bind().execute(
        sa.text("SELECT country, region, tax_category, rate_bp FROM tax_rates WHERE region <> '' ORDER BY 1, 2, 3")
    )
    for country, region, category, rate_bp in rates:
        log.warning(
            "the tax rate %s %s %s (%s basis points) is charged from now on; addresses in %s must give their region",
            country,
            region,
            category,
            rate_bp,
            country,
        )
    op.add_column("addresses", sa.Column("region", sa.String(length=80), server_default=sa.text("''"), nullable=False))
    op.add_column(
        "orders", sa.Column("ship_region", sa.String(length=80), server_default=sa.text("''"), nullable=False)
    )


def downgrade() -> None:
    for table, column in (("orders", "ship_region"), ("addresses", "region")):
        with op.batch_alter_table(table, schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
            batch_op.drop_column(column)
