"""One spelling for each facet value: "Blue" and "blue" are one colour.

The filters count and match facet values exactly (``webshop.catalog.browse``), so two spellings of one
value would be two entries in the shopper's filter list, each with half the products. Every write of a
product's facets (the admin form, the API, the CSV import) therefore stores a value the way the catalog
already spells it: the first spelling stored wins, and later ones that differ only in case (Unicode
case folding, ``str.casefold``) take it. Migration ``e7b2c9d4f1a3`` gave existing catalogs one spelling
each in the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.db.models import ProductFacet


def facet_value_key(value: str) -> str:
    """What two spellings of one facet value share: ``"Blue"`` and ``"BLUE"`` → ``"blue"`` (Unicode case
    folding, so ``"STRASSE"`` and ``"straße"`` are one value too)."""
    return value.casefold()


class FacetSpellings:
    """The spelling each facet value is stored with, by ``(facet, facet_value_key(value))``.

    ``spell`` answers with the known spelling, or learns the one it is given: within one write (a
    CSV file, a product's facets) the first spelling seen is the one kept.
    """

    def __init__(self, known: Iterable[tuple[str, str]] = ()) -> None:
        """``known``: ``(facet, value)`` pairs, the preferred spelling of each value first."""
        self._spelling: dict[tuple[str, str], str] = {}
        for facet, value in known:
            self._spelling.setdefault((facet, facet_value_key(value)), value)

    def spell(self, facet: str, value: str) -> str:
        """``value`` as facet ``facet`` spells it (``("color", "BLUE")`` → ``"blue"`` when stored so)."""
        return self._spelling.setdefault((facet, facet_value_key(value)), value)

    def pairs(self, pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """``(facet, value)`` pairs respelt, in order, without the repeats respelling makes."""
        return list(dict.fromkeys((facet, self.spell(facet, value)) for facet, value in pairs))

    def mapping(self, facets: dict[str, list[str]]) -> dict[str, list[str]]:
        """``{facet: [values]}`` respelt, values in order, without the repeats respelling makes."""
        return {
            facet: list(dict.fromkeys(self.spell(facet, value) for value in values)) for facet, values in facets.items()
        }


async def stored_spellings(
    session: AsyncSession, facets: Iterable[str], *, except_product_id: int | None = None
) -> FacetSpellings:
    """The spellings the catalog stores for the values of ``facets`` (facet names, ``["color"]``).

    Where a value is stored in more than one spelling (written before the rule, or by two writers at
    once on PostgreSQL), the one most products use is preferred, then the first in code-point order, so
    both engines answer alike. ``except_product_id``: leave that product's own facets out, so that an
    admin who changes the case of a value only that product has is not held to the old spelling.
    One query, on ``ix_product_facets_facet_value``.
    """
    names = sorted(set(facets))
    if not names:
        return FacetSpellings()
    uses = func.count(ProductFacet.id)
    statement = (
        select(ProductFacet.facet, ProductFacet.value, uses)
        .where(ProductFacet.facet.in_(names))
        .group_by(ProductFacet.facet, ProductFacet.value)
    )
    if except_product_id is not None:
        statement = statement.where(ProductFacet.product_id != except_product_id)
    found: list[tuple[str, str, int]] = [
        (facet, value, count) for facet, value, count in await session.execute(statement)
    ]
    found.sort(key=lambda row: (row[0], -row[2], row[1]))
    return FacetSpellings((facet, value) for facet, value, _uses in found)
