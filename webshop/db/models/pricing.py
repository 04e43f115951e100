"""Pricing rules an admin manages: promotions (and their uses), shipping zones and methods, tax rates.

Money is integer minor units of the shop's currency (``WEBSHOP_CURRENCY``); rates are basis points
(``2000`` = 20 %); weights are grams. The rules are applied by ``webshop.checkout.quote`` with the pure
functions of ``webshop.pricing``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

REST_OF_WORLD = "*"
"""The ``TaxRate.country`` of the rates charged where no rate of the destination country exists."""


class Promotion(BigIntAuditBase):
    """A promotion: percentage or fixed amount off (the whole order, or chosen categories, products or
    variants), or free shipping; automatic, or unlocked by a ``code`` (stored upper-case, unique).

    ``times_used`` counts the uses of orders not cancelled or fully refunded; checkout raises it with a
    conditional ``UPDATE ... WHERE times_used < usage_limit`` (the constraint below is the last guard).
    """

    __tablename__ = "promotions"
    __table_args__ = (
        CheckConstraint("times_used >= 0", name="times_used_not_negative"),
        CheckConstraint("usage_limit IS NULL OR times_used <= usage_limit", name="within_usage_limit"),
    )

    name: Mapped[str] = mapped_column(String(120))
    code: Mapped[str | None] = mapped_column(String(40), unique=True, default=None)
    kind: Mapped[str] = mapped_column(String(20))
    value: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    ends_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    min_subtotal: Mapped[int] = mapped_column(Integer, default=0)
    usage_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer, default=None)
    times_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    combinable: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    category_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    product_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    variant_ids: Mapped[list[int]] = mapped_column(JSON, default=list)

    def state_at(self, now: datetime) -> str:
        """What an admin's list says of it at ``now``: ``Inactive`` (switched off), ``Scheduled`` (not
        started), ``Ended``, ``Used up`` (its ``usage_limit`` reached), else ``Active`` (it applies when
        its conditions hold)."""
        if not self.active:
            return "Inactive"
        if self.starts_at is not None and now < self.starts_at:
            return "Scheduled"
        if self.ends_at is not None and now > self.ends_at:  # valid up to and including ends_at
            return "Ended"
        if self.usage_limit is not None and self.times_used >= self.usage_limit:
            return "Used up"
        return "Active"


class PromotionUsage(BigIntAuditBase):
    """One use of a promotion by one order; ``released_at`` is set (once) when the order is cancelled or
    fully refunded, and the use is then given back to ``Promotion.times_used``."""

    __tablename__ = "promotion_usages"
    __table_args__ = (
        UniqueConstraint("promotion_id", "order_id", name="uq_promotion_usages_promotion_order"),
        Index("ix_promotion_usages_promotion_user", "promotion_id", "user_id"),
        Index("ix_promotion_usages_promotion_email", "promotion_id", "email"),
    )

    promotion_id: Mapped[int] = mapped_column(ForeignKey("promotions.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    email: Mapped[str] = mapped_column(String(320), default="")
    amount: Mapped[int] = mapped_column(Integer, default=0)
    released_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class ShippingZone(BigIntAuditBase):
    """A set of destination countries (ISO 3166-1 alpha-2 codes), or the rest of the world (at most one
    zone, for every country no other zone names), with its shipping methods."""

    __tablename__ = "shipping_zones"

    name: Mapped[str] = mapped_column(String(120))
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    rest_of_world: Mapped[bool] = mapped_column(default=False)

    methods: Mapped[list[ShippingMethod]] = relationship(
        back_populates="zone", cascade="all, delete-orphan", order_by="(ShippingMethod.position, ShippingMethod.id)"
    )


class ShippingMethod(BigIntAuditBase):
    """A way to ship to a zone and its rate: ``kind`` flat (``price``), by order weight or by subtotal
    (``bands``: ``[[up_to or null, price], ...]``, grams or minor units), free from ``free_over`` minor
    units of subtotal; ``code`` is what checkout forms and the API name (unique within the zone)."""

    __tablename__ = "shipping_methods"
    __table_args__ = (UniqueConstraint("zone_id", "code", name="uq_shipping_methods_zone_code"),)

    zone_id: Mapped[int] = mapped_column(ForeignKey("shipping_zones.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20), default="flat")
    price: Mapped[int] = mapped_column(Integer, default=0)
    bands: Mapped[list[Any]] = mapped_column(JSON, default=list)
    free_over: Mapped[int | None] = mapped_column(Integer, default=None)
    delivery_estimate: Mapped[str] = mapped_column(String(120), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(default=True)

    zone: Mapped[ShippingZone] = relationship(back_populates="methods")


class TaxRate(BigIntAuditBase):
    """The tax rate (basis points) of one tax category in one country (``"*"``: every country without
    rates of its own), optionally for one region (ISO 3166-2 subdivision code, ``""`` for the country)."""

    __tablename__ = "tax_rates"
    __table_args__ = (
        UniqueConstraint("country", "region", "tax_category", name="uq_tax_rates_country_region_category"),
        CheckConstraint("rate_bp >= 0 AND rate_bp <= 10000", name="rate_in_range"),
    )

    country: Mapped[str] = mapped_column(String(2))
    region: Mapped[str] = mapped_column(String(10), default="")
    tax_category: Mapped[str] = mapped_column(String(40))
    rate_bp: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(60), default="Tax")
