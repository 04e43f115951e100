"""The admin area under ``/admin``: management pages for the catalog, stock, orders and users.

Platform-only controllers (users, categories, shops) subclass ``AdminPages`` (``guards = ADMIN_GUARDS``);
the pages a shop's owners and staff use too (dashboard, products, stock, orders, CSV) subclass
``ShopStaffPages`` (``guards = SHOP_STAFF_GUARDS``) and show a member only their shops' rows
(``webshop.shops.scope``). Both leave the OpenAPI schema. A guard sends a signed-out visitor to the
sign-in form with ``?next=`` back to the page, and shows anyone else who may not come in the 403 page
(webshop.web.errors). Admin pages extend ``templates/admin/base.html``.
"""

from typing import Any

from litestar import Controller
from litestar.di import Provide
from litestar.response import Template

from webshop.admin.pages import provide_shop_scope
from webshop.security.session import requires_admin
from webshop.shops.guards import requires_shop_staff
from webshop.web import AnyRequest
from webshop.web.responses import page_count, page_or_fragment

ADMIN_GUARDS: list[Any] = [requires_admin]
"""Guards of every admin controller: signed-out → sign-in redirect, customer → 403 page."""

SHOP_STAFF_GUARDS: list[Any] = [requires_shop_staff]
"""Guards of the admin pages shop members use too: signed-out → sign-in redirect, a customer → 403 page."""

SHOP_STAFF_DEPENDENCIES: dict[str, Provide] = {"shop_scope": Provide(provide_shop_scope)}
"""What ``ShopStaffPages`` handlers get by name besides the app's services: ``shop_scope``, the shops the
page shows (``webshop.admin.pages.provide_shop_scope``). A controller with dependencies of its own adds them
to these."""

ADMIN_PAGE_SIZE = 25
"""Rows per page of the admin lists."""


class AdminPages(Controller):
    """Base of every admin controller: admins only (``ADMIN_GUARDS``), left out of the OpenAPI schema."""

    guards = ADMIN_GUARDS
    include_in_schema = False


class ShopStaffPages(Controller):
    """Base of the admin controllers shop members use too: admins and shop members (``SHOP_STAFF_GUARDS``),
    left out of the OpenAPI schema. Handlers scope their rows with ``webshop.shops.scope.admin_scope`` (or take
    it as ``shop_scope``, ``SHOP_STAFF_DEPENDENCIES``)."""

    guards = SHOP_STAFF_GUARDS
    include_in_schema = False
    dependencies = SHOP_STAFF_DEPENDENCIES


def admin_list_page(
    request: AnyRequest,
    folder: str,
    results_id: str,
    context: dict[str, Any],
    *,
    total: int,
    page: int,
    filters: dict[str, str],
    query: dict[str, str] | None = None,
) -> Template:
    """An admin list page, ``{folder}/index.html``, or its results fragment ``{folder}/_results.html`` for an
    htmx request aimed at ``#{results_id}`` (see ``page_or_fragment``).

    Args:
        request: The list page's request.
        folder: The templates' folder, such as ``admin/orders``.
        results_id: The id of the results section the fragment replaces, such as ``order-results``.
        context: The rows and what else the page shows.
        total: Rows matching the filters (all pages), for the count and ``pages`` (``ADMIN_PAGE_SIZE`` a page).
        page: The 1-based page shown.
        filters: The filter form's values (``""`` for none).
        query: The query string the pagination links keep (default: the filters that are set).
    """
    return page_or_fragment(
        request,
        f"{folder}/index.html",
        {results_id: f"{folder}/_results.html"},
        {
            **context,
            "total": total,
            "page": page,
            "pages": page_count(total, ADMIN_PAGE_SIZE),
            "filters": filters,
            "query": {k: v for k, v in filters.items() if v} if query is None else query,
        },
    )


__all__ = [
    "ADMIN_GUARDS",
    "ADMIN_PAGE_SIZE",
    "SHOP_STAFF_DEPENDENCIES",
    "SHOP_STAFF_GUARDS",
    "AdminPages",
    "ShopStaffPages",
    "admin_list_page",
]
