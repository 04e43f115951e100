"""Shop shapes: what ``ShopService`` takes (also the admin API's request bodies) and what the API returns.

The constraints here are the API's decoding rules; ``webshop.shops.profile`` checks the same limits
again for the pages, which post all-text forms, with the profile's other rules.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal, cast

import msgspec
from litestar.datastructures import UploadFile

from webshop.api.schemas import from_row
from webshop.db.models import postal
from webshop.db.models.shops import SHOP_NAME, SHOP_SLUG
from webshop.media import image_url
from webshop.text import EMAIL_PATTERN, PATTERN_MESSAGES, Line, Lines, VisibleLine

if TYPE_CHECKING:
    from webshop.db.models import Shop, ShopMember, User

ShopName = Annotated[VisibleLine, msgspec.Meta(max_length=SHOP_NAME, examples=["Ann's Kitchen"])]
SHOP_SLUG_PATTERN = r"^([a-z0-9]+(-[a-z0-9]+)*)?\Z"
"""Lowercase letters and digits joined by single ``-``, or empty (``\\Z``, not ``$``: see ``webshop.text``)."""
ShopSlug = Annotated[str, msgspec.Meta(max_length=SHOP_SLUG, pattern=SHOP_SLUG_PATTERN, examples=["anns-kitchen"])]
ShopDescription = Annotated[Lines, msgspec.Meta(max_length=5000)]
CONTACT_EMAIL_PATTERN = rf"^({EMAIL_PATTERN[1:-2]})?\Z"
"""An e-mail address (``webshop.text.EMAIL_PATTERN``) or nothing."""
ContactEmail = Annotated[str, msgspec.Meta(max_length=320, pattern=CONTACT_EMAIL_PATTERN)]
ContactPhone = Annotated[str, msgspec.Meta(max_length=40, pattern=r"^[0-9+()./ -]*\Z", examples=["+44 20 7946 0000"])]
PATTERN_MESSAGES[SHOP_SLUG_PATTERN] = "Expected lowercase letters and digits joined by hyphens, like anns-kitchen"
PATTERN_MESSAGES[CONTACT_EMAIL_PATTERN] = "Expected an e-mail address like ann@example.com, or nothing"
Role = Literal["owner", "staff"]
RowId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class ShopAddress(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A shop's postal address (every part optional; ``country`` an ISO 3166-1 alpha-2 code)."""

    line1: Annotated[Line, msgspec.Meta(max_length=postal.STREET_LINE)] = ""
    line2: Annotated[Line, msgspec.Meta(max_length=postal.STREET_LINE)] = ""
    city: Annotated[Line, msgspec.Meta(max_length=postal.CITY)] = ""
    postal_code: Annotated[Line, msgspec.Meta(max_length=postal.POSTAL_CODE)] = ""
    country: Annotated[str, msgspec.Meta(pattern=r"^([A-Za-z]{2})?\Z")] = ""


class ShopWrite(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new shop (``POST /api/shops``, the admin's "New shop" form).

    Attributes:
        name: Shown to shoppers (1-120 characters, trimmed).
        slug: Its URL (``/shops/{slug}``); empty or left out: made from the name. Unique.
        description: Plain text on the shop's page.
        address: Postal address.
        contact_email / contact_phone: How shoppers reach the shop.
    """

    name: ShopName
    slug: ShopSlug | None = None
    description: ShopDescription = ""
    address: ShopAddress = msgspec.field(default_factory=ShopAddress)
    contact_email: ContactEmail = ""
    contact_phone: ContactPhone = ""


class ShopPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Changes to a shop (``PATCH``/``PUT /api/shops/{id}``, the shop's edit form): fields left out stay."""

    name: ShopName | msgspec.UnsetType = msgspec.UNSET
    slug: ShopSlug | msgspec.UnsetType = msgspec.UNSET
    description: ShopDescription | msgspec.UnsetType = msgspec.UNSET
    address: ShopAddress | msgspec.UnsetType = msgspec.UNSET
    contact_email: ContactEmail | msgspec.UnsetType = msgspec.UNSET
    contact_phone: ContactPhone | msgspec.UnsetType = msgspec.UNSET


class MemberWrite(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A member to add (``POST /api/shops/{id}/members``): an existing user and their role."""

    user_id: RowId
    role: Role = "staff"


class ShopOut(msgspec.Struct, kw_only=True):
    """A shop as the API shows it; ``logo_url`` is the path of its logo (320 px wide WebP), ``null``
    when it has none."""

    id: int
    slug: str
    name: str
    description: str
    address: ShopAddress
    contact_email: str
    contact_phone: str
    logo_url: str | None
    is_active: bool
    is_default: bool
    created_at: datetime
    updated_at: datetime


class ShopManagedOut(ShopOut, kw_only=True):
    """A shop as an admin or its members see it (``GET /api/shops/managed``, the status routes): a
    suspended one too (``is_active`` false), and for admins a deleted one (``deleted_at`` set)."""

    deleted_at: datetime | None


class ShopManagedPage(msgspec.Struct, kw_only=True):
    """A page of the shops the caller manages, by name: ``items``, and ``total`` shops matching the
    filters (``page`` of ``pages``)."""

    items: list[ShopManagedOut]
    total: int
    page: int
    pages: int


ShopStatus = Literal["active", "suspended", "deleted"]
"""``GET /api/shops/managed``'s ``status`` filter (``ShopService.list_for``); none: all but deleted shops."""


class LogoUpload(msgspec.Struct, forbid_unknown_fields=True):
    """``PUT /api/shops/{id}/logo`` (multipart/form-data): a JPEG, PNG or WebP image of at most 5 MB in
    ``file``; decoded and re-encoded (metadata dropped) under a random name, as the admin page does."""

    file: UploadFile


class ShopPage(msgspec.Struct, kw_only=True):
    """A page of shops by name; pass ``next_cursor`` as ``cursor`` for the next one (``null`` at the end)."""

    items: list[ShopOut]
    next_cursor: str | None


class MemberOut(msgspec.Struct, kw_only=True):
    """A member of a shop: the user's id, e-mail address and name, and their role there."""

    user_id: int
    email: str
    name: str
    role: Role


def shop_out(shop: Shop) -> ShopOut:
    """``ShopOut`` from a ``Shop`` row (its address columns as one ``ShopAddress``)."""
    return from_row(
        ShopOut,
        shop,
        address=ShopAddress(
            line1=shop.address_line1,
            line2=shop.address_line2,
            city=shop.city,
            postal_code=shop.postal_code,
            country=shop.country,
        ),
        logo_url=image_url(shop.logo_key, 320) if shop.logo_key else None,
    )


def shop_managed_out(shop: Shop) -> ShopManagedOut:
    """``ShopManagedOut`` from a ``Shop`` row: ``shop_out``'s fields and ``deleted_at``."""
    public = shop_out(shop)
    return ShopManagedOut(
        **{name: getattr(public, name) for name in ShopOut.__struct_fields__}, deleted_at=shop.deleted_at
    )


def member_out(member: ShopMember, user: User) -> MemberOut:
    """``MemberOut`` from a membership and its user (as ``ShopService.members`` pairs them)."""
    return MemberOut(user_id=user.id, email=user.email, name=user.name, role=cast("Role", member.role))
