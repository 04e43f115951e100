"""parse_catalog: the CSV format, its padding and quirks, and errors reported with their line numbers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED_CATALOG
from webshop.catalog.csv.parse import COLUMNS, ParsedCatalog, RowError, parse_catalog
from webshop.catalog.slugs import slugify

HEADER = ",".join(COLUMNS)
EXTRAS_HEADER = HEADER + ",weightGrams,lowStockThreshold"
"""With the optional variant columns the export writes (``VARIANT_EXTRA_COLUMNS``)."""


def _row(
    name: str = "",
    slug: str = "",
    description: str = "",
    assets: str = "",
    facets: str = "",
    option_groups: str = "",
    option_values: str = "",
    sku: str = "",
    price: str = "",
    tax: str = "standard",
    stock: str = "10",
    variant_facets: str = "",
) -> str:
    cells = [name, slug, description, assets, facets, option_groups, option_values, sku, price, tax, stock]
    cells += ["", "", variant_facets]
    return ",".join(f'"{cell}"' if ("," in cell or "\n" in cell) else cell for cell in cells)


def _parse(tmp_path: Path, *lines: str, header: str = HEADER) -> ParsedCatalog:
    path = tmp_path / "products.csv"
    path.write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    return parse_catalog(path)


def test_product_with_variants_and_facets(tmp_path: Path) -> None:
    parsed = _parse(
        tmp_path,
        _row(
            "Laptop",
            "laptop",
            "Fast, light.",
            "a.jpg|b.jpg",
            "category:Electronics|category:Computers|Brand: Apple",
            "screen size|RAM",
            "13 inch|8GB",
            "L1",
            "1299.00",
        ),
        _row(option_values="15 inch|16GB", sku="L2", price="1399.5", stock="0"),
    )
    assert parsed.errors == []
    [product] = parsed.products
    assert (product.line, product.name, product.slug, product.description) == (2, "Laptop", "laptop", "Fast, light.")
    assert product.assets == ["a.jpg", "b.jpg"]
    assert product.facets == [("category", "Electronics"), ("category", "Computers"), ("brand", "Apple")]
    assert product.categories == ["Electronics", "Computers"]
    assert product.option_groups == ["screen size", "RAM"]
    assert [(v.line, v.sku, v.price, v.stock, v.option_values) for v in product.variants] == [
        (2, "L1", 129900, 10, ["13 inch", "8GB"]),
        (3, "L2", 139950, 0, ["15 inch", "16GB"]),
    ]
    assert parsed.category_paths == [("Electronics",), ("Electronics", "Computers")]


def test_cells_and_header_names_are_stripped(tmp_path: Path) -> None:
    header = ",".join(f"{name}   " for name in COLUMNS)
    line = (
        'Chair    ,chair   ,"Sturdy, light"    ,c.jpg  ,category:Home   ,"color"  ,"red"    ,'
        "SKU-1   , 49.99 ,standard ,  7  ,   ,   ,   "
    )
    parsed = _parse(tmp_path, line, header=header)
    assert parsed.errors == []
    [product] = parsed.products
    assert (product.name, product.slug, product.description, product.assets) == (
        "Chair",
        "chair",
        "Sturdy, light",
        ["c.jpg"],
    )
    [variant] = product.variants
    assert (variant.sku, variant.price, variant.stock, variant.option_values) == ("SKU-1", 4999, 7, ["red"])


def test_repeated_sku_within_a_product_is_suffixed_on_every_occurrence(tmp_path: Path) -> None:
    parsed = _parse(
        tmp_path,
        _row(
            "Cafe Chair",
            "cafe-chair",
            option_groups="color",
            option_values="mustard",
            sku="404.038.96",
            price="100.00",
            variant_facets="color:yellow",
        ),
        _row(option_values="mint", sku="404.038.96", price="100.00", variant_facets="color:green"),
        _row(option_values="pearl", sku="404.038.96", price="100.00", variant_facets="color:white"),
    )
    assert parsed.errors == []
    [product] = parsed.products
    assert [v.sku for v in product.variants] == ["404.038.96-mustard", "404.038.96-mint", "404.038.96-pearl"]
    # variant facets are merged into the product's, once each
    assert product.facets == [("color", "yellow"), ("color", "green"), ("color", "white")]


def test_sku_repeated_across_products_is_an_error_on_the_later_row(tmp_path: Path) -> None:
    parsed = _parse(
        tmp_path,
        _row("One", "one", sku="S1", price="1.00"),
        _row("Two", "two", option_groups="size", option_values="S", sku="S2", price="1.00"),
        _row(option_values="M", sku="S1", price="1.00"),
        _row("Three", "three", sku="S2", price="1.00"),
    )
    assert [p.slug for p in parsed.products] == ["one", "two"]
    assert [v.sku for v in parsed.products[1].variants] == ["S2"]
    assert parsed.errors == [
        RowError(4, "sku 'S1' is already used on line 2"),
        RowError(5, "sku 'S2' is already used on line 3"),
    ]


def test_repeated_option_values_within_a_product_are_an_error_on_the_later_row(tmp_path: Path) -> None:
    """The admin's rule (``variant_rules``): no two variants with the same option values, ignoring case."""
    parsed = _parse(
        tmp_path,
        _row("Shirt", "shirt", option_groups="size|colour", option_values="M|Red", sku="S1", price="9.00"),
        _row(option_values="L|Red", sku="S2", price="9.00"),
        _row(option_values="m|red", sku="S3", price="9.00"),
    )
    assert [v.sku for v in parsed.products[0].variants] == ["S1", "S2"]
    assert parsed.errors == [RowError(4, "optionValues 'm | red' repeat those of line 2")]


