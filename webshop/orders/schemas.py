"""Order shapes for the JSON API (msgspec Structs). Money is ``{amount, currency}`` in minor units."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from webshop.api.schemas import Money, from_row, money
from webshop.text import Line

if TYPE_CHECKING:
    from webshop.db.models import Order, OrderLine
    from webshop.orders.fulfilment import ShopView

StatusName = Literal["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]


class AddressOut(msgspec.Struct):
    """A shipping address; ``country`` is ISO 3166-1 alpha-2, ``region`` ISO 3166-2 (``""``: none given)."""

    name: str
    line1: str
    line2: str
    city: str
    postal_code: str
    country: str
    region: str


class OrderLineOut(msgspec.Struct):
    """An order line: what the shopper saw when ordering (a snapshot, not today's catalog); ``id`` names
    it in a refund of chosen lines (``order_line_id``)."""

    id: int
    sku: str
    product_id: int | None
    product_name: str
    options: dict[str, str]
    unit_price: Money
    quantity: int
    line_total: Money
    tax_rate_bp: int
    tax: Money
    discount: Money
    shop_id: int | None = None
    shop_name: str = ""


class TaxRateOut(msgspec.Struct):
    """Tax at one rate on the order (shipping included): ``rate_bp`` basis points on ``net``."""

    rate_bp: int
    net: Money
    tax: Money


class OrderPromotionOut(msgspec.Struct):
    """A promotion the order got, as it was at checkout: ``amount`` off the goods, ``shipping`` off shipping."""

    name: str
    code: str | None
    kind: str
    amount: Money
    shipping: Money


class FulfilmentOut(msgspec.Struct):
    """One shop's part of an order: its status, carrier and tracking number, and the shipping charged
    for it (``shipping``; the order's shipping is the sum over its parts). ``status`` is ``cancelled``
    for a part that will not ship: every unit of its lines was refunded, or the order was cancelled or
    refunded before it shipped."""

    shop_id: int | None
    shop_name: str
    status: Literal["pending", "shipped", "cancelled"]
    shipping: Money
    carrier: str
    tracking_number: str
    shipped_at: datetime | None


class ShipmentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/orders/{id}/shipments``: a shop's part of a paid order has been sent.

    ``shop_id`` may be left out by a member of just one of the order's shops (an admin leaving it
    out ships every part still pending).
    """

    shop_id: Annotated[int, msgspec.Meta(ge=1, le=2**63 - 1)] | None = None
    carrier: Annotated[Line, msgspec.Meta(max_length=80, examples=["DHL"])] = ""
    tracking_number: Annotated[Line, msgspec.Meta(max_length=100, examples=["JD014600003828"])] = ""


class RefundOut(msgspec.Struct):
    """What a cancelled or refunded paid order owes back: ``amount`` (money), and once the payment
    provider has refunded it, its ``reference`` and ``refunded_at`` (``pending`` until then). An order paid
    another way is refunded at once, its ``reference`` ``returned by the shop``: the shop returns the money."""

    amount: Money
    pending: bool
    reference: str | None
    refunded_at: datetime | None


class WholeRefundOut(msgspec.Struct):
    """A cancelled or wholly refunded paid order's refund, for admins (``POST /api/orders/{id}/whole-refund/retry``):
    ``RefundOut``'s fields, and while it is pending, ``failure_reason`` (the payment provider's, when it
    refused: the worker no longer asks) and ``attempts`` (times the worker asked again)."""

    amount: Money
    pending: bool
    reference: str | None
    refunded_at: datetime | None
    failure_reason: str
    attempts: int


def whole_refund_out(order: Order) -> WholeRefundOut:
    """The admin's view of ``order``'s whole refund (``refund_amount`` > 0)."""
    return WholeRefundOut(
        amount=money(order.refund_amount, order.currency),
        pending=order.refund_pending,
        reference=order.refund_reference,
        refunded_at=order.refunded_at,
        failure_reason=order.refund_failure if order.refund_pending else "",
        attempts=order.refund_retry_attempts if order.refund_pending and not order.refund_failure else 0,
    )


PaymentStatusName = Literal["requires_payment", "requires_action", "processing", "succeeded", "failed", "cancelled"]
"""``webshop.db.models.payments.PaymentStatus``: where the order's payment intent is."""


class PaymentOut(msgspec.Struct):
    """An order's payment, as the provider last reported it: ``provider`` (``test``, ``stripe``), its
    ``status``; while the order waits, ``redirect_url`` (the hosted payment page) and ``expires_at``
    (then the order is cancelled); ``failure_reason`` why the last attempt failed; ``card_last4``.
    ``paid_another_way``: an admin marked the order paid (a bank transfer, cash), so ``status`` is that of
    the provider's payment the shop closed, and the shop, not the provider, returns what a refund gives back."""

    provider: str
    status: PaymentStatusName
    redirect_url: str | None
    expires_at: datetime | None
    failure_reason: str | None
    card_last4: str | None
    paid_another_way: bool


class OrderOut(msgspec.Struct):
    """An order with its lines and totals, and the shopper's ``customer_note`` for the seller (plain text
    with LF line breaks, ``""`` for none).

    ``total == subtotal - discount_total + shipping + tax``, without ``tax`` when ``prices_include_tax``
    (the prices, subtotal and shipping then include it). ``discount_total`` is the sum of the lines'
    ``discount``; ``shipping`` is charged after ``shipping_discount``; ``tax`` includes shipping's tax;
    ``taxes`` gives it per rate and ``promotions`` what each promotion took off.

    ``refund`` is what cancelling or wholly refunding the paid order owes back; ``refunded_total`` all that
    goes back to the customer, that and the refunds of lines or amounts made or under way (``GET
    /api/orders/{id}/refunds`` has each): an order refunded piece by piece is ``refunded`` with ``refund``
    ``null`` and ``refunded_total == total``.

    A shop member sees their shops' part: its lines and parcels, and totals of those alone; ``taxes``,
    ``promotions`` (figures of the whole order) are then empty lists, ``refund``, ``refunded_total`` and
    ``payment`` ``null`` and ``shipping_discount`` 0."""

    id: int
    number: str
    status: StatusName
    user_id: int | None
    created_at: datetime
    paid_at: datetime | None
    cancelled_at: datetime | None
    shipping_method: str
    shipping_address: AddressOut
    lines: list[OrderLineOut]
    subtotal: Money
    discount_total: Money
    shipping: Money
    shipping_discount: Money
    tax: Money
    total: Money
    prices_include_tax: bool = False
    taxes: list[TaxRateOut] = msgspec.field(default_factory=list)
    promotions: list[OrderPromotionOut] = msgspec.field(default_factory=list)
    refund: RefundOut | None = None
    refunded_total: Money | None = None
    fulfilments: list[FulfilmentOut] = msgspec.field(default_factory=list)
    customer_note: str = ""
    payment: PaymentOut | None = None


class OrderPage(msgspec.Struct):
    """A page of orders, newest first; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[OrderOut]
    next_cursor: str | None


class OrderPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/orders/{id}`` (admins): the new status; the state machine decides if it is allowed."""

    status: StatusName


def order_out(seen: Order | ShopView) -> OrderOut:
    """``OrderOut`` from an ``Order`` with its lines and parts loaded, or from a ``ShopView`` of one: a
    shop member sees their shops' lines and parts, and totals of those alone (issue 16)."""
    from webshop.orders.fulfilment import ShopView

    view = seen if isinstance(seen, ShopView) else ShopView(seen)
    order = view.order
    c = order.currency
    whole = view.shops is None  # the order's own figures, not a shop's part of them
    return from_row(
        OrderOut,
        order,
        customer_note=order.customer_note or "",
        shipping_address=AddressOut(
            order.ship_name,
            order.ship_line1,
            order.ship_line2,
            order.ship_city,
            order.ship_postal_code,
            order.ship_country,
            order.ship_region,
        ),
        lines=[_line_out(line) for line in view.lines],
        subtotal=money(view.subtotal, c),
        discount_total=money(view.discount, c),
        shipping=money(view.shipping, c),
        shipping_discount=money(order.shipping_discount if whole else 0, c),
        tax=money(view.tax, c),
        total=money(view.total, c),
        taxes=[
            TaxRateOut(row["rate_bp"], money(row["net"], c), money(row["tax"], c)) for row in order.tax_breakdown or []
        ]
        if whole
        else [],
        promotions=[
            OrderPromotionOut(p["name"], p.get("code"), p["kind"], money(p["amount"], c), money(p["shipping"], c))
            for p in order.promotions or []
        ]
        if whole
        else [],
        fulfilments=[
            from_row(FulfilmentOut, part, status=part.status_in(order.status), shipping=money(part.shipping_amount, c))
            for part in view.fulfilments
        ],
        refund=RefundOut(
            amount=money(order.refund_amount, c),
            pending=order.refund_pending,
            reference=order.refund_reference,
            refunded_at=order.refunded_at,
        )
        if order.refund_amount and whole
        else None,
        refunded_total=money(order.refunded_in_all, c) if whole else None,
        payment=payment_out(order) if whole else None,
    )


def _line_out(line: OrderLine) -> OrderLineOut:
    """``OrderLineOut`` of an order line (amounts in the line's currency)."""
    cur = line.currency
    return from_row(
        OrderLineOut,
        line,
        options={k: str(v) for k, v in (line.options or {}).items()},
        unit_price=money(line.unit_price, cur),
        line_total=money(line.line_total, cur),
        tax=money(line.tax_amount, cur),
        discount=money(line.discount, cur),
    )


def payment_out(order: Order) -> PaymentOut:
    """The order's ``PaymentOut`` (no card number exists to show: only its last four digits)."""
    waiting = order.status == "pending"
    return PaymentOut(
        provider=order.payment_provider,
        status=order.payment_status,  # type: ignore[arg-type]
        redirect_url=(order.payment_url or None) if waiting else None,
        expires_at=order.payment_expires_at if waiting else None,
        failure_reason=order.payment_failure or None,
        card_last4=order.card_last4 or None,
        paid_another_way=order.paid_another_way,
    )
