"""Catalog services: the category tree and products, their admin writes, and the shop's reads.

The reads behind the catalog page and ``/api/products`` live in ``webshop.catalog.browse`` (filters,
sorts, pages, cards, facet counts) and ``webshop.catalog.search`` (the full-text index);
``ProductService.browse``/``search``/``facets`` call them. Every write here ends with
``catalog_changed`` before it commits, so the product summaries, the search index and the catalog
version move in the same transaction as the change.
"""

from __future__ import annotations

import contextlib
import functools
import re
import unicodedata
from collections.abc import AsyncIterator, Collection, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.audit.service import AuditService, diff
from webshop.catalog.browse import (
    DEFAULT_SORT,
    FILTER_FACETS,
    MAX_QUERY_LENGTH,
    SEARCH_SORTS,
    SORTS,
    CatalogPage,
    CatalogQuery,
    CategoryNode,
    FacetValue,
    ProductCard,
    api_page,
    browse_catalog,
    build_tree,
    catalog_changed,
    descendant_ids,
    facet_summary,
    mark_catalog_changed,
    product_for_display,
    refresh_product_summaries,
    visible_products,
)
from webshop.catalog.importer import slugify
from webshop.catalog.schemas import ProductPatch, ProductWrite, VariantPatch, VariantUpdate, VariantWrite
from webshop.catalog.search import escape_like
from webshop.db.models import AuditEvent, Category, Product, ProductFacet, ProductImage, User, Variant
from webshop.errors import Conflict, NotFound, ValidationFailed
from webshop.media import MAX_UPLOAD_BYTES, ImageTooLarge, new_image_key, remove_image_files, store_image
from webshop.money import format_money

__all__ = [  # the read side's names stay importable from here (webshop.catalog.browse defines them)
    "ADMIN_SORTS",
    "ADMIN_STATES",
    "ADMIN_STOCK_LEVELS",
    "DEFAULT_SORT",
    "FILTER_FACETS",
    "SEARCH_SORTS",
    "SORTS",
    "CatalogPage",
    "CatalogQuery",
    "CategoryNode",
    "CategoryService",
    "FacetValue",
    "ProductCard",
    "ProductService",
    "build_tree",
    "choose_variant",
    "descendant_ids",
    "option_choices",
    "visible_products",
]


class CategoryService(SQLAlchemyAsyncRepositoryService[Category]):
    """Category tree: reading it for navigation and resolving a slug to itself and its descendants."""

    class Repo(SQLAlchemyAsyncRepository[Category]):
        """Category repository."""

        model_type = Category

    repository_type = Repo

    async def all_categories(self) -> list[Category]:
        """Return every category ordered by position and name."""
        rows = await self.repository.session.scalars(select(Category).order_by(Category.position, Category.name))
        return list(rows)

    async def tree(self, active_slug: str | None = None) -> list[CategoryNode]:
        """Return the category tree (roots first), marking ``active_slug`` and its ancestors active."""
        return build_tree(await self.all_categories(), active_slug)

    async def get_by_slug(self, slug: str) -> Category:
        """Return the category with ``slug``.

        Raises:
            NotFound: no category has that slug.
        """
        category = await self.repository.session.scalar(select(Category).where(Category.slug == slug))
        if category is None:
            raise NotFound(f"There is no category “{slug}”.")
        return category

    # --- admin writes: create, rename, move, delete (issue 5 pages and the issue 4 admin API) -----------

    async def get_category(self, category_id: int) -> Category:
        """Return the category with ``category_id``.

        Raises:
            NotFound: no category has that id.
        """
        category = await self.repository.session.get(Category, category_id)
        if category is None:
            raise NotFound("There is no such category.")
        return category

    async def product_counts(self) -> dict[int, tuple[int, int]]:
        """``{category id: (products, of which soft-deleted)}`` for categories that hold any product."""
        rows = await self.repository.session.execute(
            select(Product.category_id, func.count(), func.count(Product.deleted_at))
            .where(Product.category_id.is_not(None))
            .group_by(Product.category_id)
        )
        return {category_id: (int(total), int(deleted)) for category_id, total, deleted in rows.all()}

    async def create_category(
        self, actor: User | None, *, name: str, parent_id: int | None = None, slug: str | None = None
    ) -> Category:
        """Create a category as the last child of ``parent_id`` (or the last top-level category).

        Args:
            actor: The admin making the change (``None`` for the command line), for the audit trail.
            name: Shown in the shop; trimmed, 1-120 characters, no ``|`` (the CSV format's separator) and
                unique among its siblings (ignoring case): the CSV names a category by its path of names.
            parent_id: The parent category, or ``None`` for a top-level category.
            slug: URL slug; empty or ``None`` derives a free one from the name (``home-garden``, then
                the parent's slug plus the name, then ``-2``, ``-3``...).

        Returns:
            The new category (flushed, so it has an id).

        Raises:
            ValidationFailed: the name or slug is malformed.
            NotFound: the parent does not exist.
            Conflict: a sibling has the same name, or the slug is taken.
        """
        session = self.repository.session
        categories = await self._locked_tree()
        name = _category_name(name)
        parent = _find_parent(categories, parent_id)
        _check_sibling_name(categories, parent_id, name)
        slug = _category_slug(categories, slug, name, parent)
        siblings = _siblings(categories, parent_id)
        category = Category(name=name, slug=slug, parent_id=parent_id, position=len(siblings))
        async with self._savepoint():
            for index, sibling in enumerate(siblings):  # positions 0, 1, 2... in the order shown
                sibling.position = index
            session.add(category)
        after = _category_state(category)
        AuditService(session=session).record(
            actor,
            "category",
            category.id,
            "create",
            summary=f"Created category “{name}”.",
            changes=diff(dict.fromkeys(after), after),
        )
        await catalog_changed(session)
        return category

    async def rename_category(
        self, actor: User | None, category_id: int, *, name: str, slug: str | None = None
    ) -> Category:
        """Rename a category; its slug (its URL) stays unless ``slug`` gives a new one.

        Args:
            actor: The admin making the change, for the audit trail.
            category_id: The category.
            name: The new name (same rules as ``create_category``).
            slug: A new slug, or ``None``/empty to keep the current one.

        Raises:
            NotFound: no such category.
            ValidationFailed: the name or slug is malformed.
            Conflict: a sibling has the same name, or the slug is taken.
        """
        categories = await self._locked_tree()
        category = _find_category(categories, category_id)
        before = _category_state(category)
        name = _category_name(name)
        _check_sibling_name(categories, category.parent_id, name, exclude=category.id)
        new_slug = category.slug
        if slug and slug.strip() != category.slug:
            new_slug = _category_slug([c for c in categories if c.id != category.id], slug, name, None)
        async with self._savepoint():
            category.slug, category.name = new_slug, name
        # The search documents of the products below hold the category's name.
        renamed = before["name"] != name
        await catalog_changed(
            self.repository.session, await self._products_below(categories, category.id) if renamed else ()
        )
        changes = diff(before, _category_state(category))
        if changes:
            AuditService(session=self.repository.session).record(
                actor,
                "category",
                category.id,
                "rename",
                summary=f"Renamed category “{before['name']}” to “{name}”."
                if before["name"] != name
                else f"Changed the slug of “{name}”.",
                changes=changes,
            )
        return category

    async def move_category(
        self, actor: User | None, category_id: int, *, parent_id: int | None, position: int | None = None
    ) -> Category:
        """Move a category (with its subtree) under ``parent_id`` at ``position`` among its new siblings.

        The categories are read with ``SELECT ... FOR UPDATE`` (PostgreSQL; SQLite serialises writers
        anyway), so two concurrent moves cannot together make a cycle.

        Args:
            actor: The admin making the change, for the audit trail.
            category_id: The category to move.
            parent_id: The new parent, or ``None`` for top level.
            position: 0-based place among the new siblings (clamped); ``None`` puts it last, or leaves
                it where it is when the parent does not change. Siblings are renumbered 0, 1, 2...

        Raises:
            NotFound: no such category, or no such parent.
            Conflict: the new parent is the category itself or one of its descendants (a category
                cannot be moved into its own subtree), or already has a child of the same name.
        """
        categories = await self._locked_tree()
        category = _find_category(categories, category_id)
        _find_parent(categories, parent_id)
        if parent_id is not None and parent_id in descendant_ids(categories, category.id):
            message = "A category cannot be moved into itself or one of its subcategories."
            raise Conflict(message, field_errors={"parent_id": message})
        before = _category_state(category)
        if parent_id != category.parent_id:
            _check_sibling_name(categories, parent_id, category.name, exclude=category.id)
        if position is None and parent_id == category.parent_id:
            position = _siblings(categories, parent_id).index(category)
        siblings = [c for c in _siblings(categories, parent_id) if c.id != category.id]
        if position is None:
            position = len(siblings)
        siblings.insert(max(0, min(position, len(siblings))), category)
        async with self._savepoint():
            category.parent_id = parent_id
            for index, sibling in enumerate(siblings):
                sibling.position = index
        # The search documents of the products below hold the names of the category's ancestors.
        moved = before["parent_id"] != parent_id
        await catalog_changed(
            self.repository.session, await self._products_below(categories, category.id) if moved else ()
        )
        changes = diff(before, _category_state(category))
        if changes:
            AuditService(session=self.repository.session).record(
                actor, "category", category.id, "move", summary=f"Moved category “{category.name}”.", changes=changes
            )
        return category

    async def shift_category(self, actor: User | None, category_id: int, offset: int) -> Category:
        """Move a category up (``offset`` -1) or down (+1) among its siblings; at either end nothing changes.

        Raises:
            NotFound: no such category.
        """
        categories = await self._locked_tree()
        category = _find_category(categories, category_id)
        siblings = _siblings(categories, category.parent_id)
        index = siblings.index(category)
        target = max(0, min(index + offset, len(siblings) - 1))
        if target == index:
            return category
        return await self.move_category(actor, category_id, parent_id=category.parent_id, position=target)

    async def deletion_refusal(self, category: Category) -> str | None:
        """Why ``category`` cannot be deleted now, in words for the admin, or ``None`` when it can.

        A category is kept while it has subcategories or products, **soft-deleted products included**:
        a deleted product can be restored and should come back in its category, and the database's
        foreign key (``ON DELETE RESTRICT``) would refuse anyway.
        """
        session = self.repository.session
        children = await session.scalar(select(func.count()).where(Category.parent_id == category.id)) or 0
        total, deleted = (
            await session.execute(
                select(func.count(), func.count(Product.deleted_at)).where(Product.category_id == category.id)
            )
        ).one()
        reasons = []
        if children:
            reasons.append(f"{children} subcategor{'y' if children == 1 else 'ies'}")
        if total:
            what = f"{total} product{'' if total == 1 else 's'}"
            if deleted:
                what += f" ({deleted} of them deleted, which can be restored)"
            reasons.append(what)
        if not reasons:
            return None
        return (
            f"“{category.name}” still has {' and '.join(reasons)}. "
            "Move or delete them first (deleted products count: they keep their category)."
        )

    async def delete_category(self, actor: User | None, category_id: int) -> None:
        """Delete an empty category (see ``deletion_refusal`` for what keeps one).

        Raises:
            NotFound: no such category.
            Conflict: it still has subcategories or products (soft-deleted ones included); the detail
                says which and how many.
        """
        categories = await self._locked_tree()
        category = _find_category(categories, category_id)
        refusal = await self.deletion_refusal(category)
        if refusal:
            raise Conflict(refusal)
        before = _category_state(category)
        async with self._savepoint():
            await self.repository.session.delete(category)
        await catalog_changed(self.repository.session)
        AuditService(session=self.repository.session).record(
            actor,
            "category",
            category_id,
            "delete",
            summary=f"Deleted category “{before['name']}”.",
            changes=diff(before, dict.fromkeys(before)),
        )

    async def _products_below(self, categories: list[Category], category_id: int) -> list[int]:
        """Ids of the products in ``category_id`` or any category below it, soft-deleted ones included."""
        ids = descendant_ids(categories, category_id)
        return list(await self.repository.session.scalars(select(Product.id).where(Product.category_id.in_(ids))))

    async def _locked_tree(self) -> list[Category]:
        """Every category, ordered, locked for the rest of the transaction on PostgreSQL."""
        rows = await self.repository.session.scalars(
            select(Category).order_by(Category.position, Category.name, Category.id).with_for_update()
        )
        return list(rows)

    @contextlib.asynccontextmanager
    async def _savepoint(self) -> AsyncIterator[None]:
        """Make the changes in the block in a savepoint, flushed at its end.

        A unique or foreign-key violation from a concurrent change rolls back only the savepoint (the
        request's session stays usable, e.g. to show the form again) and becomes a ``Conflict``.
        """
        try:
            async with self.repository.session.begin_nested():
                yield
        except IntegrityError as exc:
            raise Conflict("The category was changed at the same time by someone else; please try again.") from exc


