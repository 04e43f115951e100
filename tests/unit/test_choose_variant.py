"""The variant picker's rule (``webshop.catalog.variants.choose_variant``): which variant a shopper's
chosen options show, with and without the SKU of the variant shown before the change (``from``)."""

from __future__ import annotations

import pytest

from webshop.catalog.variants import choose_variant
from webshop.db.models import Product, Variant

GROUPS = ["screen size", "memory"]


def laptop(*variants: tuple[str, str, str, int]) -> Product:
    """A transient product with ``(sku, screen, memory, stock)`` variants in list order."""
    return Product(
        name="Laptop",
        slug="laptop",
        option_groups=GROUPS,
        variants=[
            Variant(sku=sku, option_values=[screen, memory], price=100, stock=stock)
            for sku, screen, memory, stock in variants
        ],
    )


LAPTOP = laptop(
    ("L13-8", "13 inch", "8GB", 5),
    ("L13-16", "13 inch", "16GB", 5),
    ("L15-8", "15 inch", "8GB", 5),
    ("L15-16", "15 inch", "16GB", 5),
    ("L17-32", "17 inch", "32GB", 5),  # added later: 17 inch only with 32GB
)


def chosen(screen: str, memory: str) -> dict[str, str]:
    return {"screen size": screen, "memory": memory}


def sku(product: Product, options: dict[str, str], *, shown: str | None = None, by_sku: str | None = None) -> str:
    variant = choose_variant(product, options, by_sku, shown=shown)
    assert variant is not None
    return variant.sku


@pytest.mark.parametrize(
    ("options", "shown", "expected"),
    [
        (chosen("17 inch", "8GB"), "L13-8", "L17-32"),  # screen changed: 17 inch exists only with 32GB
        (chosen("13 inch", "32GB"), "L13-8", "L17-32"),  # memory changed: 32GB exists only with 17 inch
        (chosen("15 inch", "32GB"), "L15-16", "L17-32"),
        (chosen("13 inch", "32GB"), "L17-32", "L13-8"),  # back from 17 inch: keep 13 inch, first in the list
        (chosen("13 inch", "16GB"), "L17-32", "L13-16"),  # an exact match always wins
        (chosen("15 inch", "8GB"), "L13-8", "L15-8"),
    ],
)
def test_a_variant_keeps_the_option_just_changed(options, shown, expected):
    assert sku(LAPTOP, options, shown=shown) == expected


def test_without_the_shown_variant_the_most_matches_then_stock_then_list_order_win():
    # Old links (no ``from``), and a ``from`` that is not one of this product's SKUs: as before.
    assert sku(LAPTOP, chosen("17 inch", "8GB")) == "L13-8"
    assert sku(LAPTOP, chosen("17 inch", "8GB"), shown="NOT-HERE") == "L13-8"
    assert sku(LAPTOP, chosen("13 inch", "32GB")) == "L13-8"
    assert sku(LAPTOP, chosen("17 inch", "32GB")) == "L17-32"
    assert sku(LAPTOP, {"screen size": "15 inch"}) == "L15-8"
    sold_out = laptop(("A", "13 inch", "8GB", 0), ("B", "17 inch", "32GB", 2))
    assert sku(sold_out, chosen("13 inch", "32GB")) == "B"  # one match each: the one in stock
    assert sku(sold_out, {}) == "B"  # nothing chosen: the first in stock


def test_changed_options_tie_on_other_matches_then_stock_then_list_order():
    # Both options changed at once (a form sent without JavaScript), no exact match: every variant
    # keeping one of them matches once; the first in stock wins.
    product = laptop(
        ("A", "13 inch", "8GB", 5),
        ("B", "13 inch", "16GB", 0),
        ("C", "15 inch", "16GB", 3),
        ("D", "17 inch", "32GB", 1),
    )
    assert sku(product, chosen("17 inch", "16GB"), shown="A") == "C"


def test_a_sku_picks_its_variant_outright():
    assert sku(LAPTOP, chosen("13 inch", "8GB"), shown="L13-8", by_sku="L15-16") == "L15-16"
    assert sku(LAPTOP, chosen("13 inch", "16GB"), by_sku="NOT-HERE") == "L13-16"


def test_a_product_without_variants_has_none():
    assert choose_variant(Product(name="Empty", slug="empty", option_groups=[]), {}, shown="X") is None
