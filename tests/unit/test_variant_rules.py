"""The variant-set rules (``webshop.catalog.variant_rules``, shared by the service and the CSV importer),
their wording for the product form and the API, and the cleaning of a variant's fields."""

from __future__ import annotations

from typing import Any

import pytest

from webshop.catalog import limits
from webshop.catalog.rules import _check_variant_set, _clean_product, _clean_variant
from webshop.catalog.variant_rules import (
    SetProblem,
    combination_key,
    first_seen,
    fits_groups,
    option_groups_problem,
    option_values_problem,
    variant_set_problems,
)

# --- the shared rules, as values ------------------------------------------------------------------


def test_first_seen_points_each_repeat_at_its_first_occurrence():
    assert first_seen(["A", "B", "A", None, "A", "B"]) == {2: 0, 4: 0, 5: 1}
    assert first_seen([None, None]) == {}


def test_combinations_compare_ignoring_case():
    assert combination_key(["Red", "XL"]) == combination_key(["red", "xl"])
    assert fits_groups(["size"], ["40"])
    assert not fits_groups(["size", "colour"], ["40"])


@pytest.mark.parametrize(
    ("groups", "problem"),
    [
        (["size", "colour"], None),
        ([], None),
        (["Size", "size"], "repeated"),
        ([f"g{i}" for i in range(limits.OPTION_GROUPS + 1)], "too_many"),
        (["x" * (limits.OPTION_GROUP + 1)], "too_long"),
        (["a\x00b"], "too_long"),
    ],
)
def test_option_groups_problem(groups, problem):
    assert option_groups_problem(groups) == problem


@pytest.mark.parametrize(
    ("values", "problem"),
    [(["40", "red"], None), ([], None), (["40", ""], "empty"), (["x" * (limits.OPTION_VALUE + 1)], "too_long")],
)
def test_option_values_problem(values, problem):
    assert option_values_problem(values) == problem


def test_variant_set_problems_name_the_variant_and_the_one_it_repeats():
    variants = [("A", ["Red"]), ("B", ["red"]), ("A", ["blue"]), ("C", []), (None, ["green"]), ("", ["Green"])]
    assert variant_set_problems(["colour"], variants) == [
        SetProblem(1, "combination", 0),
        SetProblem(2, "sku", 0),
        SetProblem(3, "value_count"),
        SetProblem(5, "combination", 4),
    ]


def test_without_option_groups_only_the_counts_and_skus_are_compared():
    assert variant_set_problems([], [("A", []), ("B", [])]) == []
    assert variant_set_problems([], [("A", ["x"])]) == [SetProblem(0, "value_count")]


# --- the rules worded for the product form and the API ---------------------------------------------


def check(groups: list[str], *variants: dict[str, Any], prefixes: list[str] | None = None) -> dict[str, str]:
    """The errors ``_check_variant_set`` reports for ``variants`` (form rows ``variants[i].`` by default)."""
    errors: dict[str, str] = {}
    _check_variant_set(groups, list(variants), errors, prefixes or [f"variants[{i}]." for i in range(len(variants))])
    return errors


def test_distinct_skus_and_combinations_pass():
    assert check(["size"], {"sku": "ZS-40", "option_values": ["40"]}, {"sku": "ZS-42", "option_values": ["42"]}) == {}
    assert check([], {"sku": "BC-1", "option_values": []}) == {}


def test_one_value_per_option_group():
    errors = check(["size", "colour"], {"sku": "A", "option_values": ["40"]})
    assert errors == {"variants[0].option_values": "Give 2 option value(s), one per option group (size, colour)."}
    assert check([], {"sku": "A", "option_values": ["40"]}) == {
        "variants[0].option_values": "Give 0 option value(s), one per option group (none)."
    }


def test_a_repeated_sku_is_reported_on_the_second_row():
    errors = check(["size"], {"sku": "ZS-40", "option_values": ["40"]}, {"sku": "ZS-40", "option_values": ["42"]})
    assert errors == {"variants[1].sku": "SKU ZS-40 is used twice in this product."}


def test_a_repeated_combination_is_reported_whatever_its_case():
    errors = check(["colour"], {"sku": "A", "option_values": ["Red"]}, {"sku": "B", "option_values": ["red"]})
    assert errors == {"variants[1].option_values": "Another variant already has these option values."}


