"""Why the payment provider refused an order's whole refund: ``orders.refund_failure``

A cancelled or refunded order's whole refund that the provider refused (rather than left unanswered)
keeps the provider's reason, for the admin's order page and the API; the worker does not ask for a
refused refund again, an admin's Retry does (``webshop.orders.refund_retries``).

Revision ID: b5e2f8a1c930
Revises: a9d4c1e7b352
Create Date: 2026-12-13 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b5e2f8a1c930"
down_revision = "a9d4c1e7b352"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("refund_failure", sa.String(length=300), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("refund_failure")
