"""Whole numbers typed in forms and query strings (``webshop.text.whole_number_text``): ASCII digits only."""

from __future__ import annotations

import pytest

from webshop.text import whole_number_text


@pytest.mark.parametrize(
    ("text", "expected"),
    [("7", 7), (" 42 ", 42), ("007", 7), ("9" * 18, int("9" * 18))],
)
def test_ascii_digits_are_a_number(text, expected):
    assert whole_number_text(text) == expected


@pytest.mark.parametrize("text", ["", " ", "-1", "+1", "1.5", "1_000", "１２", "²", "٣", "9" * 19, "1e3", "0x10"])
def test_anything_else_is_none(text):
    assert whole_number_text(text) is None


def test_a_sign_only_where_asked_and_the_length_bound():
    assert whole_number_text("-3", signed=True) == -3
    assert whole_number_text("+5", signed=True) == 5
    assert whole_number_text("+-5", signed=True) is None
    assert whole_number_text("1234", max_digits=3) is None