_CATEGORY_NAME_MAX = 120
_CATEGORY_SLUG_MAX = 140
_CATEGORY_SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def _category_state(category: Category) -> dict[str, Any]:
    """The audited fields of a category."""
    return {
        "name": category.name,
        "slug": category.slug,
        "parent_id": category.parent_id,
        "position": category.position,
    }


def _category_name(name: str) -> str:
    """A trimmed, valid category name.

    Raises:
        ValidationFailed: empty, longer than 120 characters, or holding ``|`` or a control character.
    """
    name = " ".join((name or "").split())
    message = None
    if not name:
        message = "Enter a name."
    elif len(name) > _CATEGORY_NAME_MAX:
        message = f"Use at most {_CATEGORY_NAME_MAX} characters."
    elif "|" in name:
        message = "A name cannot contain “|” (the catalog CSV uses it to separate values)."
    elif any(unicodedata.category(ch) == "Cc" for ch in name):
        message = "A name cannot contain control characters."
    if message:
        raise ValidationFailed(message, field_errors={"name": message})
    return name


def _find_category(categories: list[Category], category_id: int) -> Category:
    """The category with ``category_id`` in ``categories``.

    Raises:
        NotFound: there is none.
    """
    for category in categories:
        if category.id == category_id:
            return category
    raise NotFound("There is no such category.")


def _find_parent(categories: list[Category], parent_id: int | None) -> Category | None:
    """The would-be parent ``parent_id`` (``None`` for top level).

    Raises:
        NotFound: there is no such category (a field error on ``parent_id``), like any unknown id.
    """
    if parent_id is None:
        return None
    for category in categories:
        if category.id == parent_id:
            return category
    message = "The parent category does not exist."
    raise NotFound(message, field_errors={"parent_id": message})


def _check_sibling_name(
    categories: list[Category], parent_id: int | None, name: str, *, exclude: int | None = None
) -> None:
    """Raise ``Conflict`` when a child of ``parent_id`` (other than ``exclude``) has ``name`` (any case)."""
    folded = name.casefold()
    for category in categories:
        if category.parent_id == parent_id and category.id != exclude and category.name.casefold() == folded:
            message = f"There is already a category “{category.name}” here."
            raise Conflict(message, field_errors={"name": message})


def _category_slug(categories: list[Category], slug: str | None, name: str, parent: Category | None) -> str:
    """``slug`` checked for form and uniqueness, or (when empty) a free slug derived from ``name``.

    Raises:
        ValidationFailed: the slug is not lowercase letters and digits joined by ``-``.
        Conflict: another category has the slug.
    """
    taken = {category.slug for category in categories}
    slug = (slug or "").strip()
    if slug:
        if len(slug) > _CATEGORY_SLUG_MAX or not _CATEGORY_SLUG_PATTERN.fullmatch(slug):
            message = "Use lowercase letters and digits joined by “-” (at most 140 characters)."
            raise ValidationFailed(message, field_errors={"slug": message})
        if slug in taken:
            message = f"The slug “{slug}” is already used by another category."
            raise Conflict(message, field_errors={"slug": message})
        return slug
    candidates = [slugify(name)]
    if parent is not None:
        candidates.append(f"{parent.slug}-{slugify(name)}")
    candidates = [c[: _CATEGORY_SLUG_MAX - 8].strip("-") for c in candidates]
    candidates = [c for c in candidates if c] or ["category"]
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    number = 2
    while f"{candidates[-1]}-{number}" in taken:
        number += 1
    return f"{candidates[-1]}-{number}"


