"""Shops: the sellers of a webshop, and the users who run each one (its members).

A webshop has at least one shop, the default one (``is_default``), made by the migration from
``WEBSHOP_SHOP_NAME``; with only that shop the storefront and admin look as a single-seller shop.
Every product belongs to exactly one shop (``Product.shop_id``).
"""

from __future__ import annotations

import enum
from datetime import datetime

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Index, String, Text, false, text
from sqlalchemy.orm import Mapped, mapped_column

from webshop.db.models import postal

SHOP_NAME = 120
SHOP_SLUG = 80


class ShopRole(enum.StrEnum):
    """What a member may do in a shop: an owner also edits the shop's profile and manages its staff."""

    OWNER = "owner"
    STAFF = "staff"


class Shop(BigIntAuditBase):
    """A seller: its profile, postal address and contact details, and whether it trades.

    ``is_active`` false means suspended: its products leave the storefront and the API (past orders
    keep their lines). ``deleted_at`` set means soft-deleted. ``logo_key``/``logo_ext`` name the logo
    in the media directory like product photos (``webshop.media``). One shop, and only one, has
    ``is_default`` (a partial unique index): products written without a shop go there.
    """

    __tablename__ = "shops"
    __table_args__ = (
        Index(
            "uq_shops_default",
            "is_default",
            unique=True,
            sqlite_where=text("is_default = 1"),
            postgresql_where=text("is_default"),
        ),
    )

    name: Mapped[str] = mapped_column(String(SHOP_NAME))
    slug: Mapped[str] = mapped_column(String(SHOP_SLUG), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    address_line1: Mapped[str] = mapped_column(String(postal.STREET_LINE), default="")
    address_line2: Mapped[str] = mapped_column(String(postal.STREET_LINE), default="")
    city: Mapped[str] = mapped_column(String(postal.CITY), default="")
    postal_code: Mapped[str] = mapped_column(String(postal.POSTAL_CODE), default="")
    country: Mapped[str] = mapped_column(String(postal.COUNTRY), default="")
    contact_email: Mapped[str] = mapped_column(String(320), default="")
    contact_phone: Mapped[str] = mapped_column(String(40), default="")
    logo_key: Mapped[str | None] = mapped_column(String(64), default=None)
    logo_ext: Mapped[str] = mapped_column(String(8), default="")
    is_active: Mapped[bool] = mapped_column(default=True)
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    @property
    def trading(self) -> bool:
        """True when the shop's products are on sale: active and not deleted."""
        return self.is_active and self.deleted_at is None

    def address_lines(self) -> list[str]:
        """The postal address as display lines (blank parts left out)."""
        town = postal.locality(self.postal_code, self.city, self.country)
        lines = [self.address_line1, self.address_line2, town, self.country]
        return [line for line in lines if line.strip()]


class ShopMember(BigIntAuditBase):
    """A user who runs a shop, as its owner or staff (``ShopRole``); a user may belong to several shops."""

    __tablename__ = "shop_members"
    __table_args__ = (Index("uq_shop_members_shop_user", "shop_id", "user_id", unique=True),)

    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20), default=ShopRole.STAFF.value)
