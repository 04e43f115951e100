"""shops: sellers, their members, the shop of every product and order line, and fulfilments

Revision ID: a7c3e91f0d52
Revises: 5e4d1c9a7b21
Create Date: 2026-12-04 16:40:00.000000

Creates the default shop, named by ``WEBSHOP_SHOP_NAME``, and puts every existing product and order
line in it; every existing order gets one fulfilment (that shop's part of it).
Downgrading drops the shops again; products and order lines keep everything else they had.
"""

import os
from pathlib import Path

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

from webshop.catalog.slugs import slugify
from webshop.config.fields import read_setting

sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = "a7c3e91f0d52"
down_revision = "5e4d1c9a7b21"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NO_RELATED = {"resolve_fks": False}
"""A batch rebuild reflects only its own table, not those its foreign keys name (the users table's
expression index cannot be reflected on SQLite, which warns)."""


def upgrade() -> None:
    op.create_table(
        "shops",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("slug", sa.String(length=80), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("address_line1", sa.String(length=200), nullable=False),
        sa.Column("address_line2", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=120), nullable=False),
        sa.Column("postal_code", sa.String(length=20), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("contact_email", sa.String(length=320), nullable=False),
        sa.Column("contact_phone", sa.String(length=40), nullable=False),
        sa.Column("logo_key", sa.String(length=64), nullable=True),
        sa.Column("logo_ext", sa.String(length=8), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("deleted_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shops")),
        sa.UniqueConstraint("slug", name=op.f("uq_shops_slug")),
    )
    op.create_index(
        "uq_shops_default",
        "shops",
        ["is_default"],
        unique=True,
        sqlite_where=sa.text("is_default = 1"),
        postgresql_where=sa.text("is_default"),
    )
    op.create_table(
        "shop_members",
        sa.Column("id", ID, nullable=False),
        sa.Column("shop_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_shop_members_shop_id_shops"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_shop_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_members")),
    )
    op.create_index("uq_shop_members_shop_user", "shop_members", ["shop_id", "user_id"], unique=True)
    op.create_index(op.f("ix_shop_members_user_id"), "shop_members", ["user_id"], unique=False)

    name = read_setting("shop_name", os.environ, Path.cwd())
    shops = sa.table(
        "shops",
        *(sa.column(c) for c in ("name", "slug", "description", "address_line1", "address_line2", "city")),
        *(sa.column(c) for c in ("postal_code", "country", "contact_email", "contact_phone", "logo_ext")),
        sa.column("is_active", sa.Boolean()),
        sa.column("is_default", sa.Boolean()),
        sa.column("created_at", sa.DateTimeUTC(timezone=True)),
        sa.column("updated_at", sa.DateTimeUTC(timezone=True)),
    )
    blank = dict.fromkeys(
        ("description", "address_line1", "address_line2", "city", "postal_code", "country", "contact_email"), ""
    )
    now = sa.func.now()
    op.execute(
        shops.insert().values(
            name=name,
            slug=slugify(name)[:80] or "shop",
            **blank,
            contact_phone="",
            logo_ext="",
            is_active=True,
            is_default=True,
            created_at=now,
            updated_at=now,
        )
    )

    # Every product goes to the default shop; then the column is made NOT NULL with its foreign key
    # (on SQLite a batch rebuild of the table, see migrations/env.py).
    op.add_column("products", sa.Column("shop_id", ID, nullable=True))
    op.add_column("products", sa.Column("shop_active", sa.Boolean(), server_default=sa.true(), nullable=False))
    op.execute("UPDATE products SET shop_id = (SELECT id FROM shops WHERE is_default = true)")
    with op.batch_alter_table("products", schema=None, reflect_kwargs=NO_RELATED) as batch_op:
        batch_op.alter_column("shop_id", existing_type=ID, nullable=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_products_shop_id_shops"), "shops", ["shop_id"], ["id"], ondelete="RESTRICT"
        )
        batch_op.create_index(batch_op.f("ix_products_shop_id"), ["shop_id"], unique=False)

    op.add_column("order_lines", sa.Column("shop_id", ID, nullable=True))
    op.add_column(
        "order_lines", sa.Column("shop_name", sa.String(length=120), server_default=sa.text("''"), nullable=False)
    )
    with op.batch_alter_table("order_lines", schema=None, reflect_kwargs=NO_RELATED) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_order_lines_shop_id_shops"), "shops", ["shop_id"], ["id"], ondelete="SET NULL"
        )
        batch_op.create_index(batch_op.f("ix_order_lines_shop_id"), ["shop_id"], unique=False)

    op.create_table(
        "fulfilments",
        sa.Column("id", ID, nullable=False),
        sa.Column("order_id", ID, nullable=False),
        sa.Column("shop_id", ID, nullable=True),
        sa.Column("shop_name", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("shipping_amount", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(length=80), nullable=False),
        sa.Column("tracking_number", sa.String(length=100), nullable=False),
        sa.Column("shipped_at", sa.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTimeUTC(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name=op.f("fk_fulfilments_order_id_orders"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"], ["shops.id"], name=op.f("fk_fulfilments_shop_id_shops"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fulfilments")),
    )
    op.create_index("uq_fulfilments_order_shop", "fulfilments", ["order_id", "shop_id"], unique=True)
    op.create_index(op.f("ix_fulfilments_shop_id"), "fulfilments", ["shop_id"], unique=False)

    # Past orders were sold by the default shop: their lines say so, and each gets one fulfilment
    # (shipped if the order was), carrying the order's shipping.
    op.execute(
        "UPDATE order_lines SET shop_id = (SELECT id FROM shops WHERE is_default = true),"
        " shop_name = (SELECT name FROM shops WHERE is_default = true)"
    )
    op.execute(
        "INSERT INTO fulfilments (order_id, shop_id, shop_name, status, shipping_amount, carrier, tracking_number,"
        " shipped_at, created_at, updated_at)"
        " SELECT o.id, s.id, s.name,"
        " CASE WHEN o.status IN ('shipped', 'delivered') THEN 'shipped' ELSE 'pending' END,"
        " o.shipping_total, '', '',"
        " CASE WHEN o.status IN ('shipped', 'delivered') THEN o.updated_at END,"
        " o.created_at, o.updated_at"
        " FROM orders o CROSS JOIN shops s WHERE s.is_default = true"
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fulfilments_shop_id"), table_name="fulfilments")
    op.drop_index("uq_fulfilments_order_shop", table_name="fulfilments")
    op.drop_table("fulfilments")
    with op.batch_alter_table("order_lines", schema=None, reflect_kwargs=NO_RELATED) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_lines_shop_id"))
        batch_op.drop_constraint(batch_op.f("fk_order_lines_shop_id_shops"), type_="foreignkey")
        batch_op.drop_column("shop_name")
        batch_op.drop_column("shop_id")
    with op.batch_alter_table("products", schema=None, reflect_kwargs=NO_RELATED) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_shop_id"))
        batch_op.drop_constraint(batch_op.f("fk_products_shop_id_shops"), type_="foreignkey")
        batch_op.drop_column("shop_active")
        batch_op.drop_column("shop_id")
    op.drop_index(op.f("ix_shop_members_user_id"), table_name="shop_members")
    op.drop_index("uq_shop_members_shop_user", table_name="shop_members")
    op.drop_table("shop_members")
    op.drop_index("uq_shops_default", table_name="shops")
    op.drop_table("shops")
