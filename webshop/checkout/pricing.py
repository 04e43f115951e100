"""Prices at checkout: shipping methods, tax and totals, all in integer minor units.

Tax is charged per line at the rate of the variant's tax category (``Settings.tax_rates_bp``, basis
points) on the net price, rounded half up to the minor unit per line (the usual "round per line"
rule, e.g. EU VAT Directive practice). Shipping is a flat rate and is not taxed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from webshop.errors import ValidationFailed


@dataclass(frozen=True)
class ShippingMethod:
    """A flat-rate shipping method: ``price`` minor units of ``currency``."""

    code: str
    name: str
    price: int
    currency: str
    description: str


SHIPPING_METHODS: tuple[ShippingMethod, ...] = (
    ShippingMethod("standard", "Standard shipping", 500, "USD", "Delivered in 3–5 working days"),
    ShippingMethod("express", "Express shipping", 1000, "USD", "Delivered the next working day"),
)


def shipping_method(code: str | None) -> ShippingMethod:
    """Return the shipping method with ``code``.

    Raises:
        ValidationFailed: no such method (field ``shipping_method``).
    """
    for method in SHIPPING_METHODS:
        if method.code == code:
            return method
    raise ValidationFailed(
        "Choose a shipping method.", field_errors={"shipping_method": "Choose one of the shipping methods."}
    )


def tax_amount(net: int, rate_bp: int) -> int:
    """Tax on ``net`` minor units at ``rate_bp`` basis points, rounded half up: ``tax_amount(999, 2000) == 200``."""
    return (net * rate_bp + 5_000) // 10_000


@dataclass(frozen=True)
class Totals:
    """Order totals in minor units of ``currency``: ``total == subtotal + shipping + tax``."""

    subtotal: int
    shipping: int
    tax: int
    currency: str

    @property
    def total(self) -> int:
        """Grand total."""
        return self.subtotal + self.shipping + self.tax
