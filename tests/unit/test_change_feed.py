"""Which look-ups a worker may keep between the catalog's change notifications (webshop/catalog/change_feed.py)."""

from __future__ import annotations

import pytest

from webshop.catalog.browse import _STOCK_SQL, _VERSION_AND_STOCK_SQL
from webshop.catalog.change_feed import follows
from webshop.catalog.version import _VERSION_SQL


@pytest.mark.parametrize("sql", [_VERSION_SQL, _STOCK_SQL, _VERSION_AND_STOCK_SQL])
def test_the_catalog_look_ups_read_only_what_the_triggers_announce(sql):
    assert follows(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name FROM products WHERE id = ?",  # a product edit bumps the version, but the row is not announced
        "SELECT variants.id FROM variants JOIN cart_lines ON cart_lines.variant_id = variants.id",
        "SELECT 1",
    ],
)
def test_a_look_up_of_any_other_table_is_never_kept(sql):
    assert not follows(sql)
