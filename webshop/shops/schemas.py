"""Shop shapes: what ``ShopService`` takes (also the admin API's request bodies) and what the API returns.

The constraints here are the API's decoding rules; ``webshop.shops.service.clean_shop`` checks the
same limits again for the pages, which post all-text forms.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from webshop.db.models.shops import SHOP_NAME, SHOP_SLUG
from webshop.text import EMAIL_PATTERN, Line, Lines

ShopName = Annotated[str, msgspec.Meta(min_length=1, max_length=SHOP_NAME, pattern=r"\S", examples=["Ann's Kitchen"])]
ShopSlug = Annotated[
    str, msgspec.Meta(max_length=SHOP_SLUG, pattern=r"^([a-z0-9]+(-[a-z0-9]+)*)?$", examples=["anns-kitchen"])
]
ShopDescription = Annotated[str, msgspec.Meta(max_length=5000)]
ContactEmail = Annotated[str, msgspec.Meta(max_length=320, pattern=rf"({EMAIL_PATTERN})|^$")]
ContactPhone = Annotated[str, msgspec.Meta(max_length=40, pattern=r"^[0-9+()./ -]*$", examples=["+44 20 7946 0000"])]
Role = Literal["owner", "staff"]
RowId = Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)]


class ShopAddress(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A shop's postal address (every part optional; ``country`` an ISO 3166-1 alpha-2 code)."""

    line1: Annotated[Line, msgspec.Meta(max_length=200)] = ""
    line2: Annotated[Line, msgspec.Meta(max_length=200)] = ""
    city: Annotated[Line, msgspec.Meta(max_length=120)] = ""
    postal_code: Annotated[Line, msgspec.Meta(max_length=20)] = ""
    country: Annotated[str, msgspec.Meta(pattern=r"^([A-Za-z]{2})?$")] = ""


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
    description: Annotated[Lines, msgspec.Meta(max_length=5000)] = ""
    address: ShopAddress = msgspec.field(default_factory=ShopAddress)
    contact_email: ContactEmail = ""
    contact_phone: ContactPhone = ""


class ShopPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """Changes to a shop (``PATCH``/``PUT /api/shops/{id}``, the shop's edit form): fields left out stay."""

    name: ShopName | msgspec.UnsetType = msgspec.UNSET
    slug: ShopSlug | msgspec.UnsetType = msgspec.UNSET
    description: Annotated[Lines, msgspec.Meta(max_length=5000)] | msgspec.UnsetType = msgspec.UNSET
    address: ShopAddress | msgspec.UnsetType = msgspec.UNSET
    contact_email: ContactEmail | msgspec.UnsetType = msgspec.UNSET
    contact_phone: ContactPhone | msgspec.UnsetType = msgspec.UNSET


class MemberWrite(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A member to add (``POST /api/shops/{id}/members``): an existing user and their role."""

    user_id: RowId
    role: Role = "staff"


class ShopOut(msgspec.Struct, kw_only=True):
    """A shop as the API shows it."""

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


class MemberOut(msgspec.Struct, kw_only=True):
    """A member of a shop."""

    user_id: int
    email: str
    name: str
    role: Role
