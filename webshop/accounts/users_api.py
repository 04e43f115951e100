"""User administration routes of the JSON API (issue 17), and a customer's erasure of their own account.

Thin: every rule is ``webshop.accounts.service.UserService``'s, the same methods the admin pages call
(``webshop.admin.users``): the shop keeps an active admin, deactivating ends every browser session and
API sign-in of the account, erasing (GDPR art. 17) removes the personal data and keeps the orders.

- ``GET /api/users``, ``GET/PATCH/DELETE /api/users/{id}``, ``GET /api/users/{id}/history``: admins only
  (the ``api_admin`` guard: no token 401, a customer 403), set per route because ``DELETE /api/users/me``
  is for any signed-in user.
- ``DELETE /api/users/me``: the bearer's own account, confirmed with its password. ``GET``/``PATCH``
  of the same path are ``webshop.accounts.api.MeApiController``'s; Litestar routes ``/api/users/me`` to
  them, never to ``/api/users/{id:int}`` (``me`` is not an integer).

An erased account is gone from the API: it is not listed, and ``GET``/``PATCH``/``DELETE`` of its id
answer 404, a second ``DELETE`` included (the erasure is done once; RFC 9110 §9.2.2 asks the same effect
of a repeated ``DELETE``, not the same status). As after ``DELETE /api/shops/{id}``. The admin pages
still show the erased account, with its audit trail; so does ``GET /api/users/{id}/history``, newest
first: who erased it and when, then the earlier events, which the erasure rewrote without the account's
names and addresses (``webshop.accounts.erasure``).
"""

from typing import Annotated

from litestar import Controller, delete, get, patch
from litestar.params import JSONBody, QueryParameter

from webshop.accounts.schemas import (
    AdminUserDetail,
    AdminUserOut,
    AdminUserPage,
    AdminUserPatch,
    EraseMeIn,
    RoleName,
    admin_user_detail,
    admin_user_out,
)
from webshop.api.controllers import ADMIN
from webshop.api.responses import problems
from webshop.api.schemas import IdCursor, PageLimit, PathId, keyset_page, money
from webshop.audit.schemas import AuditEventOut, audit_trail_out
from webshop.db.models import UserRole
from webshop.deps import AuditDep, SettingsDep, SignInThrottleDep, UserRequest, UsersDep
from webshop.security.jwt import BEARER
from webshop.text import query_text

Search = Annotated[
    str | None, query_text(max_length=320, description="Only users whose e-mail address or name contains this text")
]


class UserAdminApiController(Controller):
    """Users for admins: search, figures, name, role and access, erasure; and erasing one's own account."""

    path = "/api/users"
    tags = ["users"]
    security = BEARER

    @get("", guards=ADMIN, operation_id="listUsers", responses=problems(400, 401, 403))
    async def list_users(
        self,
        users_service: UsersDep,
        q: Search = None,
        role: Annotated[RoleName | None, QueryParameter(description="Only users with this role")] = None,
        is_active: Annotated[bool | None, QueryParameter(description="Active (true) or not (false)")] = None,
        cursor: IdCursor = None,
        limit: PageLimit = 20,
    ) -> AdminUserPage:
        """Admins: users newest first (erased accounts left out), searched by e-mail address or name; pages
        are linked by ``next_cursor``."""
        rows, _ = await users_service.search_users(
            q=q or "",
            role=UserRole(role) if role else None,
            active=is_active,
            erased=False,
            limit=limit + 1,
            before_id=int(cursor) if cursor else None,
        )
        users, next_cursor = keyset_page(rows, limit)
        return AdminUserPage(items=[admin_user_out(u) for u in users], next_cursor=next_cursor)

    @get("/{user_id:int}", guards=ADMIN, operation_id="getUser", responses=problems(400, 401, 403, 404))
    async def get_user(self, user_id: PathId, users_service: UsersDep, settings: SettingsDep) -> AdminUserDetail:
        """Admins: one user with their orders in figures (count, cancellations, money spent); erased: 404."""
        user = await users_service.get_user(user_id, erased=False)
        currency = settings.shop.currency
        count, cancellations, spent = await users_service.order_figures(user.id, currency)
        return admin_user_detail(
            user, order_count=count, cancellations=cancellations, total_spent=money(spent, currency)
        )

    @get("/{user_id:int}/history", guards=ADMIN, operation_id="getUserHistory", responses=problems(400, 401, 403, 404))
    async def user_history(
        self, user_id: PathId, users_service: UsersDep, audit_service: AuditDep
    ) -> list[AuditEventOut]:
        """Admins: the account's audit trail as its admin page shows it (role, access, name changes and
        erasure), newest first (at most 100); an erased account's too. No such user 404."""
        user = await users_service.get_user(user_id)
        return audit_trail_out(await audit_service.for_entity("user", [user.id]))

    @patch("/{user_id:int}", guards=ADMIN, operation_id="updateUser", responses=problems(400, 401, 403, 404, 409))
    async def update_user(
        self, request: UserRequest, user_id: PathId, data: JSONBody[AdminUserPatch], users_service: UsersDep
    ) -> AdminUserOut:
        """Admins: change the name, role and/or access, all or nothing (409: it would leave no active
        admin). Deactivating signs the user out everywhere at once. An erased account: 404."""
        await users_service.get_user(user_id, erased=False)
        user = await users_service.update_user(
            user_id,
            actor=request.user,
            name=data.name,
            role=UserRole(data.role) if data.role else None,
            is_active=data.is_active,
        )
        return admin_user_out(user)

    @delete("/{user_id:int}", guards=ADMIN, operation_id="eraseUser", responses=problems(400, 401, 403, 404, 409))
    async def erase_user(self, request: UserRequest, user_id: PathId, users_service: UsersDep) -> None:
        """Admins: erase the account (GDPR art. 17): its personal data goes, its orders stay; it is
        signed out everywhere. The last active admin: 409; an account already erased: 404."""
        await users_service.get_user(user_id, erased=False)
        await users_service.erase(user_id, actor=request.user)

    @delete("/me", operation_id="eraseMe", responses=problems(400, 401, 409, 422, 429))
    async def erase_me(
        self,
        request: UserRequest,
        data: JSONBody[EraseMeIn],
        users_service: UsersDep,
        sign_in_throttle: SignInThrottleDep,
    ) -> None:
        """Erase your own account, confirmed with your password (a wrong one: 422, nothing changes; too
        many lock the account, 429 with ``Retry-After``). This token stops working at once."""
        await users_service.erase_self(request.user, password=data.password, throttle=sign_in_throttle)
