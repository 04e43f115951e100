"""Search index (FTS5 / tsvector + pg_trgm), product summary columns and the catalog version

Revision ID: 5e4d1c9a7b21
Revises: fb14554a6913
Create Date: 2026-12-03 09:00:00.000000
"""

import sqlalchemy as sa
from advanced_alchemy.types import DateTimeUTC
from alembic import op

sa.DateTimeUTC = DateTimeUTC

# revision identifiers, used by Alembic.
revision = "5e4d1c9a7b21"
down_revision = "fb14554a6913"
branch_labels = None
depends_on = None

FIELDS = ("name", "skus", "brand", "categories", "options", "description")
# The weighted tsvector the GIN index is built on. It must stay equal to
# webshop.catalog.search.PG_DOCUMENT (the queries use that expression; a change needs a new migration).
PG_DOCUMENT = " || ".join(
    f"setweight(to_tsvector('simple'::regconfig, {name}), '{weight}')"
    for name, weight in zip(FIELDS, ("A", "A", "B", "B", "C", "D"), strict=True)
)
COLUMNS = ", ".join(FIELDS)
NEW = ", ".join(f"new.{name}" for name in FIELDS)
OLD = ", ".join(f"old.{name}" for name in FIELDS)
SQLITE_OBJECTS = (
    # External-content FTS5 table: it stores only the index; the text stays in product_search.
    f"""CREATE VIRTUAL TABLE product_search_fts USING fts5(
        {COLUMNS}, content='product_search', content_rowid='product_id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3 4')""",
    # S608: the column lists are this file's constants, not input.
    f"""CREATE TRIGGER product_search_fts_insert AFTER INSERT ON product_search BEGIN
        INSERT INTO product_search_fts (rowid, {COLUMNS}) VALUES (new.product_id, {NEW});
    END""",  # noqa: S608
    f"""CREATE TRIGGER product_search_fts_delete AFTER DELETE ON product_search BEGIN
        INSERT INTO product_search_fts (product_search_fts, rowid, {COLUMNS}) VALUES ('delete', old.product_id, {OLD});
    END""",  # noqa: S608
    f"""CREATE TRIGGER product_search_fts_update AFTER UPDATE ON product_search BEGIN
        INSERT INTO product_search_fts (product_search_fts, rowid, {COLUMNS}) VALUES ('delete', old.product_id, {OLD});
        INSERT INTO product_search_fts (rowid, {COLUMNS}) VALUES (new.product_id, {NEW});
    END""",  # noqa: S608
)
PRODUCT_INDEXES = {
    "ix_products_active_name_id": ["is_active", "name", "id"],
    "ix_products_active_min_price_id": ["is_active", "min_price", "id"],
    "ix_products_active_max_price_id": ["is_active", "max_price", "id"],
    "ix_products_active_created_at_id": ["is_active", "created_at", "id"],
}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")

    # Plain ALTER TABLE (no batch copy of the table on SQLite): existing rows get the defaults, then
    # the summaries are computed below.
    op.add_column("products", sa.Column("min_price", sa.Integer(), server_default="0", nullable=False))
    op.add_column("products", sa.Column("max_price", sa.Integer(), server_default="0", nullable=False))
    op.add_column("products", sa.Column("in_stock", sa.Boolean(), server_default=sa.false(), nullable=False))
    for name, columns in PRODUCT_INDEXES.items():
        op.create_index(name, "products", columns, unique=False)

    op.create_table(
        "catalog_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_state")),
    )
    op.execute("INSERT INTO catalog_state (id, version) VALUES (1, 1)")

    op.create_table(
        "product_search",
        sa.Column(
            "product_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=False, nullable=False
        ),
        *(sa.Column(name, sa.Text(), nullable=False) for name in FIELDS),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_product_search_product_id_products"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_search")),
    )
    op.create_table(
        "search_terms",
        sa.Column("term", sa.String(length=64), nullable=False),
        sa.Column("word", sa.String(length=64), nullable=False),
        sa.Column("doc_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_search_terms")),
    )
    if postgres:
        op.execute(f"CREATE INDEX ix_product_search_document ON product_search USING gin (({PG_DOCUMENT}))")
        op.execute("CREATE INDEX ix_search_terms_term_trgm ON search_terms USING gin (term gin_trgm_ops)")
    else:
        for statement in SQLITE_OBJECTS:
            op.execute(statement)

    op.execute(
        """UPDATE products SET
            min_price = COALESCE((SELECT min(v.price) FROM variants v WHERE v.product_id = products.id), 0),
            max_price = COALESCE((SELECT max(v.price) FROM variants v WHERE v.product_id = products.id), 0),
            in_stock = EXISTS (SELECT 1 FROM variants v WHERE v.product_id = products.id AND v.stock > 0)"""
    )
    # The documents are built by the application's own code (normalising and stemming words).
    # Visibility as it was at this revision: products had no shop yet (Product.shop_active came with
    # the shops migration, a7c3e91f0d52).
    from webshop.catalog.search_index import rebuild_search_index
    from webshop.db.models import Product

    rebuild_search_index(op.get_bind(), visible=sa.and_(Product.is_active.is_(True), Product.deleted_at.is_(None)))


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("DROP INDEX IF EXISTS ix_search_terms_term_trgm")
        op.execute("DROP INDEX IF EXISTS ix_product_search_document")
    else:
        for trigger in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS product_search_fts_{trigger}")
        op.execute("DROP TABLE IF EXISTS product_search_fts")
    op.drop_table("search_terms")
    op.drop_table("product_search")
    op.drop_table("catalog_state")
    for name in PRODUCT_INDEXES:
        op.drop_index(name, table_name="products")
    op.drop_column("products", "in_stock")
    op.drop_column("products", "max_price")
    op.drop_column("products", "min_price")
