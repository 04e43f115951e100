"""Money and tax in integer minor units: formatting, parsing typed amounts, tax per line, cart totals."""

from __future__ import annotations

import pytest

from webshop.cart.service import CartView, LineView
from webshop.checkout.pricing import SHIPPING_METHODS, shipping_method, tax_amount
from webshop.errors import ValidationFailed
from webshop.money import exponent, format_money, parse_major


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (129900, "USD", "$1,299.00"),
        (5, "USD", "$0.05"),
        (-5, "USD", "-$0.05"),
        (123456789, "EUR", "€1,234,567.89"),
        (1500, "JPY", "¥1,500"),  # no minor unit
        (1234, "BHD", "1.234 BHD"),  # three decimals, no symbol
        (100, "chf", "1.00 CHF"),
    ],
)
def test_format_money(amount, currency, shown):
    assert format_money(amount, currency) == shown


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [
        ("1299.00", "USD", 129900),
        ("0.5", "USD", 50),
        (" 12 ", "USD", 1200),
        ("1500", "JPY", 1500),
        ("1.234", "KWD", 1234),
        ("1e2", "USD", 10000),
    ],
)
def test_parse_major(text, currency, minor):
    assert parse_major(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [("abc", "USD"), ("-1", "USD"), ("NaN", "USD"), ("Infinity", "USD"), ("0.001", "USD"), ("1.5", "JPY")],
)
def test_parse_major_refuses_what_is_not_an_amount_of_the_currency(text, currency):
    with pytest.raises(ValueError):
        parse_major(text, currency)


def test_exponents_default_to_two_decimals():
    assert (exponent("USD"), exponent("jpy"), exponent("KWD"), exponent("XYZ")) == (2, 0, 3, 2)


@pytest.mark.parametrize(
    ("net", "rate_bp", "tax"),
    [
        (999, 2000, 200),  # 199.8 → 200
        (24, 2000, 5),  # 4.8 → 5
        (25, 1000, 3),  # 2.5 → 3: half up
        (5, 1000, 1),  # 0.5 → 1
        (4, 1000, 0),  # 0.4 → 0
        (12345, 0, 0),  # a zero-rated category
        (0, 2000, 0),
    ],
)
def test_tax_is_rounded_half_up_to_the_minor_unit(net, rate_bp, tax):
    assert tax_amount(net, rate_bp) == tax


def line(index: int, unit_price: int, quantity: int, tax_category: str = "standard") -> LineView:
    return LineView(
        id=index,
        variant_id=index,
        product_id=index,
        sku=f"SKU-{index}",
        product_name=f"Product {index}",
        product_slug=f"product-{index}",
        options={},
        unit_price=unit_price,
        currency="USD",
        quantity=quantity,
        stock=10,
        tax_category=tax_category,
    )


def test_cart_totals_round_tax_per_line_and_add_shipping():
    cart = CartView(id=1, lines=[line(1, 333, 3), line(2, 125, 2, "reduced"), line(3, 1000, 1, "exempt")])
    totals = cart.totals(shipping_method("express"), {"standard": 2000, "reduced": 500})
    # 999 at 20 % is 199.8 → 200; 250 at 5 % is 12.5 → 13; an unknown category is not taxed.
    assert (totals.subtotal, totals.shipping, totals.tax) == (999 + 250 + 1000, 1000, 213)
    assert totals.total == 2249 + 1000 + 213
    assert cart.count == 6
    assert cart.totals(None, {}).total == 2249  # no shipping chosen yet, no tax rates


def test_rounding_per_line_differs_from_rounding_the_sum():
    """Two lines with 2.5 cents of tax each: 3 + 3, where rounding the sum once would give 5."""
    cart = CartView(id=1, lines=[line(1, 25, 1), line(2, 25, 1)])
    assert cart.totals(None, {"standard": 1000}).tax == 6
    assert tax_amount(50, 1000) == 5


def test_shipping_methods_are_flat_rates_and_an_unknown_one_is_a_field_error():
    assert [m.code for m in SHIPPING_METHODS] == ["standard", "express"]
    assert shipping_method("standard").price == 500
    with pytest.raises(ValidationFailed) as refused:
        shipping_method("teleport")
    assert set(refused.value.field_errors) == {"shipping_method"}
