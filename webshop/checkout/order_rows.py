"""The rows an order is placed as (``CheckoutService.place_order``): the pending order with its totals,
its lines and one part per shop, built from the cart and its quote (nothing is added to a session here).
What the shopper saw is copied, not referenced, so the order stays as it was sold when the catalog
changes."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from webshop.db.models import Fulfilment, Order, OrderLine, OrderStatus

if TYPE_CHECKING:
    from webshop.cart.service import CartView
    from webshop.checkout.addresses import AddressInput
    from webshop.checkout.quote import Quote

ORDER_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


ORDER_LINE_SNAPSHOT = (
    "variant_id",
    "product_id",
    "product_name",
    "product_slug",
    "sku",
    "options",
    "unit_price",
    "currency",
    "quantity",
    "tax_category",
    "line_total",
)
"""The cart line's values an order line keeps as they were at checkout (``LineView`` → ``OrderLine``): what
the shopper saw stays on the order when the product is renamed, repriced or deleted."""


def new_order_number() -> str:
    """A short, unambiguous, human-friendly order number like ``WS-7K3QX9MD`` (40 random bits)."""
    return "WS-" + "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(8))


def pending_order(user_id: int | None, view: CartView, quote: Quote, address: AddressInput, provider: str) -> Order:
    """A pending order for ``view``'s lines priced by ``quote`` (not added to the session): the
    totals, discounts, price mode, tax per rate and promotions as they were."""
    method = quote.method
    return Order(
        number=new_order_number(),
        user_id=user_id,
        status=OrderStatus.PENDING.value,
        currency=view.currency,
        subtotal=quote.subtotal,
        discount_total=quote.discount,
        shipping_total=quote.shipping,
        shipping_discount=quote.shipping_discount,
        shipping_tax=quote.shipping_tax,
        tax_total=quote.tax,
        total=quote.total,
        prices_include_tax=quote.prices_include_tax,
        tax_breakdown=[{"rate_bp": rate, "net": net, "tax": tax} for rate, net, tax in quote.tax_by_rate],
        promotions=[promotion.snapshot() for promotion in quote.effective_promotions],
        shipping_method=method.code if method else "",
        shipping_method_name=method.name if method else "",
        ship_name=address.name,
        ship_line1=address.line1,
        ship_line2=address.line2,
        ship_city=address.city,
        ship_postal_code=address.postal_code,
        ship_country=address.country,
        ship_region=address.region,
        payment_provider=provider,
    )


def fulfilments(order: Order, view: CartView, quote: Quote, sellers: dict[int, tuple[int, str]]) -> list[Fulfilment]:
    """One part per shop among the lines, each with its parcel's shipping and its tax (``Quote.parcels``)."""
    names = {shop_id: name for shop_id, name in sellers.values()}
    return [
        Fulfilment(
            order_id=order.id,
            shop_id=shop_id,
            shop_name=names.get(shop_id, "") if shop_id else "",
            shipping_amount=quote.parcels[index] if index < len(quote.parcels) else 0,
            shipping_tax=quote.parcel_taxes[index] if index < len(quote.parcel_taxes) else 0,
        )
        for index, shop_id in enumerate(view.shop_ids)
    ]


def order_lines(order: Order, quote: Quote, sellers: dict[int, tuple[int, str]]) -> list[OrderLine]:
    """The order's lines: a snapshot of what the shopper saw (name, SKU, unit price, its discount, tax
    rate and amounts) and of the shop that sold each one, its name as it was then (``sellers``:
    ``{product id: (shop id, shop name)}``)."""
    lines = []
    for priced in quote.lines:
        line = priced.line
        snapshot = {name: getattr(line, name) for name in ORDER_LINE_SNAPSHOT}
        shop_id, shop_name = sellers.get(line.product_id, (None, ""))
        lines.append(
            OrderLine(
                order_id=order.id,
                **snapshot,
                shop_id=shop_id,
                shop_name=shop_name,
                tax_rate_bp=priced.rate_bp,
                tax_amount=priced.tax,
                discount=priced.discount,
                net_amount=priced.net,
            )
        )
    return lines
