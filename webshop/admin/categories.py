"""Admin category pages: the tree, create, rename, move (parent and up/down) and delete, with the audit trail.

Every action is a plain form post answered by a 303 redirect (``hx-boost`` makes it an in-place swap when
JavaScript is on), or, when the service refuses it, the same page re-rendered with the reason next to the
form and the error status (409 or 422). The rules live in ``CategoryService``.
"""

from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.admin import AdminPages
from webshop.audit.service import AuditService
from webshop.catalog.categories import CategoryService
from webshop.catalog.query import CategoryNode, build_tree, descendant_ids
from webshop.db.models import Category, User
from webshop.errors import DomainError, ValidationFailed
from webshop.web.forms import Form
from webshop.web.responses import see_other_to


class CategoryForm(msgspec.Struct):
    """The create and rename forms: a name, an optional slug, and (create) the parent (``""`` = top level)."""

    name: str = ""
    slug: str = ""
    parent_id: str = ""


class MoveForm(msgspec.Struct):
    """The move form: the new parent (``""`` = top level) and a 1-based place among its children (``""`` = last)."""

    parent_id: str = ""
    position: str = ""


def _parent_id(raw: str) -> int | None:
    """The parent id a form sent (``""`` = top level).

    Raises:
        ValidationFailed: not a category id.
    """
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 18:
        message = "Choose a parent category from the list."
        raise ValidationFailed(message, field_errors={"parent_id": message})
    return int(raw)


def _position(raw: str) -> int | None:
    """The 0-based position for a 1-based place typed in the form (``""`` = last).

    Raises:
        ValidationFailed: not a whole number of 1 or more.
    """
    raw = raw.strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9 or int(raw) < 1:
        message = "Enter a place of 1 or more, or leave it empty to put the category last."
        raise ValidationFailed(message, field_errors={"position": message})
    return int(raw) - 1


def flatten(nodes: list[CategoryNode], depth: int = 0) -> list[tuple[CategoryNode, int]]:
    """The tree as ``[(node, depth)]`` in display order, for parent pickers."""
    rows: list[tuple[CategoryNode, int]] = []
    for node in nodes:
        rows.append((node, depth))
        rows.extend(flatten(node.children, depth + 1))
    return rows


def subtree_counts(
    categories: list[Category], own: dict[int, tuple[int, int]], *, only: set[int] | None = None
) -> dict[int, tuple[int, int]]:
    """``{category id: (products, of which soft-deleted)}`` counting each category's subcategories too.

    The shop lists a category's products with those of every category below it (``descendant_ids``);
    the admin's counts add up the same subtree, so a parent does not read "0 products".

    Args:
        categories: Every category.
        own: Products directly in each category, from ``CategoryService.product_counts``.
        only: Count these categories only (``None``: all).
    """
    counts: dict[int, tuple[int, int]] = {}
    for category in categories:
        if only is not None and category.id not in only:
            continue
        subtree = [own.get(i, (0, 0)) for i in descendant_ids(categories, category.id)]
        counts[category.id] = (sum(total for total, _ in subtree), sum(deleted for _, deleted in subtree))
    return counts


