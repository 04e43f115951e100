"""The address form's country list reads in a reader's order, addresses name their country, and a
region is read from its code or its name (ISO 3166-2)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from webshop.checkout.addresses import AddressInput
from webshop.checkout.quote import countries
from webshop.db.models.postal import (
    country_in_text,
    locality,
    one_line,
    region_and_parents,
    region_code,
    region_example,
    region_name,
)
from webshop.errors import ValidationFailed


def test_countries_sort_as_a_reader_sorts_them_accents_aside() -> None:
    names = [name for _code, name in countries()]
    assert names[:3] == ["Afghanistan", "Åland Islands", "Albania"]
    at = names.index("Côte d'Ivoire")
    assert names[at - 1 : at + 2] == ["Costa Rica", "Côte d'Ivoire", "Croatia"]
    assert len(names) == len(set(names)) >= 249


def test_an_address_on_one_line_ends_with_its_countrys_name() -> None:
    address = SimpleNamespace(
        name="Ada Lovelace",
        line1="12 Analytical Way",
        line2="",
        postal_code="10115",
        city="Berlin",
        country="DE",
        region="",
    )
    assert one_line(address) == "Ada Lovelace, 12 Analytical Way, 10115 Berlin, Germany"


@pytest.mark.parametrize(
    ("country", "typed", "code"),
    [
        ("US", "CA", "US-CA"),
        ("us", "us-ca", "US-CA"),
        ("US", "  new   york ", "US-NY"),
        ("CA", "Québec", "CA-QC"),
        ("CA", "quebec", "CA-QC"),
        ("IT", "RM", "IT-RM"),
        ("GB", "Scotland", "GB-SCT"),
        ("US", "ON", None),  # Ontario is Canada's
        ("US", "Narnia", None),
        ("US", "", None),
    ],
)
def test_a_region_is_read_from_its_code_or_its_name(country: str, typed: str, code: str | None) -> None:
    assert region_code(country, typed) == code


def test_a_region_is_written_after_the_town_by_its_own_code() -> None:
    assert locality("73301", "Austin", "US", "US-TX") == "Austin TX 73301"
    assert locality("00144", "Roma", "IT", "IT-RM") == "00144 Roma RM"
    assert locality("10115", "Berlin", "DE") == "10115 Berlin"
    assert locality("10115", "Berlin", "DE", "DE-BE") == "10115 Berlin"  # German addresses write no region
    assert locality("12345", "Springfield", "US", "Upstate") == "Springfield Upstate 12345"
    # Italy's regions (numbers) lie above the provinces the post writes: kept for tax, not printed (QA).
    assert locality("20121", "Milano", "IT", "IT-25") == "20121 Milano"
    assert locality("20121", "Milano", "IT", "IT-MI") == "20121 Milano MI"
    assert region_example("IT") == "AG for Agrigento"  # a province's letters, not "21 for Piemonte"
    assert region_name("US-CA") == "California" and region_name("XX-1") == "XX-1"


def test_an_address_keeps_its_region_as_the_iso_code_or_as_typed() -> None:
    typed = AddressInput(
        name="Ada", line1="1 Main St", city="Austin", postal_code="73301", country="us", region="texas"
    )
    assert typed.cleaned().region == "US-TX"
    london = AddressInput(
        name="Ada", line1="1 High St", city="London", postal_code="N1 9GU", country="GB", region="Greater London"
    )
    assert london.cleaned().region == "Greater London"  # no ISO 3166-2 code: kept as typed, taxed by no region
    # Names the post knows and ISO 3166-2 does not are kept (the US military's AE, Mexico City's CDMX)...
    for country, region in (("US", "AE"), ("MX", "CDMX"), ("US", "BC")):
        kept = AddressInput(
            name="Ada", line1="1 Main St", city="Austin", postal_code="73301", country=country, region=region
        )
        assert kept.cleaned().region == region
    # ...but a code of the country's form that ISO 3166-2 does not have is a mistake (QA: "US-ZZ" was saved
    # and shipped to).
    for country, region in (("US", "US-ZZ"), ("FR", "FR-ZZ"), ("US", "us-zz")):
        wrong = AddressInput(
            name="Ada", line1="1 Main St", city="Austin", postal_code="73301", country=country, region=region
        )
        with pytest.raises(ValidationFailed) as refused:
            wrong.cleaned()
        assert refused.value.field_errors["region"].startswith(f"“{region}” is not a state, province or region of")
    with pytest.raises(ValidationFailed) as refused:
        AddressInput(
            name="Ada", line1="1 Main St", city="Austin", postal_code="73301", country="US", region="x" * 81
        ).cleaned()
    assert set(refused.value.field_errors) == {"region"}


def test_a_region_lies_in_its_parents() -> None:
    assert region_and_parents("ES", "ES-TF") == ["ES-TF", "ES-CN"]
    assert region_and_parents("US", "US-CA") == ["US-CA"]
    assert region_and_parents("US", "Upstate") == [] and region_and_parents("US", "") == []
    assert region_and_parents("US", "CA-ON") == []  # another country's


def test_a_country_inside_a_sentence_takes_the_article_english_gives_it():
    assert country_in_text("US") == "the United States"
    assert country_in_text("nl") == "the Netherlands"
    assert country_in_text("FR") == "France"
    assert country_in_text("XX") == "XX"  # unknown: the code, as on an address
