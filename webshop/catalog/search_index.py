"""The search index's documents: one row per product (name, SKUs, brand, category path, option values,
description), the vocabulary of index words, and the engine's full-text index over them (SQLite FTS5,
PostgreSQL ``tsvector`` + GIN), rewritten in the same transaction as every catalog write
(``reindex_products``), rebuilt whole by ``rebuild_search_index``, and checked by
``find_search_index_mismatches``. The words and the queries are in ``webshop.catalog.search``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    delete,
    insert,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.search import (
    FIELDS,
    MAX_TERM_LENGTH,
    _visible,
    sku_terms,
    stem,
    words,
)
from webshop.db.in_lists import chunks
from webshop.db.models import Category, Product, ProductFacet, ProductSearch, SearchTerm, Variant

# --- documents -----------------------------------------------------------------------------------------


@dataclass
class _Document:
    """A product's index words per field, and one unstemmed form of each word (for suggestions)."""

    fields: dict[str, list[str]] = field(default_factory=lambda: {name: [] for name in FIELDS})
    surface: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        for word in words(text):
            term = stem(word)
            self.fields[name].append(term)
            self.surface.setdefault(term, word)

    def add_sku(self, sku: str) -> None:
        for term in sku_terms(sku):
            self.fields["skus"].append(term)
            self.surface.setdefault(term, term)

    def row(self) -> dict[str, str]:
        return {name: " ".join(values) for name, values in self.fields.items()}


def _row_terms(row: dict[str, str]) -> set[str]:
    return {term for name in FIELDS for term in row[name].split()}


def _category_paths(connection: Connection) -> dict[int, str]:
    """``{category id: "Electronics Photo"}``: each category's name after its ancestors' names."""
    rows = {
        cid: (name, parent)
        for cid, name, parent in connection.execute(select(Category.id, Category.name, Category.parent_id))
    }
    paths: dict[int, str] = {}
    for category_id in rows:
        names: list[str] = []
        current: int | None = category_id
        seen: set[int] = set()
        while current is not None and current in rows and current not in seen:
            seen.add(current)
            names.insert(0, rows[current][0])
            current = rows[current][1]
        paths[category_id] = " ".join(names)
    return paths


def _documents(
    connection: Connection, ids: Sequence[int], paths: dict[int, str], visible: Any = None
) -> dict[int, _Document]:
    """Fresh documents of the visible products among ``ids`` (``visible``: the condition, default ``_visible()``)."""
    documents: dict[int, _Document] = {}
    products = connection.execute(
        select(Product.id, Product.name, Product.description, Product.category_id).where(
            Product.id.in_(ids), _visible() if visible is None else visible
        )
    ).all()
    for product_id, name, description, category_id in products:
        document = _Document()
        document.add("name", name)
        document.add("description", description or "")
        if category_id is not None:
            document.add("categories", paths.get(category_id, ""))
        documents[product_id] = document
    if not documents:
        return documents
    found = list(documents)
    for product_id, facet, value in connection.execute(
        select(ProductFacet.product_id, ProductFacet.facet, ProductFacet.value)
        .where(ProductFacet.product_id.in_(found))
        .order_by(ProductFacet.product_id, ProductFacet.id)
    ):
        documents[product_id].add("brand" if facet == "brand" else "options", value)
    for product_id, sku, option_values in connection.execute(
        select(Variant.product_id, Variant.sku, Variant.option_values)
        .where(Variant.product_id.in_(found))
        .order_by(Variant.product_id, Variant.position, Variant.id)
    ):
        document = documents[product_id]
        document.add_sku(sku)
        for value in option_values or []:
            document.add("options", str(value))
    return documents


def _reindex(connection: Connection, product_ids: Sequence[int], visible: Any = None) -> bool:
    """Bring the documents of ``product_ids`` and the vocabulary up to date; True when anything changed."""
    paths = _category_paths(connection)
    deltas: dict[str, int] = {}
    surface: dict[str, str] = {}
    changed = False
    for chunk in chunks(sorted(set(product_ids))):
        documents = _documents(connection, chunk, paths, visible)
        fresh = {pid: document.row() for pid, document in documents.items()}
        stored = {
            row["product_id"]: {name: row[name] for name in FIELDS}
            for row in connection.execute(select(ProductSearch).where(ProductSearch.product_id.in_(chunk)))
            .mappings()
            .all()
        }
        stale = sorted(pid for pid, row in stored.items() if fresh.get(pid) != row)
        new = sorted(pid for pid, row in fresh.items() if stored.get(pid) != row)
        if stale:
            connection.execute(delete(ProductSearch).where(ProductSearch.product_id.in_(stale)))
            for pid in stale:
                for term in _row_terms(stored[pid]):
                    deltas[term] = deltas.get(term, 0) - 1
        if new:
            connection.execute(insert(ProductSearch), [{"product_id": pid, **fresh[pid]} for pid in new])
            for pid in new:
                for term in _row_terms(fresh[pid]):
                    deltas[term] = deltas.get(term, 0) + 1
                    surface.setdefault(term, documents[pid].surface.get(term, term))
        changed = changed or bool(stale or new)
    _apply_deltas(connection, deltas, surface)
    return changed


