"""Cart aggregate: a shopper's cart and its line items.

A guest's cart is found by a random ``token`` kept in the browser session; a signed-in shopper's cart
by ``user_id``. Lines hold a variant and a quantity only: prices are always the variant's current
price until checkout snapshots them into the order.
"""

from __future__ import annotations

from advanced_alchemy.base import BigIntAuditBase
from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webshop.db.models.catalog import Variant


class Cart(BigIntAuditBase):
    """A cart: ``user_id`` for a signed-in shopper (one cart each), ``token`` for a guest."""

    __tablename__ = "carts"

    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    token: Mapped[str | None] = mapped_column(String(64), unique=True)
    promotion_code: Mapped[str | None] = mapped_column(String(40), default=None)
    """The promotion code the shopper entered (normalised, ``webshop.pricing.codes``), or None."""

    lines: Mapped[list[CartLine]] = relationship(
        back_populates="cart", cascade="all, delete-orphan", order_by="CartLine.id"
    )


class CartLine(BigIntAuditBase):
    """A line item: ``quantity`` units (1 or more) of one variant; one line per variant per cart."""

    __tablename__ = "cart_lines"
    __table_args__ = (
        UniqueConstraint("cart_id", "variant_id", name="uq_cart_lines_cart_variant"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    quantity: Mapped[int] = mapped_column(Integer)

    cart: Mapped[Cart] = relationship(back_populates="lines")
    variant: Mapped[Variant] = relationship(lazy="joined", innerjoin=True)
