"""A postal address's field limits, in one place: the columns of the address book (``Address``), of an
order's shipping address (``Order.ship_*``) and of a shop's address (``Shop.address_*``), the checkout's
check (``webshop.checkout.addresses.AddressInput.cleaned``) and the API's constraints
(``webshop.checkout.schemas``, ``webshop.shops.schemas``) all read them here. Lengths are in characters.

How an address is written out is here too: the town-and-code line in the country's order (``locality``,
``CITY_FIRST``) and the address on one line (``one_line``).
"""

import functools
from typing import Any

from webshop.text import without_accents

RECIPIENT = 120
"""The recipient's name."""
STREET_LINE = 200
"""Each of the two street address lines."""
CITY = 120
POSTAL_CODE = 20
COUNTRY = 2
"""An ISO 3166-1 alpha-2 code."""
REGION = 80
"""An address's state, province or region: its ISO 3166-2 code (``US-CA``) when it names one of the
country's subdivisions, else as typed ("Greater London")."""

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

REGION_SHOWN = frozenset({"US", "CA", "AU", "BR", "MX", "IT"})
"""Countries whose addresses write the region after the town, by its abbreviation ("Austin TX 73301",
"00144 Roma RM"); elsewhere an address keeps its region (for tax) without writing it. After the UPU's
address formats and Google's libaddressinput (``%S`` in the country's format, as an abbreviation)."""

CITY_FIRST = frozenset({"US", "CA", "AU", "NZ", "GB", "IE", "IN", "SG", "ZA"})
"""Countries whose addresses give the town before the postal code ("Austin 73301"); elsewhere (most of
Europe, Latin America) the code comes first ("75005 Paris"). After the address formats of the Universal
Postal Union and Google's libaddressinput (``%C %Z`` against ``%Z %C``)."""


def needs_postal_code(country: str) -> bool:
    """Whether an address in ``country`` (ISO 3166-1 alpha-2) must have a postal code (``NO_POSTAL_CODE``)."""
    return country.upper() not in NO_POSTAL_CODE


def locality(postal_code: str, city: str, country: str, region: str = "") -> str:
    """The town-and-code line of an address, in ``country``'s order (``CITY_FIRST``), with the region
    after the town where the country's addresses write it (``REGION_SHOWN``: an ISO 3166-2 code by its
    own part, "Austin TX 73301", "00144 Roma RM"; a region as typed, as it is); blank parts left out. A code
    whose own part is a number is a level above the one the post writes (Italy's regions, ``IT-25``
    Lombardia, above its provinces, ``IT-MI``): it is kept for tax, not written."""
    country = country.upper()
    state = ""
    if country in REGION_SHOWN and region:
        state = region.partition("-")[2] if region.startswith(f"{country}-") else region
        state = "" if state.isdigit() else state
    parts = (city, state, postal_code) if country in CITY_FIRST else (postal_code, city, state)
    return " ".join(part for part in parts if part)


def _folded(text: str) -> str:
    """A region's name as typed or as ISO 3166-2 writes it, for matching: accents, case, hyphens and runs of
    spaces aside."""
    return " ".join(without_accents(text).replace("-", " ").split())


@functools.lru_cache(maxsize=1024)
def region_code(country: str, typed: str) -> str | None:
    """The ISO 3166-2 code of the subdivision of ``country`` (ISO 3166-1 alpha-2) that ``typed`` names:
    its code with or without the country ("CA", "us-ca") or its name, case and accents aside
    ("california", "Quebec"). A name two levels share is the upper level's (``pycountry``). Cached: every
    address's check and every price of one asks, and the answer never changes while the shop runs.

    Returns:
        ``"US-CA"``; None when ``country`` has no such subdivision.
    """
    import pycountry

    country, wanted = country.upper(), _folded(typed)
    if not wanted:
        return None
    found = pycountry.subdivisions.get(country_code=country) or []  # type: ignore[no-untyped-call]
    code = wanted.upper().replace(" ", "-")
    for subdivision in found:
        if subdivision.code in (code, f"{country}-{code}"):
            return str(subdivision.code)
    named = sorted((s for s in found if _folded(s.name) == wanted), key=lambda s: (s.parent_code is not None, s.code))
    return str(named[0].code) if named else None


