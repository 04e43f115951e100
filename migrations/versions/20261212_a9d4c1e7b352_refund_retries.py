"""Pending refunds are asked for again by the background worker: attempts and the next try's time

``refunds.retry_attempts``/``next_retry_at`` (a refund of lines or an amount) and
``orders.refund_retry_attempts``/``refund_next_retry_at`` (a cancelled or refunded order's whole refund)
pace ``webshop.orders.refund_retries``; a partial index on each finds the pending ones without reading
every order. Refunds pending before this were left to the admins, who may have made them another way
(the provider's dashboard): the worker must not make them again, so they start past the last attempt
(``PAST_LAST``, the setting's maximum); an admin's Retry hands one to the worker.

Revision ID: a9d4c1e7b352
Revises: f3a8d6b20c14
Create Date: 2026-12-12 08:00:00.000000
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

# revision identifiers, used by Alembic.
revision = "a9d4c1e7b352"
down_revision = "f3a8d6b20c14"
branch_labels = None
depends_on = None

OWED = sa.text("refund_amount > 0 AND refunded_at IS NULL")
PENDING = sa.text("status = 'pending'")
PAST_LAST = 1000
"""``WEBSHOP_REFUND_MAX_ATTEMPTS``'s largest value: a refund with this many attempts is never taken."""


def upgrade() -> None:
    op.add_column("refunds", sa.Column("retry_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("refunds", sa.Column("next_retry_at", DateTimeUTC(timezone=True), nullable=True))
    op.add_column("orders", sa.Column("refund_retry_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("orders", sa.Column("refund_next_retry_at", DateTimeUTC(timezone=True), nullable=True))
    op.create_index(
        "ix_refunds_pending_retry", "refunds", ["next_retry_at"], postgresql_where=PENDING, sqlite_where=PENDING
    )
    refunds = sa.table("refunds", sa.column("status"), sa.column("retry_attempts"))
    op.execute(refunds.update().where(refunds.c.status == "pending").values(retry_attempts=PAST_LAST))
    orders = sa.table(
        "orders", sa.column("refund_amount"), sa.column("refunded_at"), sa.column("refund_retry_attempts")
    )
    owed = sa.and_(orders.c.refund_amount > 0, orders.c.refunded_at.is_(None))
    op.execute(orders.update().where(owed).values(refund_retry_attempts=PAST_LAST))
    op.create_index(
        "ix_orders_refund_owed_retry", "orders", ["refund_next_retry_at"], postgresql_where=OWED, sqlite_where=OWED
    )


def downgrade() -> None:
    op.drop_index("ix_orders_refund_owed_retry", table_name="orders")
    op.drop_index("ix_refunds_pending_retry", table_name="refunds")
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("refund_next_retry_at")
        batch_op.drop_column("refund_retry_attempts")
    with op.batch_alter_table("refunds", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("next_retry_at")
        batch_op.drop_column("retry_attempts")
