"""Promotions and their uses, shipping zones and methods, tax rates by destination; variant weights;
orders keep their discounts, shipping tax, price mode and tax per rate

The default rules are seeded so an upgraded shop charges what it charged before: the tax rates of
``WEBSHOP_TAX_RATES`` (or its default) for every country (``*``), and a "Rest of the world" zone with
the two flat methods the shop had (standard 5.00, express 10.00, now in the shop's own currency).

Revision ID: 9b1e4d7c2a60
Revises: 5e2f0c9a41b7
Create Date: 2026-12-08 08:00:00.000000
"""

import os
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

# revision identifiers, used by Alembic.
revision = "9b1e4d7c2a60"
down_revision = "5e2f0c9a41b7"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
DEFAULT_TAX_RATES = "standard=20,reduced=10,zero=0"
TOTAL_BEFORE = "total = subtotal + shipping_total + tax_total"
TOTAL_AFTER = (
    "total = subtotal - discount_total + shipping_total + CASE WHEN prices_include_tax THEN 0 ELSE tax_total END"
)


def _audit() -> list[sa.Column]:
    return [
        sa.Column("id", ID, nullable=False),
        sa.Column("created_at", DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", DateTimeUTC(timezone=True), nullable=False),
    ]


def _seed_rates() -> list[tuple[str, int]]:
    """``WEBSHOP_TAX_RATES`` as ``[(category, basis points)]``; the default when unset or unreadable."""
    raw = os.environ.get("WEBSHOP_TAX_RATES", "").strip() or DEFAULT_TAX_RATES
    rates = []
    try:
        for part in raw.split(","):
            category, _, value = part.partition("=")
            rates.append((category.strip(), int(Decimal(value.strip()) * 100)))
    except ArithmeticError:
        return _seed_rates_default()
    return rates


def _seed_rates_default() -> list[tuple[str, int]]:
    return [
        (category, int(value) * 100) for category, _, value in (p.partition("=") for p in DEFAULT_TAX_RATES.split(","))
    ]


def upgrade() -> None:
    op.create_table(
        "promotions",
        *_audit(),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("starts_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("ends_at", DateTimeUTC(timezone=True), nullable=True),
        sa.Column("min_subtotal", sa.Integer(), nullable=False),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.Column("per_customer_limit", sa.Integer(), nullable=True),
        sa.Column("times_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("combinable", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("category_ids", sa.JSON(), nullable=False),
        sa.Column("product_ids", sa.JSON(), nullable=False),
        sa.Column("variant_ids", sa.JSON(), nullable=False),
        sa.CheckConstraint("times_used >= 0", name=op.f("ck_promotions_times_used_not_negative")),
        sa.CheckConstraint(
            "usage_limit IS NULL OR times_used <= usage_limit", name=op.f("ck_promotions_within_usage_limit")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotions")),
        sa.UniqueConstraint("code", name=op.f("uq_promotions_code")),
    )
    op.create_table(
        "promotion_usages",
        *_audit(),
        sa.Column("promotion_id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=True),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("released_at", DateTimeUTC(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotions.id"],
            name=op.f("fk_promotion_usages_promotion_id_promotions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_promotion_usages_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_promotion_usages_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_usages")),
        sa.UniqueConstraint("promotion_id", "order_id", name="uq_promotion_usages_promotion_order"),
    )
    op.create_index(op.f("ix_promotion_usages_order_id"), "promotion_usages", ["order_id"])
    op.create_index("ix_promotion_usages_promotion_user", "promotion_usages", ["promotion_id", "user_id"])
    op.create_index("ix_promotion_usages_promotion_email", "promotion_usages", ["promotion_id", "email"])
    zones = op.create_table(
        "shipping_zones",
        *_audit(),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("countries", sa.JSON(), nullable=False),
        sa.Column("rest_of_world", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_zones")),
    )
    methods = op.create_table(
        "shipping_methods",
        *_audit(),
        sa.Column("zone_id", ID, nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("bands", sa.JSON(), nullable=False),
        sa.Column("free_over", sa.Integer(), nullable=True),
        sa.Column("delivery_estimate", sa.String(length=120), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["zone_id"],
            ["shipping_zones.id"],
            name=op.f("fk_shipping_methods_zone_id_shipping_zones"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shipping_methods")),
        sa.UniqueConstraint("zone_id", "code", name="uq_shipping_methods_zone_code"),
    )
    op.create_index(op.f("ix_shipping_methods_zone_id"), "shipping_methods", ["zone_id"])
    rates = op.create_table(
        "tax_rates",
        *_audit(),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("region", sa.String(length=10), nullable=False),
        sa.Column("tax_category", sa.String(length=40), nullable=False),
        sa.Column("rate_bp", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.CheckConstraint("rate_bp >= 0 AND rate_bp <= 10000", name=op.f("ck_tax_rates_rate_in_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_rates")),
        sa.UniqueConstraint("country", "region", "tax_category", name="uq_tax_rates_country_region_category"),
    )

    with op.batch_alter_table("variants", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column("weight_grams", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("carts", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column("promotion_code", sa.String(length=40), nullable=True))
    with op.batch_alter_table("order_lines", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column("discount", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("net_amount", sa.Integer(), server_default="0", nullable=False))
    op.execute("UPDATE order_lines SET net_amount = line_total")
    with op.batch_alter_table("fulfilments", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column("shipping_tax", sa.Integer(), server_default="0", nullable=False))
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.add_column(sa.Column("discount_total", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("shipping_discount", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("shipping_tax", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("prices_include_tax", sa.Boolean(), server_default=sa.text("false"), nullable=False)
        )
        batch_op.add_column(sa.Column("tax_breakdown", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column("promotions", sa.JSON(), server_default=sa.text("'[]'"), nullable=False))
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        # The JSON columns were filled with [] above; new rows always name their values (the models' default).
        batch_op.alter_column("tax_breakdown", existing_type=sa.JSON(), server_default=None)
        batch_op.alter_column("promotions", existing_type=sa.JSON(), server_default=None)
        batch_op.drop_constraint(op.f("ck_orders_total_adds_up"), type_="check")
        batch_op.create_check_constraint(op.f("ck_orders_total_adds_up"), sa.text(TOTAL_AFTER))

    now = datetime.now(UTC)
    op.bulk_insert(
        rates,
        [
            {
                "created_at": now,
                "updated_at": now,
                "country": "*",
                "region": "",
                "tax_category": category,
                "rate_bp": rate,
                "name": "Tax",
            }
            for category, rate in _seed_rates()
        ],
    )
    op.bulk_insert(
        zones,
        [
            {
                "id": 1,
                "created_at": now,
                "updated_at": now,
                "name": "Rest of the world",
                "countries": [],
                "rest_of_world": True,
            }
        ],
    )
    op.bulk_insert(
        methods,
        [
            {
                "created_at": now,
                "updated_at": now,
                "zone_id": 1,
                "code": "standard",
                "name": "Standard shipping",
                "kind": "flat",
                "price": 500,
                "bands": [],
                "free_over": None,
                "delivery_estimate": "Delivered in 3–5 working days",
                "position": 0,
                "active": True,
            },
            {
                "created_at": now,
                "updated_at": now,
                "zone_id": 1,
                "code": "express",
                "name": "Express shipping",
                "kind": "flat",
                "price": 1000,
                "bands": [],
                "free_over": None,
                "delivery_estimate": "Delivered the next working day",
                "position": 1,
                "active": True,
            },
        ],
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('shipping_zones', 'id'), (SELECT max(id) FROM shipping_zones))"
        )


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_constraint(op.f("ck_orders_total_adds_up"), type_="check")
        for column in (
            "promotions",
            "tax_breakdown",
            "prices_include_tax",
            "shipping_tax",
            "shipping_discount",
            "discount_total",
        ):
            batch_op.drop_column(column)
        batch_op.create_check_constraint(op.f("ck_orders_total_adds_up"), sa.text(TOTAL_BEFORE))
    with op.batch_alter_table("fulfilments", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("shipping_tax")
    with op.batch_alter_table("order_lines", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("net_amount")
        batch_op.drop_column("discount")
    with op.batch_alter_table("carts", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("promotion_code")
    with op.batch_alter_table("variants", schema=None, reflect_kwargs={"resolve_fks": False}) as batch_op:
        batch_op.drop_column("weight_grams")
    op.drop_table("tax_rates")
    op.drop_index(op.f("ix_shipping_methods_zone_id"), table_name="shipping_methods")
    op.drop_table("shipping_methods")
    op.drop_table("shipping_zones")
    op.drop_index("ix_promotion_usages_promotion_email", table_name="promotion_usages")
    op.drop_index("ix_promotion_usages_promotion_user", table_name="promotion_usages")
    op.drop_index(op.f("ix_promotion_usages_order_id"), table_name="promotion_usages")
    op.drop_table("promotion_usages")
    op.drop_table("promotions")
