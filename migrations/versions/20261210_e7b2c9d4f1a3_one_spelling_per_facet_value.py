"""One spelling per facet value: "Blue" and "blue" become one colour

Before this, each write stored a facet value as typed, so one value could be stored in two spellings
that differ only in case and the shopper's filter list showed each apart, with half the products.
Writes now keep the catalog's spelling (``webshop/catalog/facet_spelling.py``); this gives the values
already stored one spelling each, chosen as the writes choose it: the one most products use, then the
first in code-point order. A product that had two spellings of a value keeps one row. The catalog
version goes up, so cached facet counts are read again.

Downgrade leaves the values as they are: the spellings merged are not kept.

Revision ID: e7b2c9d4f1a3
Revises: c4a7e2f19d35
Create Date: 2026-12-10 08:00:00.000000
"""

import unicodedata

from alembic import op
from sqlalchemy import text

# revision identifiers, used by Alembic.
revision = "e7b2c9d4f1a3"
down_revision = "c4a7e2f19d35"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(text("SELECT facet, value, COUNT(*) FROM product_facets GROUP BY facet, value")).all()
    spellings: dict[tuple[str, str], list[tuple[int, str]]] = {}
    for facet, value, uses in rows:
        # webshop.catalog.facet_spelling.facet_value_key, as it is at this revision.
        key = unicodedata.normalize("NFC", value).casefold()
        spellings.setdefault((facet, key), []).append((-uses, value))
    merged = False
    for (facet, _key), found in spellings.items():
        if len(found) < 2:
            continue
        keep = min(found)[1]
        for _uses, other in sorted(found):
            if other == keep:
                continue
            names = {"facet": facet, "keep": keep, "other": other}
            # A product with both spellings keeps the one row (the unique index is per product).
            bind.execute(
                text(
                    "DELETE FROM product_facets WHERE facet = :facet AND value = :other AND product_id IN"
                    " (SELECT product_id FROM product_facets WHERE facet = :facet AND value = :keep)"
                ),
                names,
            )
            bind.execute(
                text(
                    "UPDATE product_facets SET value = :keep, updated_at = CURRENT_TIMESTAMP"
                    " WHERE facet = :facet AND value = :other"
                ),
                names,
            )
            merged = True
    if merged:
        bind.execute(text("UPDATE catalog_state SET version = version + 1"))


def downgrade() -> None:
    pass