def _siblings(categories: list[Category], parent_id: int | None) -> list[Category]:
    """The children of ``parent_id`` in display order (position, name)."""
    return sorted((c for c in categories if c.parent_id == parent_id), key=lambda c: (c.position, c.name, c.id))


class ProductService(SQLAlchemyAsyncRepositoryService[Product]):
    """Products as the shop shows them: browsing, and one product with its variants and photos."""

    class Repo(SQLAlchemyAsyncRepository[Product]):
        """Product repository."""

        model_type = Product

    repository_type = Repo

    # --- the shop's reads (webshop.catalog.browse) ---------------------------------------------------

    async def browse(self, query: CatalogQuery, *, page_size: int = 24) -> CatalogPage:
        """Return one page of the catalog for ``query`` (see ``webshop.catalog.browse.browse_catalog``).

        Args:
            query: Filters, sort and page (see ``CatalogQuery``).
            page_size: Products per page.

        Returns:
            A ``CatalogPage``; a page past the end has no items (the caller shows an empty state).

        Raises:
            NotFound: ``query.category`` names no category.
        """
        return await browse_catalog(self.repository.session, query, page_size=page_size)

    async def search(
        self,
        query: CatalogQuery,
        *,
        limit: int,
        cursor: str | None = None,
        price_min: int | None = None,
        price_max: int | None = None,
    ) -> tuple[list[ProductCard], str | None]:
        """One page of products for the API, with keyset (cursor) pagination (see ``browse.api_page``).

        Args:
            query: Search text, category, facets, price range, stock filter and sort (``page`` ignored).
            limit: Products per page (1-100).
            cursor: ``next_cursor`` of the previous page, or ``None`` for the first page.
            price_min / price_max: Only products with a variant priced in this range (minor units);
                when given they replace ``query``'s.

        Returns:
            ``(cards, next_cursor)``; ``next_cursor`` is ``None`` on the last page.

        Raises:
            NotFound: ``query.category`` names no category.
            ValidationFailed: the cursor is not one this endpoint issued for this sort.
        """
        if price_min is not None or price_max is not None:
            query = CatalogQuery.from_params(
                q=query.q,
                category=query.category,
                brand=list(query.facets.get("brand", ())),
                color=list(query.facets.get("color", ())),
                sort=query.sort,
                page=query.page,
                price_min=price_min if price_min is not None else query.price_min,
                price_max=price_max if price_max is not None else query.price_max,
                in_stock=query.in_stock,
                currency=query.currency,
            )
        return await api_page(self.repository.session, query, limit=limit, cursor=cursor)

    async def facets(self, query: CatalogQuery) -> tuple[int, dict[str, list[FacetValue]]]:
        """``(total, {facet: [FacetValue]})`` of the products matching ``query`` (sort and page ignored).

        Raises:
            NotFound: ``query.category`` names no category.
        """
        return await facet_summary(self.repository.session, query)

    async def get_visible(self, product_id: int) -> Product:
        """The visible product with ``product_id``, with variants, photos, facets and category.

        Raises:
            NotFound: no visible product has that id (soft-deleted and inactive ones included).
        """
        product = await self.repository.session.scalar(
            select(Product)
            .where(Product.id == product_id, visible_products())
            .options(selectinload(Product.variants), selectinload(Product.images), selectinload(Product.facets))
        )
        if product is None:
            raise NotFound("There is no such product.")
        return product

    async def display(
        self, *, slug: str | None = None, product_id: int | None = None
    ) -> tuple[Product, tuple[Any, ...]]:
        """A visible product for its page or ``GET /api/products/{id}``, by ``slug`` or ``product_id``,
        and the category list for its trail (``webshop.catalog.browse.product_for_display``: cached
        per catalog version, stock read fresh). Treat the product as read-only.

        Raises:
            NotFound: no visible product has that slug or id.
        """
        session = self.repository.session
        if slug is not None:
            return await product_for_display(session, slug, lambda: self.get_visible_by_slug(slug))
        pid = int(product_id or 0)
        return await product_for_display(session, pid, lambda: self.get_visible(pid))

    async def get_visible_by_slug(self, slug: str) -> Product:
        """Return the visible product with ``slug``, its variants, photos, facets and category loaded.

        Raises:
            NotFound: no visible product has that slug (soft-deleted and inactive ones included).
        """
        product = await self.repository.session.scalar(
            select(Product)
            .where(Product.slug == slug, visible_products())
            .options(selectinload(Product.variants), selectinload(Product.images), selectinload(Product.facets))
        )
        if product is None:
            raise NotFound("We could not find that product. It may have been removed.")
        return product

    async def variant_with_product(self, *, variant_id: int | None = None, sku: str | None = None) -> Variant | None:
        """The variant with ``variant_id`` (or ``sku``) and its product, visible or not; ``None`` if unknown."""
        if variant_id is None and not sku:
            return None
        condition = Variant.id == variant_id if variant_id is not None else Variant.sku == sku
        return await self.repository.session.scalar(
            select(Variant).where(condition).options(selectinload(Variant.product))
        )

    # --- admin: product management (issue 5 pages and the issue 4 admin API) -----------------------------
    #
    # Every write validates everything first (ValidationFailed with field_errors for every bad field at
    # once), then writes inside a savepoint, records AuditEvents in the same transaction and commits
    # explicitly, so a failure never leaves half a product behind and a commit failure is never reported
    # as success. Stock only changes through webshop.stock.service (conditional UPDATE + ledger row).

    async def get_for_admin(self, product_id: int) -> Product:
        """The product with ``product_id`` for the admin pages, soft-deleted or inactive ones included.

        Variants, photos, facets and category are loaded and refreshed from the database (stock may
        have been changed by conditional updates in this session).

        Raises:
            NotFound: no product has that id.
        """
        product = await self.repository.session.scalar(
            select(Product)
            .where(Product.id == product_id)
            .options(selectinload(Product.variants), selectinload(Product.images), selectinload(Product.facets))
            .execution_options(populate_existing=True)
        )
        if product is None:
            raise NotFound("There is no such product.")
        return product

    async def admin_search(
        self,
        *,
        q: str = "",
        category_id: int | None = None,
        state: str = "active",
        stock_level: str | None = None,
        sort: str = "name",
        page: int = 1,
        page_size: int = 25,
    ) -> tuple[list[Product], int]:
        """One page of the admin product table.

        Args:
            q: Text matched case-insensitively against name, slug and the variants' SKUs.
            category_id: Only products in this category or below it.
            state: ``active`` (not soft-deleted; the default), ``deleted`` or ``all`` (see ``ADMIN_STATES``).
            stock_level: ``out``, ``critical``, ``low`` or ``healthy``: products with at least one variant
                at that level (``webshop.stock.service.stock_level_expression``); ``None`` for any.
            sort: A key of ``ADMIN_SORTS`` (unknown values sort by name).
            page: 1-based page number.
            page_size: Rows per page.

        Returns:
            ``(products, total)``: the page's products (variants and photos loaded) and the number of
            products matching the filters.
        """
        from webshop.stock.service import stock_level_expression

        session = self.repository.session
        conditions: list[Any] = []
        if state == "deleted":
            conditions.append(Product.deleted_at.is_not(None))
        elif state != "all":
            conditions.append(Product.deleted_at.is_(None))
        text = (q or "").strip()[:MAX_QUERY_LENGTH]
        if text:
            pattern = f"%{escape_like(text)}%"
            conditions.append(
                or_(
                    Product.name.ilike(pattern, escape="\\"),
                    Product.slug.ilike(pattern, escape="\\"),
                    Product.id.in_(select(Variant.product_id).where(Variant.sku.ilike(pattern, escape="\\"))),
                )
            )
        if category_id is not None:
            categories = list(await session.scalars(select(Category)))
            conditions.append(Product.category_id.in_(descendant_ids(categories, category_id)))
        if stock_level in ADMIN_STOCK_LEVELS:
            conditions.append(Product.id.in_(select(Variant.product_id).where(stock_level_expression() == stock_level)))
        where = and_(true(), *conditions)
        total = await session.scalar(select(func.count()).select_from(Product).where(where)) or 0
        stats = (
            select(
                Variant.product_id.label("product_id"),
                func.min(Variant.price).label("min_price"),
                func.max(Variant.price).label("max_price"),
                func.sum(Variant.stock).label("stock"),
            )
            .group_by(Variant.product_id)
            .subquery()
        )
        order = {
            "-name": [Product.name.desc(), Product.id.desc()],
            "newest": [Product.created_at.desc(), Product.id.desc()],
            "updated": [Product.updated_at.desc(), Product.id.desc()],
            "price": [func.coalesce(stats.c.min_price, 0).asc(), Product.name.asc(), Product.id.asc()],
            "-price": [func.coalesce(stats.c.max_price, 0).desc(), Product.name.asc(), Product.id.asc()],
            "stock": [func.coalesce(stats.c.stock, 0).asc(), Product.name.asc(), Product.id.asc()],
            "-stock": [func.coalesce(stats.c.stock, 0).desc(), Product.name.asc(), Product.id.asc()],
        }.get(sort, [Product.name.asc(), Product.id.asc()])
        statement = (
            select(Product)
            .outerjoin(stats, stats.c.product_id == Product.id)
            .where(where)
            .order_by(*order)
            .limit(page_size)
            .offset((max(page, 1) - 1) * page_size)
            .options(selectinload(Product.variants), selectinload(Product.images))
            .execution_options(populate_existing=True)
        )
        return list(await session.scalars(statement)), total

    async def product_history(self, product: Product, *, limit: int = 100) -> list[AuditEvent]:
        """Audit events about ``product``, its current variants and their stock, newest first."""
        audit = AuditService(session=self.repository.session)
        variant_ids = [v.id for v in product.variants]
        events = await audit.for_entity("product", [product.id], limit=limit)
        if variant_ids:
            events += await audit.for_entity("variant", variant_ids, limit=limit)
            events += await audit.for_entity("stock", variant_ids, limit=limit)
        events.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return events[:limit]

    async def create_product(
        self,
        data: ProductWrite,
        variants: Sequence[VariantWrite],
        *,
        actor: User | None,
        tax_categories: Collection[str] | None = None,
    ) -> Product:
        """Create a product with its variants (at least one) and their initial stock; committed.

        The slug, when empty, is derived from the name (``"Trail Shoe 2"`` → ``trail-shoe-2``) and made
        unique with a ``-2``, ``-3``... suffix; a slug given explicitly must be free. Initial stock is
        written through ``set_stock`` (a ledger row of reason ``adjustment``, reference "initial stock").
        Audit: one ``product``/``create`` event, one ``variant``/``create`` per variant, ``stock`` events.

        Args:
            data: The product's own fields.
            variants: Its variants, in display order.
            actor: The admin (``None`` for the command line).
            tax_categories: When given, each variant's tax category must be one of these
                (pass ``settings.tax_rates_bp``).

        Returns:
            The new product with variants, photos and facets loaded.

        Raises:
            ValidationFailed: ``field_errors`` for every bad field at once, keyed ``name``, ``slug``,
                ``description``, ``category_id``, ``facets``, ``option_groups``, ``variants`` and
                ``variants[i].<field>`` (``sku``, ``price``, ``option_values``, ``currency``,
                ``tax_category``, ``stock``, ``low_stock_threshold``); unknown category, SKU used twice
                in the product or already in the shop, option values not one per group, negative
                price or stock... Nothing is written.
        """
        session = self.repository.session
        errors: dict[str, str] = {}
        values = _clean_product(msgspec.structs.asdict(data), errors)
        await self._check_category(values, errors)
        if "slug" not in errors:
            if values.get("slug"):
                await self._check_slug_free(values["slug"], None, errors)
            elif "name" not in errors:
                values["slug"] = await self._free_slug(slugify(values["name"]) or "product")
        groups = values.get("option_groups", [])
        rows = [
            _clean_variant(msgspec.structs.asdict(v), errors, f"variants[{i}].", tax_categories)
            for i, v in enumerate(variants)
        ]
        if not variants:
            errors["variants"] = "Add at least one variant."
        if "option_groups" not in errors:
            _check_variant_set(groups, rows, errors, [f"variants[{i}]." for i in range(len(rows))])
        await self._check_skus_free([(f"variants[{i}].", r.get("sku")) for i, r in enumerate(rows)], None, errors)
        if errors:
            raise ValidationFailed("The product was not saved. Please correct the marked fields.", field_errors=errors)

        audit = AuditService(session=session)
        try:
            async with session.begin_nested():
                facets = values.pop("facets")
                product = Product(**values)
                product.facets = [ProductFacet(facet=f, value=v) for f, vs in facets.items() for v in vs]
                stocks = []
                for position, row in enumerate(rows):
                    stocks.append(row.pop("stock"))
                    product.variants.append(Variant(**row, stock=0, position=position))
                session.add(product)
                await session.flush()
                audit.record(
                    actor,
                    "product",
                    product.id,
                    "create",
                    summary=f"Created “{product.name}” with {len(rows)} variant(s).",
                    changes={k: [None, v] for k, v in _product_snapshot(product, facets).items()},
                )
                for variant, stock in zip(product.variants, stocks, strict=True):
                    await self._record_new_variant(variant, stock, audit, actor)
        except IntegrityError as exc:
            raise _conflict(exc) from exc
        await catalog_changed(session, [product.id])
        await session.commit()
        return await self.get_for_admin(product.id)

    async def update_product(
        self,
        product_id: int,
        data: ProductWrite | ProductPatch,
        *,
        actor: User | None,
        variants: Sequence[VariantUpdate] = (),
        new_variants: Sequence[VariantWrite] = (),
        tax_categories: Collection[str] | None = None,
    ) -> Product:
        """Change a product's fields, and optionally its variants, in one transaction; committed.

        ``data`` as a ``ProductWrite`` replaces every field (an empty ``slug`` keeps the current one);
        as a ``ProductPatch`` only the fields that are set change. ``variants`` updates existing
        variants (stock through ``set_stock`` against the level the admin saw), ``new_variants`` adds
        some. The rules are checked on the result: every variant has one value per option group, SKUs
        are unique, option combinations are not repeated. Soft-deleted products can be edited too.
        Audit: ``product``/``update`` with ``{field: [before, after]}``, ``variant`` events, ``stock`` events.

        Args:
            product_id: The product.
            data: New field values (see above).
            actor: The admin.
            variants: Changes to existing variants of this product (``VariantUpdate.id``).
            new_variants: Variants to add at the end.
            tax_categories: When given, the allowed tax categories (``settings.tax_rates_bp``).

        Returns:
            The product, reloaded.

        Raises:
            NotFound: no such product.
            ValidationFailed: ``field_errors`` keyed like ``create_product``'s, ``variants[i].<field>``
                for ``variants`` and ``new_variants[i].<field>`` for ``new_variants``. Nothing is written.
            StockChanged: a variant's stock is no longer ``stock_seen``; nothing is written.
        """
        session = self.repository.session
        product = await self.get_for_admin(product_id)
        errors: dict[str, str] = {}
        if isinstance(data, ProductPatch):
            raw = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        else:
            raw = msgspec.structs.asdict(data)
            if not (raw.get("slug") or "").strip():
                raw.pop("slug")
        values = _clean_product(raw, errors)
        await self._check_category(values, errors)
        if values.get("slug") and values["slug"] != product.slug and "slug" not in errors:
            await self._check_slug_free(values["slug"], product.id, errors)
        groups = values.get("option_groups", list(product.option_groups or []))

        by_id = {v.id: v for v in product.variants}
        updates: list[tuple[Variant, dict[str, Any]]] = []
        seen_ids: set[int] = set()
        for index, update in enumerate(variants):
            prefix = f"variants[{index}]."
            variant = by_id.get(update.id)
            if variant is None or update.id in seen_ids:
                errors[prefix + "id"] = "This is not a variant of this product."
                continue
            seen_ids.add(update.id)
            fields = {k: v for k, v in msgspec.structs.asdict(update).items() if v is not msgspec.UNSET}
            fields.pop("id")
            seen = fields.pop("stock_seen", None)
            clean = _clean_variant(fields, errors, prefix, tax_categories, partial=True)
            if "stock" in clean:
                clean["stock_seen"] = variant.stock if seen is None else seen
                if clean["stock"] == clean["stock_seen"]:
                    # Not a stock change: a sale since the page was loaded must not block saving the rest.
                    del clean["stock"], clean["stock_seen"]
            updates.append((variant, clean))
        added = [
            _clean_variant(msgspec.structs.asdict(v), errors, f"new_variants[{i}].", tax_categories)
            for i, v in enumerate(new_variants)
        ]
        # The variant set as it will be: existing ones with their changes, then the new ones.
        changed = {variant.id: clean for variant, clean in updates}
        final = [
            {
                "sku": changed.get(v.id, {}).get("sku", v.sku),
                "option_values": changed.get(v.id, {}).get("option_values", list(v.option_values or [])),
            }
            for v in product.variants
        ] + added
        index_of = {v.id: i for i, (v, _c) in enumerate(updates)}
        prefixes = [
            f"variants[{index_of[v.id]}]." if v.id in index_of else f"sku {v.sku}: " for v in product.variants
        ] + [f"new_variants[{i}]." for i in range(len(added))]
        if "option_groups" not in errors:
            _check_variant_set(groups, final, errors, prefixes, group_key="option_groups")
        skus_to_check = [(f"variants[{index_of[v.id]}].", c.get("sku")) for v, c in updates if "sku" in c]
        skus_to_check += [(f"new_variants[{i}].", r.get("sku")) for i, r in enumerate(added)]
        await self._check_skus_free(skus_to_check, product.id, errors)
        if errors:
            raise ValidationFailed("The product was not saved. Please correct the marked fields.", field_errors=errors)

        audit = AuditService(session=session)
        facets_before = _facet_dict(product)
        before = _product_snapshot(product, facets_before)
        try:
            async with session.begin_nested():
                for variant, clean in updates:
                    if "stock" in clean:
                        await self._set_stock(variant, clean.pop("stock_seen"), clean.pop("stock"), actor=actor)
                    self._apply_variant(variant, clean, audit, actor)
                # Variant rows before the product row: the order checkout locks them in (its variants,
                # then their products' summaries), so the two cannot deadlock on PostgreSQL.
                await session.flush()
                facets = values.pop("facets", None)
                for key, value in values.items():
                    setattr(product, key, value)
                if facets is not None and facets != facets_before:
                    _replace_facets(product, facets)
                after = _product_snapshot(product, facets if facets is not None else facets_before)
                changes = diff(before, after)
                if changes:
                    audit.record(actor, "product", product.id, "update", summary="Edited the product.", changes=changes)
                await session.flush()
                position = max((v.position for v in product.variants), default=-1) + 1
                for offset, row in enumerate(added):
                    await self._insert_variant(product, row, position + offset, audit, actor)
        except IntegrityError as exc:
            raise _conflict(exc) from exc
        await catalog_changed(session, [product.id])
        await session.commit()
        return await self.get_for_admin(product.id)

    async def add_variant(
        self,
        product_id: int,
        data: VariantWrite,
        *,
        actor: User | None,
        tax_categories: Collection[str] | None = None,
    ) -> Variant:
        """Add a variant (with its initial stock in the ledger) at the end of the product's list; committed.

        Raises:
            NotFound: no such product.
            ValidationFailed: ``field_errors`` keyed by ``VariantWrite`` field (``sku``, ``price``...): SKU
                empty or used anywhere in the shop, option values not one per group or repeating
                another variant's, negative price/stock/threshold...
        """
        product = await self.get_for_admin(product_id)
        errors: dict[str, str] = {}
        row = _clean_variant(msgspec.structs.asdict(data), errors, "", tax_categories)
        existing = [{"sku": v.sku, "option_values": list(v.option_values or [])} for v in product.variants]
        _check_variant_set(
            list(product.option_groups or []),
            [*existing, row],
            errors,
            [f"sku {v.sku}: " for v in product.variants] + [""],
        )
        await self._check_skus_free([("", row.get("sku"))], None, errors)
        if errors:
            raise ValidationFailed("The variant was not added. Please correct the marked fields.", field_errors=errors)
        session = self.repository.session
        try:
            async with session.begin_nested():
                position = max((v.position for v in product.variants), default=-1) + 1
                variant = await self._insert_variant(product, row, position, AuditService(session=session), actor)
        except IntegrityError as exc:
            raise _conflict(exc) from exc
        await catalog_changed(session, [product.id])
        await session.commit()
        return await self._variant(variant.id)

    async def update_variant(
        self,
        variant_id: int,
        patch: VariantPatch,
        *,
        actor: User | None,
        tax_categories: Collection[str] | None = None,
    ) -> Variant:
        """Change a variant's SKU, option values, price, tax category or low-stock threshold; committed.

        Only the fields set in ``patch`` change (stock: see ``set_variant_stock``). Audit:
        ``variant``/``update`` with ``{field: [before, after]}`` (nothing recorded when nothing changed).

        Raises:
            NotFound: no such variant.
            ValidationFailed: ``field_errors`` keyed by field name (``price``, ``sku``...); nothing is written.
        """
        variant = await self._variant(variant_id)
        product = await self.get_for_admin(variant.product_id)
        variant = next(v for v in product.variants if v.id == variant_id)
        errors: dict[str, str] = {}
        fields = {k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET}
        clean = _clean_variant(fields, errors, "", tax_categories, partial=True)
        final = [
            {
                "sku": clean.get("sku", v.sku) if v.id == variant_id else v.sku,
                "option_values": clean.get("option_values", list(v.option_values or []))
                if v.id == variant_id
                else list(v.option_values or []),
            }
            for v in product.variants
        ]
        prefixes = ["" if v.id == variant_id else f"sku {v.sku}: " for v in product.variants]
        _check_variant_set(list(product.option_groups or []), final, errors, prefixes)
        if "sku" in clean and clean["sku"] != variant.sku:
            await self._check_skus_free([("", clean["sku"])], None, errors)
        if errors:
            raise ValidationFailed("The variant was not saved. Please correct the marked fields.", field_errors=errors)
        session = self.repository.session
        try:
            async with session.begin_nested():
                self._apply_variant(variant, clean, AuditService(session=session), actor)
                await session.flush()
        except IntegrityError as exc:
            raise _conflict(exc) from exc
        await catalog_changed(session, [variant.product_id])
        await session.commit()
        return await self._variant(variant_id)

    async def set_variant_stock(
        self, variant_id: int, level: int, *, expected: int | None, actor: User | None, note: str = ""
    ) -> Variant:
        """Set a variant's stock to ``level`` units if it still is ``expected``; committed.

        Goes through ``webshop.stock.service.set_stock`` (one conditional UPDATE, a ledger row of
        reason ``adjustment``) and records a ``stock``/``set`` audit event with ``{"stock": [before, after]}``.

        Args:
            variant_id: The variant.
            level: Units on hand after the change (0 or more).
            expected: The level the admin saw; ``None`` uses the level read now (the API without
                an ``expected`` field: last write wins only against changes older than this request).
            actor: The admin.
            note: Ledger reference (``"admin inline edit"`` by default).

        Raises:
            NotFound: no such variant.
            ValidationFailed: ``level`` is negative (``field_errors["stock"]``).
            StockChanged: the stock is no longer ``expected`` (``current`` says what it is); nothing saved.
        """
        variant = await self._variant(variant_id)
        session = self.repository.session
        async with session.begin_nested():
            await self._set_stock(
                variant, variant.stock if expected is None else expected, level, actor=actor, note=note
            )
        await refresh_product_summaries(session, [variant.product_id])
        await session.commit()
        return await self._variant(variant_id)

    async def adjust_variant_stock(self, variant_id: int, delta: int, *, actor: User | None, note: str) -> Variant:
        """Add ``delta`` units (negative removes) to a variant's stock, never below zero; committed.

        Through ``webshop.stock.service.adjust_stock`` with a ``stock``/``adjust`` audit event.

        Raises:
            NotFound: no such variant.
            ValidationFailed: the stock would go below zero (``field_errors["delta"]``).
        """
        from webshop.stock.service import adjust_stock

        variant = await self._variant(variant_id)
        session = self.repository.session
        async with session.begin_nested():
            level = await adjust_stock(session, variant_id, delta, reference=note or "admin adjustment")
            if delta:
                AuditService(session=session).record(
                    actor,
                    "stock",
                    variant_id,
                    "adjust",
                    summary=f"{variant.sku}: {delta:+d}" + (f" ({note})" if note else ""),
                    changes={"stock": [level - delta, level]},
                )
        await refresh_product_summaries(session, [variant.product_id])
        await session.commit()
        return await self._variant(variant_id)

    async def delete_variant(self, variant_id: int, *, actor: User | None) -> None:
        """Delete a variant; committed. Past orders keep their lines (they copied SKU, name and price).

        Its stock ledger rows go with it (``webshop check-stock`` stays consistent); carts lose the line.
        Audit: ``product``/``variant-delete`` (on the product, since the variant is gone).

        Raises:
            NotFound: no such variant.
            ValidationFailed: it is the product's only variant (delete the product instead);
                ``field_errors["variant"]``.
        """
        variant = await self._variant(variant_id)
        session = self.repository.session
        count = await session.scalar(select(func.count()).where(Variant.product_id == variant.product_id)) or 0
        if count <= 1:
            message = "A product needs at least one variant: delete the product instead."
            raise ValidationFailed(message, field_errors={"variant": message})
        async with session.begin_nested():
            AuditService(session=session).record(
                actor,
                "product",
                variant.product_id,
                "variant-delete",
                summary=f"Removed variant {variant.sku}.",
                changes={k: [v, None] for k, v in {**_variant_snapshot(variant), "stock": variant.stock}.items()},
            )
            await session.delete(variant)
            await session.flush()
        await catalog_changed(session, [variant.product_id])
        await session.commit()

    async def soft_delete(self, product_id: int, *, actor: User | None) -> Product:
        """Hide a product from the shop and the API for good, keeping it for past orders; committed.

        Sets ``deleted_at``; shop pages and ``/api/products`` stop showing it (``visible_products``),
        order lines keep their copies and links. Deleting a deleted product changes nothing.

        Raises:
            NotFound: no such product.
        """
        product = await self.get_for_admin(product_id)
        if product.deleted_at is None:
            session = self.repository.session
            product.deleted_at = datetime.now(UTC)
            AuditService(session=session).record(
                actor, "product", product.id, "delete", summary=f"Deleted “{product.name}” (hidden from the shop)."
            )
            await session.flush()
            await catalog_changed(session, [product.id])
            await session.commit()
        return await self.get_for_admin(product_id)

    async def restore(self, product_id: int, *, actor: User | None) -> Product:
        """Bring a soft-deleted product back into the shop (if ``is_active``); committed.

        Raises:
            NotFound: no such product.
        """
        product = await self.get_for_admin(product_id)
        if product.deleted_at is not None:
            session = self.repository.session
            product.deleted_at = None
            AuditService(session=session).record(
                actor, "product", product.id, "restore", summary=f"Restored “{product.name}”."
            )
            await session.flush()
            await catalog_changed(session, [product.id])
            await session.commit()
        return await self.get_for_admin(product_id)

    async def add_image(
        self,
        product_id: int,
        data: bytes,
        *,
        media_dir: Path,
        alt: str = "",
        source_name: str = "",
        actor: User | None,
    ) -> ProductImage:
        """Store an uploaded photo (verified, EXIF stripped, WebP derivatives) as the product's last; committed.

        The bytes are decoded with Pillow in a worker thread (``webshop.media.store_image``: JPEG, PNG
        or WebP only, decompression-bomb guard, metadata dropped) under a random key, so file names
        say nothing about the upload. If anything fails after the files were written (the database
        insert or the commit), the files are removed again: nothing is half-stored.

        Args:
            product_id: The product.
            data: The file's bytes (at most ``MAX_UPLOAD_BYTES``).
            media_dir: ``settings.media_dir``.
            alt: Alternative text (default: the product name); cut to 255 characters.
            source_name: The uploaded file's name, kept for the admin only; cut to 255 characters.
            actor: The admin.

        Returns:
            The new ``ProductImage``.

        Raises:
            NotFound: no such product.
            ImageTooLarge: more than ``MAX_UPLOAD_BYTES`` (status 413; ``field_errors["image"]``).
            ImageRejected: not an image, not JPEG/PNG/WebP, truncated, damaged or too many pixels
                (``field_errors["image"]``).
        """
        if len(data) > MAX_UPLOAD_BYTES:
            raise ImageTooLarge()
        product = await self.get_for_admin(product_id)
        key = new_image_key()
        stored = await anyio.to_thread.run_sync(functools.partial(store_image, data, media_dir, key=key))
        session = self.repository.session
        try:
            async with session.begin_nested():
                image = ProductImage(
                    product_id=product.id,
                    key=stored.key,
                    ext=stored.ext,
                    # NUL cannot be stored by PostgreSQL; a browser-sent file name may carry anything.
                    source_name=_clean_text(source_name).replace("\x00", "")[:255],
                    alt=(_clean_text(alt).replace("\x00", "") or product.name)[:255],
                    width=stored.width,
                    height=stored.height,
                    position=max((i.position for i in product.images), default=-1) + 1,
                )
                session.add(image)
                await session.flush()
                AuditService(session=session).record(
                    actor,
                    "product",
                    product.id,
                    "image-add",
                    summary=f"Added photo {image.source_name or image.key}.",
                    changes={"photos": [len(product.images), len(product.images) + 1]},
                )
                mark_catalog_changed(session)  # cards and product pages show the photos
            await session.commit()
        except BaseException:
            remove_image_files(media_dir, stored.key)
            raise
        return image

    async def reorder_images(
        self, product_id: int, image_ids: Sequence[int], *, actor: User | None
    ) -> list[ProductImage]:
        """Put the product's photos in the order of ``image_ids`` (every photo id exactly once); committed.

        The first photo is the one the catalog shows. Audit: ``product``/``image-order``.

        Raises:
            NotFound: no such product.
            ValidationFailed: ``image_ids`` is not exactly the product's photo ids (``field_errors["image_ids"]``).
        """
        product = await self.get_for_admin(product_id)
        images = {image.id: image for image in product.images}
        if sorted(image_ids) != sorted(images) or len(set(image_ids)) != len(image_ids):
            message = "List every photo of this product exactly once."
            raise ValidationFailed(message, field_errors={"image_ids": message})
        before = [image.id for image in product.images]
        if list(image_ids) != before:
            session = self.repository.session
            for position, image_id in enumerate(image_ids):
                images[image_id].position = position
            AuditService(session=session).record(
                actor,
                "product",
                product.id,
                "image-order",
                summary="Reordered photos.",
                changes={"photos": [before, list(image_ids)]},
            )
            await session.flush()
            mark_catalog_changed(session)  # a card shows the first photo
            await session.commit()
        return list((await self.get_for_admin(product_id)).images)

    async def move_image(self, product_id: int, image_id: int, offset: int, *, actor: User | None) -> None:
        """Move one photo ``offset`` places (``-1`` up/earlier, ``1`` down/later); at an end nothing moves.

        Raises:
            NotFound: no such product, or the photo is not one of its photos.
        """
        product = await self.get_for_admin(product_id)
        ids = [image.id for image in product.images]
        if image_id not in ids:
            raise NotFound("There is no such photo.")
        index = ids.index(image_id)
        target = min(max(index + offset, 0), len(ids) - 1)
        if target != index:
            ids.insert(target, ids.pop(index))
            await self.reorder_images(product_id, ids, actor=actor)

    async def remove_image(self, product_id: int, image_id: int, *, media_dir: Path, actor: User | None) -> None:
        """Remove a photo from the product; committed, then its files are deleted if no other photo uses them.

        Imported photos are content-addressed and may be shared between products, hence the check.

        Raises:
            NotFound: no such product, or the photo is not one of its photos.
        """
        product = await self.get_for_admin(product_id)
        image = next((i for i in product.images if i.id == image_id), None)
        if image is None:
            raise NotFound("There is no such photo.")
        session = self.repository.session
        key = image.key
        AuditService(session=session).record(
            actor,
            "product",
            product.id,
            "image-remove",
            summary=f"Removed photo {image.source_name or image.key}.",
            changes={"photos": [len(product.images), len(product.images) - 1]},
        )
        product.images.remove(image)
        for position, other in enumerate(product.images):
            other.position = position
        await session.flush()
        mark_catalog_changed(session)
        await session.commit()
        still_used = await session.scalar(select(func.count()).where(ProductImage.key == key)) or 0
        if not still_used:
            remove_image_files(media_dir, key)

    # admin helpers

    async def _variant(self, variant_id: int) -> Variant:
        variant = await self.repository.session.scalar(
            select(Variant).where(Variant.id == variant_id).execution_options(populate_existing=True)
        )
        if variant is None:
            raise NotFound("There is no such variant.")
        return variant

    async def _check_category(self, values: dict[str, Any], errors: dict[str, str]) -> None:
        category_id = values.get("category_id")
        if (
            category_id is not None
            and "category_id" not in errors
            and await self.repository.session.get(Category, category_id) is None
        ):
            errors["category_id"] = "Choose an existing category."

    async def _check_slug_free(self, slug: str, product_id: int | None, errors: dict[str, str]) -> None:
        owner = await self.repository.session.scalar(select(Product.id).where(Product.slug == slug))
        if owner is not None and owner != product_id:
            errors["slug"] = f"The slug “{slug}” is already used by another product (deleted ones count too)."

    async def _free_slug(self, base: str) -> str:
        base = base[:190].strip("-") or "product"
        taken = set(
            await self.repository.session.scalars(
                select(Product.slug).where(or_(Product.slug == base, Product.slug.like(f"{base}-%")))
            )
        )
        if base not in taken:
            return base
        number = 2
        while f"{base}-{number}" in taken:
            number += 1
        return f"{base}-{number}"

    async def _check_skus_free(
        self, skus: list[tuple[str, str | None]], product_id: int | None, errors: dict[str, str]
    ) -> None:
        """SKUs must be unique in the shop: an error for one used by another product (or this one
        when ``product_id`` is ``None``, i.e. for a brand-new variant)."""
        wanted = [sku for prefix, sku in skus if sku and prefix + "sku" not in errors]
        if not wanted:
            return
        statement = select(Variant.sku, Variant.product_id).where(Variant.sku.in_(wanted))
        used = {sku: owner for sku, owner in (await self.repository.session.execute(statement)).all()}
        for prefix, sku in skus:
            if sku in used and prefix + "sku" not in errors and (product_id is None or used[sku] != product_id):
                errors[prefix + "sku"] = f"SKU {sku} is already used by another variant."

    async def _insert_variant(
        self, product: Product, row: dict[str, Any], position: int, audit: AuditService, actor: User | None
    ) -> Variant:
        stock = row.pop("stock", 0)
        variant = Variant(**row, stock=0, position=position, product_id=product.id)
        self.repository.session.add(variant)
        await self.repository.session.flush()
        await self._record_new_variant(variant, stock, audit, actor)
        return variant

    async def _record_new_variant(self, variant: Variant, stock: int, audit: AuditService, actor: User | None) -> None:
        """Audit a just-flushed variant's creation and book its initial ``stock`` in the ledger."""
        audit.record(
            actor,
            "variant",
            variant.id,
            "create",
            summary=f"Added variant {variant.sku}.",
            changes={k: [None, v] for k, v in _variant_snapshot(variant).items()},
        )
        await self._set_stock(variant, 0, stock, actor=actor, note="initial stock")

    def _apply_variant(self, variant: Variant, clean: dict[str, Any], audit: AuditService, actor: User | None) -> None:
        before = _variant_snapshot(variant)
        for key, value in clean.items():
            setattr(variant, key, value)
        changes = diff(before, _variant_snapshot(variant))
        if changes:
            parts = [
                f"price {format_money(change[0], variant.currency)} → {format_money(change[1], variant.currency)}"
                if field == "price"
                else field
                for field, change in changes.items()
            ]
            summary = f"Edited variant {variant.sku}: " + ", ".join(parts)
            audit.record(actor, "variant", variant.id, "update", summary=summary, changes=changes)

    async def _set_stock(
        self, variant: Variant, expected: int, level: int, *, actor: User | None, note: str = ""
    ) -> None:
        """``set_stock`` plus a ``stock`` audit event (none when the level does not change)."""
        from webshop.stock.service import set_stock

        if level == expected and note == "initial stock":
            return
        reference = note or "admin edit"
        if actor is not None:
            reference = f"{reference} by {actor.email}"
        await set_stock(self.repository.session, variant.id, level, expected=expected, reference=reference)
        if level != expected:
            AuditService(session=self.repository.session).record(
                actor,
                "stock",
                variant.id,
                "set",
                summary=f"{variant.sku}: stock set to {level}" + (f" ({note})" if note else ""),
                changes={"stock": [expected, level]},
            )


