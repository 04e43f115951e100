"""Order refunds: what is owed back after a cancel or refund, and the provider's refund

Revision ID: fb14554a6913
Revises: cf512228e816
Create Date: 2026-12-03 08:00:00.000000
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = "fb14554a6913"
down_revision = "cf512228e816"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ALTER TABLE, not batch mode: on SQLite batch mode copies the table, which is not needed
    # to add columns (existing orders get 0 and NULLs: nothing owed, nothing refunded).
    op.add_column("orders", sa.Column("refund_amount", sa.Integer(), server_default="0", nullable=False))
    op.add_column("orders", sa.Column("refund_reference", sa.String(length=100), nullable=True))
    op.add_column("orders", sa.Column("refunded_at", sa.DateTimeUTC(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("orders", "refunded_at")
    op.drop_column("orders", "refund_reference")
    op.drop_column("orders", "refund_amount")
