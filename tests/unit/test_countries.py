"""The address form's country list reads in a reader's order, and addresses name their country."""

from __future__ import annotations

from types import SimpleNamespace

from webshop.checkout.quote import countries
from webshop.db.models.postal import one_line


def test_countries_sort_as_a_reader_sorts_them_accents_aside() -> None:
    names = [name for _code, name in countries()]
    assert names[:3] == ["Afghanistan", "Åland Islands", "Albania"]
    at = names.index("Côte d'Ivoire")
    assert names[at - 1 : at + 2] == ["Costa Rica", "Côte d'Ivoire", "Croatia"]
    assert len(names) == len(set(names)) >= 249


def test_an_address_on_one_line_ends_with_its_countrys_name() -> None:
    address = SimpleNamespace(
        name="Ada Lovelace", line1="12 Analytical Way", line2="", postal_code="10115", city="Berlin", country="DE"
    )
    assert one_line(address) == "Ada Lovelace, 12 Analytical Way, 10115 Berlin, Germany"
