"""The ``data`` object of each webhook event, built from ORM rows: pure functions, no queries.

Each shape is part of the webhook API, so fields are only ever added, never renamed or removed.
Money is integer minor units (cents) with the ISO 4217 ``currency`` it is in; instants are RFC 3339
strings in UTC (``2026-12-05T10:00:00.123456Z``) or ``null``; ids are integers.

``webshop.webhooks.events`` loads the rows (only when an endpoint listens) and calls these.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from webshop.db.models import Fulfilment, Order, OrderLine, Product, Refund, User, Variant


def instant(moment: datetime | None) -> str | None:
    """``moment`` as an RFC 3339 string in UTC ending in ``Z``, or ``None`` (a naive value is taken as UTC)."""
    if moment is None:
        return None
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat().replace("+00:00", "Z")


def order_line_data(line: OrderLine) -> dict[str, Any]:
    """One order line as the shopper bought it (a snapshot: later catalog edits do not change it).

    Shape: ``{"sku", "product_id", "variant_id", "product_name", "options": {group: value},
    "quantity", "unit_price", "line_total", "discount", "tax_rate_bp", "tax_amount", "shop_id"}``;
    ``unit_price``, ``line_total``, ``discount`` (the line's share of the promotions) and ``tax_amount`` in
    minor units of the order's currency,
    ``tax_rate_bp`` in basis points (2000 = 20 %); ``product_id``/``variant_id``/``shop_id`` are
    ``null`` once that row is deleted.
    """
    return {
        "sku": line.sku,
        "product_id": line.product_id,
        "variant_id": line.variant_id,
        "product_name": line.product_name,
        "options": {str(group): str(value) for group, value in (line.options or {}).items()},
        "quantity": line.quantity,
        "unit_price": line.unit_price,
        "line_total": line.line_total,
        "discount": line.discount,
        "tax_rate_bp": line.tax_rate_bp,
        "tax_amount": line.tax_amount,
        "shop_id": line.shop_id,
    }


def fulfilment_data(part: Fulfilment, order_status: str) -> dict[str, Any]:
    """One shop's part of an order (``webshop.orders.fulfilment``), of an order in ``order_status``.

    Shape: ``{"shop_id", "shop_name", "status" ("pending" | "shipped" | "cancelled"), "carrier",
    "tracking_number", "shipped_at", "shipping_amount"}``; ``status`` is ``Fulfilment.status_in`` (a part of
    a cancelled order is ``cancelled``); ``shipping_amount`` in minor units of the order's currency;
    ``carrier``/``tracking_number`` are ``""`` until the shop gives them.
    """
    return {
        "shop_id": part.shop_id,
        "shop_name": part.shop_name,
        "status": part.status_in(order_status),
        "carrier": part.carrier,
        "tracking_number": part.tracking_number,
        "shipped_at": instant(part.shipped_at),
        "shipping_amount": part.shipping_amount,
    }


def order_data(order: Order, customer: User | None) -> dict[str, Any]:
    """The ``data`` of every ``order.*`` event: the order as it is after the change.

    ``order`` must have its ``lines`` and ``fulfilments`` loaded; ``customer`` is its user, ``None`` for a
    guest's order, whose ``customer`` is ``{"id": null, "email": order.email, "name": the shipping name}``.

    Shape::

        {"id", "number", "status", "currency",
         "subtotal", "discount_total", "shipping_total", "tax_total", "total",        # minor units
         "refund_amount", "refunded_total",                                            # minor units
         "prices_include_tax", "promotions": [{"id", "name", "code", "kind", "amount", "shipping"}],
         "customer": {"id", "email", "name"},
         "shipping_method",
         "shipping_address": {"name", "line1", "line2", "city", "postal_code", "country", "region"},
         "lines": [order_line_data...], "parts": [fulfilment_data...],
         "created_at", "paid_at", "cancelled_at", "refunded_at"}

    ``total = subtotal - discount_total + shipping_total + tax_total`` (without ``tax_total`` when
    ``prices_include_tax``); ``refund_amount`` is what cancelling or wholly refunding the paid order owes
    or paid back (0 when nothing is); ``refunded_total`` all that goes back to the customer: that and the
    refunds of lines or amounts made or under way (an order refunded piece by piece has ``refund_amount``
    0 and ``refunded_total == total``); ``country`` is ISO 3166-1 alpha-2, ``region`` ISO 3166-2 (``""``: none given).
    """
    return {
        "id": order.id,
        "number": order.number,
        "status": order.status,
        "currency": order.currency,
        "subtotal": order.subtotal,
        "discount_total": order.discount_total,
        "shipping_total": order.shipping_total,
        "tax_total": order.tax_total,
        "total": order.total,
        "refund_amount": order.refund_amount,
        "refunded_total": order.refunded_in_all,
        "prices_include_tax": order.prices_include_tax,
        "promotions": list(order.promotions or []),
        "customer": (
            {"id": None, "email": order.email, "name": order.ship_name}
            if customer is None
            else {"id": customer.id, "email": customer.email, "name": customer.name}
        ),
        "shipping_method": order.shipping_method,
        "shipping_address": {
            "name": order.ship_name,
            "line1": order.ship_line1,
            "line2": order.ship_line2,
            "city": order.ship_city,
            "postal_code": order.ship_postal_code,
            "country": order.ship_country,
            "region": order.ship_region,
        },
        "lines": [order_line_data(line) for line in order.lines],
        "parts": [fulfilment_data(part, order.status) for part in order.fulfilments],
        "created_at": instant(order.created_at),
        "paid_at": instant(order.paid_at),
        "cancelled_at": instant(order.cancelled_at),
        "refunded_at": instant(order.refunded_at),
    }


def refund_data(refund: Refund, order: Order, credit_note: str | None) -> dict[str, Any]:
    """The ``data`` of ``refund.succeeded`` (money that has gone back to a customer, one refund) and of
    ``refund.failed`` (the payment provider refused it: the money has not gone back).

    ``refund`` must have its ``lines`` loaded, and ``order`` its ``lines`` when the refund has any.

    Shape::

        {"id", "order_id", "order_number", "currency", "amount",                     # minor units
         "reason", "lines": [{"order_line_id", "sku", "quantity", "amount"}],
         "is_shipping", "restock", "returned_by_shop", "reference", "credit_note", "refunded_at",
         "status", "failure_reason",                         # "succeeded" and "", or "failed" and why
         "order_status", "order_refunded_total"}                                       # minor units

    ``lines`` are the order lines and units it refunds (``[]`` for an amount, a parcel's shipping,
    ``is_shipping: true``, or the refund of a whole cancelled or refunded order); ``restock`` whether their
    units went back to stock; ``returned_by_shop``: the order was paid another way (a bank transfer), so
    the shop returns the money itself and ``reference`` is the shop's own; else ``reference`` is the
    payment provider's refund id. ``credit_note`` is its credit note's number (``null``: the order was
    never invoiced). ``order_refunded_total`` is all the order gives back: this refund, those made before it
    and those still under way (so two refunds made at the same time may give the same figure; order the
    events by ``refunded_at``).

    A failed refund has no ``refunded_at``, ``reference`` or ``credit_note``, and what it claimed is
    given back to what the order may still refund; ``id`` is ``null`` when it was the refund of a whole
    cancelled or refunded order (that refund gets its row once it is made).
    """
    skus = {line.id: line.sku for line in order.lines} if refund.lines else {}
    return {
        "id": refund.id,
        "order_id": order.id,
        "order_number": order.number,
        "currency": refund.currency,
        "amount": refund.amount,
        "reason": refund.reason,
        "lines": [
            {
                "order_line_id": line.order_line_id,
                "sku": skus.get(line.order_line_id, ""),
                "quantity": line.quantity,
                "amount": line.amount,
            }
            for line in refund.lines
        ],
        "is_shipping": refund.is_shipping,
        "restock": refund.restock,
        "returned_by_shop": order.paid_another_way,
        "reference": refund.reference,
        "credit_note": credit_note,
        "refunded_at": instant(refund.refunded_at),
        "status": refund.status,
        "failure_reason": refund.failure_reason,
        "order_status": order.status,
        "order_refunded_total": order.refunded_in_all,
    }


def variant_data(variant: Variant) -> dict[str, Any]:
    """One variant of a product.

    Shape: ``{"id", "sku", "option_values": [str], "price", "currency", "stock", "low_stock_threshold"}``;
    ``price`` in minor units of ``currency``, ``stock`` and ``low_stock_threshold`` in units.
    """
    return {
        "id": variant.id,
        "sku": variant.sku,
        "option_values": [str(value) for value in variant.option_values or []],
        "price": variant.price,
        "currency": variant.currency,
        "stock": variant.stock,
        "low_stock_threshold": variant.low_stock_threshold,
    }


def product_data(product: Product, variants: Sequence[Variant]) -> dict[str, Any]:
    """The ``data`` of the ``product.*`` events: the product as it is after the change.

    ``variants`` are the product's variants in display order (the caller reads them fresh: stock
    changes by conditional updates the ORM does not track).

    Shape::

        {"id", "slug", "name", "shop_id", "category_id", "option_groups": [str],
         "is_active", "is_deleted", "is_visible", "deleted_at",
         "variants": [variant_data...], "created_at", "updated_at"}

    ``is_visible`` is what the shop shows: active, not deleted and its shop trading. The description
    and photos are left out (fetch ``GET /api/products/{id}`` for them).
    """
    deleted = product.deleted_at is not None
    return {
        "id": product.id,
        "slug": product.slug,
        "name": product.name,
        "shop_id": product.shop_id,
        "category_id": product.category_id,
        "option_groups": [str(group) for group in product.option_groups or []],
        "is_active": bool(product.is_active),
        "is_deleted": deleted,
        "is_visible": bool(product.is_active) and not deleted and bool(product.shop_active),
        "deleted_at": instant(product.deleted_at),
        "variants": [variant_data(variant) for variant in variants],
        "created_at": instant(product.created_at),
        "updated_at": instant(product.updated_at),
    }


def stock_low_data(variant: Variant, product_name: str = "") -> dict[str, Any]:
    """The ``data`` of ``stock.low``: a variant whose stock just fell to or below its threshold.

    Shape: ``{"variant_id", "sku", "product_id", "product_name", "stock", "low_stock_threshold"}``
    (``stock`` and ``low_stock_threshold`` in units; ``stock <= low_stock_threshold``).
    """
    return {
        "variant_id": variant.id,
        "sku": variant.sku,
        "product_id": variant.product_id,
        "product_name": product_name,
        "stock": variant.stock,
        "low_stock_threshold": variant.low_stock_threshold,
    }
