"""Checkout shapes for the JSON API (msgspec Structs)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from webshop.api.schemas import Money
from webshop.db.models import postal
from webshop.db.models.orders import ORDER_NOTE
from webshop.text import Line, Lines, VisibleLine

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


class AddressIn(msgspec.Struct, forbid_unknown_fields=True):
    """A shipping address; ``country`` is an ISO 3166-1 alpha-2 code such as ``US``."""

    name: AddressName
    line1: AddressLine
    city: City
    country: Country
    postal_code: PostalCode = ""
    line2: OptionalAddressLine = ""


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

    ``omit_defaults``: the request's fingerprint (``webshop.checkout.idempotency.fingerprint``) leaves an
    empty note out, so a retry of a body stored before notes existed is still "the same request"."""

    shipping_address: AddressIn
    shipping_method: ShippingCode
    payment: PaymentIn = msgspec.field(default_factory=PaymentIn)
    customer_note: CustomerNote = ""