def test_an_exactly_repeated_row_is_an_error_not_a_renamed_sku(tmp_path: Path) -> None:
    parsed = _parse(
        tmp_path,
        _row("Cup", "cup", option_groups="colour", option_values="red", sku="C1", price="3.00"),
        _row(option_values="red", sku="C1", price="3.00"),
    )
    assert [v.sku for v in parsed.products[0].variants] == ["C1"]
    assert parsed.notices == []
    assert parsed.errors == [RowError(3, "optionValues 'red' repeat those of line 2")]


def test_nikkon_is_corrected_to_nikon(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, _row("Lens", "lens", facets="brand:Nikkon|brand:Nikon", sku="N1", price="5.00"))
    assert parsed.products[0].facets == [("brand", "Nikon")]


def test_variant_row_before_any_product_is_an_error(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, _row(sku="X1", price="1.00"), _row("Lamp", "lamp", sku="L1", price="1.00"))
    assert parsed.errors == [RowError(2, "variant row before any product row (its name column is empty)")]
    assert [p.slug for p in parsed.products] == ["lamp"]


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (_row("A", "", sku="A1", price="1.00"), "slug is missing"),
        (_row("A", "Bad Slug", sku="A1", price="1.00"), "slug 'Bad Slug' must be lowercase"),
        (_row("A", "a", price="1.00"), "sku is missing"),
        (_row("A", "a", sku="A1", price="abc"), "price 'abc' is not an amount"),
        (_row("A", "a", sku="A1", price="-1.00"), "price '-1.00' is not an amount"),
        (_row("A", "a", sku="A1", price="1.001"), "price '1.001' is not an amount"),
        (_row("A", "a", sku="A1", price=""), "price is missing"),
        (_row("A", "a", sku="A1", price="1.00", stock="-3"), "stockOnHand '-3' is not a whole number"),
        (_row("A", "a", sku="A1", price="1.00", stock="2.5"), "stockOnHand '2.5' is not a whole number"),
        (
            _row("A", "a", option_groups="size|color", option_values="M", sku="A1", price="1.00"),
            "optionValues has 1 value(s) but optionGroups names 2",
        ),
        (_row("A", "a", facets="brand", sku="A1", price="1.00"), "facets: 'brand' is not facet:value"),
        (_row("A", "a", assets="../secret.jpg", sku="A1", price="1.00"), "must be a plain file name"),
        (_row("A", "a", sku="A1", price="1.00") + ",extra", "expected 14 columns, found 15"),
        (_row("", "a", sku="A1", price="1.00"), "name is missing"),
        (_row("\u202eA", "a", sku="A1", price="1.00"), "the row holds text direction controls"),  # review
        (_row("A\x1b[31m", "a", sku="A1", price="1.00"), "the row holds control characters"),
        (_row("A", "a", option_groups="Size|size", option_values="S|M", sku="A1", price="1.00"), "repeats a name"),
        (
            _row("A", "a", option_groups="a|b|c|d|e|f", option_values="1|2|3|4|5|6", sku="A1", price="1.00"),
            "optionGroups names more than 5 groups",
        ),
        (
            _row("A", "a", option_groups="size", option_values="x" * 121, sku="A1", price="1.00"),
            "optionValues: a value is longer than 120 characters",
        ),
    ],
)
def test_bad_product_row_is_reported_and_skipped_with_its_variants(tmp_path: Path, row: str, reason: str) -> None:
    parsed = _parse(
        tmp_path,
        _row("Good", "good", sku="G1", price="1.00"),
        row,
        _row(sku="A2", price="2.00"),  # a variant of the bad product: skipped, not reported again
        _row("Fine", "fine", sku="F1", price="1.00"),
    )
    assert [p.slug for p in parsed.products] == ["good", "fine"]
    assert [e.line for e in parsed.errors] == [3]
    assert reason in parsed.errors[0].reason


