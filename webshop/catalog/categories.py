"""The category tree: ``CategoryService`` and its rules (names, slugs, moves, deletion refusals).

Every write ends with ``catalog_changed`` before it commits (see ``webshop.catalog.browse``).
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, cast

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webshop.audit.service import Audited, diff
from webshop.catalog import limits
from webshop.catalog.query import CategoryNode, build_tree, descendant_ids
from webshop.catalog.slugs import free_slug, slugify
from webshop.catalog.summaries import catalog_changed
from webshop.db.models import Category, Product, User
from webshop.db.repository import repository_for
from webshop.errors import Conflict, NotFound, ValidationFailed
from webshop.promotions.targets import forget_targets
from webshop.text import BIDI_MESSAGE, has_bidi_control

if TYPE_CHECKING:
    from webshop.catalog.schemas import CategoryPatch


class CategoryService(Audited, SQLAlchemyAsyncRepositoryService[Category]):
    """Category tree: reading it for navigation and resolving a slug to itself and its descendants."""

    repository_type = repository_for(Category)

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
            NotFoundError: (advanced-alchemy's, answered as ``NotFound``) no category has that slug.
        """
        return await self.get_one(
            Category.slug == slug, error_messages={"not_found": f"There is no category “{slug}”."}
        )

    # --- admin writes: create, rename, move, delete (issue 5 pages and the issue 4 admin API) -----------

    async def get_category(self, category_id: int) -> Category:
        """Return the category with ``category_id``.

        Raises:
            NotFound: no category has that id.
        """
        category = await self.repository.session.get(Category, category_id)
        if category is None:
            raise NotFound("There is no such category.")
        return cast("Category", category)

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
            ValidationFailed: the name or slug is malformed or taken (a sibling has the name, another
                category the slug), or the parent does not exist; ``field_errors`` names the field.
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
        self.audit.record(
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
            ValidationFailed: the name or slug is malformed or taken (as ``create_category``).
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
        summary = f"Renamed category “{before['name']}” to “{name}”." if renamed else f"Changed the slug of “{name}”."
        await self._changed(actor, categories, category, before, "rename", summary, subtree=renamed)
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
            NotFound: no such category.
            ValidationFailed: no such parent, or the new parent is the category itself or one of its
                descendants (a category cannot be moved into its own subtree), or already has a child of
                the same name; ``field_errors`` names ``parent_id`` or ``name``.
        """
        categories = await self._locked_tree()
        category = _find_category(categories, category_id)
        _find_parent(categories, parent_id)
        if parent_id is not None and parent_id in descendant_ids(categories, category.id):
            message = "A category cannot be moved into itself or one of its subcategories."
            raise ValidationFailed(message, field_errors={"parent_id": message})
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
        summary = f"Moved category “{category.name}”."
        await self._changed(actor, categories, category, before, "move", summary, subtree=moved)
        return category

    async def update_category(self, actor: User | None, category_id: int, patch: CategoryPatch) -> Category:
        """``PATCH /api/categories/{id}``: rename when ``name`` or ``slug`` is sent, then move when ``parent_id``
        or ``position`` is, in the request's one transaction (a refused move leaves the name as it was).

        Raises:
            NotFound: no such category.
            ValidationFailed: as ``rename_category`` and ``move_category``.
            Conflict: changed at the same time by someone else.
        """
        category = await self.get_category(category_id)
        if patch.name is not msgspec.UNSET or patch.slug is not msgspec.UNSET:
            name = category.name if patch.name is msgspec.UNSET else patch.name
            slug = None if patch.slug is msgspec.UNSET else patch.slug
            category = await self.rename_category(actor, category_id, name=name, slug=slug)
        if patch.parent_id is not msgspec.UNSET or patch.position is not msgspec.UNSET:
            parent_id = category.parent_id if patch.parent_id is msgspec.UNSET else patch.parent_id
            position = None if patch.position is msgspec.UNSET else patch.position
            category = await self.move_category(actor, category_id, parent_id=parent_id, position=position)
        return category

    async def _changed(
        self,
        actor: User | None,
        categories: list[Category],
        category: Category,
        before: dict[str, Any],
        action: str,
        summary: str,
        *,
        subtree: bool,
    ) -> None:
        """After a rename or move: the catalog's derived data (the search documents of the products in
        the subtree, when ``subtree``) and a ``category`` audit event with what changed, if anything."""
        below = await self._products_below(categories, category.id) if subtree else ()
        await catalog_changed(self.repository.session, below)
        if changes := diff(before, _category_state(category)):
            self.audit.record(actor, "category", category.id, action, summary=summary, changes=changes)

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
            reason = f"category “{before['name']}” was deleted"
            session = self.repository.session
            await forget_targets(session, self.audit, actor, category_ids=[category_id], reason=reason)
            await session.delete(category)
        await catalog_changed(self.repository.session)
        self.audit.record(
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


_CATEGORY_NAME_MAX = limits.CATEGORY_NAME
_CATEGORY_SLUG_MAX = limits.CATEGORY_SLUG
_CATEGORY_SLUG_PATTERN = limits.SLUG


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
    elif has_bidi_control(name):
        message = BIDI_MESSAGE
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
        ValidationFailed: there is no such category (a field error on ``parent_id``): an unknown id in the
            body is bad input (422), as an unknown ``category_id`` of a product.
    """
    if parent_id is None:
        return None
    for category in categories:
        if category.id == parent_id:
            return category
    message = "The parent category does not exist."
    raise ValidationFailed(message, field_errors={"parent_id": message})


def _check_sibling_name(
    categories: list[Category], parent_id: int | None, name: str, *, exclude: int | None = None
) -> None:
    """Raise ``ValidationFailed`` when a child of ``parent_id`` (other than ``exclude``) has ``name`` (any case)."""
    folded = name.casefold()
    for category in categories:
        if category.parent_id == parent_id and category.id != exclude and category.name.casefold() == folded:
            message = f"There is already a category “{category.name}” here."
            raise ValidationFailed(message, field_errors={"name": message})


def _category_slug(categories: list[Category], slug: str | None, name: str, parent: Category | None) -> str:
    """``slug`` checked for form and uniqueness, or (when empty) a free slug derived from ``name``.

    Raises:
        ValidationFailed: the slug is not lowercase letters and digits joined by ``-``, or another
            category has it (as a product's slug taken).
    """
    taken = {category.slug for category in categories}
    slug = (slug or "").strip()
    if slug:
        if len(slug) > _CATEGORY_SLUG_MAX or not _CATEGORY_SLUG_PATTERN.fullmatch(slug):
            message = "Use lowercase letters and digits joined by “-” (at most 140 characters)."
            raise ValidationFailed(message, field_errors={"slug": message})
        if slug in taken:
            message = f"The slug “{slug}” is already used by another category."
            raise ValidationFailed(message, field_errors={"slug": message})
        return slug
    candidates = [slugify(name)]
    if parent is not None:
        candidates.append(f"{parent.slug}-{slugify(name)}")
    return free_slug(candidates, taken, limit=_CATEGORY_SLUG_MAX - 8, fallback="category")


def _siblings(categories: list[Category], parent_id: int | None) -> list[Category]:
    """The children of ``parent_id`` in display order (position, name)."""
    return sorted((c for c in categories if c.parent_id == parent_id), key=lambda c: (c.position, c.name, c.id))
