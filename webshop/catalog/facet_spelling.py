"""One spelling for each facet value: "Blue" and "blue" are one colour.

The filters count and match facet values exactly (``webshop.catalog.browse``), so two spellings of one
value would be two entries in the shopper's filter list, each with half the products. Every write of a
product's facets (the admin form, the API, the CSV import) therefore stores a value the way the other
products spell it; only a value that no other product has keeps the spelling it was given, so an admin
can still change its case. Two spellings are one value when their Unicode case folds (``str.casefold``)
of the NFC form match (``facet_value_key``). Where the catalog holds two spellings of one value already,
the one most products use wins, then the first in code-point order; migration ``e7b2c9d4f1a3`` merged
the spellings stored before this rule the same way.

Writers read the spellings under one lock (``for_write``): on PostgreSQL a transaction-level advisory
lock taken before the read, so of two writers saving two spellings of a new value at the same moment the
second reads the first's once it has committed; SQLite's writers take turns already (``BEGIN IMMEDIATE``).
The writers: a product's create and update (the admin form, the API), and each batch of a CSV import
(``webshop.catalog.csv.spelling.respell_batch``, first thing in its transaction).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.db.in_lists import chunks
from webshop.db.models import Product, ProductFacet

SPELLING_LOCK = 0x5753_4650
"""The PostgreSQL advisory lock key the writers of facet values share ("WSFP"): ``stored_spellings``
with ``for_write``. Held until the writer's transaction ends."""


def facet_value_key(value: str) -> str:
    """What two spellings of one facet value share: ``"Blue"`` and ``"BLUE"`` → ``"blue"`` (the Unicode
    case fold of the NFC form, so ``"STRASSE"`` and ``"straße"``, or a composed and a decomposed "é",
    are one value too)."""
    return unicodedata.normalize("NFC", value).casefold()


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

    def known(self, facet: str, value: str) -> str:
        """``value`` as facet ``facet`` spells it, or as given when no product has it; learns nothing
        (for values from a URL: a shared ``FacetSpellings`` must not grow with what visitors type)."""
        return self._spelling.get((facet, facet_value_key(value)), value)

    def __len__(self) -> int:
        """How many values it knows."""
        return len(self._spelling)

    def mapping(self, facets: dict[str, list[str]]) -> dict[str, list[str]]:
        """``{facet: [values]}`` respelt, values in order, without the repeats respelling makes."""
        return {
            facet: list(dict.fromkeys(self.spell(facet, value) for value in values)) for facet, values in facets.items()
        }


async def lock_spellings(session: AsyncSession) -> None:
    """Take the facet writers' lock until the transaction ends: PostgreSQL's
    ``pg_advisory_xact_lock(SPELLING_LOCK)`` (again in one transaction is harmless); nothing on SQLite,
    whose writers take turns. A writer that also locks rows takes it first, as every facet writer does,
    so two of them never wait for each other in opposite orders."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SPELLING_LOCK})


async def stored_spellings(
    session: AsyncSession,
    facets: Iterable[str],
    *,
    except_product_id: int | None = None,
    except_slugs: Collection[str] = (),
    for_write: bool = False,
) -> FacetSpellings:
    """The spellings the other products of the catalog use for the values of ``facets`` (facet names,
    ``["color"]``).

    ``for_write``: the caller writes facet values in this transaction; on PostgreSQL the read waits for
    (and then sees) every other such writer's commit (``pg_advisory_xact_lock(SPELLING_LOCK)``, held
    until this transaction ends), so two products never store two spellings of one new value.

    ``except_product_id``, ``except_slugs``: the products being written (one the admin saves, the
    products a CSV file updates), whose own spellings do not hold them: a value only they have may
    change its case. One grouped query (answered from ``ix_product_facets_facet_value``), and for
    ``except_slugs`` one more per 500 slugs counting theirs, which are taken off.
    """
    names = sorted(set(facets))
    if not names:
        return FacetSpellings()
    if for_write:
        await lock_spellings(session)
    grouped = (
        select(ProductFacet.facet, ProductFacet.value, func.count())
        .where(ProductFacet.facet.in_(names))
        .group_by(ProductFacet.facet, ProductFacet.value)
    )
    if except_product_id is not None:
        grouped = grouped.where(ProductFacet.product_id != except_product_id)
    uses: Counter[tuple[str, str]] = Counter()
    for facet, value, count in await session.execute(grouped):
        uses[(facet, value)] += count
    for chunk in chunks(sorted(set(except_slugs))):
        theirs = grouped.join(Product, Product.id == ProductFacet.product_id).where(Product.slug.in_(chunk))
        for facet, value, count in await session.execute(theirs):
            uses[(facet, value)] -= count
    ranked = sorted(((facet, -count, value) for (facet, value), count in uses.items() if count > 0))
    return FacetSpellings((facet, value) for facet, _count, value in ranked)
