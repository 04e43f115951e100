"""An order's figures as its pages, e-mails and invoices show them (the same names as a cart's ``Quote``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from webshop.db.models import Order


@dataclass(frozen=True)
class OrderPromotion:
    """A promotion as the order kept it: ``amount`` off the goods, ``shipping`` off shipping (minor units)."""

    name: str
    code: str | None
    kind: str
    amount: int
    shipping: int


@dataclass(frozen=True)
class OrderFigures:
    """``order``'s totals in minor units of ``currency``, with the fields ``templates/_totals.html`` reads:
    ``total == subtotal - discount + shipping (+ tax unless prices_include_tax)``."""

    currency: str
    subtotal: int
    discount: int
    shipping: int
    shipping_discount: int
    tax: int
    total: int
    prices_include_tax: bool
    tax_by_rate: tuple[tuple[int, int, int], ...]
    promotions: tuple[OrderPromotion, ...]

    @classmethod
    def of(cls, order: Order) -> OrderFigures:
        """The figures of ``order`` as placed (its snapshot: tax per rate, promotions)."""
        rows: list[Any] = order.tax_breakdown or []
        return cls(
            currency=order.currency,
            subtotal=order.subtotal,
            discount=order.discount_total,
            shipping=order.shipping_total,
            shipping_discount=order.shipping_discount,
            tax=order.tax_total,
            total=order.total,
            prices_include_tax=order.prices_include_tax,
            tax_by_rate=tuple((int(r["rate_bp"]), int(r["net"]), int(r["tax"])) for r in rows),
            promotions=tuple(
                OrderPromotion(p["name"], p.get("code"), p["kind"], int(p["amount"]), int(p.get("shipping", 0)))
                for p in order.promotions or []
            ),
        )
