"""The admin area under ``/admin``: management pages for the catalog, stock, orders and users.

Every admin controller sets ``guards = ADMIN_GUARDS`` and ``include_in_schema = False``. The guard sends a
signed-out visitor to the sign-in form with ``?next=`` back to the page, and shows anyone who is not an
admin the 403 page (webshop.web.errors). Admin pages extend ``templates/admin/base.html``.
"""

from __future__ import annotations

from typing import Any

from webshop.security.session import requires_admin

ADMIN_GUARDS: list[Any] = [requires_admin]
"""Guards of every admin controller: signed-out → sign-in redirect, customer → 403 page."""

ADMIN_PAGE_SIZE = 25
"""Rows per page of the admin lists."""

__all__ = ["ADMIN_GUARDS", "ADMIN_PAGE_SIZE"]