def choose_variant(product: Product, chosen: dict[str, str], sku: str | None = None) -> Variant | None:
    """Pick the variant the shopper chose.

    ``sku`` wins when it names one of the product's variants; otherwise the variant whose option
    values match ``chosen`` (``{group: value}``) on the most groups, preferring one in stock; with no
    choice at all, the first variant in stock (or the first).
    """
    variants = list(product.variants)
    if not variants:
        return None
    if sku:
        for variant in variants:
            if variant.sku == sku:
                return variant
    groups = product.option_groups or []

    def score(variant: Variant) -> tuple[int, int, int]:
        options = variant.options(groups)
        matches = sum(1 for g, v in chosen.items() if options.get(g) == v)
        return (matches, 1 if variant.stock > 0 else 0, -variants.index(variant))

    return max(variants, key=score)


def option_choices(product: Product) -> list[tuple[str, list[str]]]:
    """Return ``[(group, [values in first-seen order])]`` for the variant picker."""
    groups = product.option_groups or []
    choices: list[tuple[str, list[str]]] = []
    for index, group in enumerate(groups):
        values: list[str] = []
        for variant in product.variants:
            if index < len(variant.option_values) and variant.option_values[index] not in values:
                values.append(variant.option_values[index])
        choices.append((group, values))
    return choices


