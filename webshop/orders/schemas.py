"""Order shapes for the JSON API (msgspec Structs). Money is ``{amount, currency}`` in minor units."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Literal

import msgspec

from webshop.api.schemas import Money, money

if TYPE_CHECKING:
    from webshop.db.models import Order

StatusName = Literal["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]


class AddressOut(msgspec.Struct):
    """A shipping address; ``country`` is ISO 3166-1 alpha-2."""

    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str


class OrderLineOut(msgspec.Struct):
    """An order line: what the shopper saw when ordering (a snapshot, not today's catalog)."""

    sku: str
    product_id: int | None
    product_name: str
    options: dict[str, str]
    unit_price: Money
    quantity: int
    line_total: Money
    tax_rate_bp: int
    tax: Money


class RefundOut(msgspec.Struct):
    """What a cancelled or refunded paid order owes back: ``amount`` (money), and once the payment
    provider has refunded it, its ``reference`` and ``refunded_at`` (``pending`` until then)."""

    amount: Money
    pending: bool
    reference: str | None
    refunded_at: datetime | None


class OrderOut(msgspec.Struct):
    """An order with its lines and totals (``total == subtotal + shipping + tax``)."""

    id: int
    number: str
    status: StatusName
    user_id: int
    created_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    shipping_method: str
    shipping_address: AddressOut
    lines: list[OrderLineOut]
    subtotal: Money
    shipping: Money
    tax: Money
    total: Money
    refund: RefundOut | None = None


class OrderPage(msgspec.Struct):
    """A page of orders, newest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[OrderOut]
    next_cursor: str | None


class OrderPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/orders/{id}`` (admins): the new status; the state machine decides if it is allowed."""

    status: StatusName


def order_out(order: Order) -> OrderOut:
    """``OrderOut`` from an ``Order`` with its lines loaded."""
    c = order.currency
    return OrderOut(
        id=order.id,
        number=order.number,
        status=order.status,  # type: ignore[arg-type]
        user_id=order.user_id,
        created_at=order.created_at,
        paid_at=order.paid_at,
        cancelled_at=order.cancelled_at,
        shipping_method=order.shipping_method,
        shipping_address=AddressOut(
            order.ship_name,
            order.ship_line1,
            order.ship_line2,
            order.ship_city,
            order.ship_postal_code,
            order.ship_country,
        ),
        lines=[
            OrderLineOut(
                sku=line.sku,
                product_id=line.product_id,
                product_name=line.product_name,
                options={k: str(v) for k, v in (line.options or {}).items()},
                unit_price=money(line.unit_price, line.currency),
                quantity=line.quantity,
                line_total=money(line.line_total, line.currency),
                tax_rate_bp=line.tax_rate_bp,
                tax=money(line.tax_amount, line.currency),
            )
            for line in order.lines
        ],
        subtotal=money(order.subtotal, c),
        shipping=money(order.shipping_total, c),
        tax=money(order.tax_total, c),
        total=money(order.total, c),
        refund=RefundOut(
            amount=money(order.refund_amount, c),
            pending=order.refund_pending,
            reference=order.refund_reference,
            refunded_at=order.refunded_at,
        )
        if order.refund_amount
        else None,
    )
