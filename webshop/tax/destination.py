"""Tax rates at a destination: which of the rates an admin manages (``webshop.tax.service``) apply to an
address, by its country and region (ISO 3166-2), and when an address must name its region.

The most specific rate of a tax category wins: the address's region's, else that of a region it lies in
(``postal.region_and_parents``: a rate on the Canary Islands, ``ES-CN``, covers ``ES-TF``), else the
country's, else the rest of the world's (``*``). A country the shop taxes by region (it has one rate by
region or more) needs its addresses to name one of its regions (``RegionNeeded``); the cart's estimate,
with no address yet, takes the country's rates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import select

from webshop.db.models import REST_OF_WORLD, TaxRate, postal
from webshop.errors import ValidationFailed

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


def not_a_region(country: str, typed: str) -> str:
    """The message for a region ``typed`` that names none of ``country``'s ISO 3166-2 subdivisions, with an
    example of one ("“Upstate” is not a state, province or region of the United States: enter its name or
    code (as CA for California).")."""
    name, example = postal.country_in_text(country), postal.region_example(country)
    example = f" (as {example})" if example else ""
    return f"“{typed}” is not a state, province or region of {name}: enter its name or code{example}."


class RegionNeeded(ValidationFailed):
    """The address names none of its country's regions (ISO 3166-2) and the shop taxes that country by
    region (HTTP 422, field ``region``): the tax cannot be known without it."""

    def __init__(self, country: str, typed: str = "") -> None:
        """``typed``: the region the address gave, which is not one of ``country``'s."""
        if typed:
            message = not_a_region(country, typed)
        else:
            name, example = postal.country_in_text(country), postal.region_example(country)
            example = f" (as {example})" if example else ""
            message = f"Enter the state, province or region of the address: tax in {name} depends on it{example}."
        super().__init__(message, field_errors={"region": message})


class DestinationRates(NamedTuple):
    """The tax rates at a destination (``rates_at``).

    Attributes:
        rates: ``{tax category: basis points}``.
        region: The ISO 3166-2 region whose own rates are among them; ``""``: none.
        by_region: The shop taxes the country by region (it has a rate on one of its regions or more):
            an address there must name its region (``RegionNeeded``).
        region_decides: A rate of the country's regions is of a category charged (``categories``): for an
            estimate (no region given) the rates are the country's, and the address's region may change them.
    """

    rates: dict[str, int]
    region: str
    by_region: bool
    region_decides: bool


async def rates_at(
    session: AsyncSession, country: str, region: str | None = None, categories: Iterable[str] | None = None
) -> DestinationRates:
    """The rates at ``country`` and ``region`` (an address's region: an ISO 3166-2 code, or text): by
    tax category, and the region whose own rates are among them (``DestinationRates``). The most specific
    rate of a category wins: the region's, else that of a region it lies in (``ES-CN`` for ``ES-TF``,
    ``postal.region_and_parents``), else the country's, else the rest of the world's (``*``).

    ``region`` None prices an estimate (no address yet: the country's rates); ``""`` is an address
    without a region. ``categories``: the tax categories charged (a cart's lines, shipping), so that the
    region named is one whose rate they pay (``None``: any).

    Raises:
        RegionNeeded: the shop has rates by region in ``country`` and ``region`` (not None) names
            none of its ISO 3166-2 regions.
    """
    chain = postal.region_and_parents(country, region or "")
    rows = await session.execute(
        select(TaxRate.country, TaxRate.region, TaxRate.tax_category, TaxRate.rate_bp).where(
            TaxRate.country.in_((country, REST_OF_WORLD))
        )
    )
    charged = None if categories is None else set(categories)
    rank: dict[str, tuple[int, int, str]] = {}  # category: (how specific, rate, region)
    by_region = region_decides = False
    for row_country, row_region, category, rate in rows:
        if row_region:
            by_region = by_region or row_country == country
            region_decides = region_decides or (row_country == country and (charged is None or category in charged))
            if row_region not in chain:
                continue
            specific = 2 + len(chain) - chain.index(row_region)  # the region itself beats its parents
        else:
            specific = 1 if row_country == country else 0
        if category not in rank or specific > rank[category][0]:
            rank[category] = (specific, rate, row_region)
    if region is not None and by_region and not chain:
        raise RegionNeeded(country, region)
    regions = [found for category, (_, _, found) in rank.items() if found and (charged is None or category in charged)]
    taxed_region = min(regions, key=chain.index) if regions else ""
    rates = {category: rate for category, (_, rate, _) in rank.items()}
    return DestinationRates(rates, taxed_region, by_region, region_decides)


class RegionGap(NamedTuple):
    """A country the shop taxes by region for a tax category without a rate of the country's own for it
    (``region_gaps``): its addresses outside ``regions`` pay the rest of the world's rate of the category.

    Attributes:
        country: ISO 3166-1 alpha-2 code.
        tax_category: The category, as ``TaxRate.tax_category``.
        regions: The ISO 3166-2 codes with a rate of the category, sorted.
        fallback_bp: The rest of the world's rate of the category in basis points; None: those addresses
            are untaxed.
    """

    country: str
    tax_category: str
    regions: list[str]
    fallback_bp: int | None


def region_gaps(rates: Sequence[TaxRate]) -> list[RegionGap]:
    """The countries and categories where rates by region leave the country's other regions to the rest
    of the world's rate (``rates_at``'s precedence: region, country, ``*``), sorted by country and category.

    An admin who adds a rate for California and none for the United States taxes New York at the
    "every other country" rate, which is rarely meant; the tax rates page says so (``rates``: every rate).
    """
    country_level = {(rate.country, rate.tax_category) for rate in rates if not rate.region}
    fallback = {rate.tax_category: rate.rate_bp for rate in rates if rate.country == REST_OF_WORLD}
    regions: dict[tuple[str, str], list[str]] = {}
    for rate in rates:
        if rate.region and (rate.country, rate.tax_category) not in country_level:
            regions.setdefault((rate.country, rate.tax_category), []).append(rate.region)
    return [
        RegionGap(country, category, sorted(codes), fallback.get(category))
        for (country, category), codes in sorted(regions.items())
    ]