# --- admin product rules (ProductService's writes) --------------------------------------------------------

ADMIN_STATES = {"active": "Not deleted", "deleted": "Deleted", "all": "All"}
"""The admin product table's state filter (``admin_search(state=...)``)."""
ADMIN_STOCK_LEVELS = {"out": "Out of stock", "critical": "Critical", "low": "Low", "healthy": "Healthy"}
"""The admin product table's stock filter: a product with any variant at that level."""
ADMIN_SORTS = {
    "name": "Name: A to Z",
    "-name": "Name: Z to A",
    "newest": "Newest",
    "updated": "Recently changed",
    "price": "Price: low to high",
    "-price": "Price: high to low",
    "stock": "Stock: least first",
    "-stock": "Stock: most first",
}
"""Sorts of the admin product table (``admin_search(sort=...)``)."""

_ADMIN_SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_CURRENCY = re.compile(r"[A-Z]{3}")
_TAX_CATEGORY = re.compile(r"[a-z0-9_-]{1,40}")
_MAX_INT = 2**31 - 1
_MAX_DESCRIPTION = 20_000
_MAX_OPTION_GROUPS = 5


def _clean_text(value: Any) -> str:
    """``value`` as a trimmed string (``None`` → ``""``)."""
    return "" if value is None else str(value).strip()


