"""Admin category pages: the tree, create, rename, move (parent and up/down) and delete, with the audit trail.

Every action is a plain form post answered by a 303 redirect (``hx-boost`` makes it an in-place swap when
JavaScript is on), or, when the service refuses it, the same page re-rendered with the reason next to the
form and the error status (409 or 422). The rules live in ``CategoryService``.
"""

from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.plugins.htmx import HXLocation
from litestar.response import Redirect, Template

from webshop.admin import AdminPages
from webshop.admin.pages import AdminRequest, flash_see_other
from webshop.api.schemas import PathId
from webshop.catalog.categories import CategoryService
from webshop.catalog.query import CategoryNode, build_tree, descendant_ids
from webshop.db.models import Category
from webshop.deps import AuditDep, CategoriesDep
from webshop.errors import DomainError, ValidationFailed
from webshop.text import whole_number_text
from webshop.web.forms import Form, form_message
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
    if not raw.strip():
        return None
    if (parent_id := whole_number_text(raw)) is None:
        message = "Choose a parent category from the list."
        raise ValidationFailed(message, field_errors={"parent_id": message})
    return parent_id


def _position(raw: str) -> int | None:
    """The 0-based position for a 1-based place typed in the form (``""`` = last).

    Raises:
        ValidationFailed: not a whole number of 1 or more.
    """
    if not raw.strip():
        return None
    if (place := whole_number_text(raw, max_digits=9)) is None or place < 1:
        message = "Enter a place of 1 or more, or leave it empty to put the category last."
        raise ValidationFailed(message, field_errors={"position": message})
    return place - 1


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


class CategoryPage:
    """One category's admin page, built per request by Litestar from the path's ``category_id`` and the
    services the page needs (the ``category_page`` of the category handlers)."""

    def __init__(
        self,
        request: AdminRequest,
        category_id: PathId,
        categories_service: CategoriesDep,
        audit_service: AuditDep,
    ) -> None:
        self.request, self.user, self.category_id = request, request.user, category_id
        self.categories, self.audit = categories_service, audit_service

    async def render(
        self,
        *,
        rename_form: CategoryForm | None = None,
        move_form: MoveForm | None = None,
        error: DomainError | None = None,
    ) -> Template:
        """The category's page as it is now, with the forms' input kept and the error of a refused change (its
        message and status code)."""
        categories = self.categories
        category = await categories.get_category(self.category_id)
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
                "error": form_message(error),
                "errors": _beside(error, move_form is not None),
                "audit_events": await self.audit.for_entity("category", [category.id]),
            },
            status_code=error.status_code if error else 200,
        )

    def done(self, message: str) -> Redirect | HXLocation:
        """Flash ``message`` and go back to the category's page (a change that worked)."""
        return flash_see_other(self.request, message, "admin_category", category_id=self.category_id)


def _beside(error: DomainError | None, moving: bool) -> dict[str, str]:
    """``error``'s field messages where the page shows them: a refused move's beside the move form's fields
    (its "there is already a category of that name there" beside the new parent, not the rename form's
    name), a refused rename's beside the rename form's."""
    errors = dict(error.field_errors) if error else {}
    if moving:
        return {(key if key in MoveForm.__struct_fields__ else "parent_id"): value for key, value in errors.items()}
    return errors


CategoryPageDep: TypeAlias = NamedDependency[CategoryPage]
"""``category_page``: the page of the category in the path (``AdminCategoryController.dependencies``)."""


class AdminCategoryController(AdminPages):
    """The category tree for admins."""

    path = "/admin/categories"
    dependencies = {"category_page": Provide(CategoryPage, sync_to_thread=False)}

    @get("", name="admin_categories", media_type=MediaType.HTML)
    async def index(self, categories_service: CategoriesDep) -> Template:
        """The tree with up/down buttons, product counts and the create form."""
        return await self._index(categories_service)

    @post("", name="admin_category_create", media_type=MediaType.HTML)
    async def create(
        self, request: AdminRequest, data: Annotated[CategoryForm, Form], categories_service: CategoriesDep
    ) -> Any:
        """Create a category (last among its siblings)."""
        try:
            category = await categories_service.create_category(
                request.user, name=data.name, parent_id=_parent_id(data.parent_id), slug=data.slug
            )
        except DomainError as exc:
            return await self._index(categories_service, form=data, error=exc)
        message = f"Created category “{category.name}”."
        return flash_see_other(request, message, "admin_categories", fragment=f"category-{category.id}")

    @get("/{category_id:int}", name="admin_category", media_type=MediaType.HTML)
    async def detail(self, category_page: CategoryPageDep) -> Template:
        """One category: rename, move, delete (with the reason it cannot be, if so) and its audit trail."""
        return await category_page.render()

    @post("/{category_id:int}/rename", name="admin_category_rename", media_type=MediaType.HTML)
    async def rename(self, data: Annotated[CategoryForm, Form], category_page: CategoryPageDep) -> Any:
        """Rename a category (and change its slug if one is given)."""
        try:
            category = await category_page.categories.rename_category(
                category_page.user, category_page.category_id, name=data.name, slug=data.slug
            )
        except DomainError as exc:
            return await category_page.render(rename_form=data, error=exc)
        return category_page.done(f"Saved “{category.name}”.")

    @post("/{category_id:int}/move", name="admin_category_move", media_type=MediaType.HTML)
    async def move(self, data: Annotated[MoveForm, Form], category_page: CategoryPageDep) -> Any:
        """Move a category under another parent, at a place among its new siblings."""
        try:
            category = await category_page.categories.move_category(
                category_page.user,
                category_page.category_id,
                parent_id=_parent_id(data.parent_id),
                position=_position(data.position),
            )
        except DomainError as exc:
            return await category_page.render(move_form=data, error=exc)
        return category_page.done(f"Moved “{category.name}”.")

    @post("/{category_id:int}/up", name="admin_category_up", media_type=MediaType.HTML)
    async def up(self, request: AdminRequest, category_id: PathId, categories_service: CategoriesDep) -> Any:
        """Move a category one place up among its siblings."""
        await categories_service.shift_category(request.user, category_id, -1)
        return see_other_to(request, "admin_categories", fragment=f"category-{category_id}")

    @post("/{category_id:int}/down", name="admin_category_down", media_type=MediaType.HTML)
    async def down(self, request: AdminRequest, category_id: PathId, categories_service: CategoriesDep) -> Any:
        """Move a category one place down among its siblings."""
        await categories_service.shift_category(request.user, category_id, 1)
        return see_other_to(request, "admin_categories", fragment=f"category-{category_id}")

    @post("/{category_id:int}/delete", name="admin_category_delete", media_type=MediaType.HTML)
    async def delete(self, category_page: CategoryPageDep) -> Any:
        """Delete an empty category; otherwise show why it cannot go."""
        categories = category_page.categories
        category = await categories.get_category(category_page.category_id)
        name = category.name
        try:
            await categories.delete_category(category_page.user, category.id)
        except DomainError as exc:
            return await category_page.render(error=exc)
        return flash_see_other(category_page.request, f"Deleted category “{name}”.", "admin_categories")

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
                "error": form_message(error),
                "errors": error.field_errors if error else {},
            },
            status_code=error.status_code if error else 200,
        )
