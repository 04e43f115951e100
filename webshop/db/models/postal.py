"""A postal address's field limits, in one place: the columns of the address book (``Address``), of an
order's shipping address (``Order.ship_*``) and of a shop's address (``Shop.address_*``), the checkout's
check (``webshop.checkout.addresses.AddressInput.cleaned``) and the API's constraints
(``webshop.checkout.schemas``, ``webshop.shops.schemas``) all read them here. Lengths are in characters.

How an address is written out is here too: the town-and-code line in the country's order (``locality``,
``CITY_FIRST``) and the address on one line (``one_line``).
"""

from typing import Any

RECIPIENT = 120
"""The recipient's name."""
STREET_LINE = 200
"""Each of the two street address lines."""
CITY = 120
POSTAL_CODE = 20
COUNTRY = 2
"""An ISO 3166-1 alpha-2 code."""

NO_POSTAL_CODE = frozenset(
    {
        "AE", "AG", "AO", "AW", "BF", "BI", "BJ", "BO", "BS", "BW", "BZ", "CD", "CF", "CG", "CI", "CK", "CM",
        "DJ", "DM", "ER", "FJ", "GD", "GM", "GQ", "GY", "HK", "KI", "KM", "KN", "KP", "LC", "LY", "ML", "MO",
        "MR", "MW", "NR", "NU", "QA", "RW", "SB", "SC", "SL", "SR", "ST", "SY", "TF", "TG", "TK", "TL", "TO",
        "TV", "UG", "VU", "YE", "ZW",
    }
)  # fmt: skip
"""Countries with no postal code system (Hong Kong, the United Arab Emirates, Qatar, …): an address there
needs no postal code, and one typed is kept. After the Universal Postal Union's list of postcode systems
and Google's libaddressinput (no ``%Z`` in the country's format)."""

CITY_FIRST = frozenset({"US", "CA", "AU", "NZ", "GB", "IE", "IN", "SG", "ZA"})
"""Countries whose addresses give the town before the postal code ("Austin 73301"); elsewhere (most of
Europe, Latin America) the code comes first ("75005 Paris"). After the address formats of the Universal
Postal Union and Google's libaddressinput (``%C %Z`` against ``%Z %C``)."""


def needs_postal_code(country: str) -> bool:
    """Whether an address in ``country`` (ISO 3166-1 alpha-2) must have a postal code (``NO_POSTAL_CODE``)."""
    return country.upper() not in NO_POSTAL_CODE


def locality(postal_code: str, city: str, country: str) -> str:
    """The town-and-code line of an address, in ``country``'s order (``CITY_FIRST``); blank parts left out."""
    parts = (city, postal_code) if country.upper() in CITY_FIRST else (postal_code, city)
    return " ".join(part for part in parts if part)


def country_line(code: str) -> str:
    """An address's last line: the country's English short name (``pycountry``) for an ISO 3166-1 alpha-2
    ``code`` (``"GB"`` → ``"United Kingdom"``), the code itself when unknown."""
    import pycountry

    found = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    return str(getattr(found, "common_name", None) or found.name) if found else code


def one_line(address: Any) -> str:
    """An address (anything with ``name``, ``line1``, ``line2``, ``postal_code``, ``city`` and ``country``)
    on one line, for lists and the checkout's review, the country by name as on the order page
    (``country_line``): ``"Ada Lovelace, 1 Main St, Austin 73301, United States"``."""
    town = locality(address.postal_code, address.city, address.country)
    parts = [address.name, address.line1, address.line2, town, country_line(address.country)]
    return ", ".join(part for part in parts if part)
