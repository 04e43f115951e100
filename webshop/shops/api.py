"""Shop routes of the JSON API (issue 16): the public shop directory, and the shops' profiles and
members for the platform's admins and the shops' owners.

Thin: every rule is ``webshop.shops.service.ShopService``'s, the same as for the pages. Who may do what:

- anyone reads trading shops (``GET /api/shops``, ``GET /api/shops/{id}``); a suspended or deleted
  shop is 404;
- an admin creates (``POST``) and soft-deletes (``DELETE``) shops (the ``api_admin`` guard: no token
  401, anyone else 403; the default shop cannot be suspended or deleted, 409);
- an admin or the shop's owner edits its profile (``PATCH``/``PUT``) and adds or removes members
  (owners add and remove staff only); its staff get 403, anyone else 404 (a shop they do not run
  is "not found" to them);
- an admin or any member of the shop lists its members;
- an admin or any member of the shop reads its audit trail (``GET .../history``), as its admin page shows
  it: admins a deleted shop's too, members a suspended one's (``ShopService.get_for``); a customer who
  runs no shop 403, anyone else 404;
- a deleted shop is gone from the API for everyone, admins included (``ShopService.get_live_for``):
  after ``DELETE /api/shops/{id}`` the shop and its members are 404, until an admin restores it;
- admins and the shops' members list the shops they manage, suspended ones too (``GET
  /api/shops/managed``; admins also find deleted ones there); an admin suspends and restores a shop
  (``POST .../suspend``, ``POST .../restore``, which also brings a deleted shop back);
- an admin or the shop's owner sets and removes its logo (``PUT``/``DELETE .../logo``).

Guards and the bearer requirement are set per route, not on the controller: some routes are public,
some for a shop's members, some for admins.
"""

from typing import Annotated

from litestar import Controller, Response, delete, get, patch, post, put
from litestar.enums import RequestEncodingType
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, JSONBody, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from msgspec import UNSET

from webshop.api.controllers import ADMIN, AdminApiController
from webshop.api.responses import created_at, problems
from webshop.api.schemas import NameCursor, PageLimit, PathId, keyset_page, name_cursor, read_name_cursor
from webshop.api.uploads import image_errors_named, read_upload
from webshop.audit.schemas import AuditEventOut, audit_trail_out
from webshop.deps import AuditDep, ShopsDep, UserRequest
from webshop.errors import fields_named
from webshop.media import UPLOAD_BODY_LIMIT
from webshop.security.jwt import BEARER, PUBLIC
from webshop.shops.guards import api_shop_staff
from webshop.shops.profile import ADDRESS
from webshop.shops.schemas import (
    LogoUpload,
    MemberOut,
    MemberWrite,
    ShopManagedOut,
    ShopManagedPage,
    ShopOut,
    ShopPage,
    ShopPatch,
    ShopStatus,
    ShopWrite,
    member_out,
    shop_managed_out,
    shop_out,
)
from webshop.text import query_text
from webshop.web.responses import page_count

Search = Annotated[
    str | None, query_text(max_length=100, description="Only shops whose name or slug contains this text")
]
ADDRESS_IN_BODY = {part: f"address.{part}" for part in (*ADDRESS, "country")}
"""The service names the address's fields as the shop's form does (``country``); the body nests them
(``address.country``), as its decoding errors (400) name them."""


