"""The catalog's query rules without a database: normalising the URL's parameters, links, prices, cursors."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from webshop.catalog.cursor import _decode_cursor, _decode_offset, _encode_cursor
from webshop.catalog.query import MAX_PRICE, MAX_QUERY_LENGTH, RELEVANCE, CatalogQuery, parse_price
from webshop.errors import ValidationFailed


def query(**params: object) -> CatalogQuery:
    values: dict[str, object] = {"q": None, "category": None, "brand": None, "color": None, "sort": None, "page": None}
    values.update(params)
    return CatalogQuery.from_params(**values)  # type: ignore[arg-type]


# --- CatalogQuery.from_params -------------------------------------------------------------------


def test_nothing_asked_is_the_whole_catalog_by_name_on_page_one():
    plain = query()
    assert (plain.q, plain.category, plain.facets, plain.sort, plain.page) == ("", None, {}, "name", 1)
    assert not plain.is_filtered
    assert plain.params() == {}


def test_text_is_trimmed_and_cut_and_facets_lose_blanks_and_repeats():
    asked = query(q="  shoe  ", category="  ", brand=["Nike", " ", "Nike", " Adidas "], color=["", None])
    assert asked.q == "shoe"
    assert asked.category is None
    assert asked.facets == {"brand": ("Adidas", "Nike")}  # sorted, once each; the empty colour facet is dropped
    assert query(q="x" * (MAX_QUERY_LENGTH + 50)).q == "x" * MAX_QUERY_LENGTH


def test_the_sort_defaults_to_relevance_with_text_and_unknown_sorts_fall_back():
    assert query(q="shoe").sort == RELEVANCE
    assert query(q="shoe", sort="bogus").sort == RELEVANCE
    assert query(sort="bogus").sort == "name"
    assert query(sort=RELEVANCE).sort == "name"  # relevance needs a search text
    assert query(sort="-price").sort == "-price"
    assert query(q="shoe").sorts[RELEVANCE] and RELEVANCE not in query().sorts


def test_pages_start_at_one_and_prices_are_clamped_and_turned_round():
    assert query(page=0).page == 1 and query(page=-3).page == 1 and query(page=4).page == 4
    upside_down = query(price_min=5000, price_max=1000)
    assert (upside_down.price_min, upside_down.price_max) == (1000, 5000)
    clamped = query(price_min=-10, price_max=MAX_PRICE + 1)
    assert (clamped.price_min, clamped.price_max) == (0, MAX_PRICE)
    assert query(price_min=0).is_filtered and query(in_stock=True).is_filtered


def test_links_keep_the_query_drop_defaults_and_apply_changes():
    asked = query(q="shoe", brand=["Nike"], price_min=1000, price_max=5000, in_stock=True, page=3)
    assert asked.params() == {
        "q": "shoe",
        "price_min": "10.00",
        "price_max": "50.00",
        "in_stock": "1",
        "brand": ["Nike"],
        "page": 3,
    }
    assert asked.params(page=None, brand=None) == {
        "q": "shoe",
        "price_min": "10.00",
        "price_max": "50.00",
        "in_stock": "1",
    }
    assert query(sort="price").params(sort="name") == {}  # the default sort is left out of the link
    assert query(q="shoe").params(q=None) == {}  # relevance without a text is no sort at all


def test_the_filter_key_ignores_sort_and_page():
    one = query(q="shoe", brand=["Nike"], sort="price", page=2)
    other = query(q="shoe", brand=["Nike"], sort="-price", page=5)
    assert one.filter_key == other.filter_key
    assert one.filter_key != query(q="shoe", brand=["Adidas"]).filter_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.5", 1250),
        ("12.50", 1250),
        (" 7 ", 700),
        ("0", 0),
        ("", None),
        ("  ", None),
        (None, None),
        ("abc", None),
        ("-1", None),
        ("1.234", None),  # more decimals than the currency has
        ("99999999999", MAX_PRICE),
    ],
)
def test_a_typed_price_is_minor_units_or_nothing(text, expected):
    assert parse_price(text) == expected


def test_a_price_in_a_currency_without_decimals():
    assert parse_price("1500", "JPY") == 1500
    assert parse_price("15.5", "JPY") is None
    assert query(price_min=1500, currency="JPY").price_min_text == "1500"


# --- the API's page cursors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("price", [1999, 5]),
        ("-price", [0, 2**63 - 1]),
        ("name", ["Zeta Shoe", 12]),
        ("newest", [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), 7]),
    ],
)
def test_a_keyset_cursor_decodes_to_what_it_was_made_of(sort, values):
    cursor = _encode_cursor(sort, values)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor  # URL-safe, unpadded
    assert _decode_cursor(cursor, sort) == values


def test_a_relevance_cursor_carries_an_offset():
    assert _decode_offset(_encode_cursor(RELEVANCE, [24])) == 24


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("cursor", "sort"),
    [
        ("not base64 at all!", "price"),
        (forged([1, 2]), "price"),  # not an object
        (_encode_cursor("price", [1999, 5]), "name"),  # issued for another sort
        (_encode_cursor("price", [1999]), "price"),  # one value short
        (_encode_cursor("price", [1999, "5"]), "price"),  # the id is not an int
        (_encode_cursor("price", [1999, True]), "price"),  # nor a boolean
        (_encode_cursor("price", [1999, -1]), "price"),  # nor negative
        (_encode_cursor("price", [MAX_PRICE + 1, 5]), "price"),  # a price out of range
        (_encode_cursor("price", ["cheap", 5]), "price"),
        (_encode_cursor("name", [42, 5]), "name"),  # a name that is not text
        (_encode_cursor("newest", ["yesterday", 5]), "newest"),  # not a timestamp
        (_encode_cursor("newest", ["2026-01-01", 5]), "newest"),  # a time without its zone (QA: was a 500)
    ],
)
def test_a_cursor_that_was_not_issued_for_this_query_is_refused(cursor, sort):
    with pytest.raises(ValidationFailed) as refused:
        _decode_cursor(cursor, sort)
    assert refused.value.field_errors == {"cursor": "Invalid cursor."}


def test_a_keyset_cursor_is_no_relevance_cursor():
    with pytest.raises(ValidationFailed):
        _decode_offset(_encode_cursor("price", [1999, 5]))


# --- the shop filter (issue 16) -----------------------------------------------------------------


def test_shops_are_cleaned_kept_in_links_and_keys_and_count_as_a_filter():
    asked = query(shop=[" camera-corner ", "", "webshop", "camera-corner"])
    assert asked.shops == ("camera-corner", "webshop")
    assert asked.is_filtered
    assert asked.params(page=2) == {"shop": ["camera-corner", "webshop"], "page": 2}
    assert asked.filter_key != query().filter_key


def test_a_shop_page_names_its_shop_in_the_path_not_in_links_or_the_empty_state():
    home = query(q="lens").in_shop("camera-corner")
    assert home.shops == ("camera-corner",)
    assert home.params() == {"q": "lens"}
    assert not query().in_shop("camera-corner").is_filtered
    # Same products as ``/?shop=camera-corner``: the cached reads are shared.
    assert home.filter_key == query(q="lens", shop=["camera-corner"]).filter_key
