"""Admin shop pages (issue 16): the shop list, a new shop, one shop's profile, status, members and logo.

Every action is a plain form post answered by a 303 redirect (``hx-boost`` makes it an in-place swap
when JavaScript is on), or, when the service refuses it, the same page re-rendered with the reason
beside the form and the error status (409, 422, 413). Deleting asks first on a page of its own, so the
question works without JavaScript. The rules live in ``ShopService``; members are added by e-mail
address, looked up with ``UserService.get_by_email``.
"""

from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import MediaType, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.response import Template

from webshop.admin import ADMIN_PAGE_SIZE, SHOP_STAFF_DEPENDENCIES, ShopStaffPages, admin_list_page
from webshop.admin.pages import AdminRequest, flash_see_other
from webshop.api.schemas import PathId
from webshop.db.models import Shop
from webshop.db.models.shops import ShopRole
from webshop.deps import AuditDep, ShopsDep, UsersDep
from webshop.errors import DomainError, ValidationFailed
from webshop.media import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, UPLOAD_BODY_LIMIT, too_large_message
from webshop.security.session import requires_admin
from webshop.shops.service import roles_managed_by
from webshop.text import Line, Lines, readable_email
from webshop.web import AnyRequest
from webshop.web.forms import FORM_MESSAGE, FormFields, form_message, read_form
from webshop.web.responses import page_number

STATUSES = {"active": "Active", "suspended": "Suspended", "deleted": "Deleted"}
"""The list's status filter: value -> label (no value: active and suspended)."""

ROLES = [role.value for role in ShopRole]

FIELD_MESSAGES = {
    "name": "Enter the shop's name (at most 120 characters).",
    "slug": "Use lower-case letters, digits and single hyphens (at most 80 characters), or leave it empty.",
    "description": "Keep the description under 5000 characters.",
    "line1": "Keep this line under 200 characters.",
    "line2": "Keep this line under 200 characters.",
    "city": "Keep the city under 120 characters.",
    "postal_code": "Keep the postal code under 20 characters.",
    "country": "Enter a two-letter country code such as GB or DE, or leave it empty.",
    "contact_email": "Enter an e-mail address such as shop@example.com, or leave it empty.",
    "contact_phone": "Use digits, spaces and + ( ) . / - only (at most 40 characters), or leave it empty.",
}
"""What a field refused by ``ShopWrite``'s limits says beside it: what the field takes, not only what was wrong."""

ADDRESS_FIELDS = ("line1", "line2", "city", "postal_code", "country")


ADMIN_ONLY: list[Any] = [requires_admin]
"""Route guards of what only platform admins do with shops (beside the controller's staff guard)."""


class ShopForm(msgspec.Struct, kw_only=True):
    """The new-shop and edit forms: every field as text (an empty slug: made from the name / kept)."""

    name: Line = ""
    slug: Line = ""
    description: Lines = ""
    line1: Line = ""
    line2: Line = ""
    city: Line = ""
    postal_code: Line = ""
    country: Line = ""
    contact_email: Line = ""
    contact_phone: Line = ""

    @classmethod
    def of(cls, shop: Shop) -> "ShopForm":
        """The form filled in with ``shop``'s profile."""
        return cls(
            name=shop.name,
            slug=shop.slug,
            description=shop.description,
            line1=shop.address_line1,
            line2=shop.address_line2,
            city=shop.city,
            postal_code=shop.postal_code,
            country=shop.country,
            contact_email=shop.contact_email,
            contact_phone=shop.contact_phone,
        )

    def values(self, *, keep_slug: bool) -> dict[str, Any]:
        """The form as ``ShopWrite``/``ShopPatch`` builtins; an empty slug is left out when ``keep_slug``
        (the edit form keeps the shop's address) and sent as ``None`` otherwise (made from the name)."""
        slug = self.slug.strip()
        values: dict[str, Any] = {
            "name": self.name.strip(),
            "description": self.description.strip(),
            "address": {part: getattr(self, part).strip() for part in ADDRESS_FIELDS},
            "contact_email": self.contact_email.strip(),
            "contact_phone": self.contact_phone.strip(),
        }
        if slug or not keep_slug:
            values["slug"] = slug or None
        return values


class MemberForm(msgspec.Struct, kw_only=True):
    """The "Add member" form: the user's e-mail address and their role in the shop."""

    email: Line = ""
    role: Line = ShopRole.STAFF.value