class ShopApiController(Controller):
    """Shops: the public directory; profiles and members for admins and owners."""

    path = "/api/shops"
    tags = ["shops"]

    @get("", opt=PUBLIC, operation_id="listShops", responses=problems(400, 422))
    async def list_shops(
        self, shops_service: ShopsDep, q: Search = None, cursor: NameCursor = None, limit: PageLimit = 20
    ) -> ShopPage:
        """Trading shops (active, not deleted) by name; pages are linked by ``next_cursor``."""
        after = read_name_cursor(cursor) if cursor else None
        rows, _ = await shops_service.list_public(q=q or "", limit=limit + 1, after=after)
        shops, next_cursor = keyset_page(rows, limit, lambda shop: name_cursor(shop.name, shop.id))
        return ShopPage(items=[shop_out(s) for s in shops], next_cursor=next_cursor)

    @get(
        "/managed",
        guards=[api_shop_staff],
        security=BEARER,
        operation_id="listManagedShops",
        responses=problems(400, 401, 403),
    )
    async def list_managed(
        self,
        request: UserRequest,
        shops_service: ShopsDep,
        q: Search = None,
        status: Annotated[ShopStatus | None, QueryParameter(description="None: all but deleted shops")] = None,
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 25,
    ) -> ShopManagedPage:
        """The shops the caller manages, by name (an admin: every shop, deleted ones with ``status=deleted``;
        a member: their shops), suspended ones too; a customer who runs no shop is 403. A page past the
        last is empty."""
        offset = (page - 1) * limit
        shops, total = await shops_service.list_for(
            request.user, q=q or "", status=status or "", limit=limit, offset=offset
        )
        items = [shop_managed_out(shop) for shop in shops]
        return ShopManagedPage(items=items, total=total, page=page, pages=page_count(total, limit))

    @get("/{shop_id:int}", opt=PUBLIC, operation_id="getShop", responses=problems(400, 404))
    async def get_shop(self, shop_id: PathId, shops_service: ShopsDep) -> ShopOut:
        """One trading shop (a suspended or deleted shop is 404)."""
        return shop_out(await shops_service.get_public(shop_id=shop_id))

    @post(
        "",
        guards=ADMIN,
        security=BEARER,
        operation_id="createShop",
        **created_at("/api/shops/{id}"),
        responses=problems(400, 401, 403, 422),
    )
    async def create_shop(self, request: UserRequest, data: JSONBody[ShopWrite], shops_service: ShopsDep) -> ShopOut:
        """Admins: create a shop; the slug is made from the name when left out (a slug taken is 422)."""
        with fields_named(ADDRESS_IN_BODY):
            return shop_out(await shops_service.create_shop(request.user, data))

    @patch("/{shop_id:int}", security=BEARER, operation_id="updateShop", responses=problems(400, 401, 403, 404, 422))
    async def update_shop(
        self, request: UserRequest, shop_id: PathId, data: JSONBody[ShopPatch], shops_service: ShopsDep
    ) -> ShopOut:
        """Admins and the shop's owners: change the fields sent (staff 403, anyone else 404)."""
        await shops_service.get_live_for(request.user, shop_id)
        with fields_named(ADDRESS_IN_BODY):
            return shop_out(await shops_service.update_shop(request.user, shop_id, data))

    @put("/{shop_id:int}", security=BEARER, operation_id="replaceShop", responses=problems(400, 401, 403, 404, 422))
    async def replace_shop(
        self, request: UserRequest, shop_id: PathId, data: JSONBody[ShopWrite], shops_service: ShopsDep
    ) -> ShopOut:
        """Admins and the shop's owners: replace the whole profile (fields left out become empty; a slug
        left out stays as it is, an empty one is made from the name). Staff 403, anyone else 404."""
        patch = ShopPatch(
            name=data.name,
            slug=UNSET if data.slug is None else data.slug,
            description=data.description,
            address=data.address,
            contact_email=data.contact_email,
            contact_phone=data.contact_phone,
        )
        await shops_service.get_live_for(request.user, shop_id)
        with fields_named(ADDRESS_IN_BODY):
            return shop_out(await shops_service.update_shop(request.user, shop_id, patch))

    @delete(
        "/{shop_id:int}",
        guards=ADMIN,
        security=BEARER,
        operation_id="deleteShop",
        responses=problems(400, 401, 403, 404, 409),
    )
    async def delete_shop(self, request: UserRequest, shop_id: PathId, shops_service: ShopsDep) -> None:
        """Admins: soft-delete a shop; its products leave the storefront and the API. The default shop is 409."""
        await shops_service.delete_shop(request.user, shop_id)

    @put(
        "/{shop_id:int}/logo",
        security=BEARER,
        operation_id="setShopLogo",
        request_max_body_size=UPLOAD_BODY_LIMIT,
        responses=problems(400, 401, 403, 404, 413, 422),
    )
    async def set_logo(
        self,
        request: UserRequest,
        shop_id: PathId,
        data: Annotated[LogoUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        shops_service: ShopsDep,
    ) -> ShopOut:
        """Admins and the shop's owners: a JPEG, PNG or WebP logo (field ``file``, at most 5 MB) replaces the
        shop's logo. Staff 403, anyone else 404; too large 413; not such an image 422."""
        await shops_service.get_live_for(request.user, shop_id)
        content = await read_upload(data.file)
        with image_errors_named("file"):
            shop = await shops_service.set_logo(request.user, shop_id, content, data.file.filename or "")
        return shop_out(shop)

    @delete(
        "/{shop_id:int}/logo", security=BEARER, operation_id="removeShopLogo", responses=problems(400, 401, 403, 404)
    )
    async def remove_logo(self, request: UserRequest, shop_id: PathId, shops_service: ShopsDep) -> None:
        """Admins and the shop's owners: the shop has no logo any more (none already: nothing changes)."""
        await shops_service.get_live_for(request.user, shop_id)
        await shops_service.remove_logo(request.user, shop_id)

    @get("/{shop_id:int}/members", security=BEARER, operation_id="listShopMembers", responses=problems(400, 401, 404))
    async def list_members(self, request: UserRequest, shop_id: PathId, shops_service: ShopsDep) -> list[MemberOut]:
        """Admins and the shop's members: its owners, then its staff (anyone else 404)."""
        await shops_service.get_live_for(request.user, shop_id)
        return [member_out(m, u) for m, u in await shops_service.members(request.user, shop_id)]

    @get(
        "/{shop_id:int}/history",
        guards=[api_shop_staff],
        security=BEARER,
        operation_id="getShopHistory",
        responses=problems(400, 401, 403, 404),
    )
    async def history(
        self, request: UserRequest, shop_id: PathId, shops_service: ShopsDep, audit_service: AuditDep
    ) -> list[AuditEventOut]:
        """Admins and the shop's members: its audit trail as its admin page shows it (profile, status,
        members and logo changes), newest first (at most 100). A deleted shop's too for admins, a suspended
        one's for its members; a customer who runs no shop 403, anyone else 404."""
        shop = await shops_service.get_for(request.user, shop_id)
        return audit_trail_out(await audit_service.for_entity("shop", [shop.id]))

    @post(
        "/{shop_id:int}/members",
        security=BEARER,
        operation_id="addShopMember",
        status_code=201,
        responses={
            200: ResponseSpec(MemberOut, description="They were a member already: their role now"),
            **problems(400, 401, 403, 404, 409, 422),
        },
    )
    async def add_member(
        self, request: UserRequest, shop_id: PathId, data: JSONBody[MemberWrite], shops_service: ShopsDep
    ) -> Response[MemberOut]:
        """Add an active user to the shop (201), or change their role there (200; the same role again changes
        nothing, 200): admins add owners and staff, owners add staff (staff 403; anyone else 404; an unknown
        or inactive user 422)."""
        await shops_service.get_live_for(request.user, shop_id)
        change = await shops_service.add_member(request.user, shop_id, data)
        status = HTTP_201_CREATED if change.previous_role is None else HTTP_200_OK  # RFC 9110 §15.3.2
        return Response(member_out(change.member, change.user), status_code=status)

    @delete(
        "/{shop_id:int}/members/{user_id:int}",
        security=BEARER,
        operation_id="removeShopMember",
        responses=problems(400, 401, 403, 404),
    )
    async def remove_member(
        self, request: UserRequest, shop_id: PathId, user_id: PathId, shops_service: ShopsDep
    ) -> None:
        """Take a user out of the shop: admins remove anyone, owners remove staff (staff 403; anyone else or
        a user who is not a member 404)."""
        await shops_service.get_live_for(request.user, shop_id)
        await shops_service.remove_member(request.user, shop_id, user_id)


class ShopStatusApiController(AdminApiController):
    """Suspending and restoring shops (admins), as the admin page's buttons do."""

    path = "/api/shops"
    tags = ["shops"]

    @post(
        "/{shop_id:int}/suspend",
        operation_id="suspendShop",
        status_code=200,
        responses=problems(400, 401, 403, 404, 409),
    )
    async def suspend_shop(self, request: UserRequest, shop_id: PathId, shops_service: ShopsDep) -> ShopManagedOut:
        """Suspend a shop: its products leave the storefront and the API at once, past orders keep their
        lines. Suspending a suspended shop changes nothing; a deleted shop is 404; the default shop 409 (products
        without a shop go there: ``ShopService.suspend``)."""
        return shop_managed_out(await shops_service.suspend(request.user, shop_id))

    @post(
        "/{shop_id:int}/restore",
        operation_id="restoreShop",
        status_code=200,
        responses=problems(400, 401, 403, 404, 409),
    )
    async def restore_shop(self, request: UserRequest, shop_id: PathId, shops_service: ShopsDep) -> ShopManagedOut:
        """Bring a suspended or deleted shop back: its products return to the storefront. 409 when a deleted
        shop's name is another shop's now (rename one of the two first)."""
        return shop_managed_out(await shops_service.restore(request.user, shop_id))
