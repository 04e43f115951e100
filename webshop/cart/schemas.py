"""Cart shapes for the JSON API (msgspec Structs). Prices are always the variant's current price."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

from webshop.api.schemas import Money, money
from webshop.text import VisibleLine

if TYPE_CHECKING:
    from webshop.cart.service import CartView

Quantity = Annotated[int, msgspec.Meta(ge=0, le=99)]


class CartItemIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/cart/items``: add ``quantity`` units of the variant with ``sku`` (a price is refused)."""

    sku: Annotated[VisibleLine, msgspec.Meta(max_length=64)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=99)] = 1


class CartItemPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/cart/items/{id}``: the new quantity (0 removes the line)."""

    quantity: Quantity


class CartLineOut(msgspec.Struct):
    """A line item: current unit price, quantity, line total and the stock available for it."""

    id: int
    sku: str
    product_id: int
    product_name: str
    options: dict[str, str]
    unit_price: Money
    quantity: int
    line_total: Money
    available: int


class CartOut(msgspec.Struct):
    """The cart: lines, units, subtotal, tax on the lines and their sum (shipping is chosen at checkout)."""

    lines: list[CartLineOut]
    item_count: int
    subtotal: Money
    tax: Money
    total: Money


def cart_out(view: CartView, tax_rates_bp: dict[str, int]) -> CartOut:
    """``CartOut`` from a ``CartView``."""
    totals = view.totals(None, tax_rates_bp)
    return CartOut(
        lines=[
            CartLineOut(
                id=line.id,
                sku=line.sku,
                product_id=line.product_id,
                product_name=line.product_name,
                options={k: str(v) for k, v in line.options.items()},
                unit_price=money(line.unit_price, line.currency),
                quantity=line.quantity,
                line_total=money(line.line_total, line.currency),
                available=max(line.stock, 0),
            )
            for line in view.lines
        ],
        item_count=view.count,
        subtotal=money(totals.subtotal, totals.currency),
        tax=money(totals.tax, totals.currency),
        total=money(totals.total, totals.currency),
    )
