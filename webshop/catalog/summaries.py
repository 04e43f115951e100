"""The derived data every catalog write keeps in its own transaction: the per-product summaries
(``min_price``, ``max_price``, ``in_stock``), the search documents, and the catalog version that keys
every worker's cache of catalog reads (``catalog_changed``; the bump is the commit's last statement).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from webshop.catalog.change_feed import mark_followed_reads_stale
from webshop.catalog.search_index import reindex_products
from webshop.db.models import CatalogState, Product, Variant

# --- the catalog version and the derived data every write keeps ------------------------------------

_CHANGED = "webshop.catalog_changed"
_STATE = cast("Table", CatalogState.__table__)
_BUMP = update(_STATE).where(_STATE.c.id == 1).values(version=CatalogState.version + 1)


def mark_catalog_changed(session: AsyncSession | Session) -> None:
    """Make the session's next commit bump ``catalog_state.version`` (as its last statement)."""
    session.info[_CHANGED] = True


@event.listens_for(Session, "before_commit")
def _bump_catalog_version(session: Session) -> None:
    """The bump is the transaction's last statement: on PostgreSQL the version row stays locked only
    between it and the commit, and no other lock is taken after it (no lock-order deadlocks)."""
    if session.info.pop(_CHANGED, False):
        session.execute(_BUMP)
        mark_followed_reads_stale(session)


_products = cast("Table", Product.__table__)
_SUMMARY_UPDATE = (
    update(_products)
    .where(_products.c.id == bindparam("pid"))
    .values(
        min_price=bindparam("low"),
        max_price=bindparam("high"),
        in_stock=bindparam("stocked"),
        updated_at=_products.c.updated_at,  # derived data: not an edit of the product
    )
)


async def refresh_product_summaries(session: AsyncSession, product_ids: Iterable[int | None]) -> bool:
    """Recompute ``min_price``, ``max_price`` and ``in_stock`` of ``product_ids`` from their variants.

    Call it after statements that change variants' prices or stock, or add or remove variants, in the
    same transaction (once, after all of them). On PostgreSQL the products are first locked
    (``SELECT ... FOR NO KEY UPDATE`` in id order) and then read again in a new statement, so two
    checkouts selling the last units of two variants of one product cannot both miss the other's
    sale. Products whose summary is unchanged are not written; a change marks the catalog changed.

    Args:
        session: The writing session.
        product_ids: Product ids (``None`` and repeats ignored; unknown ids are skipped).

    Returns:
        True when any summary changed.
    """
    ids = sorted({pid for pid in product_ids if pid is not None})
    if not ids:
        return False
    await session.flush()
    rows = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        stored = {
            pid: (low, high, bool(stocked))
            for pid, low, high, stocked in await session.execute(
                select(Product.id, Product.min_price, Product.max_price, Product.in_stock)
                .where(Product.id.in_(chunk))
                .order_by(Product.id)
                .with_for_update(key_share=True)
            )
        }
        fresh = {
            pid: (low, high, bool(stocked))
            for pid, low, high, stocked in await session.execute(_fresh_summaries(chunk))
        }
        for pid, before in stored.items():
            after = fresh.get(pid, (0, 0, False))
            if after != before:
                rows.append({"pid": pid, "low": after[0], "high": after[1], "stocked": after[2]})
    if rows:
        await session.execute(_SUMMARY_UPDATE, rows)
        mark_catalog_changed(session)
    return bool(rows)


def _fresh_summaries(product_ids: Sequence[int] | None = None) -> Any:
    statement = select(
        Variant.product_id, func.min(Variant.price), func.max(Variant.price), func.max(Variant.stock) > 0
    ).group_by(Variant.product_id)
    if product_ids is not None:
        statement = statement.where(Variant.product_id.in_(product_ids))
    return statement


Summary = tuple[int, int, bool]
"""A product's ``(min_price, max_price, in_stock)``."""


async def find_summary_mismatches(session: AsyncSession) -> list[tuple[str, Summary, Summary]]:
    """``[(slug, stored, fresh)]`` for every product whose summary columns disagree with its variants.

    ``stored`` and ``fresh`` are ``(min_price, max_price, in_stock)``; a product without variants
    should have ``(0, 0, False)``. For ``webshop check-stock``.
    """
    fresh = {pid: (low, high, bool(stocked)) for pid, low, high, stocked in await session.execute(_fresh_summaries())}
    rows = await session.execute(
        select(Product.id, Product.slug, Product.min_price, Product.max_price, Product.in_stock).order_by(Product.id)
    )
    problems = []
    for pid, slug, low, high, stocked in rows:
        stored = (low, high, bool(stocked))
        expected = fresh.get(pid, (0, 0, False))
        if stored != expected:
            problems.append((slug, stored, expected))
    return problems


async def catalog_changed(
    session: AsyncSession, product_ids: Iterable[int | None] = (), *, search_index: bool = True
) -> None:
    """Keep the catalog's derived data in step with a write, in the writer's transaction.

    Refreshes the products' summaries, then (``search_index``) their search documents, and marks the
    session so its commit bumps the catalog version. Every catalog write path calls this once,
    after its own statements and before committing: products, variants, prices, stock set by an
    admin, facets, visibility, categories (with the products of a renamed or moved subtree), imports.

    Args:
        session: The writing session.
        product_ids: Products whose data changed (may be empty, e.g. a new category).
        search_index: False when nothing a search matches can have changed (stock only).
    """
    ids = sorted({pid for pid in product_ids if pid is not None})
    await refresh_product_summaries(session, ids)
    if search_index:
        await reindex_products(session, ids)
    mark_catalog_changed(session)


@contextlib.asynccontextmanager
async def catalog_write(session: AsyncSession, *product_ids: int) -> AsyncIterator[set[int]]:
    """One catalog write, owned by the service verb that opens it: the block runs in a savepoint, a
    unique violation from a concurrent write (a SKU or slug just taken) becomes ``ValidationFailed``
    naming the field, and on success ``catalog_changed`` runs for the products (``product_ids`` and
    any the block adds to the yielded set) before the transaction is committed.

    Raises:
        ValidationFailed: a unique constraint was hit (nothing written).
    """
    from webshop.catalog.rules import _conflict

    changed = set(product_ids)
    try:
        async with session.begin_nested():
            yield changed
    except IntegrityError as exc:
        raise _conflict(exc) from exc
    await catalog_changed(session, changed)
    await session.commit()


async def repair_derived_data(session: AsyncSession, *, summary_slugs: Sequence[str], search_index: bool) -> None:
    """Recompute the summaries of the products with ``summary_slugs`` and, if ``search_index``,
    rebuild the whole search index (``webshop check-stock --repair``); committed, with a new catalog
    version so every worker drops what it cached. The stock ledger is never changed here.
    """
    from webshop.catalog.search_index import rebuild_search_index

    if summary_slugs:
        ids = await session.scalars(select(Product.id).where(Product.slug.in_(summary_slugs)))
        await catalog_changed(session, list(ids), search_index=False)
    if search_index:
        await session.run_sync(lambda sync: rebuild_search_index(sync.connection()))
        mark_catalog_changed(session)
    await session.commit()