def _readable(error: DomainError) -> DomainError:
    """``error`` with the form's messages: a field refused by ``ShopWrite``'s limits (``extra["limits"]``)
    told what the form takes, by ``FIELD_MESSAGES``."""
    if not isinstance(error, ValidationFailed) or not error.field_errors:
        return error
    limits = error.extra.get("limits", ())
    fields = {
        name: FIELD_MESSAGES[name] if name in FIELD_MESSAGES and name in limits else message
        for name, message in error.field_errors.items()
    }
    return ValidationFailed(f"The shop was not saved. {FORM_MESSAGE}", field_errors=fields)


_DONE = {
    "suspend": "Suspended shop “{}”: its products are off the storefront.",
    "restore": "Restored shop “{}”: its products are back on the storefront.",
    "delete": "Deleted shop “{}”. You can restore it from the deleted shops.",
}


@dataclass
class ShopPage:
    """The shop handlers' ``shop_page`` dependency: one shop's admin page (``admin/shops/detail.html``) as the
    signed-in user sees it, the services it reads, and the status changes that answer with it when refused."""

    request: AdminRequest
    shops_service: ShopsDep
    audit_service: AuditDep

    async def render(
        self,
        shop_id: int,
        *,
        form: ShopForm | None = None,
        error: DomainError | None = None,
        status_message: str = "",
        member_form: MemberForm | None = None,
        member_errors: dict[str, str] | None = None,
        member_message: str = "",
        logo_error: str = "",
        status_code: int | None = None,
    ) -> Template:
        """The shop's admin page, optionally with a refused form's values and messages.

        Args:
            shop_id: The shop shown (read again: a refused write may have rolled the session back).
            form: The profile form's values (default: the shop's).
            error: Why the profile form was refused (its messages go beside the fields).
            status_message: Why a suspend, restore or delete was refused.
            member_form: The "Add member" form's values; ``member_errors``/``member_message`` its messages.
            logo_error: Why an upload was refused.
            status_code: The response status (default: the error's, else 200).

        Raises:
            NotFound: the user may not see this shop, or there is none.
        """
        user = self.request.user
        shop = await self.shops_service.get_for(user, shop_id)
        return Template(
            "admin/shops/detail.html",
            context={
                "shop": shop,
                "form": form or ShopForm.of(shop),
                "errors": error.field_errors if error else {},
                "message": form_message(error),
                "status_message": status_message,
                "members": await self.shops_service.members(user, shop.id),
                # Staff see the profile, logo and members; only owners (and admins) get the forms.
                "owner": (await self.shops_service.access(user)).owns(shop.id),
                "member_form": member_form or MemberForm(),
                "member_errors": member_errors or {},
                "member_message": member_message,
                "roles": roles_managed_by(user),  # owners add and remove staff only
                "logo_error": logo_error,
                "max_upload_mb": MAX_UPLOAD_MB,
                "max_upload_bytes": MAX_UPLOAD_BYTES,
                "too_large": too_large_message("logos"),
                "audit_events": await self.audit_service.for_entity("shop", [shop.id]),
            },
            status_code=status_code or (error.status_code if error else 200),
        )

    async def change_status(self, shop_id: int, action: str) -> Any:
        """Suspend, restore or delete shop ``shop_id``; a refusal shows its page with the reason (409)."""
        verb = {
            "suspend": self.shops_service.suspend,
            "restore": self.shops_service.restore,
            "delete": self.shops_service.delete_shop,
        }[action]
        try:
            shop = await verb(self.request.user, shop_id)
        except DomainError as exc:
            return await self.render(shop_id, status_message=exc.detail, status_code=exc.status_code)
        message = _DONE[action].format(shop.name)
        if action == "delete":
            return flash_see_other(self.request, message, "admin_shops", query={"status": "deleted"})
        return flash_see_other(self.request, message, "admin_shop", shop_id=shop_id)


ShopPageDep = NamedDependency[ShopPage]
"""The ``shop_page`` dependency (``ShopPage``)."""


