"""The catalog's limits live in one place (webshop.catalog.limits) and every layer agrees with it:
the columns hold exactly that much, the API's and forms' schemas accept exactly that much."""

from __future__ import annotations

import msgspec
import pytest

from webshop.catalog import limits, schemas
from webshop.db.models import Category, Product, ProductFacet, ProductImage, Variant

COLUMNS = [
    (Product.name, limits.PRODUCT_NAME),
    (Product.slug, limits.PRODUCT_SLUG),
    (Category.name, limits.CATEGORY_NAME),
    (Category.slug, limits.CATEGORY_SLUG),
    (ProductFacet.facet, limits.FACET_NAME),
    (ProductFacet.value, limits.FACET_VALUE),
    (ProductImage.alt, limits.IMAGE_ALT),
    (ProductImage.source_name, limits.IMAGE_SOURCE_NAME),
    (Variant.sku, limits.SKU),
    (Variant.tax_category, limits.TAX_CATEGORY),
    (Variant.currency, limits.CURRENCY),
]


@pytest.mark.parametrize(("column", "limit"), COLUMNS, ids=lambda c: getattr(c, "key", str(c)))
def test_columns_hold_the_limit(column, limit):
    assert column.property.columns[0].type.length == limit


SCHEMA_TYPES = [
    (schemas.ProductName, limits.PRODUCT_NAME, "a"),
    (schemas.ProductSlug, limits.PRODUCT_SLUG, "a"),
    (schemas.CategoryName, limits.CATEGORY_NAME, "a"),
    (schemas.CategorySlug, limits.CATEGORY_SLUG, "a"),
    (schemas.FacetName, limits.FACET_NAME, "a"),
    (schemas.FacetValueText, limits.FACET_VALUE, "a"),
    (schemas.OptionGroup, limits.OPTION_GROUP, "a"),
    (schemas.OptionValue, limits.OPTION_VALUE, "a"),
    (schemas.Sku, limits.SKU, "A"),
]


@pytest.mark.parametrize(("shape", "limit", "letter"), SCHEMA_TYPES, ids=[str(i) for i in range(len(SCHEMA_TYPES))])
def test_schemas_take_the_limit_and_no_more(shape, limit, letter):
    assert msgspec.convert(letter * limit, shape) == letter * limit
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(letter * (limit + 1), shape)


def test_option_groups_at_most_the_limit():
    assert len(msgspec.convert(["a"] * limits.OPTION_GROUPS, schemas.OptionGroups)) == limits.OPTION_GROUPS
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(["a"] * (limits.OPTION_GROUPS + 1), schemas.OptionGroups)


def test_the_town_line_follows_the_country_s_order():
    from webshop.db.models.postal import locality

    assert locality("73301", "Austin", "US") == "Austin 73301"
    assert locality("N1 9GU", "London", "gb") == "London N1 9GU"
    assert locality("75005", "Paris", "FR") == "75005 Paris"
    assert locality("", "Paris", "FR") == "Paris"
