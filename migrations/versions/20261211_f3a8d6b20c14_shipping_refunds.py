"""Refunds can be of a parcel's shipping: ``refunds.is_shipping``

A shop's part closed unsent because every item of it was refunded gives back its parcel's shipping by a
refund of its own (``webshop/orders/refunds.py``); the flag tells its credit note to credit the
shipping's tax, and tells it apart from an amount an admin refunds by hand. Existing refunds are not.

Revision ID: f3a8d6b20c14
Revises: e7b2c9d4f1a3
Create Date: 2026-12-11 08:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f3a8d6b20c14"
down_revision = "e7b2c9d4f1a3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("refunds", sa.Column("is_shipping", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("refunds", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("is_shipping")
