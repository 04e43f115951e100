"""Checkout shapes for the JSON API (msgspec Structs)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import msgspec

from webshop.api.schemas import ID_MAX, Money, money
from webshop.cart.schemas import CartOut, cart_out
from webshop.db.models import postal
from webshop.db.models.orders import ORDER_NOTE
from webshop.text import Line, Lines, VisibleLine

if TYPE_CHECKING:
    from webshop.cart.service import CartView
    from webshop.checkout.quote import Quote

# The limits of ``AddressInput.cleaned`` (webshop/checkout/addresses.py; both read ``webshop.db.models.postal``),
# which trims and collapses white space first: a value within them here is within them there.
AddressName = Annotated[VisibleLine, msgspec.Meta(max_length=postal.RECIPIENT)]
AddressLine = Annotated[VisibleLine, msgspec.Meta(max_length=postal.STREET_LINE)]
OptionalAddressLine = Annotated[Line, msgspec.Meta(max_length=postal.STREET_LINE)]
City = Annotated[VisibleLine, msgspec.Meta(max_length=postal.CITY)]
PostalCode = Annotated[
    Line,
    msgspec.Meta(
        max_length=postal.POSTAL_CODE,
        description="Required (422 without one), except in a country with no postal codes, such as HK or AE",
        examples=["73301"],
    ),
]
Country = Annotated[
    str, msgspec.Meta(pattern=r"^[A-Za-z]{2}\Z", description="ISO 3166-1 alpha-2, any case", examples=["US"])
]
Region = Annotated[
    Line,
    msgspec.Meta(
        max_length=postal.REGION,
        description="The state, province or region: its ISO 3166-2 code (US-CA), its own part (CA) or its"
        " name (California), answered as the ISO 3166-2 code; another name is kept as sent, but not a code"
        " of the country ISO 3166-2 does not have (US-ZZ: 422). Needed (422), as one of the country's"
        " ISO 3166-2 regions, where the shop taxes the country by region",
        examples=["US-CA"],
    ),
]
ShippingCode = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9_-]{1,40}\Z",
        description="A method of the destination's shipping zone (GET /api/shipping-methods?country=...)",
        examples=["standard"],
    ),
]
CustomerNote = Annotated[
    Lines,
    msgspec.Meta(
        max_length=ORDER_NOTE,
        description="An optional note for the seller (plain text, line breaks allowed); trimmed when kept",
        examples=["Please leave the parcel with the neighbour at no. 14."],
    ),
]
"""``clean_customer_note`` (webshop/checkout/notes.py) counts the note after trimming and turning CR LF
into LF: a value within ``ORDER_NOTE`` characters here is within it there."""
PaymentToken = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_]+\Z",
        description="A token the payment provider issued to the client (test provider: tok_visa, "
        "tok_chargeDeclined, tok_chargeDeclinedInsufficientFunds, tok_threeDSecureRequired)",
        examples=["tok_visa"],
    ),
]


class ShippingMethodOut(msgspec.Struct):
    """A shipping method of the destination's zone, priced for the caller's cart (with a bearer token;
    an empty cart without one): ``price`` for every parcel (one per shop), ``available`` false with the
    ``problem`` when it cannot take this cart (too heavy...), ``free_over`` the goods subtotal from which
    it is free."""

    code: str
    name: str
    price: Money
    description: str
    available: bool
    problem: str | None
    free_over: Money | None


QuoteSignature = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[0-9a-f]{64}\Z",
        description="The ``signature`` of GET /api/checkout/quote the shopper agreed to: if the cart, its prices, "
        "promotions, shipping or total have changed since, the order is not placed (409, nothing charged)",
    ),
]


class CheckoutQuoteOut(CartOut):
    """``GET /api/checkout/quote``: what ``POST /api/checkout`` would charge for the cart, shipped to
    ``country`` by ``shipping_method``: ``GET /api/cart``'s fields, with ``tax`` and ``total`` now including
    the ``shipping`` (charged after ``shipping_discount``); and the ``signature`` to send back as
    ``expected_signature``, so the order is placed at this price or not at all. ``region`` is the ISO 3166-2
    region whose own tax rates it charges (``""``: the country's rates)."""

    shipping: Money
    shipping_discount: Money
    country: str
    region: str
    shipping_method: str
    signature: str


def checkout_quote_out(view: CartView, quote: Quote) -> CheckoutQuoteOut:
    """``CheckoutQuoteOut`` from the cart and its quote (priced with shipping)."""
    return CheckoutQuoteOut(
        **msgspec.structs.asdict(cart_out(view, quote)),
        shipping=money(quote.shipping, quote.currency),
        shipping_discount=money(quote.shipping_discount, quote.currency),
        country=quote.country,
        region=quote.region,
        shipping_method=quote.method.code if quote.method else "",
        signature=quote.signature(view),
    )


class AddressIn(msgspec.Struct, forbid_unknown_fields=True):
    """A shipping address; ``country`` is an ISO 3166-1 alpha-2 code such as ``US``."""

    name: AddressName
    line1: AddressLine
    city: City
    country: Country
    postal_code: PostalCode = ""
    line2: OptionalAddressLine = ""
    region: Region = ""


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """How to pay: a provider-issued ``token`` confirms the payment at once; without one the order waits
    and ``payment.redirect_url`` in the answer is the provider's hosted payment page. The shop takes no
    card numbers (a ``card_number`` field is refused with 422): they go to the payment provider only."""

    token: PaymentToken | None = None
    card_number: (
        Annotated[
            str,
            msgspec.Meta(
                max_length=40,
                pattern=r"^[0-9 -]*\Z",
                description="Never accepted (422): card numbers go to the payment provider, not to the shop",
            ),
        ]
        | None
    ) = None


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /api/checkout``: order the cart. Totals come from the server, never from the client.

    The order ships to ``shipping_address``, or to the saved address ``address_id`` names
    (``GET /api/addresses``): one of the two (422 otherwise).

    ``omit_defaults``: the request's fingerprint (``webshop.checkout.idempotency.fingerprint``) leaves an
    empty note out, so a retry of a body stored before notes existed is still "the same request"."""

    shipping_method: ShippingCode
    shipping_address: AddressIn | None = None
    address_id: Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)] | None = None
    payment: PaymentIn = msgspec.field(default_factory=PaymentIn)
    customer_note: CustomerNote = ""
    expected_signature: QuoteSignature | None = None
