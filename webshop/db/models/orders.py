"""Order aggregate: orders, their lines (a snapshot of what the shopper bought) and addresses."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webshop.db.models import postal
from webshop.db.models.payments import PaymentStatus

ORDER_NOTE = 500
TOTAL_ADDS_UP = (
    "total = subtotal - discount_total + shipping_total + CASE WHEN prices_include_tax THEN 0 ELSE tax_total END"
)
"""An order's total: the goods less their discount, plus shipping, plus tax unless the prices include it."""
REFUND_OWED = text("refund_amount > 0 AND refunded_at IS NULL")
"""A cancelled or refunded order whose whole refund the provider has not made yet (``Order.refund_pending``)."""


class OrderStatus(enum.StrEnum):
    """Where an order is in its life; allowed moves live in ``webshop.orders.status_rules.TRANSITIONS``."""

    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


class Address(BigIntAuditBase):
    """A shipping address in a user's address book."""

    __tablename__ = "addresses"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(postal.RECIPIENT))
    line1: Mapped[str] = mapped_column(String(postal.STREET_LINE))
    line2: Mapped[str] = mapped_column(String(postal.STREET_LINE), default="")
    city: Mapped[str] = mapped_column(String(postal.CITY))
    postal_code: Mapped[str] = mapped_column(String(postal.POSTAL_CODE))
    country: Mapped[str] = mapped_column(String(postal.COUNTRY))
    region: Mapped[str] = mapped_column(String(postal.REGION), default="", server_default=text("''"))
    """The state, province or region: an ISO 3166-2 code (``US-CA``), else as typed; ``""`` when not given."""

    def one_line(self) -> str:
        """The address on one line, for lists."""
        return postal.one_line(self)