def _text_field(value: Any, key: str, errors: dict[str, str], *, label: str, limit: int, required: bool = True) -> str:
    text = _clean_text(value)
    if "\x00" in text:
        errors[key] = f"{label} must not contain NUL characters."
    elif required and not text:
        errors[key] = f"Enter {label.lower()}."
    elif len(text) > limit:
        errors[key] = f"{label} can be at most {limit} characters."
    return text


def _clean_product(raw: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Validate and normalise the product fields present in ``raw``; adds to ``errors``."""
    values: dict[str, Any] = {}
    if "name" in raw:
        values["name"] = _text_field(raw["name"], "name", errors, label="A name", limit=200)
    if "slug" in raw:
        slug = _clean_text(raw["slug"]).lower()
        if slug and (len(slug) > 200 or not _ADMIN_SLUG.fullmatch(slug)):
            errors["slug"] = "Use lowercase letters and digits joined by single hyphens (at most 200), e.g. trail-shoe."
        values["slug"] = slug
    if "description" in raw:
        values["description"] = _text_field(
            raw["description"], "description", errors, label="The description", limit=_MAX_DESCRIPTION, required=False
        )
    if "category_id" in raw:
        category_id = raw["category_id"]
        if category_id is not None and (not isinstance(category_id, int) or not 0 < category_id <= 2**63 - 1):
            errors["category_id"] = "Choose an existing category."
        values["category_id"] = category_id
    if "is_active" in raw:
        values["is_active"] = bool(raw["is_active"])
    if "facets" in raw:
        facets: dict[str, list[str]] = {}
        for name, items in (raw["facets"] or {}).items():
            facet = _clean_text(name).lower()
            cleaned = list(dict.fromkeys(_clean_text(v) for v in items or [] if _clean_text(v)))
            if not cleaned:
                continue
            if not facet or len(facet) > 60 or "\x00" in facet:
                errors["facets"] = f"Facet names must be 1-60 characters ({facet[:20] or 'empty'})."
            elif facet == "category":
                errors["facets"] = "The category is chosen above, not as a facet."
            elif any(len(v) > 120 or "\x00" in v for v in cleaned):
                errors["facets"] = f"Values of {facet} can be at most 120 characters."
            facets.setdefault(facet, [])
            facets[facet] += [v for v in cleaned if v not in facets[facet]]
        values["facets"] = facets
    if "option_groups" in raw:
        groups = [_clean_text(g) for g in raw["option_groups"] or []]
        groups = [g for g in groups if g]
        if len({g.casefold() for g in groups}) != len(groups):
            errors["option_groups"] = "Each option group can appear only once."
        elif len(groups) > _MAX_OPTION_GROUPS:
            errors["option_groups"] = f"Use at most {_MAX_OPTION_GROUPS} option groups."
        elif any(len(g) > 60 or "\x00" in g for g in groups):
            errors["option_groups"] = "Option group names can be at most 60 characters."
        values["option_groups"] = groups
    return values


def _clean_variant(
    raw: dict[str, Any],
    errors: dict[str, str],
    prefix: str,
    tax_categories: Collection[str] | None,
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """Validate and normalise the variant fields in ``raw`` (all of ``VariantWrite``'s unless ``partial``)."""
    values: dict[str, Any] = {}
    if "sku" in raw:
        values["sku"] = _text_field(raw["sku"], prefix + "sku", errors, label="A SKU", limit=64)
    if "option_values" in raw:
        options = [_clean_text(v) for v in raw["option_values"] or []]
        if any(not v for v in options):
            errors[prefix + "option_values"] = "Enter a value for each option group."
        elif any(len(v) > 120 or "\x00" in v for v in options):
            errors[prefix + "option_values"] = "Option values can be at most 120 characters."
        values["option_values"] = options
    for key, label in (("price", "The price"), ("stock", "Stock"), ("low_stock_threshold", "The low-stock threshold")):
        if key in raw:
            number = raw[key]
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                errors[prefix + key] = f"{label} must be 0 or more."
            elif number > _MAX_INT:
                errors[prefix + key] = f"{label} is too large."
            values[key] = number
    if "currency" in raw:
        currency = _clean_text(raw["currency"]).upper()
        if not _CURRENCY.fullmatch(currency):
            errors[prefix + "currency"] = "Use a three-letter ISO 4217 currency code, such as USD."
        values["currency"] = currency
    if "tax_category" in raw:
        tax = _clean_text(raw["tax_category"])
        if not _TAX_CATEGORY.fullmatch(tax) or (tax_categories is not None and tax not in tax_categories):
            known = ", ".join(sorted(tax_categories)) if tax_categories is not None else "standard"
            errors[prefix + "tax_category"] = f"Choose a tax category ({known})."
        values["tax_category"] = tax
    if not partial:
        for key in ("sku", "price"):
            if key not in raw:
                errors[prefix + key] = "This field is required."
    return values


def _check_variant_set(
    groups: list[str],
    variants: list[dict[str, Any]],
    errors: dict[str, str],
    prefixes: list[str],
    *,
    group_key: str = "option_values",
) -> None:
    """Rules across a product's variants: one option value per group, no repeated SKU or combination.

    A variant's count mismatch is reported on its own ``option_values`` field when it has a prefix
    from the form/body (``variants[i].``), else on ``group_key`` naming the SKU.
    """
    skus: dict[str, int] = {}
    combos: dict[tuple[str, ...], int] = {}
    for index, (variant, prefix) in enumerate(zip(variants, prefixes, strict=True)):
        inline = not prefix.startswith("sku ")
        options = variant.get("option_values", [])
        if len(options) != len(groups) and (prefix + "option_values") not in errors:
            message = f"Give {len(groups)} option value(s), one per option group ({', '.join(groups) or 'none'})."
            if inline:
                errors[prefix + "option_values"] = message
            else:
                errors.setdefault(
                    group_key,
                    f"Variant {variant.get('sku')} has {len(options)} option value(s): change its values too.",
                )
        sku = variant.get("sku")
        if sku:
            if sku in skus and inline:
                errors[prefix + "sku"] = f"SKU {sku} is used twice in this product."
            skus.setdefault(sku, index)
        if groups and len(options) == len(groups):
            combo = tuple(v.casefold() for v in options)
            if combo in combos and inline and (prefix + "option_values") not in errors:
                errors[prefix + "option_values"] = "Another variant already has these option values."
            combos.setdefault(combo, index)


def _facet_dict(product: Product) -> dict[str, list[str]]:
    facets: dict[str, list[str]] = {}
    for facet in product.facets:
        facets.setdefault(facet.facet, []).append(facet.value)
    return facets


def _replace_facets(product: Product, facets: dict[str, list[str]]) -> None:
    wanted = {(f, v) for f, values in facets.items() for v in values}
    for facet in [f for f in product.facets if (f.facet, f.value) not in wanted]:
        product.facets.remove(facet)
    have = {(f.facet, f.value) for f in product.facets}
    for name, values in facets.items():
        for value in values:
            if (name, value) not in have:
                product.facets.append(ProductFacet(facet=name, value=value))


def _product_snapshot(product: Product, facets: dict[str, list[str]]) -> dict[str, Any]:
    """The audited fields of a product (JSON values)."""
    return {
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "category_id": product.category_id,
        "facets": facets,
        "option_groups": list(product.option_groups or []),
        "is_active": product.is_active,
    }


def _variant_snapshot(variant: Variant) -> dict[str, Any]:
    """The audited fields of a variant (JSON values; stock is audited separately)."""
    return {
        "sku": variant.sku,
        "option_values": list(variant.option_values or []),
        "price": variant.price,
        "currency": variant.currency,
        "tax_category": variant.tax_category,
        "low_stock_threshold": variant.low_stock_threshold,
    }


def _conflict(exc: IntegrityError) -> ValidationFailed:
    """A unique constraint hit by a concurrent write (the checks above passed): say which field."""
    text = str(exc.orig).lower()
    if "sku" in text:
        field_errors = {"sku": "This SKU was just taken by another variant."}
    elif "slug" in text:
        field_errors = {"slug": "This slug was just taken by another product."}
    else:
        field_errors = {}
    message = "The change conflicts with one made at the same time; please try again."
    return ValidationFailed(message, field_errors=field_errors)
