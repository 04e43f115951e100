"""Orders remember a guest's cart, so a failed or cancelled payment puts the lines back there

Revision ID: 5e2f0c9a41b7
Revises: 1736a5b85e66
Create Date: 2026-12-07 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5e2f0c9a41b7"
down_revision = "1736a5b85e66"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column("guest_cart_token", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("guest_cart_token")