class Order(BigIntAuditBase):
    """A placed order. Amounts are minor units of ``currency``; ``total`` is ``subtotal - discount_total +
    shipping_total + tax_total``, without ``tax_total`` when ``prices_include_tax`` (``TOTAL_ADDS_UP``).

    ``checkout_token`` is the one-time token of the checkout form (or the API's Idempotency-Key),
    unique, so placing the same checkout twice finds the first order instead of making another.

    ``refund_amount`` (minor units) is what the shop owes back after cancelling or refunding a paid
    order; the refund is done when ``refunded_at`` is set (``refund_reference`` is the provider's).
    """

    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_user_created", "user_id", "created_at"),
        Index("ix_orders_status_created", "status", "created_at"),
        Index("ix_orders_status_payment_expires", "status", "payment_expires_at"),
        Index("ix_orders_email", "email"),
        Index(
            "ix_orders_refund_owed_retry",
            "refund_next_retry_at",
            postgresql_where=REFUND_OWED,
            sqlite_where=REFUND_OWED,
        ),
        CheckConstraint(TOTAL_ADDS_UP, name="total_adds_up"),
    )

    number: Mapped[str] = mapped_column(String(20), unique=True)
    # None for a guest's order (``email`` is then where its messages go) until the guest makes an account.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    email: Mapped[str] = mapped_column(String(320), default="", server_default=text("''"))
    # A guest's cart (its session token), where a failed or cancelled payment puts the lines back; None for
    # an account's order (the account's cart is found by ``user_id``).
    guest_cart_token: Mapped[str | None] = mapped_column(String(64), default=None)
    checkout_token: Mapped[str] = mapped_column(String(100), unique=True)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.PENDING.value)
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(Integer)
    shipping_total: Mapped[int] = mapped_column(Integer)
    tax_total: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    shipping_method: Mapped[str] = mapped_column(String(40))
    shipping_method_name: Mapped[str] = mapped_column(String(120))
    ship_name: Mapped[str] = mapped_column(String(postal.RECIPIENT))
    ship_line1: Mapped[str] = mapped_column(String(postal.STREET_LINE))
    ship_line2: Mapped[str] = mapped_column(String(postal.STREET_LINE), default="")
    ship_city: Mapped[str] = mapped_column(String(postal.CITY))
    ship_postal_code: Mapped[str] = mapped_column(String(postal.POSTAL_CODE))
    ship_country: Mapped[str] = mapped_column(String(postal.COUNTRY))
    ship_region: Mapped[str] = mapped_column(String(postal.REGION), default="", server_default=text("''"))
    """The region shipped to (as ``Address.region``; ``""``: none given); its tax rates applied when it has any."""
    payment_provider: Mapped[str] = mapped_column(String(40), default="")
    # The provider's payment intent (``payment_reference``) and what it last said about it
    # (``webshop.db.models.payments.PaymentStatus``); ``payment_url`` is its hosted payment page while
    # the order waits for payment, ``payment_expires_at`` when the order is cancelled if still unpaid,
    # ``payment_failure`` why the last attempt failed (for the shopper).
    payment_reference: Mapped[str] = mapped_column(String(100), default="")
    payment_status: Mapped[str] = mapped_column(String(24), default="requires_payment", server_default="succeeded")
    payment_url: Mapped[str] = mapped_column(String(500), default="", server_default=text("''"))
    payment_expires_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    payment_failure: Mapped[str] = mapped_column(String(300), default="", server_default=text("''"))
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    paid_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    # Set together with the status change that cancels or refunds a paid order (what is owed back);
    # refund_reference and refunded_at once the payment provider has refunded it.
    refund_amount: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    refund_reference: Mapped[str | None] = mapped_column(String(100), default=None)
    refunded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    refund_retry_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Times the background worker asked again for a pending whole-order refund (``webshop.orders.refund_retries``)."""
    refund_next_retry_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """When the worker may ask again (``None``: ``WEBSHOP_REFUND_RETRY_SECONDS`` after the order last changed;
    each of its claims changes ``updated_at`` too, harmlessly)."""
    refund_failure: Mapped[str] = mapped_column(String(300), default="", server_default=text("''"))
    """Why the payment provider last refused the whole-order refund (empty: it has not); the worker no longer
    asks for a refused one, an admin's Retry does (``OrderService.settle_refund``)."""
    # What the ``refunds`` rows of this order claim in all (minor units): with ``refund_amount``, never
    # more than ``total`` (the refunds service's conditional ``UPDATE`` keeps that under concurrency).
    refunded_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The shopper's note at checkout (plain text, at most ORDER_NOTE characters; escaped wherever shown).
    customer_note: Mapped[str] = mapped_column(String(ORDER_NOTE), default="", server_default=text("''"))
    discount_total: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Minor units the promotions took off the goods: the sum of the lines' ``discount``."""
    shipping_discount: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Minor units the promotions took off shipping (``shipping_total`` is after it)."""
    shipping_tax: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Tax on shipping, included in ``tax_total`` (shipping is taxed at the destination's standard rate)."""
    prices_include_tax: Mapped[bool] = mapped_column(default=False, server_default=text("false"))
    """The shop's price mode at checkout: True when unit prices, ``subtotal`` and shipping include tax."""
    tax_breakdown: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """``[{"rate_bp", "net", "tax"}]`` per tax rate at checkout, shipping included, lowest rate first."""
    promotions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    """The promotions applied, as they were: ``[{"id", "name", "code", "kind", "amount", "shipping"}]``."""

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.id"
    )
    fulfilments: Mapped[list[Fulfilment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Fulfilment.id"
    )

    def shipping_address_lines(self) -> list[str]:
        """The shipping address as display lines (the order page, e-mails, invoices), the country by name."""
        town = postal.locality(self.ship_postal_code, self.ship_city, self.ship_country, self.ship_region)
        lines = [self.ship_name, self.ship_line1, self.ship_line2, town, postal.country_line(self.ship_country)]
        return [line for line in lines if line.strip()]

    @property
    def refunded_in_all(self) -> int:
        """Minor units going back to the customer in all: the refunds of lines or amounts, made or under way
        (``refunded_total``), and a cancel's or whole refund's (``refund_amount``)."""
        return self.refunded_total + self.refund_amount

    @property
    def paid_through_provider(self) -> bool:
        """True when the payment provider reports the order's payment (``payment_reference``) succeeded."""
        return self.payment_status == PaymentStatus.SUCCEEDED.value and bool(self.payment_reference)

    @property
    def paid_another_way(self) -> bool:
        """True when an admin marked the order paid (a bank transfer, cash at the counter) rather than the
        payment provider reporting it paid: the shop, not the provider, holds the money, so the shop gives
        back what a cancel or refund owes (``webshop.orders.refunding.SHOP_RETURNS``)."""
        return self.paid_at is not None and not self.paid_through_provider

    @property
    def money_received(self) -> bool:
        """True when the order was paid, through the provider or another way: a cancel or refund owes
        the customer what is left of it (``webshop.orders.status_rules.refund_owed``)."""
        return self.paid_through_provider or self.paid_another_way

    @property
    def refund_pending(self) -> bool:
        """True while money is owed back but the payment provider has not refunded it yet."""
        return self.refund_amount > 0 and self.refunded_at is None


class OrderLine(BigIntAuditBase):
    """What was bought, as the shopper saw it: name, SKU, options, unit price, tax rate and amounts.

    ``variant_id`` still points at the variant (for restocking and links) but nothing here changes
    when the product does; ``shop_id``/``shop_name`` are the shop that sold it, as it was named then.
    ``tax_rate_bp`` is in basis points (2000 = 20 %).
    """

    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="SET NULL"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id", ondelete="SET NULL"))
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id", ondelete="SET NULL"), index=True)
    shop_name: Mapped[str] = mapped_column(String(120), default="", server_default=text("''"))
    product_name: Mapped[str] = mapped_column(String(200))
    product_slug: Mapped[str] = mapped_column(String(200))
    sku: Mapped[str] = mapped_column(String(64))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    unit_price: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    quantity: Mapped[int] = mapped_column(Integer)
    tax_category: Mapped[str] = mapped_column(String(40))
    tax_rate_bp: Mapped[int] = mapped_column(Integer)
    line_total: Mapped[int] = mapped_column(Integer)
    tax_amount: Mapped[int] = mapped_column(Integer)
    discount: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Minor units of the order's promotions allocated to this line (in the order's price mode)."""
    net_amount: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """The line excluding tax after its discount; the shopper paid ``net_amount + tax_amount`` for it."""

    order: Mapped[Order] = relationship(back_populates="lines")


class FulfilmentStatus(enum.StrEnum):
    """Where one shop's part of an order is: waiting to be sent, sent, or closed unsent because every
    unit of its lines was refunded (``webshop.orders.fulfilment.close_refunded_parts``)."""

    PENDING = "pending"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Fulfilment(BigIntAuditBase):
    """One shop's part of an order: its lines ship together, with their own carrier and tracking number.

    Checkout makes one per shop among the order's lines; ``shipping_amount`` (minor units of the
    order's currency) is the shipping charged for this part (the order's ``shipping_total`` is their
    sum). The order becomes ``shipped`` when every part is (``webshop.orders.fulfilment``).
    """

    __tablename__ = "fulfilments"
    __table_args__ = (Index("uq_fulfilments_order_shop", "order_id", "shop_id", unique=True),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id", ondelete="SET NULL"), index=True)
    shop_name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20), default=FulfilmentStatus.PENDING.value)
    shipping_amount: Mapped[int] = mapped_column(Integer, default=0)
    shipping_tax: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    carrier: Mapped[str] = mapped_column(String(80), default="")
    tracking_number: Mapped[str] = mapped_column(String(100), default="")
    shipped_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    order: Mapped[Order] = relationship(back_populates="fulfilments")

    @property
    def shipped(self) -> bool:
        """True once this part has been sent."""
        return self.status == FulfilmentStatus.SHIPPED.value

    @property
    def closed(self) -> bool:
        """True when this part will not ship: every item of it was refunded before it left."""
        return self.status == FulfilmentStatus.CANCELLED.value

    def status_in(self, order_status: str) -> str:
        """The part's status as the API and webhooks tell it (``FulfilmentStatus``): ``cancelled`` too for a
        part still ``pending`` of an order cancelled or refunded (``order_status``), which will not ship
        either, as the order pages say."""
        ended = order_status in (OrderStatus.CANCELLED.value, OrderStatus.REFUNDED.value)
        return (
            FulfilmentStatus.CANCELLED.value if ended and self.status == FulfilmentStatus.PENDING.value else self.status
        )

    def holds(self, line: OrderLine) -> bool:
        """True when ``line`` (of this part's order) is one of this part's: sold by its shop. Once a shop
        is deleted its parts and lines keep the name it had (``shop_id`` becomes ``NULL``), which then
        tells the parts of two deleted shops apart."""
        return line.shop_id == self.shop_id and (self.shop_id is not None or line.shop_name == self.shop_name)
