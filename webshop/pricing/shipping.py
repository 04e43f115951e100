"""Shipping rates: a flat price, or a price looked up in bands of weight (grams) or subtotal (minor units).

A band covers every value up to and including its ``up_to``; the bands are read in ascending order of
``up_to`` with the open band (``up_to=None``) last, and the first band that covers the value gives the
price. A rate may be free from a subtotal on (``free_over``). Everything is integers: grams and minor units.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from webshop.money import format_money


class RateKind(StrEnum):
    """How a shipping rate is priced."""

    FLAT = "flat"
    WEIGHT = "weight"
    SUBTOTAL = "subtotal"


@dataclass(frozen=True)
class Band:
    """One band of a weight or subtotal rate.

    Attributes:
        up_to: Inclusive upper bound, grams (weight rates) or minor units (subtotal rates); None = no limit.
        price: Shipping price in minor units for values in this band.
    """

    up_to: int | None
    price: int


@dataclass(frozen=True)
class ShippingRate:
    """How one shipping method prices an order.

    Attributes:
        kind: Flat, by weight bands or by subtotal bands.
        price: The price in minor units of a flat rate (unused by band rates).
        bands: The bands of a weight or subtotal rate (unused by a flat rate), in any order.
        free_over: A subtotal in minor units at or above which shipping is free; None = never free.
    """

    kind: RateKind
    price: int = 0
    bands: tuple[Band, ...] = ()
    free_over: int | None = None


class NoBand(ValueError):
    """No band of a rate covers the order: it is heavier, or its subtotal higher, than the method carries.

    Attributes:
        kind: ``RateKind.WEIGHT`` or ``RateKind.SUBTOTAL``.
        value: The order's weight in grams or subtotal in minor units.
        limit: The highest value the rate covers (its largest ``up_to``), or None when it has no bands.
    """

    def __init__(self, message: str, *, kind: RateKind, value: int, limit: int | None) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value
        self.limit = limit


def format_kg(grams: int) -> str:
    """Grams as kilograms for messages, without floats: ``format_kg(30000) == "30.0 kg"``, ``1250 -> "1.25 kg"``."""
    kilos, rest = divmod(grams, 1000)
    decimals = f"{rest:03d}".rstrip("0") or "0"
    return f"{kilos}.{decimals} kg"


def sort_bands(bands: Iterable[Band]) -> tuple[Band, ...]:
    """The bands in lookup order: ascending ``up_to``, the open band (``None``) last."""
    return tuple(sorted(bands, key=lambda band: (band.up_to is None, band.up_to or 0)))


def rate_for(rate: ShippingRate, *, weight: int, subtotal: int, currency: str = "USD") -> int:
    """The shipping price in minor units for an order of ``weight`` grams and ``subtotal`` minor units.

    The flat price, or the price of the first band (ascending ``up_to``, the open band last) with
    ``up_to >= value``, where the value is the weight or the subtotal according to the rate's kind; then 0
    when ``free_over`` is set and ``subtotal >= free_over`` (an order no band covers is refused all the same).

    Args:
        rate: The method's rate.
        weight: The order's weight in grams, ``>= 0``.
        subtotal: The order's goods subtotal in minor units, ``>= 0``.
        currency: Currency code of the amounts, for the message of :class:`NoBand`.

    Returns:
        The price in minor units.

    Raises:
        NoBand: no band covers the weight or subtotal
            ("This order is heavier than this method carries (max 30.0 kg).").
        ValueError: a negative weight or subtotal.
    """
    if weight < 0 or subtotal < 0:
        raise ValueError("The weight and the subtotal must not be negative.")
    price = (
        rate.price
        if rate.kind is RateKind.FLAT
        else _band_price(rate, weight=weight, subtotal=subtotal, currency=currency)
    )
    # Checked after the bands: a parcel the method cannot carry is refused even when shipping would be free.
    return 0 if rate.free_over is not None and subtotal >= rate.free_over else price


def _band_price(rate: ShippingRate, *, weight: int, subtotal: int, currency: str) -> int:
    value = weight if rate.kind is RateKind.WEIGHT else subtotal
    bands = sort_bands(rate.bands)
    for band in bands:
        if band.up_to is None or value <= band.up_to:
            return band.price
    limit = bands[-1].up_to if bands else None
    if rate.kind is RateKind.WEIGHT:
        most = f" (max {format_kg(limit)})" if limit is not None else ""
        message = f"This order is heavier than this method carries{most}."
    else:
        most = f" (max {format_money(limit, currency)})" if limit is not None else ""
        message = f"This order's subtotal is more than this method covers{most}."
    raise NoBand(message, kind=rate.kind, value=value, limit=limit)


def validate_bands(bands: Iterable[Band]) -> tuple[Band, ...]:
    """Check an admin's bands and return them in lookup order (see :func:`sort_bands`).

    Args:
        bands: Bands as entered, in any order.

    Returns:
        The bands sorted by ascending ``up_to``, the open band last.

    Raises:
        ValueError: no band, a negative limit or price, two bands with the same limit, or more than one
            band without a limit; the message says which.
    """
    ordered = sort_bands(bands)
    if not ordered:
        raise ValueError("Add at least one band.")
    seen: set[int | None] = set()
    for band in ordered:
        if band.up_to is not None and band.up_to < 0:
            raise ValueError(f"A band's upper limit must not be negative ({band.up_to}).")
        if band.price < 0:
            raise ValueError(f"A band's price must not be negative ({band.price}).")
        if band.up_to in seen:
            if band.up_to is None:
                raise ValueError("Only one band may have no upper limit.")
            raise ValueError(f"Two bands have the same upper limit ({band.up_to}).")
        seen.add(band.up_to)
    return ordered