def test_a_sent_variant_taking_the_values_or_sku_of_a_later_stored_one_gets_the_error():
    """An update of the first variant to the second's values: the repeat is the stored one, listed
    after it, but the error is the sent variant's (the stored one was fine before)."""
    errors: dict[str, str] = {}
    variants = [{"sku": "TS-S", "option_values": ["M"]}, {"sku": "TS-M", "option_values": ["M"]}]
    _check_variant_set(["size"], variants, errors, ["", "sku TS-M: "])
    assert errors == {"option_values": "Another variant already has these option values."}
    errors = {}
    variants = [{"sku": "TS-M", "option_values": ["S"]}, {"sku": "TS-M", "option_values": ["M"]}]
    _check_variant_set(["size"], variants, errors, ["", "sku TS-M: "])
    assert errors == {"sku": "SKU TS-M is used twice in this product."}


def test_a_row_with_a_field_error_already_keeps_that_error():
    errors = {"variants[1].option_values": "Enter a value for each option group."}
    variants = [{"sku": "A", "option_values": ["x"]}, {"sku": "B", "option_values": ["x"]}]
    _check_variant_set(["colour"], variants, errors, ["variants[0].", "variants[1]."])
    assert errors == {"variants[1].option_values": "Enter a value for each option group."}


def test_stored_variants_that_no_longer_fit_the_groups_are_named_on_the_groups_field():
    """Changing a product's option groups: its stored variants (prefix ``sku …``) must change their values too."""
    errors = check(["size", "colour"], {"sku": "ZS-40", "option_values": ["40"]}, prefixes=["sku ZS-40"])
    assert errors == {"option_values": "Variant ZS-40 has 1 option value(s): change its values too."}


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        (["Size", "size"], "Each option group can appear only once."),
        ([f"g{i}" for i in range(6)], "Use at most 5 option groups."),
        (["x" * 61], "Option group names can be at most 60 characters."),
    ],
)
def test_bad_option_groups_are_worded_on_their_field(groups, message):
    errors: dict[str, str] = {}
    _clean_product({"option_groups": groups}, errors)
    assert errors == {"option_groups": message}


# --- one variant's fields -------------------------------------------------------------------------


def clean(raw: dict[str, Any], *, partial: bool = False, taxes: set[str] | None = None) -> tuple[dict, dict]:
    errors: dict[str, str] = {}
    values = _clean_variant(raw, errors, "v.", taxes, partial=partial)
    return values, errors


def test_a_variant_is_trimmed_and_its_currency_upper_cased():
    values, errors = clean({"sku": "  ZS-44 ", "price": 9999, "currency": "usd", "option_values": [" 44 "]})
    assert errors == {}
    assert values == {"sku": "ZS-44", "price": 9999, "currency": "USD", "option_values": ["44"]}


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        ({"sku": "", "price": 1}, "v.sku", "Enter a sku."),
        ({"sku": "X" * 65, "price": 1}, "v.sku", "A SKU can be at most 64 characters."),
        ({"sku": "X", "price": -1}, "v.price", "The price must be 0 or more."),
        ({"sku": "X", "price": True}, "v.price", "The price must be 0 or more."),  # a boolean is no number
        ({"sku": "X", "price": 2**31}, "v.price", "The price is too large."),
        ({"sku": "X", "price": 1, "stock": -5}, "v.stock", "Stock must be 0 or more."),
        ({"sku": "X", "price": 1, "currency": "dollars"}, "v.currency", "Use a three-letter ISO 4217 currency code"),
        ({"sku": "X", "price": 1, "option_values": ["a", " "]}, "v.option_values", "Enter a value for each option"),
        ({"sku": "X", "price": 1, "tax_category": "luxury"}, "v.tax_category", "Choose a tax category (standard)."),
        ({"price": 1}, "v.sku", "This field is required."),
        ({"sku": "X"}, "v.price", "This field is required."),
    ],
)
def test_a_bad_field_is_named_with_its_prefix(raw, field, message):
    _, errors = clean(raw, taxes={"standard"})
    assert field in errors, errors
    assert errors[field].startswith(message)


def test_a_partial_change_needs_no_sku_or_price_and_checks_the_known_tax_categories():
    values, errors = clean({"tax_category": "reduced"}, partial=True, taxes={"standard", "reduced"})
    assert (values, errors) == ({"tax_category": "reduced"}, {})
    _, errors = clean({"tax_category": "luxury"}, partial=True, taxes={"standard", "reduced"})
    assert errors == {"v.tax_category": "Choose a tax category (reduced, standard)."}