class AdminCategoryController(AdminPages):
    """The category tree for admins."""

    path = "/admin/categories"

    @get("", name="admin_categories", media_type=MediaType.HTML)
    async def index(self, categories_service: NamedDependency[CategoryService]) -> Template:
        """The tree with up/down buttons, product counts and the create form."""
        return await self._index(categories_service)

    @post("", name="admin_category_create", media_type=MediaType.HTML)
    async def create(
        self,
        request: Request[User, Any, Any],
        data: Annotated[CategoryForm, Form],
        categories_service: NamedDependency[CategoryService],
    ) -> Any:
        """Create a category (last among its siblings)."""
        try:
            category = await categories_service.create_category(
                request.user, name=data.name, parent_id=_parent_id(data.parent_id), slug=data.slug
            )
        except DomainError as exc:
            return await self._index(categories_service, form=data, error=exc)
        flash(request, f"Created category “{category.name}”.", "success")
        return see_other_to(request, "admin_categories", fragment=f"category-{category.id}")

    @get("/{category_id:int}", name="admin_category", media_type=MediaType.HTML)
    async def detail(
        self,
        category_id: FromPath[int],
        categories_service: NamedDependency[CategoryService],
        audit_service: NamedDependency[AuditService],
    ) -> Template:
        """One category: rename, move, delete (with the reason it cannot be, if so) and its audit trail."""
        category = await categories_service.get_category(category_id)
        return await self._detail(categories_service, audit_service, category)

    @post("/{category_id:int}/rename", name="admin_category_rename", media_type=MediaType.HTML)
    async def rename(
        self,
        request: Request[User, Any, Any],
        category_id: FromPath[int],
        data: Annotated[CategoryForm, Form],
        categories_service: NamedDependency[CategoryService],
        audit_service: NamedDependency[AuditService],
    ) -> Any:
        """Rename a category (and change its slug if one is given)."""
        try:
            category = await categories_service.rename_category(
                request.user, category_id, name=data.name, slug=data.slug
            )
        except DomainError as exc:
            category = await categories_service.get_category(category_id)
            return await self._detail(categories_service, audit_service, category, rename_form=data, error=exc)
        flash(request, f"Saved “{category.name}”.", "success")
        return see_other_to(request, "admin_category", category_id=category_id)

    @post("/{category_id:int}/move", name="admin_category_move", media_type=MediaType.HTML)
    async def move(
        self,
        request: Request[User, Any, Any],
        category_id: FromPath[int],
        data: Annotated[MoveForm, Form],
        categories_service: NamedDependency[CategoryService],
        audit_service: NamedDependency[AuditService],
    ) -> Any:
        """Move a category under another parent, at a place among its new siblings."""
        try:
            category = await categories_service.move_category(
                request.user, category_id, parent_id=_parent_id(data.parent_id), position=_position(data.position)
            )
        except DomainError as exc:
            category = await categories_service.get_category(category_id)
            return await self._detail(categories_service, audit_service, category, move_form=data, error=exc)
        flash(request, f"Moved “{category.name}”.", "success")
        return see_other_to(request, "admin_category", category_id=category_id)

    @post("/{category_id:int}/up", name="admin_category_up", media_type=MediaType.HTML)
    async def up(
        self,
        request: Request[User, Any, Any],
        category_id: FromPath[int],
        categories_service: NamedDependency[CategoryService],
    ) -> Any:
        """Move a category one place up among its siblings."""
        await categories_service.shift_category(request.user, category_id, -1)
        return see_other_to(request, "admin_categories", fragment=f"category-{category_id}")

    @post("/{category_id:int}/down", name="admin_category_down", media_type=MediaType.HTML)
    async def down(
        self,
        request: Request[User, Any, Any],
        category_id: FromPath[int],
        categories_service: NamedDependency[CategoryService],
    ) -> Any:
        """Move a category one place down among its siblings."""
        await categories_service.shift_category(request.user, category_id, 1)
        return see_other_to(request, "admin_categories", fragment=f"category-{category_id}")

    @post("/{category_id:int}/delete", name="admin_category_delete", media_type=MediaType.HTML)
    async def delete(
        self,
        request: Request[User, Any, Any],
        category_id: FromPath[int],
        categories_service: NamedDependency[CategoryService],
        audit_service: NamedDependency[AuditService],
    ) -> Any:
        """Delete an empty category; otherwise show why it cannot go."""
        category = await categories_service.get_category(category_id)
        name = category.name
        try:
            await categories_service.delete_category(request.user, category_id)
        except DomainError as exc:
            return await self._detail(categories_service, audit_service, category, error=exc)
        flash(request, f"Deleted category “{name}”.", "success")
        return see_other_to(request, "admin_categories")

    async def _index(
        self, categories: CategoryService, *, form: CategoryForm | None = None, error: DomainError | None = None
    ) -> Template:
        all_categories = await categories.all_categories()
        tree = build_tree(all_categories)
        return Template(
            "admin/categories/index.html",
            context={
                "tree": tree,
                "options": flatten(tree),
                "counts": subtree_counts(all_categories, await categories.product_counts()),
                "form": form or CategoryForm(),
                "error": error.detail if error else None,
                "errors": error.field_errors if error else {},
            },
            status_code=error.status_code if error else 200,
        )

    async def _detail(
        self,
        categories: CategoryService,
        audit: AuditService,
        category: Category,
        *,
        rename_form: CategoryForm | None = None,
        move_form: MoveForm | None = None,
        error: DomainError | None = None,
    ) -> Template:
        all_categories = await categories.all_categories()
        tree = await categories.tree()
        own_subtree = descendant_ids(all_categories, category.id)
        own_counts = await categories.product_counts()
        siblings = [c for c in all_categories if c.parent_id == category.parent_id]
        return Template(
            "admin/categories/detail.html",
            context={
                "category": category,
                "parent": next((c for c in all_categories if c.id == category.parent_id), None),
                "children": [c for c in all_categories if c.parent_id == category.id],
                "place": siblings.index(category) + 1 if category in siblings else 1,
                "sibling_count": len(siblings),
                "parents": [(node, depth) for node, depth in flatten(tree) if node.id not in own_subtree],
                "counts": subtree_counts(all_categories, own_counts, only={category.id})[category.id],
                "own_counts": own_counts.get(category.id, (0, 0)),
                "refusal": await categories.deletion_refusal(category),
                "rename_form": rename_form or CategoryForm(name=category.name, slug=category.slug),
                "move_form": move_form or MoveForm(parent_id=str(category.parent_id or ""), position=""),
                "error": error.detail if error else None,
                "errors": error.field_errors if error else {},
                "audit_events": await audit.for_entity("category", [category.id]),
            },
            status_code=error.status_code if error else 200,
        )
