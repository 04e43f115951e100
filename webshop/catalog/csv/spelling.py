"""A catalog file's facet values take the catalog's spelling (``webshop.catalog.facet_spelling``).

Twice: once for the whole file before anything is written (``respell_facets``: the preview shows what
the import writes, and a value the file spells two ways takes its first), and again at the start of
each batch's transaction, under the facet writers' lock (``respell_batch``), against the products the
file does not write: a spelling another writer committed meanwhile (an admin saving "Teal" while the
file says "TEAL") is the one stored.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.csv.parse import CATEGORY_FACET, ProductRow
from webshop.catalog.csv.sellers import EVERY_SHOP, ImportShops, may_update
from webshop.catalog.facet_spelling import FacetSpellings, stored_spellings
from webshop.db.in_lists import chunks
from webshop.db.models import Product


async def respell_facets(
    session: AsyncSession, rows: Sequence[ProductRow], shop_ids: dict[str, int], who: ImportShops = EVERY_SHOP
) -> list[str]:
    """Give the facet values of ``rows`` the catalog's spelling, in place: ``color:Blue`` in the file
    is stored as ``blue`` where the catalog has ``blue``, and a value the file spells two ways takes
    its first. The existing products the file will update (``shop_ids`` and ``who`` as
    ``import_catalog``'s, see ``may_update``) do not count, so a file can change the case of a value
    only they have; a row refused for naming another shop's product changes nothing and counts. The
    preview calls it too, so it describes what the import writes. ``category`` pairs are left as
    written (they name the category tree).

    Returns:
        The slugs the file writes (the products it creates and those it may update), for ``respell_batch``.
    """
    shop_of: dict[str, int | None] = {}
    for chunk in chunks([row.slug for row in rows]):
        found = await session.execute(select(Product.slug, Product.shop_id).where(Product.slug.in_(chunk)))
        shop_of.update({slug: shop_id for slug, shop_id in found})
    updated = [row.slug for row in rows if row.slug in shop_of and may_update(row, shop_of[row.slug], shop_ids, who)]
    _respell(rows, await stored_spellings(session, _names(rows), except_slugs=updated))
    return [*updated, *(row.slug for row in rows if row.slug not in shop_of)]


async def respell_batch(session: AsyncSession, batch: Sequence[ProductRow], written: Collection[str]) -> None:
    """Respell ``batch`` (already ``respell_facets``'d) in its write transaction, first thing: takes the
    facet writers' lock (held until the batch commits) and reads the spellings of the products the file
    does not write (``written``), so a value only this file has keeps the file's spelling."""
    _respell(batch, await stored_spellings(session, _names(batch), except_slugs=written, for_write=True))


def _names(rows: Sequence[ProductRow]) -> set[str]:
    """The facet names ``rows`` write (``category`` is the product's category, not a facet)."""
    return {facet for row in rows for facet, _value in row.facets if facet != CATEGORY_FACET}


def _respell(rows: Sequence[ProductRow], spellings: FacetSpellings) -> None:
    """Each row's facet values as ``spellings`` spell them, repeats dropped, ``category`` untouched."""
    for row in rows:
        respelt = [(f, v if f == CATEGORY_FACET else spellings.spell(f, v)) for f, v in row.facets]
        row.facets = list(dict.fromkeys(respelt))