def test_bad_variant_row_is_skipped_and_product_keeps_the_others(tmp_path: Path) -> None:
    parsed = _parse(
        tmp_path,
        _row("Shoe", "shoe", option_groups="size", option_values="40", sku="S40", price="50.00"),
        _row(option_values="42", sku="S42", price="fifty"),
        _row(option_values="44|wide", sku="S44", price="50.00"),
        _row(option_values="46", sku="S46", price="50.00"),
    )
    [product] = parsed.products
    assert [v.sku for v in product.variants] == ["S40", "S46"]
    assert [e.line for e in parsed.errors] == [3, 4]
    assert "optionValues has 2 value(s) but optionGroups names 1" in parsed.errors[1].reason


def test_every_problem_of_a_row_is_reported_in_one_error(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, _row("A", "", sku="", price="x"))
    [error] = parsed.errors
    assert error.line == 2
    assert "slug is missing" in error.reason
    assert "sku is missing" in error.reason
    assert "price 'x'" in error.reason


def test_line_numbers_count_physical_lines_of_multiline_cells(tmp_path: Path) -> None:
    parsed = _parse(
        tmp_path,
        _row("Desk", "desk", description="Two\nlines, and more", sku="D1", price="1.00"),
        _row("Lamp", "lamp", sku="L1", price="oops"),
    )
    assert parsed.products[0].description == "Two\nlines, and more"
    assert parsed.errors == [RowError(4, "price 'oops' is not an amount of 0 or more, such as 12.99")]


def test_duplicate_slug_is_an_error_on_the_later_product(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, _row("A", "a", sku="A1", price="1.00"), _row("B", "a", sku="B1", price="1.00"))
    assert [p.name for p in parsed.products] == ["A"]
    assert parsed.errors == [RowError(3, "slug 'a' is already used on line 2")]


def test_missing_header_columns(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, "x,y", header="name,slug,description")
    assert parsed.products == []
    assert parsed.errors[0].line == 1
    assert "missing column(s): assets" in parsed.errors[0].reason


def test_blank_lines_are_ignored(tmp_path: Path) -> None:
    parsed = _parse(tmp_path, "", _row("A", "a", sku="A1", price="1.00"), ",,,,,,,,,,,,,", "")
    assert parsed.errors == []
    assert [p.line for p in parsed.products] == [3]


def test_slugify() -> None:
    assert slugify("Home & Garden") == "home-garden"
    assert slugify("  Café Crème ") == "cafe-creme"
    assert slugify("Sports & Outdoor") == "sports-outdoor"


