"""Admin user pages: list and search, one user's page with their audit trail, role and access changes.

The rules (the shop keeps at least one active admin; deactivation signs the user out everywhere) live in
``UserService.set_role`` / ``set_active``; a refused change re-renders the page with the reason (409).
"""

from typing import Any

from litestar import MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.accounts.service import UserService
from webshop.admin import ADMIN_PAGE_SIZE, AdminPages, admin_list_page
from webshop.audit.service import AuditService
from webshop.db.models import User, UserRole
from webshop.errors import Conflict
from webshop.web.responses import see_other_to

ROLES = [r.value for r in UserRole]
STATES = {"active": True, "deactivated": False}


class AdminUserController(AdminPages):
    """Users for admins: roles and access."""

    path = "/admin/users"

    @get("", name="admin_users", media_type=MediaType.HTML)
    async def index(
        self,
        request: Request[User, Any, Any],
        users_service: NamedDependency[UserService],
        q: FromQuery[str | None] = None,
        role: FromQuery[str | None] = None,
        access: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Template:
        """The user list (the results fragment for an htmx search)."""
        page = max(page, 1)
        role_filter = UserRole(role) if role in ROLES else None
        users, total = await users_service.search_users(
            q=(q or "")[:320],
            role=role_filter,
            active=STATES.get(access or ""),
            limit=ADMIN_PAGE_SIZE,
            offset=(page - 1) * ADMIN_PAGE_SIZE,
        )
        filters = {
            "q": q or "",
            "role": role_filter.value if role_filter else "",
            "access": access if access in STATES else "",
        }
        context = {"users": users, "roles": ROLES}
        return admin_list_page(request, "admin/users", "user-results", context, total=total, page=page, filters=filters)

    @get("/{user_id:int}", name="admin_user", media_type=MediaType.HTML)
    async def detail(
        self,
        user_id: FromPath[int],
        users_service: NamedDependency[UserService],
        audit_service: NamedDependency[AuditService],
    ) -> Template:
        """One user: account facts, role and access actions, and their audit trail."""
        return await render_user(user_id, users_service, audit_service)

    @post("/{user_id:int}/promote", name="admin_user_promote", media_type=MediaType.HTML)
    async def promote(
        self,
        request: Request[User, Any, Any],
        user_id: FromPath[int],
        users_service: NamedDependency[UserService],
    ) -> Any:
        """Make the user an admin."""
        user = await users_service.set_role(user_id, UserRole.ADMIN, actor=request.user)
        flash(request, f"{user.email} is now an admin.", "info")
        return see_other_to(request, "admin_user", user_id=user_id)

    @post("/{user_id:int}/demote", name="admin_user_demote", media_type=MediaType.HTML)
    async def demote(
        self,
        request: Request[User, Any, Any],
        user_id: FromPath[int],
        users_service: NamedDependency[UserService],
        audit_service: NamedDependency[AuditService],
    ) -> Any:
        """Make the user a customer (refused for the last active admin)."""
        myself = user_id == request.user.id
        try:
            user = await users_service.set_role(user_id, UserRole.CUSTOMER, actor=request.user)
        except Conflict as exc:
            return await render_user(user_id, users_service, audit_service, error=exc.detail, status_code=409)
        flash(request, f"{user.email} is now a customer.", "info")
        # Demoting yourself ends your access to the admin pages.
        if myself:
            return see_other_to(request, "catalog")
        return see_other_to(request, "admin_user", user_id=user_id)

    @post("/{user_id:int}/deactivate", name="admin_user_deactivate", media_type=MediaType.HTML)
    async def deactivate(
        self,
        request: Request[User, Any, Any],
        user_id: FromPath[int],
        users_service: NamedDependency[UserService],
        audit_service: NamedDependency[AuditService],
    ) -> Any:
        """Deactivate the account: it cannot sign in, and its sessions and API tokens stop working now."""
        myself = user_id == request.user.id
        try:
            user = await users_service.set_active(user_id, False, actor=request.user)
        except Conflict as exc:
            return await render_user(user_id, users_service, audit_service, error=exc.detail, status_code=409)
        if myself:
            request.clear_session()
            return see_other_to(request, "catalog")
        flash(request, f"{user.email} is deactivated and signed out everywhere.", "info")
        return see_other_to(request, "admin_user", user_id=user_id)

    @post("/{user_id:int}/reactivate", name="admin_user_reactivate", media_type=MediaType.HTML)
    async def reactivate(
        self,
        request: Request[User, Any, Any],
        user_id: FromPath[int],
        users_service: NamedDependency[UserService],
    ) -> Any:
        """Let the account sign in again."""
        user = await users_service.set_active(user_id, True, actor=request.user)
        flash(request, f"{user.email} can sign in again.", "info")
        return see_other_to(request, "admin_user", user_id=user_id)


async def render_user(
    user_id: int,
    users_service: UserService,
    audit_service: AuditService,
    *,
    error: str = "",
    status_code: int = 200,
) -> Template:
    """The user's admin page, optionally with an error message (and its status code)."""
    user = await users_service.get_user(user_id)
    return Template(
        "admin/users/detail.html",
        context={
            "account": user,
            "audit_events": await audit_service.for_entity("user", [user.id]),
            "error": error,
        },
        status_code=status_code,
    )
