"""The pricing core: the one rounding rule, largest-remainder allocation, tax per line and per order.

Every expected value is worked out by hand in the comment beside it (amounts in cents, rates in basis points).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from webshop.pricing.rounding import allocate, round_half_up
from webshop.pricing.tax import LineInput, OrderTax, PriceMode, price_line, price_order, split_gross

NET, GROSS = PriceMode.NET, PriceMode.GROSS


@pytest.mark.parametrize(
    ("numerator", "denominator", "rounded"),
    [
        (0, 7, 0),
        (4, 10, 0),  # 0.4
        (5, 10, 1),  # 0.5: half goes up
        (15, 10, 2),  # 1.5
        (25, 10, 3),  # 2.5: away from zero, not to even
        (149, 100, 1),  # 1.49
        (2, 3, 1),  # 0.666…
        (1, 3, 0),  # 0.333…
        (-5, 10, -1),  # -0.5: symmetric, away from zero
        (-14, 10, -1),  # -1.4
        (-15, 10, -2),  # -1.5
        (-2, 3, -1),  # -0.666…
        (999 * 2000, 10_000, 200),  # 199.8
    ],
)
def test_round_half_up(numerator, denominator, rounded):
    assert round_half_up(numerator, denominator) == rounded


@pytest.mark.parametrize("denominator", [0, -10])
def test_round_half_up_refuses_a_denominator_that_is_not_positive(denominator):
    with pytest.raises(ValueError, match="positive"):
        round_half_up(5, denominator)


@pytest.mark.parametrize(
    ("amount", "weights", "shares"),
    [
        (1000, [1, 1, 1], [334, 333, 333]),  # 333.33 each; the 1 left over goes to the first of the tie
        (100, [1, 1, 1], [34, 33, 33]),  # 33.33 each
        (2, [1, 1, 1], [1, 1, 0]),  # 0.67 each: 2 units left over, to the first two
        (5, [1, 2], [2, 3]),  # 1.67 (rem 2/3) and 3.33 (rem 1/3): the unit goes to the larger remainder
        (7, [3, 0, 4], [3, 0, 4]),  # exact
        (10, [0, 5, 5], [0, 5, 5]),  # a zero weight gets nothing
        (1, [0, 3], [0, 1]),  # even the only unit never goes to a zero weight
        (400, [3000, 999], [300, 100]),  # 300.08 (rem 300/3999) and 99.92 (rem 3699/3999): the unit to the second
        (0, [0, 0], [0, 0]),
        (0, [], []),
    ],
)
def test_allocate_by_largest_remainder(amount, weights, shares):
    assert allocate(amount, weights) == shares


@pytest.mark.parametrize(
    ("amount", "weights", "error"),
    [
        (1, [0, 0], "all zero"),
        (1, [], "all zero"),
        (-1, [1], "negative amount"),
        (1, [2, -1], "must not be negative"),
    ],
)
def test_allocate_refuses(amount, weights, error):
    with pytest.raises(ValueError, match=error):
        allocate(amount, weights)


@given(st.integers(0, 10**9), st.lists(st.integers(0, 10**6), min_size=1, max_size=12).filter(any))
def test_allocate_always_sums_exactly_and_stays_within_one_unit(amount, weights):
    shares = allocate(amount, weights)
    assert sum(shares) == amount
    total = sum(weights)
    for weight, share in zip(weights, shares, strict=True):
        assert amount * weight // total <= share <= amount * weight // total + 1
        assert weight or share == 0


@given(st.integers(0, 10**9), st.integers(0, 10**4))
def test_split_gross_adds_up(gross, rate_bp):
    net, tax = split_gross(gross, rate_bp)
    assert net + tax == gross
    assert 0 <= tax <= gross


@pytest.mark.parametrize(
    ("mode", "quantity", "unit_price", "rate_bp", "discount", "net", "tax", "gross"),
    [
        # 999 net at 20 %: 199.8 -> 200
        (NET, 1, 999, 2000, 0, 999, 200, 1199),
        # 11.99 gross at 20 %: 1199 * 2000 / 12000 = 199.83 -> 200, net 999
        (GROSS, 1, 1199, 2000, 0, 999, 200, 1199),
        # 100.00 gross at 19 %: 10000 * 1900 / 11900 = 1596.64 -> 1597, net 8403
        (GROSS, 1, 10_000, 1900, 0, 8403, 1597, 10_000),
        # 3 x 3.33 net at 7 %: 999 * 0.07 = 69.93 -> 70
        (NET, 3, 333, 700, 0, 999, 70, 1069),
        # 50 net at 7 % = 3.5 exactly: half up -> 4
        (NET, 1, 50, 700, 0, 50, 4, 54),
        # 3 gross at 20 %: 3 * 2000 / 12000 = 0.5 exactly -> 1, net 2
        (GROSS, 1, 3, 2000, 0, 2, 1, 3),
        # 2 x 5.50 gross at 5.5 %: 1100 * 550 / 10550 = 57.35 -> 57, net 1043
        (GROSS, 2, 550, 550, 0, 1043, 57, 1100),
        # 10.55 gross at 5.5 %: 1055 * 550 / 10550 = 55 exactly, net 1000
        (GROSS, 1, 1055, 550, 0, 1000, 55, 1055),
        # 12.10 gross at 21 %: 1210 * 2100 / 12100 = 210 exactly, net 1000
        (GROSS, 1, 1210, 2100, 0, 1000, 210, 1210),
        # 5 x 12.34 net at 0 %: no tax
        (NET, 5, 1234, 0, 0, 6170, 0, 6170),
        # nothing to pay
        (NET, 1, 0, 2000, 0, 0, 0, 0),
        # 4 x 2.50 net at 19 % less 1.00: net 900, tax 171 exactly
        (NET, 4, 250, 1900, 100, 900, 171, 1071),
        # 2 x 10.00 gross at 20 % less 2.00: gross 1800, tax 1800 * 2000 / 12000 = 300, net 1500
        (GROSS, 2, 1000, 2000, 200, 1500, 300, 1800),
        # discounted to nothing
        (GROSS, 2, 1000, 2000, 2000, 0, 0, 0),
    ],
)
def test_price_line(mode, quantity, unit_price, rate_bp, discount, net, tax, gross):
    line = price_line("sku", quantity, unit_price, rate_bp, mode, discount)
    assert (line.net, line.tax, line.gross) == (net, tax, gross)
    assert (line.key, line.quantity, line.unit_price, line.rate_bp, line.discount) == (
        "sku",
        quantity,
        unit_price,
        rate_bp,
        discount,
    )
    assert line.amount == quantity * unit_price


@pytest.mark.parametrize(
    ("quantity", "unit_price", "rate_bp", "discount", "error"),
    [
        (0, 100, 2000, 0, "quantity"),
        (1, -1, 2000, 0, "unit price"),
        (1, 100, -1, 0, "tax rate"),
        (1, 100, 2000, 101, "discount"),
        (1, 100, 2000, -1, "discount"),
    ],
)
def test_price_line_refuses(quantity, unit_price, rate_bp, discount, error):
    with pytest.raises(ValueError, match=error):
        price_line("sku", quantity, unit_price, rate_bp, NET, discount)


def assert_adds_up(order: OrderTax) -> None:
    every = [*order.lines, *([order.shipping] if order.shipping else [])]
    assert order.gross_total == order.net_total + order.tax_total == sum(line.gross for line in every)
    assert order.net_total == sum(net for _, net, _ in order.tax_by_rate)
    assert order.tax_total == sum(tax for _, _, tax in order.tax_by_rate)
    assert [rate for rate, _, _ in order.tax_by_rate] == sorted({line.rate_bp for line in every})


def test_order_discount_over_three_equal_lines_uses_the_remainder_rule():
    lines = [LineInput(key, 1, 1000, 2000) for key in "abc"]
    order = price_order(lines, NET, order_discount=1000)
    # 1000 over 1000/1000/1000 -> 334/333/333; nets 666/667/667; tax 133.2 -> 133, 133.4 -> 133 (x2)
    assert [line.discount for line in order.lines] == [334, 333, 333]
    assert [line.net for line in order.lines] == [666, 667, 667]
    assert [line.tax for line in order.lines] == [133, 133, 133]
    assert (order.net_total, order.tax_total, order.gross_total, order.discount_total) == (2000, 399, 2399, 1000)
    assert order.tax_by_rate == ((2000, 2000, 399),)
    assert order.shipping is None
    assert_adds_up(order)


def test_mixed_rates_in_gross_mode_with_shipping_at_the_standard_rate():
    lines = [LineInput("shirt", 2, 1190, 1900), LineInput("book", 3, 107, 700)]
    order = price_order(lines, GROSS, shipping=490, shipping_rate_bp=1900)
    # shirt: gross 2380, tax 2380 * 1900 / 11900 = 380, net 2000
    # book: gross 321, tax 321 * 700 / 10700 = 21, net 300
    # shipping: gross 490, tax 490 * 1900 / 11900 = 78.24 -> 78, net 412
    assert [(line.net, line.tax, line.gross) for line in order.lines] == [(2000, 380, 2380), (300, 21, 321)]
    assert order.shipping is not None
    assert (order.shipping.key, order.shipping.net, order.shipping.tax, order.shipping.gross) == (
        "shipping",
        412,
        78,
        490,
    )
    # 7 %: books only; 19 %: shirt 2000 + shipping 412 net, 380 + 78 tax
    assert order.tax_by_rate == ((700, 300, 21), (1900, 2412, 458))
    assert (order.net_total, order.tax_total, order.gross_total, order.discount_total) == (2712, 479, 3191, 0)
    assert_adds_up(order)


def test_reduced_rate_goods_with_shipping_at_the_standard_rate():
    order = price_order([LineInput("book", 1, 1090, 900)], GROSS, shipping=605, shipping_rate_bp=2100)
    # book: 1090 * 900 / 10900 = 90, net 1000; shipping: 605 * 2100 / 12100 = 105, net 500
    assert order.tax_by_rate == ((900, 1000, 90), (2100, 500, 105))
    assert (order.net_total, order.tax_total, order.gross_total) == (1500, 195, 1695)
    assert_adds_up(order)


def test_net_mode_with_a_zero_rate_line_and_taxed_shipping():
    lines = [LineInput("gadget", 1, 1999, 550), LineInput("food", 2, 500, 0)]
    order = price_order(lines, NET, shipping=799, shipping_rate_bp=550)
    # gadget: 1999 * 0.055 = 109.945 -> 110; food: 1000 untaxed; shipping: 799 * 0.055 = 43.945 -> 44
    assert [line.tax for line in order.lines] == [110, 0]
    assert order.tax_by_rate == ((0, 1000, 0), (550, 2798, 154))
    assert (order.net_total, order.tax_total, order.gross_total) == (3798, 154, 3952)
    assert_adds_up(order)


def test_free_shipping_is_a_shipping_line_discounted_to_nothing():
    order = price_order(
        [LineInput("a", 1, 5000, 2000)], NET, shipping=500, shipping_rate_bp=2000, shipping_discount=500
    )
    assert order.shipping is not None
    assert (order.shipping.discount, order.shipping.net, order.shipping.tax, order.shipping.gross) == (500, 0, 0, 0)
    # goods 5000 + 20 % = 6000; shipping free
    assert (order.net_total, order.tax_total, order.gross_total, order.discount_total) == (5000, 1000, 6000, 500)
    assert order.tax_by_rate == ((2000, 5000, 1000),)
    assert_adds_up(order)


def test_order_discount_is_shared_after_the_line_discounts_in_gross_mode():
    lines = [LineInput("a", 1, 2000, 2000, discount=1000), LineInput("b", 1, 3000, 2000)]
    order = price_order(lines, GROSS, order_discount=100)
    # remaining 1000 and 3000: the 100 splits 25/75
    # a: gross 975, tax 975 * 2000 / 12000 = 162.5 -> 163, net 812
    # b: gross 2925, tax 487.5 -> 488, net 2437
    assert [line.discount for line in order.lines] == [1025, 75]
    assert [(line.net, line.tax, line.gross) for line in order.lines] == [(812, 163, 975), (2437, 488, 2925)]
    assert (order.net_total, order.tax_total, order.gross_total, order.discount_total) == (3249, 651, 3900, 1100)
    assert_adds_up(order)


def test_an_order_discount_larger_than_the_goods_is_cut_to_them():
    lines = [LineInput("a", 1, 300, 0), LineInput("b", 1, 100, 0)]
    order = price_order(lines, NET, order_discount=1000, shipping=200, shipping_discount=999)
    # goods 400 -> discount 400 (300/100); shipping discount cut to 200
    assert [line.discount for line in order.lines] == [300, 100]
    assert order.shipping is not None and order.shipping.discount == 200
    assert (order.gross_total, order.discount_total) == (0, 600)
    assert_adds_up(order)


def test_tax_is_rounded_per_line_not_on_the_total():
    order = price_order([LineInput("a", 1, 50, 700), LineInput("b", 1, 50, 700)], NET)
    # each line: 50 * 7 % = 3.5 -> 4, so 8 in all (the total 100 * 7 % would have been 7)
    assert order.tax_total == 8
    assert order.tax_by_rate == ((700, 100, 8),)
    assert_adds_up(order)


def test_an_empty_order_is_zero():
    order = price_order([], GROSS)
    assert order == OrderTax((), None, 0, 0, 0, 0, ())


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"shipping": -1}, "must not be negative"),
        ({"order_discount": -1}, "must not be negative"),
        ({"shipping_discount": -1}, "must not be negative"),
    ],
)
def test_price_order_refuses_negative_amounts(kwargs, error):
    with pytest.raises(ValueError, match=error):
        price_order([LineInput("a", 1, 100, 0)], NET, **kwargs)


def test_price_order_refuses_a_line_discount_beyond_the_line():
    with pytest.raises(ValueError, match="out of range"):
        price_order([LineInput("a", 2, 100, 0, discount=201)], NET)
