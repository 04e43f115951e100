"""Cart shapes for the JSON API (msgspec Structs). Prices are always the variant's current price."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

from webshop.api.schemas import Money, money
from webshop.text import VisibleLine

if TYPE_CHECKING:
    from webshop.cart.service import CartView
    from webshop.checkout.quote import Quote

Quantity = Annotated[int, msgspec.Meta(ge=0, le=99)]


class CartItemIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/cart/items``: add ``quantity`` units of the variant with ``sku`` (a price is refused)."""

    sku: Annotated[VisibleLine, msgspec.Meta(max_length=64)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=99)] = 1


class CartItemPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/cart/items/{id}``: the new quantity (0 removes the line)."""

    quantity: Quantity


class PromotionCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/cart/promotion-code``: a promotion code (case-insensitive)."""

    code: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=60,
            pattern=r"^\s*[A-Za-z0-9_-]{1,40}\s*\Z",
            description="Letters, digits, '-' and '_' (any case); spaces around it are ignored",
            examples=["SUMMER10"],
        ),
    ]


class CartLineOut(msgspec.Struct):
    """A line item: current unit price, quantity, line total, its share of the promotions' discount
    (``discount``) and the stock available for it. ``withdrawn``: its product is no longer sold (switched
    off, deleted, its shop suspended); the line counts in none of the cart's totals, and checkout refuses
    the cart until it is removed."""

    id: int
    sku: str
    product_id: int
    product_name: str
    options: dict[str, str]
    unit_price: Money
    quantity: int
    line_total: Money
    discount: Money
    available: int
    withdrawn: bool


class AppliedPromotionOut(msgspec.Struct):
    """A promotion the cart gets: ``amount`` off the goods and ``shipping`` off shipping. The cart is
    priced without shipping, so there ``shipping`` is 0 and a free-shipping promotion shows once a method
    is chosen (``GET /api/checkout/quote``)."""

    name: str
    code: str | None
    kind: str
    amount: Money
    shipping: Money


def applied_promotions_out(quote: Quote) -> list[AppliedPromotionOut]:
    """The promotions that take something off ``quote`` (``Quote.effective_promotions``)."""
    return [
        AppliedPromotionOut(p.name, p.code, p.kind, money(p.amount, quote.currency), money(p.shipping, quote.currency))
        for p in quote.effective_promotions
    ]


class TaxLineOut(msgspec.Struct):
    """Tax at one rate: ``rate_bp`` basis points (2000 = 20 %) on ``net``."""

    rate_bp: int
    net: Money
    tax: Money


class CartOut(msgspec.Struct):
    """The cart: lines, units, subtotal (as prices are entered: see ``prices_include_tax``), the
    promotions' ``discount_total``, tax at the shop's default country and the total of the goods
    (shipping is chosen at checkout). ``promotion_code`` is the code entered, and
    ``promotion_code_problem`` why it gives nothing right now (``null`` when it applies);
    ``promotion_code_replaces`` names the automatic promotions the cart would get without the code, which
    its promotion cannot be combined with and beats (it is used instead of them). ``region_decides_tax``:
    the shop taxes the country by region for a category the cart pays, so the ``tax`` here (at the
    country's rates) is an estimate that the shipping address's ``region`` may change at checkout."""

    lines: list[CartLineOut]
    item_count: int
    subtotal: Money
    discount_total: Money
    tax: Money
    total: Money
    prices_include_tax: bool
    taxes: list[TaxLineOut]
    promotions: list[AppliedPromotionOut]
    promotion_code: str | None
    promotion_code_problem: str | None
    promotion_code_replaces: list[str]
    region_decides_tax: bool


def cart_out(view: CartView, quote: Quote) -> CartOut:
    """``CartOut`` from a ``CartView`` and its ``Quote`` (priced without shipping)."""
    currency = quote.currency
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
                discount=money(priced.discount, line.currency),
                available=max(line.stock, 0),
                withdrawn=line.withdrawn,
            )
            for line, priced in zip(view.lines, quote.lines, strict=True)
        ],
        item_count=view.count,
        subtotal=money(quote.subtotal, currency),
        discount_total=money(quote.discount, currency),
        tax=money(quote.tax, currency),
        total=money(quote.total, currency),
        prices_include_tax=quote.prices_include_tax,
        taxes=[TaxLineOut(rate, money(net, currency), money(tax, currency)) for rate, net, tax in quote.tax_by_rate],
        promotions=applied_promotions_out(quote),
        promotion_code=view.promotion_code,
        promotion_code_problem=quote.code_problem or None,
        promotion_code_replaces=list(quote.displaced),
        region_decides_tax=quote.region_decides_tax,
    )
