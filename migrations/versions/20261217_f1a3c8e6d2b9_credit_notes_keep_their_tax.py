"""Credit notes keep the tax they credit per rate

A credit note's tax per rate was worked out again each time its PDF was drawn, and an amount refund
after a line refund could credit more of a rate than the invoice had left of it. From this revision on,
``invoices.credited_tax`` keeps what a note credits when it is issued (``[{"rate_bp": ..., "tax": ...}]``,
``webshop.invoices.credits.tax_to_credit``). The notes issued before keep ``NULL`` and draw as they always
did, so no issued document changes.

Revision ID: f1a3c8e6d2b9
Revises: e4b9c2d7a1f3
Create Date: 2026-12-17 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f1a3c8e6d2b9"
down_revision = "e4b9c2d7a1f3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("credited_tax", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("credited_tax")