@pytest.mark.usefixtures("shared_catalog")
def test_real_demo_catalog() -> None:
    parsed = parse_catalog(SHARED_CATALOG / "products.csv")
    assert parsed.errors == []
    assert len(parsed.products) == 54
    skus = [variant.sku for product in parsed.products for variant in product.variants]
    assert len(skus) == 88
    assert len(set(skus)) == 88
    assert len(parsed.category_paths) == 9
    assert len([path for path in parsed.category_paths if len(path) == 1]) == 3
    assert all(len(product.categories) == 2 for product in parsed.products)
    brands = {value for product in parsed.products for facet, value in product.facets if facet == "brand"}
    assert "Nikon" in brands
    assert "Nikkon" not in brands
    chair = next(product for product in parsed.products if product.slug == "modern-cafe-chair")
    assert [variant.sku for variant in chair.variants] == [
        "404.038.96-mustard",
        "404.038.96-mint",
        "404.038.96-pearl",
    ]
    for product in parsed.products:
        assert all((SHARED_CATALOG / "images" / asset).is_file() for asset in product.assets)


def test_numbers_out_of_range_are_named_as_such_and_nothing_crashes(tmp_path: Path) -> None:
    huge = "9" * 5000  # more digits than int() reads by default (Python's 4,300-digit limit)
    parsed = _parse(
        tmp_path,
        _row("A", "a", sku="A1", price="99999999999"),
        _row("B", "b", sku="B1", price="1.00", stock="2147483648"),
        _row("C", "c", sku="C1", price="1.00", stock=huge),
        _row("D", "d", sku="D1", price="1e3"),
        _row("E", "e", sku="E1", price="1.00", stock="２"),
        _row("F", "f", sku="F1", price="1.00", stock="00000000005"),  # leading zeros: five
    )
    assert [(error.line, error.reason) for error in parsed.errors] == [
        (2, "price '99999999999' is more than $21,474,836.47"),
        (3, "stockOnHand '2147483648' is more than 2,147,483,647"),
        (4, f"stockOnHand '{'9' * 39}…' is more than 2,147,483,647"),
        (5, "price '1e3' is not an amount of 0 or more, such as 12.99"),
        (6, "stockOnHand '２' is not a whole number of 0 or more"),
    ]


def test_weight_and_low_stock_threshold_columns_are_optional_whole_numbers(tmp_path: Path) -> None:
    """``weightGrams`` and ``lowStockThreshold`` (the export writes them): an empty cell gives nothing, so
    an existing variant keeps its own; a bad cell is its row's error, named by its column."""
    parsed = _parse(
        tmp_path,
        _row("A", "a", sku="A1", price="1.00") + ",1200,3",
        _row("B", "b", sku="B1", price="1.00") + ",,",
        _row("C", "c", sku="C1", price="1.00") + ",1.5,",
        _row("D", "d", sku="D1", price="1.00") + ",,-1",
        header=EXTRAS_HEADER,
    )
    assert [(error.line, error.reason) for error in parsed.errors] == [
        (4, "weightGrams '1.5' is not a whole number of 0 or more"),
        (5, "lowStockThreshold '-1' is not a whole number of 0 or more"),
    ]
    a, b = (product.variants[0] for product in parsed.products)
    assert (a.weight_grams, a.low_stock_threshold) == (1200, 3)
    assert (b.weight_grams, b.low_stock_threshold) == (None, None)


def test_a_skipped_products_variant_rows_report_their_own_problems_in_the_same_round(tmp_path: Path) -> None:
    """QA: a bad cell on a variant row showed up only after its product row's was mended."""
    parsed = _parse(
        tmp_path,
        _row("A", "a", option_groups="size", option_values="S", sku="A1", price="1.00") + ",1.5,",
        _row(option_values="M", sku="A2", price="1.00") + ",,-1",
        _row(option_values="L", sku="A3", price="2.00") + ",,",
        _row("B", "b", sku="B1", price="1.00") + ",,",
        header=EXTRAS_HEADER,
    )
    assert [(error.line, error.reason) for error in parsed.errors] == [
        (2, "weightGrams '1.5' is not a whole number of 0 or more"),
        (3, "lowStockThreshold '-1' is not a whole number of 0 or more (and the product on line 2 is skipped)"),
    ]
    assert [product.slug for product in parsed.products] == ["b"]
