"""Checkout shapes for the JSON API (msgspec Structs)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from webshop.api.schemas import Money

Text = Annotated[str, msgspec.Meta(max_length=200)]


class ShippingMethodOut(msgspec.Struct):
    """A flat-rate shipping method."""

    code: str
    name: str
    price: Money


class AddressIn(msgspec.Struct, forbid_unknown_fields=True):
    """A shipping address; ``country`` is an ISO 3166-1 alpha-2 code such as ``US``."""

    name: Text
    line1: Text
    city: Text
    postal_code: Text
    country: Text
    line2: Text = ""


class PaymentIn(msgspec.Struct, forbid_unknown_fields=True):
    """Card details for the payment provider (test cards: 4242424242424242 succeeds, 4000000000000002 declines)."""

    card_number: Annotated[str, msgspec.Meta(max_length=40)]


class CheckoutIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/checkout``: order the cart. Totals come from the server, never from the client."""

    shipping_address: AddressIn
    shipping_method: Annotated[str, msgspec.Meta(max_length=40)]
    payment: PaymentIn
