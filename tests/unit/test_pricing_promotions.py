"""Promotions: targets, percentage and fixed amounts allocated over lines, the reasons a code is refused, codes,
and which promotions combine. Amounts in cents; every expected value is worked out in the comment beside it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from webshop.pricing.promotions import (
    CartItem,
    Discount,
    NotApplicable,
    PromotionKind,
    PromotionTerms,
    Reason,
    best_combination,
    evaluate,
    normalise_code,
)

PCT, FIXED, FREE = PromotionKind.PERCENTAGE, PromotionKind.FIXED_AMOUNT, PromotionKind.FREE_SHIPPING
NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)

# a: 2 x 15.00 = 30.00 (category 100); b: 1 x 20.00 = 20.00 (category 200); c: 3 x 3.33 = 9.99 (categories 100, 300)
A = CartItem("a", variant_id=11, product_id=1, category_ids=frozenset({100}), quantity=2, unit_price=1500)
B = CartItem("b", variant_id=21, product_id=2, category_ids=frozenset({200}), quantity=1, unit_price=2000)
C = CartItem("c", variant_id=31, product_id=3, category_ids=frozenset({100, 300}), quantity=3, unit_price=333)
CART = (A, B, C)
SUBTOTAL = 5999


def terms(kind: PromotionKind = PCT, value: int = 10, **kwargs) -> PromotionTerms:
    return PromotionTerms(name="Promo", code=kwargs.pop("code", "PROMO"), kind=kind, value=value, **kwargs)


def run(promotion: PromotionTerms, items=CART, *, subtotal=SUBTOTAL, shipping=490, now=NOW, currency="USD"):
    return evaluate(promotion, items, subtotal=subtotal, shipping=shipping, now=now, currency=currency)


@pytest.mark.parametrize(
    ("promotion", "lines", "shipping"),
    [
        # whole order, 10 %: 599.9 -> 600; over 3000/2000/999: 300.05, 200.03, 99.92 -> floors 300/200/99,
        # the 1 left over to c (largest remainder 5499/5999)
        (terms(PCT, 10), (("a", 300), ("b", 200), ("c", 100)), 0),
        # category 100 only (a and c, 3999), 10 %: 399.9 -> 400; 300.08/99.92 -> 300/99 + 1 to c
        (terms(PCT, 10, category_ids=frozenset({100})), (("a", 300), ("c", 100)), 0),
        # product 2 only: 100 % of 2000
        (terms(PCT, 100, product_ids=frozenset({2})), (("b", 2000),), 0),
        # variant 31 only: 15 % of 999 = 149.85 -> 150
        (terms(PCT, 15, variant_ids=frozenset({31})), (("c", 150),), 0),
        # 50.00 off product 2, which is only 20.00: capped at 2000
        (terms(FIXED, 5000, product_ids=frozenset({2})), (("b", 2000),), 0),
        # 10.00 off the whole order over 3000/2000/999: 500.08, 333.39, 166.53 -> 500/333/166 + 1 to c (rem 3166/5999)
        (terms(FIXED, 1000), (("a", 500), ("b", 333), ("c", 167)), 0),
        # free shipping: the whole 4.90, nothing off the lines
        (terms(FREE, 0), (("a", 0), ("b", 0), ("c", 0)), 490),
    ],
)
def test_evaluate(promotion, lines, shipping):
    discount = run(promotion)
    assert (discount.name, discount.code, discount.kind) == ("Promo", "PROMO", promotion.kind)
    assert (discount.lines, discount.shipping) == (lines, shipping)
    assert discount.total == sum(off for _, off in lines) + shipping


def test_ten_percent_over_three_equal_lines_sums_exactly():
    items = [CartItem(key, 1, 1, frozenset(), 1, 333) for key in "xyz"]
    # 10 % of 999 = 99.9 -> 100; 33.33 each -> 33/33/33, the 1 left over to the first of the tie
    discount = run(terms(PCT, 10), items, subtotal=999)
    assert discount.lines == (("x", 34), ("y", 33), ("z", 33))
    assert discount.total == 100


def test_the_minimum_subtotal_is_inclusive():
    promotion = terms(min_subtotal=5999)
    assert run(promotion, subtotal=5999).total == 600
    with pytest.raises(NotApplicable) as caught:
        run(promotion, subtotal=5998)
    assert caught.value.reason is Reason.MINIMUM_NOT_REACHED
    assert caught.value.message == str(caught.value) == "Spend $0.01 more to use this code."


def test_the_minimum_message_uses_the_currency():
    with pytest.raises(NotApplicable) as caught:
        run(terms(min_subtotal=10_000), subtotal=5000, currency="EUR")
    assert caught.value.message == "Spend €50.00 more to use this code."


@pytest.mark.parametrize(
    ("promotion", "now", "reason", "message"),
    [
        (
            terms(ends_at=datetime(2026, 12, 3, 23, 59, 59, tzinfo=UTC)),
            datetime(2026, 12, 4, tzinfo=UTC),
            Reason.EXPIRED,
            "This code expired on 3 Dec 2026.",
        ),
        (
            terms(starts_at=datetime(2027, 1, 1, tzinfo=UTC)),
            datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
            Reason.NOT_YET_VALID,
            "This code is valid from 1 Jan 2027.",
        ),
        (terms(usage_limit=100, times_used=100), NOW, Reason.USED_UP, "This code has been used up."),
        (
            terms(per_customer_limit=1, customer_uses=1),
            NOW,
            Reason.USED_UP_BY_YOU,
            "You have already used this code as often as it allows.",
        ),
        (
            terms(category_ids=frozenset({999})),
            NOW,
            Reason.NOT_FOR_THESE_ITEMS,
            "This code does not apply to anything in your cart.",
        ),
    ],
)
def test_refusals(promotion, now, reason, message):
    with pytest.raises(NotApplicable) as caught:
        run(promotion, now=now)
    assert caught.value.reason is reason
    assert caught.value.message == message


def test_the_validity_window_includes_both_ends():
    start, end = datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    promotion = terms(starts_at=start, ends_at=end)
    assert run(promotion, now=start).total == 600
    assert run(promotion, now=end).total == 600


def test_one_use_left_still_applies():
    assert run(terms(usage_limit=100, times_used=99, per_customer_limit=2, customer_uses=1)).total == 600


def test_a_naive_now_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        run(terms(), now=datetime(2026, 12, 5))  # noqa: DTZ001 - the naive datetime is the point


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("summer10 ", "SUMMER10"),
        ("SUMMER10", "SUMMER10"),
        ("  Summer-10_b\t", "SUMMER-10_B"),
        ("ＳＵＭＭＥＲ１０", "SUMMER10"),  # full-width letters and digits: NFKC
        ("straße", "STRASSE"),
    ],
)
def test_normalise_code(text, code):
    assert normalise_code(text) == code


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "Enter a code"),
        ("   ", "Enter a code"),
        ("A" * 41, "at most 40"),
        ("SUMMER 10", "only have letters"),
        ("SOMMER€", "only have letters"),
    ],
)
def test_normalise_code_refuses(text, error):
    with pytest.raises(ValueError, match=error):
        normalise_code(text)


def test_terms_store_the_normalised_code():
    assert terms(code=" summer10").code == "SUMMER10"
    assert terms(code=None).code is None
    assert normalise_code("A" * 40) == "A" * 40


@pytest.mark.parametrize(
    ("kind", "value", "kwargs"),
    [(PCT, 0, {}), (PCT, 101, {}), (FIXED, 0, {}), (PCT, 10, {"min_subtotal": -1}), (PCT, 10, {"usage_limit": -1})],
)
def test_terms_refuse_values_out_of_range(kind, value, kwargs):
    with pytest.raises(ValueError):
        terms(kind, value, **kwargs)


def pair(promotion: PromotionTerms) -> tuple[PromotionTerms, Discount]:
    return promotion, run(promotion)


def test_combinable_promotions_are_used_together():
    ten = pair(terms(PCT, 10))  # 600: a 300, b 200, c 100
    five_off_b = pair(terms(FIXED, 500, category_ids=frozenset({200})))  # b 500
    assert best_combination([ten, five_off_b]) == [ten[1], five_off_b[1]]  # 1100 in all


def test_a_larger_non_combinable_promotion_is_used_alone():
    ten = pair(terms(PCT, 10))
    five_off_b = pair(terms(FIXED, 500, category_ids=frozenset({200})))
    # 20.00 off the whole order: 1000.17/666.78/333.06 -> 1000/666/333 + 1 to b (rem 4666) = 2000 > 1100
    twenty = pair(terms(FIXED, 2000, combinable=False))
    assert twenty[1].lines == (("a", 1000), ("b", 667), ("c", 333))
    assert best_combination([ten, twenty, five_off_b]) == [twenty[1]]


def test_on_a_tie_the_combinable_ones_win():
    ten = pair(terms(PCT, 10))
    five_off_b = pair(terms(FIXED, 500, category_ids=frozenset({200})))
    eleven = pair(terms(FIXED, 1100, combinable=False))  # exactly 1100: not larger
    assert best_combination([ten, eleven, five_off_b]) == [ten[1], five_off_b[1]]


def test_the_largest_non_combinable_one_wins_when_there_is_nothing_else():
    small, large = pair(terms(FIXED, 300, combinable=False)), pair(terms(PCT, 50, combinable=False))
    assert best_combination([small, large]) == [large[1]]
    assert best_combination([]) == []


def test_combined_promotions_never_take_a_line_below_zero():
    sixty = pair(terms(PCT, 60, product_ids=frozenset({2})))  # b: 1200 of 2000
    half = pair(terms(PCT, 50, product_ids=frozenset({2})))  # b: 1000, but only 800 is left
    chosen = best_combination([sixty, half])
    assert [discount.lines for discount in chosen] == [(("b", 1200),), (("b", 800),)]
    assert sum(discount.total for discount in chosen) == 2000


def test_free_shipping_is_taken_off_once():
    first, second = pair(terms(FREE, 0)), pair(terms(FREE, 0, code="AGAIN"))
    chosen = best_combination([first, second])
    assert [discount.shipping for discount in chosen] == [490, 0]
