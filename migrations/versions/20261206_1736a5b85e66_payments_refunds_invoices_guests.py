"""Payments as intents, refunds, invoices, guest orders and the test provider's store

Revision ID: 1736a5b85e66
Revises: c41d8e2b7a90
Create Date: 2026-12-06 08:00:00.000000
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = "1736a5b85e66"
down_revision = "c41d8e2b7a90"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoice_counters")),
    )
    with op.batch_alter_table("invoice_counters", schema=None) as batch_op:
        batch_op.create_index("uq_invoice_counters_kind_year", ["kind", "year"], unique=True)

    op.create_table(
        "payment_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_events")),
    )
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.create_index("uq_payment_events_provider_event", ["provider", "event_id"], unique=True)

    op.create_table(
        "test_payment_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("event_type", sa.String(length=60), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_payment_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_test_payment_events_event_id")),
    )
    with op.batch_alter_table("test_payment_events", schema=None) as batch_op:
        batch_op.create_index("ix_test_payment_events_status_next", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "test_payment_intents",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("order_number", sa.String(length=20), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("return_url", sa.String(length=500), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("failure_reason", sa.String(length=300), nullable=False),
        sa.Column("amount_refunded", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("settles_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_payment_intents")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_test_payment_intents_idempotency_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_test_payment_intents_reference")),
    )
    op.create_table(
        "test_payment_refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("intent_reference", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_payment_refunds")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_test_payment_refunds_idempotency_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_test_payment_refunds_reference")),
    )
    with op.batch_alter_table("test_payment_refunds", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_test_payment_refunds_intent_reference"), ["intent_reference"], unique=False
        )

    op.create_table(
        "refunds",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("restock", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("failure_reason", sa.String(length=300), nullable=False),
        sa.Column("actor_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("refunded_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("amount > 0", name=op.f("ck_refunds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_refunds_actor_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_refunds_order_id_orders"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_refunds_idempotency_key")),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_order_id"), ["order_id"], unique=False)

    op.create_table(
        "invoices",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("refund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=30), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("issued_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_invoices_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_invoices_refund_id_refunds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("number", name=op.f("uq_invoices_number")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_invoices_refund_id")),
    )
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invoices_issued_at"), ["issued_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_invoices_order_id"), ["order_id"], unique=False)
        batch_op.create_index("uq_invoices_kind_year_sequence", ["kind", "year", "sequence"], unique=True)

    op.create_table(
        "refund_lines",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("refund_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("order_line_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_refund_lines_quantity_positive")),
        sa.ForeignKeyConstraint(
            ["order_line_id"],
            ["order_lines.id"],
            name=op.f("fk_refund_lines_order_line_id_order_lines"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_refund_lines_refund_id_refunds"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refund_lines")),
    )
    with op.batch_alter_table("refund_lines", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refund_lines_order_line_id"), ["order_line_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_refund_lines_refund_id"), ["refund_id"], unique=False)

    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=320), server_default="", nullable=False))
        batch_op.add_column(
            sa.Column("payment_status", sa.String(length=24), server_default="succeeded", nullable=False)
        )
        batch_op.add_column(sa.Column("payment_url", sa.String(length=500), server_default="", nullable=False))
        batch_op.add_column(sa.Column("payment_expires_at", sa.DateTimeUTC(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("payment_failure", sa.String(length=300), server_default="", nullable=False))
        batch_op.add_column(sa.Column("refunded_total", sa.Integer(), server_default="0", nullable=False))
        batch_op.alter_column("user_id", nullable=True)
        batch_op.create_index("ix_orders_email", ["email"], unique=False)
        batch_op.create_index("ix_orders_status_payment_expires", ["status", "payment_expires_at"], unique=False)

    # Orders placed before: a pending one was interrupted mid-charge (it expires at once and the
    # expirer asks the provider first); a cancelled one never charged has no payment.
    op.execute(
        "UPDATE orders SET payment_status = 'requires_payment', payment_expires_at = updated_at WHERE status = 'pending'"
    )
    op.execute("UPDATE orders SET payment_status = 'cancelled' WHERE status = 'cancelled' AND payment_reference = ''")


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_index("ix_orders_status_payment_expires")
        batch_op.drop_index("ix_orders_email")
        batch_op.alter_column("user_id", nullable=False)
        batch_op.drop_column("refunded_total")
        batch_op.drop_column("payment_failure")
        batch_op.drop_column("payment_expires_at")
        batch_op.drop_column("payment_url")
        batch_op.drop_column("payment_status")
        batch_op.drop_column("email")

    with op.batch_alter_table("refund_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refund_lines_refund_id"))
        batch_op.drop_index(batch_op.f("ix_refund_lines_order_line_id"))

    op.drop_table("refund_lines")
    with op.batch_alter_table("invoices", schema=None) as batch_op:
        batch_op.drop_index("uq_invoices_kind_year_sequence")
        batch_op.drop_index(batch_op.f("ix_invoices_order_id"))
        batch_op.drop_index(batch_op.f("ix_invoices_issued_at"))

    op.drop_table("invoices")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_refunds_order_id"))

    op.drop_table("refunds")
    with op.batch_alter_table("test_payment_refunds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_test_payment_refunds_intent_reference"))

    op.drop_table("test_payment_refunds")
    op.drop_table("test_payment_intents")
    with op.batch_alter_table("test_payment_events", schema=None) as batch_op:
        batch_op.drop_index("ix_test_payment_events_status_next")

    op.drop_table("test_payment_events")
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_index("uq_payment_events_provider_event")

    op.drop_table("payment_events")
    with op.batch_alter_table("invoice_counters", schema=None) as batch_op:
        batch_op.drop_index("uq_invoice_counters_kind_year")

    op.drop_table("invoice_counters")
