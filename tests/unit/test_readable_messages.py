"""msgspec's validation messages as the forms and the API's ``errors`` say them (``webshop.text.readable_message``).

Browser QA saw "Expected `str` of length <= 120 - at `$.name`" beside a promotion's name on an admin page."""

from typing import Annotated

import msgspec
import pytest

from webshop.errors import ValidationFailed
from webshop.text import readable_message
from webshop.validation import validated


@pytest.mark.parametrize(
    ("message", "worded"),
    [
        ("Expected `str` of length <= 120", "At most 120 characters."),
        ("Expected `str` of length <= 1", "At most 1 character."),
        ("Expected `str` of length >= 1", "Cannot be empty."),
        ("Expected `str` of length >= 8", "At least 8 characters."),
        ("Expected `array` of length <= 50", "At most 50 items."),
        ("Expected `array` of length >= 1", "Cannot be empty."),
        ("Expected `int` >= 0", "Must be 0 or more."),
        ("Expected `int` <= 2147483647", "Must be 2147483647 or less."),
        ("Expected `int` > 0", "Must be more than 0."),
        ("Expected `int` < 100", "Must be less than 100."),
        ("Expected `int`, got `str`", "Must be a whole number."),
        ("Object missing required field `name`", "Object missing required field `name`"),
    ],
)
def test_msgspec_messages_are_said_in_words(message: str, worded: str) -> None:
    assert readable_message(message) == worded


class Shape(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(max_length=120)]
    percent: Annotated[int, msgspec.Meta(ge=0, le=100)]


def test_a_service_input_over_its_limits_names_the_field_in_words() -> None:
    with pytest.raises(ValidationFailed) as refused:
        validated({"name": "x" * 300, "percent": 150}, Shape, subject="the promotion")
    assert refused.value.field_errors == {"name": "At most 120 characters.", "percent": "Must be 100 or less."}
    assert refused.value.detail == "Check the name of the promotion: at most 120 characters."
