"""Payments, refunds and invoices: what the shop records of money moving.

* An order's payment is a **payment intent** at the provider (``orders.payment_reference`` is its id,
  ``orders.payment_status`` what the provider last said). The shop never sees a card number.
* ``PaymentEvent`` remembers every provider webhook event the shop has acted on, unique by
  ``(provider, event_id)``, so a duplicated or replayed event is acted on once.
* ``Refund`` (with its ``RefundLine`` rows) is money given back for a paid order, whole or in part.
* ``Invoice`` is an invoice (when an order is paid) or a credit note (for each refund), numbered from a
  gap-free sequence per kind and year (``InvoiceCounter``).
* ``TestPaymentIntent``, ``TestPaymentRefund`` and ``TestPaymentEvent`` are the built-in **test
  provider**'s own store: a small payment service inside the project (``webshop.payments.testing``),
  which keeps only the last four digits of the cards typed on its hosted page.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship


class PaymentStatus(enum.StrEnum):
    """An order's payment intent, as the provider last reported it (Stripe's PaymentIntent statuses,
    simplified): waiting for the shopper, waiting for an extra step (3-D Secure), being processed,
    paid, failed for good, or cancelled."""

    REQUIRES_PAYMENT = "requires_payment"
    REQUIRES_ACTION = "requires_action"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RefundStatus(enum.StrEnum):
    """A refund: asked of the provider (or to be asked again), done, or refused by the provider."""

    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


REFUND_PENDING = text("status = 'pending'")
"""A refund the provider has not answered yet (``RefundStatus.PENDING``)."""


class InvoiceKind(enum.StrEnum):
    """An invoice (an order paid) or a credit note (a refund); each has its own number sequence."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class PaymentEvent(BigIntAuditBase):
    """A provider webhook event the shop acted on: ``(provider, event_id)`` is unique, so the same event
    delivered twice (or replayed) is acted on once."""

    __tablename__ = "payment_events"
    __table_args__ = (Index("uq_payment_events_provider_event", "provider", "event_id", unique=True),)

    provider: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(100))
    event_type: Mapped[str] = mapped_column(String(60))
    reference: Mapped[str] = mapped_column(String(100), default="")


class Refund(BigIntAuditBase):
    """Money given back for a paid order: ``amount`` minor units of ``currency``, at most what was paid.

    ``lines`` say which order lines (and how many units) it covers, if any; ``restock`` whether those
    units went back to stock (a ledger movement) or not (damaged, kept by the customer); ``is_shipping``
    marks the refund of a parcel's shipping (a shop's part closed unsent: its credit note credits the
    shipping's tax, ``webshop.orders.refunds``). The provider is
    asked with ``idempotency_key`` (unique), so a retried refund never pays twice; ``reference`` is the
    provider's refund id once it succeeded.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index(
            "ix_refunds_pending_retry", "next_retry_at", postgresql_where=REFUND_PENDING, sqlite_where=REFUND_PENDING
        ),
    )

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(300), default="")
    restock: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    is_shipping: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(20), default=RefundStatus.PENDING.value)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    reference: Mapped[str] = mapped_column(String(100), default="")
    failure_reason: Mapped[str] = mapped_column(String(300), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    refunded_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    retry_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Times the background worker asked again for it while ``pending`` (``webshop.orders.refund_retries``)."""
    next_retry_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    """When the worker may ask again (``None``: ``WEBSHOP_REFUND_RETRY_SECONDS`` after it was made)."""

    lines: Mapped[list[RefundLine]] = relationship(
        back_populates="refund", cascade="all, delete-orphan", order_by="RefundLine.id", lazy="selectin"
    )


class RefundLine(BigIntAuditBase):
    """``quantity`` units of one order line covered by a refund, worth ``amount`` minor units."""

    __tablename__ = "refund_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    refund_id: Mapped[int] = mapped_column(ForeignKey("refunds.id", ondelete="CASCADE"), index=True)
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)

    refund: Mapped[Refund] = relationship(back_populates="lines")


class Invoice(BigIntAuditBase):
    """An invoice or credit note: ``number`` (like ``INV-2026-000042``) from the gap-free sequence of its
    ``kind`` and ``year``; ``total`` minor units of ``currency``; a credit note names its ``refund_id``
    and keeps the tax it credits per rate when it is issued (``credited_tax``: ``[{"rate_bp", "tax"}]``,
    ``webshop.invoices.credits``; ``None`` for the notes issued before notes kept it). The PDF is made
    from the order's snapshot whenever it is asked for, so it never changes."""

    __tablename__ = "invoices"
    __table_args__ = (Index("uq_invoices_kind_year_sequence", "kind", "year", "sequence", unique=True),)

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    refund_id: Mapped[int | None] = mapped_column(
        ForeignKey("refunds.id", ondelete="CASCADE"), default=None, unique=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    year: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(30), unique=True)
    total: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    issued_at: Mapped[datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    credited_tax: Mapped[list[dict[str, int]] | None] = mapped_column(JSON, default=None)


class InvoiceCounter(BigIntAuditBase):
    """The last number given in one ``kind`` and ``year``: bumped with a conditional ``UPDATE`` in the
    transaction that issues the invoice, so numbers are consecutive and never reused (a rolled-back
    transaction gives its number back)."""

    __tablename__ = "invoice_counters"
    __table_args__ = (Index("uq_invoice_counters_kind_year", "kind", "year", unique=True),)

    kind: Mapped[str] = mapped_column(String(20))
    year: Mapped[int] = mapped_column(Integer)
    last: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class TestPaymentIntent(BigIntAuditBase):
    """The test provider's payment intent (``reference`` like ``tpi_...``): what it charges, where it
    sends the shopper back, and how it went. Only a card's last four digits are kept."""

    __tablename__ = "test_payment_intents"
    __test__ = False  # not a pytest test class

    reference: Mapped[str] = mapped_column(String(40), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    order_number: Mapped[str] = mapped_column(String(20), default="")
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(24), default=PaymentStatus.REQUIRES_PAYMENT.value)
    return_url: Mapped[str] = mapped_column(String(500), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    failure_reason: Mapped[str] = mapped_column(String(300), default="")
    amount_refunded: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    settles_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)


class TestPaymentRefund(BigIntAuditBase):
    """A refund the test provider made (``reference`` like ``tre_...``), once per ``idempotency_key``."""

    __tablename__ = "test_payment_refunds"
    __test__ = False

    reference: Mapped[str] = mapped_column(String(40), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(120), unique=True)
    intent_reference: Mapped[str] = mapped_column(String(40), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))


class TestPaymentEvent(BigIntAuditBase):
    """A webhook event the test provider sends to the shop (its own outbox, sent by its background
    sender, signed like Stripe's): ``payload`` is the JSON body."""

    __tablename__ = "test_payment_events"
    __test__ = False
    __table_args__ = (Index("ix_test_payment_events_status_next", "status", "next_attempt_at"),)

    event_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    last_error: Mapped[str] = mapped_column(String(500), default="")