def _apply_deltas(connection: Connection, deltas: dict[str, int], surface: dict[str, str]) -> None:
    """Add ``deltas`` to the vocabulary's product counts (atomic upserts in term order, so two writers
    never deadlock), then drop the words no product uses any more."""
    rows: list[dict[str, Any]] = [
        {"term": term, "word": surface.get(term, term)[:MAX_TERM_LENGTH], "doc_count": delta}
        for term, delta in sorted(deltas.items())
        if delta
    ]
    if not rows:
        return
    upsert = (pg_insert if connection.dialect.name == "postgresql" else sqlite_insert)(SearchTerm)
    upsert = upsert.on_conflict_do_update(
        index_elements=[SearchTerm.term], set_={"doc_count": SearchTerm.doc_count + upsert.excluded.doc_count}
    )
    # One compiled statement, many parameter sets (the driver's executemany): no SQL text per chunk.
    for chunk in chunks(rows, 2000):
        connection.execute(upsert, list(chunk))
    gone = [row["term"] for row in rows if row["doc_count"] < 0]
    for chunk in chunks(gone, 2000):
        connection.execute(delete(SearchTerm).where(SearchTerm.term.in_(chunk), SearchTerm.doc_count <= 0))


async def reindex_products(session: AsyncSession, product_ids: Iterable[int | None]) -> bool:
    """Rewrite the search documents of ``product_ids`` (and the vocabulary) in the session's transaction.

    Call it after any change to a product's name, description, category, facets, variants (SKUs,
    option values), visibility (active, soft delete, restore) or a category's name or place. A
    product that is not visible (or no longer exists) loses its document. Pending ORM changes are
    flushed first.

    Args:
        session: The writing session; its transaction commits or rolls back the index with the change.
        product_ids: Product ids (``None`` and repeats are ignored).

    Returns:
        True when any document changed (the caller bumps the catalog version).
    """
    ids = sorted({pid for pid in product_ids if pid is not None})
    if not ids:
        return False
    await session.flush()
    return await session.run_sync(lambda sync_session: _reindex(sync_session.connection(), ids))


def rebuild_search_index(connection: Connection, *, visible: Any = None) -> int:
    """Empty and refill the whole index and vocabulary from the catalog; returns the documents written.

    Used by the migration that creates the index, and to repair it. Runs in the caller's transaction.
    ``visible`` replaces the visibility rule (``webshop.catalog.query.visible_products``) for a
    migration that runs before the columns of today's rule exist.
    """
    connection.execute(delete(ProductSearch))
    connection.execute(delete(SearchTerm))
    condition = _visible() if visible is None else visible
    ids = list(connection.scalars(select(Product.id).where(condition).order_by(Product.id)))
    for chunk in chunks(ids, 2000):
        _reindex(connection, chunk, condition)
    return len(ids)


async def find_search_index_mismatches(session: AsyncSession) -> list[int]:
    """Ids of products whose stored document (or absence of one) differs from a fresh one, for ``check-stock``."""

    def check(connection: Connection) -> list[int]:
        paths = _category_paths(connection)
        ids = list(connection.scalars(select(Product.id).order_by(Product.id)))
        stored_ids = set(connection.scalars(select(ProductSearch.product_id)))
        wrong = sorted(stored_ids - set(ids))
        for chunk in chunks(ids):
            fresh = {pid: document.row() for pid, document in _documents(connection, chunk, paths).items()}
            stored = {
                row["product_id"]: {name: row[name] for name in FIELDS}
                for row in connection.execute(select(ProductSearch).where(ProductSearch.product_id.in_(chunk)))
                .mappings()
                .all()
            }
            wrong += [pid for pid in chunk if fresh.get(pid) != stored.get(pid)]
        return sorted(wrong)

    return await session.run_sync(lambda sync_session: check(sync_session.connection()))
