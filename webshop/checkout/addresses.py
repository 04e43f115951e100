"""Addresses at checkout: a shipping address as typed and checked, and a guest's e-mail address."""

from __future__ import annotations

import re

import msgspec

from webshop.accounts.service import EMAIL_RE, normalize_email
from webshop.checkout.quote import country_name
from webshop.db.models import postal
from webshop.errors import ValidationFailed
from webshop.tax.destination import not_a_region
from webshop.text import Line

COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
POSTAL_CODE_RE = re.compile(r"[^\W_](?:[^\W_]| |-)*")
"""A postal code: letters and digits (any script), with spaces and hyphens between."""


def clean_guest_email(raw: str) -> str:
    """A guest's e-mail address, trimmed, its domain lower-cased (``normalize_email``).

    Raises:
        ValidationFailed: empty, longer than 254 characters (RFC 5321 §4.5.3.1.3) or not an address.
    """
    email = normalize_email(raw or "")
    if not email:
        raise ValidationFailed("Enter your e-mail address.", field_errors={"email": "Enter your e-mail address."})
    if len(email) > 254 or not EMAIL_RE.match(email):
        message = "Enter an e-mail address like name@example.com."
        raise ValidationFailed(message, field_errors={"email": message})
    return email


class AddressInput(msgspec.Struct, frozen=True, kw_only=True):
    """A shipping address as typed; ``country`` is an ISO 3166-1 alpha-2 code.

    Also the fields of the checkout's address form (``AddressForm`` extends it), so a posted form
    decodes into it; ``Line`` refuses control characters there (``webshop.text``)."""

    name: Line = ""
    line1: Line = ""
    line2: Line = ""
    city: Line = ""
    postal_code: Line = ""
    country: Line = ""
    region: Line = ""

    def cleaned(self) -> AddressInput:
        """Trimmed copy with the country code upper-cased and the region (optional: a state, province or
        other subdivision, typed as its code or its name) as its ISO 3166-2 code where it names one
        (``postal.region_code``), else as typed.

        Raises:
            ValidationFailed: a required field is empty (the postal code is not required in a country
                without postal codes, ``postal.NO_POSTAL_CODE``) or too long, the postal code has other characters
                than letters, digits, spaces and hyphens (the Universal Postal Union's postcode formats use
                no others), the city no letter, the country is not one of ISO 3166-1, or the region is
                too long or not one of the country's subdivisions where it must be (``_region``).
        """
        values = {k: " ".join(str(getattr(self, k) or "").split()) for k in ADDRESS_FIELDS}
        values["country"] = values["country"].upper()
        errors: dict[str, str] = {}
        limits = {
            "name": postal.RECIPIENT,
            "line1": postal.STREET_LINE,
            "line2": postal.STREET_LINE,
            "city": postal.CITY,
            "postal_code": postal.POSTAL_CODE,
        }
        labels = {
            "name": "the recipient's name",
            "line1": "the street address",
            "city": "the city",
            "postal_code": "the postal code",
        }
        if not postal.needs_postal_code(values["country"]):
            del labels["postal_code"]
        for key, label in labels.items():
            if not values[key]:
                errors[key] = f"Enter {label}."
        for key, limit in limits.items():
            if len(values[key]) > limit:
                errors[key] = f"Use at most {limit} characters."
        if values["postal_code"] and not POSTAL_CODE_RE.fullmatch(values["postal_code"]):
            errors["postal_code"] = "Use letters, digits, spaces and hyphens, as in 75005, 10115 or SW1A 1AA."
        if values["city"] and not any(character.isalpha() for character in values["city"]):
            errors["city"] = "Enter the name of the city or town."
        if not _known_country(values["country"]):
            errors["country"] = UNKNOWN_COUNTRY
        else:
            values["region"], problem = _region(values["country"], values["region"])
            if problem:
                errors["region"] = problem
        if errors:
            raise ValidationFailed("Please correct the address.", field_errors=errors)
        return AddressInput(**values)

    def cleaned_country(self) -> str:
        """The country alone, as ``cleaned`` keeps it: its ISO 3166-1 alpha-2 code, upper-cased.

        Raises:
            ValidationFailed: (field ``country``) not a country of ISO 3166-1.
        """
        code = self.country.strip().upper()
        if not _known_country(code):
            raise ValidationFailed(UNKNOWN_COUNTRY, field_errors={"country": UNKNOWN_COUNTRY})
        return code

    def cleaned_region(self) -> str:
        """The region alone, as ``cleaned`` keeps it: the ISO 3166-2 code of the country's subdivision it
        names, else as typed (spaces folded), ``""`` when none is given.

        Raises:
            ValidationFailed: (field ``region``) longer than ``postal.REGION``, or not one of the country's
                subdivisions where it must be (``_region``).
        """
        code, problem = _region(self.country.strip().upper(), " ".join(self.region.split()))
        if problem:
            raise ValidationFailed(problem, field_errors={"region": problem})
        return code


UNKNOWN_COUNTRY = "Choose a country from the list (an ISO 3166-1 code such as US or DE)."


def _known_country(code: str) -> bool:
    """Whether ``code`` (upper case) is an ISO 3166-1 alpha-2 code (``pycountry`` knows its name)."""
    return bool(COUNTRY_RE.match(code)) and country_name(code) != code


def _region(country: str, typed: str) -> tuple[str, str]:
    """``(region, "")`` of a region as typed: its ISO 3166-2 code when it names one of ``country``'s
    subdivisions (``postal.region_code``), else the text itself (a region the post knows and ISO 3166-2
    names otherwise, "Greater London": only a country the shop taxes by region needs a code,
    ``webshop.tax.destination.RegionNeeded``); ``("", why)`` when it is too long, or is written as a code of
    the country that ISO 3166-2 does not have ("US-ZZ": a mistake, not a name the post knows).

    A name ISO 3166-2 does not know is kept even where the label prints the region ("Austin TX 73301"): the
    post knows more than ISO's list (APO "AE", "CDMX", "D.C.", "Aosta"), so refusing those would turn away
    real addresses until the shop has each country's aliases."""
    if len(typed) > postal.REGION:
        return "", f"Use at most {postal.REGION} characters."
    if not typed:
        return "", ""
    code = postal.region_code(country, typed)
    if code is None and typed.upper().startswith(f"{country}-"):
        return "", not_a_region(country, typed)
    return code or typed, ""


ADDRESS_FIELDS = AddressInput.__struct_fields__
"""The fields of an address, in order: ``name``, ``line1``, ``line2``, ``city``, ``postal_code``, ``country``,
``region``."""


def address_input(source: object) -> AddressInput:
    """The ``AddressInput`` of anything with its attributes (``name``, ``line1``, ``line2``, ``city``,
    ``postal_code``, ``country``, ``region``): the address form, an address-book row, the API's ``AddressIn``."""
    return AddressInput(**{name: getattr(source, name) for name in ADDRESS_FIELDS})
