"""The figures block of the cart, the review, the order page (``templates/_totals.html``): each amount once.

Rendered with the shop's own template environment from a plain stand-in for a quote; what a shopper
reads is the text of the ``<dl>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from webshop.web.templating import template_config


@dataclass
class Promotion:
    name: str
    code: str | None
    amount: int


@dataclass
class Figures:
    subtotal: int = 10000
    discount: int = 0
    shipping: int = 500
    shipping_discount: int = 0
    tax: int = 2100
    total: int = 12600
    currency: str = "USD"
    prices_include_tax: bool = False
    tax_by_rate: tuple[tuple[int, int, int], ...] = ((2000, 10500, 2100),)
    promotions: list[Promotion] = field(default_factory=list)
    method: object = "standard"


def rendered(figures: Figures, estimate: bool = False) -> list[tuple[str, str]]:
    """The ``(term, amount)`` rows the macro writes for ``figures``."""
    environment: Any = template_config().engine_instance.engine
    macro = environment.from_string('{% from "_totals.html" import totals_list %}{{ totals_list(q, "t", e) }}')
    html = macro.render(q=figures, e=estimate)
    rows = re.findall(r"<dt[^>]*>(.*?)</dt>\s*<dd[^>]*>(.*?)</dd>", html, re.S)
    return [(re.sub(r"<[^>]+>", "", t).strip(), re.sub(r"<[^>]+>", "", a).strip()) for t, a in rows]


def test_one_rate_is_one_tax_line_that_names_it():
    assert ("Tax 20% on $105.00", "$21.00") in rendered(Figures())
    assert all(term != "Tax" for term, _ in rendered(Figures()))


def test_several_rates_are_a_line_each_and_their_sum():
    figures = Figures(tax_by_rate=((1000, 5000, 500), (2000, 5500, 1100)), tax=1600)
    rows = rendered(figures)
    assert ("Tax 10% on $50.00", "$5.00") in rows and ("Tax 20% on $55.00", "$11.00") in rows
    assert ("Tax", "$16.00") in rows


def test_one_promotion_is_the_discount_line_and_several_add_up():
    one = Figures(discount=1000, promotions=[Promotion("Spring", "SPRING", 1000)])
    assert [row for row in rendered(one) if "−" in row[1]] == [("Spring (SPRING)", "−$10.00")]
    two = Figures(discount=1500, promotions=[Promotion("Spring", "SPRING", 1000), Promotion("Loyal", None, 500)])
    assert [row for row in rendered(two) if "−" in row[1]] == [
        ("Spring (SPRING)", "−$10.00"),
        ("Loyal", "−$5.00"),
        ("Discount", "−$15.00"),
    ]


@pytest.mark.parametrize(
    ("shipping", "shipping_discount", "shown"), [(0, 0, "Free"), (0, 690, "Free $6.90"), (500, 0, "$5.00")]
)
def test_shipping_that_costs_nothing_says_free(shipping, shipping_discount, shown):
    rows = dict(rendered(Figures(shipping=shipping, shipping_discount=shipping_discount)))
    assert " ".join(rows["Shipping"].split()) == shown


def test_a_cart_whose_shipping_is_not_known_yet_is_not_said_to_ship_free():
    """No zone or method serves the cart's estimate yet (``method`` None): nothing is promised."""
    rows = dict(rendered(Figures(shipping=0, method=None), estimate=True))
    assert rows["Shipping"] == "$0.00"
