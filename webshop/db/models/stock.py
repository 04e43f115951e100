"""The stock ledger: one movement row for every change of a variant's stock."""

from __future__ import annotations

import enum

from advanced_alchemy.base import BigIntAuditBase
from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column


class StockReason(enum.StrEnum):
    """Why stock changed."""

    IMPORT = "import"
    SALE = "sale"
    CANCELLATION = "cancellation"
    ADJUSTMENT = "adjustment"
    # Units a refund put back (returned by the customer, or never sent): ``webshop.orders.refunds``.
    REFUND = "refund"


class StockMovement(BigIntAuditBase):
    """A signed change of one variant's stock (``delta`` units), written in the same transaction.

    Invariant checked by ``webshop check-stock``: a variant's stock equals the sum of its deltas.
    ``reference`` names what caused it (an order number, an import file, an admin's note).
    """

    __tablename__ = "stock_movements"
    __table_args__ = (Index("ix_stock_movements_variant", "variant_id", "created_at"),)

    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"))
    delta: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(200), default="")
