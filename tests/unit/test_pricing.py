"""Money and tax in integer minor units: formatting, parsing typed amounts, tax per line (carts are priced in
tests/integration/test_pricing_rules.py)."""

from __future__ import annotations

import pytest

from webshop.money import exponent, format_money, parse_major
from webshop.pricing.tax import tax_of_net


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
        (".5", "USD", 50),
    ],
)
def test_parse_major(text, currency, minor):
    assert parse_major(text, currency) == minor


@pytest.mark.parametrize(
    ("text", "currency"),
    [
        ("abc", "USD"),
        ("-1", "USD"),
        ("NaN", "USD"),
        ("Infinity", "USD"),
        ("0.001", "USD"),
        ("1.5", "JPY"),
        ("1e2", "USD"),  # what nobody types as a price; "1E+999999" would overflow the decimal context
        ("1E+999999", "USD"),
        ("+5", "USD"),
        ("１２", "USD"),
    ],
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
    assert tax_of_net(net, rate_bp) == tax
