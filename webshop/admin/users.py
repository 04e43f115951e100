"""Admin user pages: list and search, one user's page with their audit trail, role and access changes,
and erasing an account (GDPR art. 17).

The rules (the shop keeps at least one active admin; deactivation signs the user out everywhere; erasure
removes the personal data and keeps the orders) live in ``UserService.set_role`` / ``set_active`` /
``erase``, which the API calls too; a refused change re-renders the page with the reason (409).
"""

from collections.abc import Awaitable
from typing import Any

from litestar import MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.admin import ADMIN_PAGE_SIZE, AdminPages, admin_list_page
from webshop.admin.pages import AdminRequest
from webshop.api.schemas import PathId
from webshop.db.models import User, UserRole
from webshop.deps import AuditDep, ShopsDep, UsersDep
from webshop.errors import Conflict
from webshop.text import readable_email
from webshop.web.forms import FormFields
from webshop.web.responses import page_number, see_other_to

ROLES = [r.value for r in UserRole]
STATES = {"active": True, "deactivated": False}
CONFIRM_ERASE = "Tick the box to confirm the erasure: it cannot be undone."


class UserPage:
    """The admin page of the user ``user_id`` (``render``), and the role or access changes the signed-in
    admin makes there (the ``user_page`` of the user's handlers).

    Refused (``Conflict``: the shop's last active admin): the user's page again with the reason (409).
    Done: a message and the user's page; an admin who took away their own admin access lands on the
    shop instead, signed out here too when deactivated (no message then: it went with the session).
    Litestar makes one per request from the path parameter and the dependencies ``__init__`` names.
    """

    def __init__(
        self,
        request: AdminRequest,
        user_id: PathId,
        users_service: UsersDep,
        audit_service: AuditDep,
        shops_service: ShopsDep,
    ) -> None:
        self.request, self.user_id, self.users, self.audit = request, user_id, users_service, audit_service
        self.shops = shops_service

    async def render(self, *, error: str = "", status_code: int = 200) -> Template:
        """The user's page: account facts, the shops they run, role and access actions, and their audit
        trail; with ``error`` (and its status code) when a change was refused."""
        user = await self.users.get_user(self.user_id)
        return Template(
            "admin/users/detail.html",
            context={
                "account": user,
                "memberships": await self.shops.memberships_of(user.id),
                "audit_events": await self.audit.for_entity("user", [user.id]),
                "error": error,
            },
            status_code=status_code,
        )

    async def role(self, role: UserRole, done: str) -> Any:
        """Give the user ``role`` (``UserService.set_role``); ``done`` is the message, ``{}`` their address."""
        return await self._answer(self.users.set_role(self.user_id, role, actor=self.request.user), done)

    async def access(self, active: bool, done: str) -> Any:
        """Let the user sign in or not (``UserService.set_active``); ``done`` as for ``role``."""
        return await self._answer(self.users.set_active(self.user_id, active, actor=self.request.user), done)

    async def erase(self, confirmed: bool) -> Any:
        """Erase the account (``UserService.erase``) once the admin ticked the box that confirms it;
        without the tick, the user's page again with the reason (422) and nothing changed."""
        if not confirmed:
            return await self.render(error=CONFIRM_ERASE, status_code=422)
        done = "The account was erased: its personal data is gone, its orders are kept."
        return await self._answer(self.users.erase(self.user_id, actor=self.request.user), done)

    async def _answer(self, change: Awaitable[User], done: str) -> Any:
        request = self.request
        myself = self.user_id == request.user.id
        try:
            user = await change
        except Conflict as exc:
            return await self.render(error=exc.detail, status_code=409)
        if myself and not user.is_active:
            request.clear_session()
            return see_other_to(request, "catalog")
        flash(request, done.format(readable_email(user.email)), "info")
        if myself and not user.is_admin:
            return see_other_to(request, "catalog")
        return see_other_to(request, "admin_user", user_id=self.user_id)


class AdminUserController(AdminPages):
    """Users for admins: roles and access."""

    path = "/admin/users"
    dependencies = {"user_page": Provide(UserPage, sync_to_thread=False)}

    @get("", name="admin_users", media_type=MediaType.HTML)
    async def index(
        self,
        request: AdminRequest,
        users_service: UsersDep,
        q: FromQuery[str | None] = None,
        role: FromQuery[str | None] = None,
        access: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Template:
        """The user list (the results fragment for an htmx search)."""
        page = page_number(page)
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
    async def detail(self, user_page: NamedDependency[UserPage]) -> Template:
        """One user: account facts, the shops they run, role and access actions, and their audit trail."""
        return await user_page.render()

    @post("/{user_id:int}/promote", name="admin_user_promote", media_type=MediaType.HTML)
    async def promote(self, user_page: NamedDependency[UserPage]) -> Any:
        """Make the user an admin."""
        return await user_page.role(UserRole.ADMIN, "{} is now an admin.")

    @post("/{user_id:int}/demote", name="admin_user_demote", media_type=MediaType.HTML)
    async def demote(self, user_page: NamedDependency[UserPage]) -> Any:
        """Make the user a customer (refused for the last active admin)."""
        return await user_page.role(UserRole.CUSTOMER, "{} is now a customer.")

    @post("/{user_id:int}/deactivate", name="admin_user_deactivate", media_type=MediaType.HTML)
    async def deactivate(self, user_page: NamedDependency[UserPage]) -> Any:
        """Deactivate the account: it cannot sign in, and its sessions and API tokens stop working now."""
        return await user_page.access(False, "{} is deactivated and signed out everywhere.")

    @post("/{user_id:int}/reactivate", name="admin_user_reactivate", media_type=MediaType.HTML)
    async def reactivate(self, user_page: NamedDependency[UserPage]) -> Any:
        """Let the account sign in again."""
        return await user_page.access(True, "{} can sign in again.")

    @post("/{user_id:int}/erase", name="admin_user_erase", media_type=MediaType.HTML)
    async def erase(self, user_page: NamedDependency[UserPage], data: FormFields) -> Any:
        """Erase the account (GDPR art. 17) if the confirmation box is ticked (refused for the last active admin)."""
        return await user_page.erase(data.get("confirm") == "yes")