def region_name(code: str) -> str:
    """The name of an ISO 3166-2 subdivision (``"US-CA"`` → ``"California"``), the code itself when unknown."""
    import pycountry

    found = pycountry.subdivisions.get(code=code.upper()) if code else None  # type: ignore[no-untyped-call]
    return str(found.name) if found else code


def region_and_parents(country: str, region: str) -> list[str]:
    """An address's region with the subdivisions it lies in, most specific first (``pycountry``'s
    ``parent_code``): ``["ES-TF", "ES-CN"]`` for Santa Cruz de Tenerife in the Canary Islands, so that a
    rate set on either applies. ``[]`` for a region that is not one of ``country``'s codes."""
    import pycountry

    chain: list[str] = []
    code = region.upper() if region.upper().startswith(f"{country.upper()}-") else ""
    while code and code not in chain:
        found = pycountry.subdivisions.get(code=code)  # type: ignore[no-untyped-call]
        if found is None:
            break
        chain.append(str(found.code))
        parent = found.parent_code or ""
        code = parent if not parent or "-" in parent else f"{country.upper()}-{parent}"
    return chain


def region_example(country: str) -> str:
    """How a region of ``country`` can be typed, for messages: "CA for California" in the US, else by the
    country's first subdivision by code of letters only ("AB for Alberta" in Canada, "AG for Agrigento" in
    Italy, not a region's number such as "21"); ``""`` for a country without any."""
    import pycountry

    if country.upper() == "US":
        return "CA for California"
    found = sorted(pycountry.subdivisions.get(country_code=country.upper()) or [], key=lambda s: s.code)  # type: ignore[no-untyped-call]
    # A code the post writes (letters: Italy's provinces, "AG"), not a number for a level above (its regions).
    lettered = [s for s in found if s.code.partition("-")[2].isalpha()] or found
    return f"{lettered[0].code.partition('-')[2]} for {lettered[0].name}" if lettered else ""


def country_line(code: str) -> str:
    """An address's last line: the country's English short name (``pycountry``) for an ISO 3166-1 alpha-2
    ``code`` (``"GB"`` → ``"United Kingdom"``), the code itself when unknown."""
    import pycountry

    found = pycountry.countries.get(alpha_2=code.upper()) if len(code) == 2 else None
    return str(getattr(found, "common_name", None) or found.name) if found else code


WITH_THE = frozenset(
    "AE AX BS CC CF CG CK DO FK FO GB GM HM IM IO KM KY MH MP MV NL PH RU SB SC TC TF UM US VA".split()  # noqa: SIM905
)
"""Countries whose English short name takes "the" in running text ("ships to the United States",
"tax in the Netherlands"), as English style guides write them (the EU's Interinstitutional Style Guide): plural
names, and names made of a common noun ("Kingdom", "Republic", "Islands", "Federation")."""


def country_in_text(code: str) -> str:
    """The country of ISO 3166-1 alpha-2 ``code`` as written inside a sentence: ``country_line``'s name,
    with "the" where English puts it (``WITH_THE``): ``"the United States"``, ``"France"``."""
    name = country_line(code)
    return f"the {name}" if code.upper() in WITH_THE else name


def one_line(address: Any) -> str:
    """An address (anything with ``name``, ``line1``, ``line2``, ``postal_code``, ``city``, ``country``
    and ``region``) on one line, for lists and the checkout's review, the country by name as on the order
    page (``country_line``): ``"Ada Lovelace, 1 Main St, Austin TX 73301, United States"``."""
    town = locality(address.postal_code, address.city, address.country, address.region)
    parts = [address.name, address.line1, address.line2, town, country_line(address.country)]
    return ", ".join(part for part in parts if part)