class AdminShopController(ShopStaffPages):
    """Shops: platform admins list, create, suspend, restore and delete them (``ADMIN_ONLY``); a shop's
    page, its profile, members and logo are also its members' (the service lets owners change them,
    staff only look, and anyone else finds no such shop)."""

    path = "/admin/shops"
    dependencies = {**SHOP_STAFF_DEPENDENCIES, "shop_page": Provide(ShopPage, sync_to_thread=False)}

    @get("", name="admin_shops", media_type=MediaType.HTML, guards=ADMIN_ONLY)
    async def index(
        self,
        request: AdminRequest,
        shops_service: ShopsDep,
        q: FromQuery[str | None] = None,
        status: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Template:
        """The shop list with search and status filter (the results fragment for an htmx search)."""
        page = page_number(page)
        filters = {"q": " ".join((q or "").split())[:100], "status": status if status in STATUSES else ""}
        shops, total = await shops_service.list_for(
            request.user,
            q=filters["q"],
            status=filters["status"],
            limit=ADMIN_PAGE_SIZE,
            offset=(page - 1) * ADMIN_PAGE_SIZE,
        )
        context = {"shops": shops, "statuses": STATUSES}
        return admin_list_page(request, "admin/shops", "shop-results", context, total=total, page=page, filters=filters)

    @get("/new", name="admin_shop_new", media_type=MediaType.HTML, guards=ADMIN_ONLY)
    async def new(self) -> Template:
        """The new-shop form."""
        return Template("admin/shops/new.html", context={"form": ShopForm(), "errors": {}, "message": ""})

    @post("", name="admin_shop_create", media_type=MediaType.HTML, guards=ADMIN_ONLY)
    async def create(self, request: AdminRequest, data: FormFields, shops_service: ShopsDep) -> Any:
        """Create a shop; bad input shows the form again with the messages beside the fields (422)."""
        form = ShopForm()
        try:
            form = read_form(ShopForm, data)
            shop = await shops_service.create_shop(request.user, form.values(keep_slug=False))
        except DomainError as exc:
            error = _readable(exc)
            return Template(
                "admin/shops/new.html",
                context={"form": getattr(exc, "form", form), "errors": error.field_errors, "message": error.detail},
                status_code=error.status_code,
            )
        return flash_see_other(request, f"Created shop “{shop.name}”.", "admin_shop", shop_id=shop.id)

    @get("/{shop_id:int}", name="admin_shop", media_type=MediaType.HTML)
    async def detail(self, shop_id: PathId, shop_page: ShopPageDep) -> Template:
        """One shop: its profile form, status buttons, members, logo and audit trail."""
        return await shop_page.render(shop_id)

    @post("/{shop_id:int}", name="admin_shop_update", media_type=MediaType.HTML)
    async def update(self, request: AdminRequest, shop_id: PathId, data: FormFields, shop_page: ShopPageDep) -> Any:
        """Save the shop's profile; bad input shows the page again with the messages (422)."""
        form: ShopForm | None = None  # a refused post shows what was typed; ``render`` reads the shop itself
        try:
            form = read_form(ShopForm, data)
            shop = await shop_page.shops_service.update_shop(request.user, shop_id, form.values(keep_slug=True))
        except DomainError as exc:
            return await shop_page.render(shop_id, form=getattr(exc, "form", form), error=_readable(exc))
        return flash_see_other(request, f"Saved shop “{shop.name}”.", "admin_shop", shop_id=shop_id)

    @post("/{shop_id:int}/suspend", name="admin_shop_suspend", media_type=MediaType.HTML, guards=ADMIN_ONLY)
    async def suspend(self, shop_id: PathId, shop_page: ShopPageDep) -> Any:
        """Suspend the shop: its products leave the storefront and the API at once."""
        return await shop_page.change_status(shop_id, "suspend")

    @post("/{shop_id:int}/restore", name="admin_shop_restore", media_type=MediaType.HTML, guards=ADMIN_ONLY)
    async def restore(self, shop_id: PathId, shop_page: ShopPageDep) -> Any:
        """Bring a suspended or deleted shop back: its products return to the storefront."""
        return await shop_page.change_status(shop_id, "restore")

    @get("/{shop_id:int}/delete", name="admin_shop_delete_confirm", media_type=MediaType.HTML, guards=ADMIN_ONLY)
    async def confirm_delete(self, request: AdminRequest, shop_id: PathId, shops_service: ShopsDep) -> Template:
        """Ask before deleting the shop (a page of its own: the question works without JavaScript)."""
        shop = await shops_service.get_for(request.user, shop_id)
        return Template("admin/shops/delete.html", context={"shop": shop})

    @post("/{shop_id:int}/delete", name="admin_shop_delete", media_type=MediaType.HTML, guards=ADMIN_ONLY)
    async def delete(self, shop_id: PathId, shop_page: ShopPageDep) -> Any:
        """Delete the shop (softly; the default shop is refused with the reason)."""
        return await shop_page.change_status(shop_id, "delete")

    # --- members ---------------------------------------------------------------------------------

    @post("/{shop_id:int}/members", name="admin_shop_member_add", media_type=MediaType.HTML)
    async def add_member(
        self,
        request: AdminRequest,
        shop_id: PathId,
        data: FormFields,
        users_service: UsersDep,
        shop_page: ShopPageDep,
    ) -> Any:
        """Add a member by e-mail address with a role (or change their role); errors beside the form."""
        form = MemberForm()
        try:
            form = read_form(MemberForm, data)
            if not form.email.strip():
                message = "Enter the e-mail address of their account."
                raise ValidationFailed(message, field_errors={"email": message})
            user = await users_service.get_by_email(form.email.strip())
            if user is None or not user.is_active:
                message = "There is no active account with this e-mail address."
                raise ValidationFailed(message, field_errors={"email": message})
            if form.role not in ROLES:
                message = "Choose owner or staff."
                raise ValidationFailed(message, field_errors={"role": message})
            change = await shop_page.shops_service.add_member(
                request.user, shop_id, {"user_id": user.id, "role": form.role}
            )
        except DomainError as exc:
            errors = dict(exc.field_errors)
            if "user_id" in errors:
                errors["email"] = errors.pop("user_id")
            return await shop_page.render(
                shop_id,
                member_form=getattr(exc, "form", form),
                member_errors=errors,
                member_message=exc.detail,
                status_code=exc.status_code,
            )
        who = readable_email(user.email)
        if not change.changed:
            message = f"{who} already is {form.role} of this shop: nothing changed."
        elif change.previous_role is not None:
            message = f"{who} was {change.previous_role} and is now {form.role} of this shop."
        else:
            message = f"{who} is now {form.role} of this shop."
        return flash_see_other(request, message, "admin_shop", shop_id=shop_id, fragment="members")

    @post("/{shop_id:int}/members/{user_id:int}/remove", name="admin_shop_member_remove", media_type=MediaType.HTML)
    async def remove_member(
        self,
        request: AdminRequest,
        shop_id: PathId,
        user_id: PathId,
        users_service: UsersDep,
        shop_page: ShopPageDep,
    ) -> Any:
        """Take a member out of the shop."""
        try:
            await shop_page.shops_service.remove_member(request.user, shop_id, user_id)
        except DomainError as exc:
            return await shop_page.render(shop_id, member_message=exc.detail, status_code=exc.status_code)
        user = await users_service.get_one_or_none(id=user_id)
        message = f"{user.email if user else 'The user'} is no longer a member of this shop."
        return flash_see_other(request, message, "admin_shop", shop_id=shop_id, fragment="members")

    # --- logo ------------------------------------------------------------------------------------

    @post(
        "/{shop_id:int}/logo",
        name="admin_shop_logo",
        media_type=MediaType.HTML,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        exception_handlers={413: lambda request, exc: logo_too_large(request)},
    )
    async def upload_logo(self, request: AdminRequest, shop_id: PathId, shop_page: ShopPageDep) -> Any:
        """Upload a logo (JPEG, PNG or WebP, at most 5 MB); a bad file shows the page with the reason."""
        form = await request.form()
        upload = form.get("logo")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                message = "Choose an image file to upload."
                raise ValidationFailed(message, field_errors={"image": message})
            data = await upload.read(MAX_UPLOAD_BYTES + 1)
            await shop_page.shops_service.set_logo(request.user, shop_id, data, upload.filename)
        except DomainError as exc:
            message = exc.field_errors.get("image", exc.detail)
            if exc.status_code == 413:
                message = too_large_message("logos")
            elif message and message[0].islower():
                message = f"This file cannot be used as a logo: {message}."
            return await shop_page.render(shop_id, logo_error=message, status_code=exc.status_code)
        return flash_see_other(request, "Logo saved.", "admin_shop", shop_id=shop_id, fragment="logo")

    @post("/{shop_id:int}/logo/remove", name="admin_shop_logo_remove", media_type=MediaType.HTML)
    async def remove_logo(self, request: AdminRequest, shop_id: PathId, shops_service: ShopsDep) -> Any:
        """Remove the shop's logo."""
        await shops_service.remove_logo(request.user, shop_id)
        return flash_see_other(request, "Logo removed.", "admin_shop", shop_id=shop_id, fragment="logo")


def logo_too_large(request: AnyRequest) -> Response[Any]:
    """The 413 page for a logo upload whose request body is over the limit (Litestar refused to read it)."""
    return Template(
        "admin/shops/upload_error.html",
        context={
            "message": too_large_message("logos"),
            "shop_id": request.path_params.get("shop_id"),
        },
        status_code=413,
        media_type=MediaType.HTML,
    )
