"""PostgreSQL: announce catalog changes on the ``webshop_catalog`` channel (LISTEN/NOTIFY)

Statement-level triggers call ``pg_notify('webshop_catalog', '')`` after every change to
``catalog_state`` (the catalog version) and after every insert, delete, truncate or stock or product
change of ``variants``. Each worker listens and drops its kept copies of the catalog version and stock
look-ups (``webshop/catalog/change_feed.py``). Nothing on SQLite, whose look-ups read the local file.

Revision ID: c4a7e2f19d35
Revises: 9b1e4d7c2a60
Create Date: 2026-12-09 08:00:00.000000
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "c4a7e2f19d35"
down_revision = "9b1e4d7c2a60"
branch_labels = None
depends_on = None

FUNCTION = """
CREATE FUNCTION webshop_notify_catalog() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('webshop_catalog', '');
    RETURN NULL;
END
$$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute(
        "CREATE TRIGGER catalog_state_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON catalog_state"
        " FOR EACH STATEMENT EXECUTE FUNCTION webshop_notify_catalog()"
    )
    op.execute(
        "CREATE TRIGGER variants_notify AFTER INSERT OR DELETE OR TRUNCATE OR UPDATE OF stock, product_id"
        " ON variants FOR EACH STATEMENT EXECUTE FUNCTION webshop_notify_catalog()"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS variants_notify ON variants")
    op.execute("DROP TRIGGER IF EXISTS catalog_state_notify ON catalog_state")
    op.execute("DROP FUNCTION IF EXISTS webshop_notify_catalog()")
