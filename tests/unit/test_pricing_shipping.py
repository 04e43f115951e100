"""Shipping rates: flat, weight bands (grams) and subtotal bands (cents), free over a subtotal, band checks."""

from __future__ import annotations

import pytest

from webshop.pricing.shipping import Band, NoBand, RateKind, ShippingRate, format_kg, rate_for, validate_bands

# Up to 1 kg 4.90, up to 5 kg 6.90, up to 30 kg 12.90 (given out of order on purpose); nothing heavier.
PARCEL = ShippingRate(RateKind.WEIGHT, bands=(Band(5000, 690), Band(1000, 490), Band(30_000, 1290)))
# Up to 2 kg 5.00, anything heavier 9.00.
OPEN = ShippingRate(RateKind.WEIGHT, bands=(Band(None, 900), Band(2000, 500)))
# Under 25.00 costs 6.95, under 50.00 costs 3.95, from 50.00 free (an open band at 0).
BY_SUBTOTAL = ShippingRate(RateKind.SUBTOTAL, bands=(Band(2499, 695), Band(4999, 395), Band(None, 0)))


@pytest.mark.parametrize(
    ("rate", "weight", "subtotal", "price"),
    [
        (PARCEL, 0, 1000, 490),  # nothing weighs 0 g: still the first band
        (PARCEL, 1000, 1000, 490),  # exactly on the limit: inclusive
        (PARCEL, 1001, 1000, 690),  # one gram over
        (PARCEL, 5000, 1000, 690),
        (PARCEL, 5001, 1000, 1290),
        (PARCEL, 30_000, 1000, 1290),  # the heaviest it carries
        (OPEN, 2000, 0, 500),
        (OPEN, 2001, 0, 900),  # open last band
        (OPEN, 10**9, 0, 900),
        (BY_SUBTOTAL, 5000, 0, 695),  # a subtotal rate ignores the weight
        (BY_SUBTOTAL, 0, 2499, 695),
        (BY_SUBTOTAL, 0, 2500, 395),
        (BY_SUBTOTAL, 0, 4999, 395),
        (BY_SUBTOTAL, 0, 5000, 0),
        (ShippingRate(RateKind.FLAT, price=500), 123_456, 99, 500),  # flat: neither matters
    ],
)
def test_rate_for(rate, weight, subtotal, price):
    assert rate_for(rate, weight=weight, subtotal=subtotal) == price


@pytest.mark.parametrize(
    ("subtotal", "price"),
    [
        (4999, 690),  # one cent under the threshold: the 1-5 kg band
        (5000, 0),  # exactly the threshold: free
        (5001, 0),
    ],
)
def test_free_over_a_subtotal(subtotal, price):
    rate = ShippingRate(RateKind.WEIGHT, bands=PARCEL.bands, free_over=5000)
    assert rate_for(rate, weight=2000, subtotal=subtotal) == price
    flat = ShippingRate(RateKind.FLAT, price=690, free_over=5000)
    assert rate_for(flat, weight=2000, subtotal=subtotal) == price


def test_heavier_than_the_last_band_is_refused():
    with pytest.raises(NoBand, match=r"^This order is heavier than this method carries \(max 30\.0 kg\)\.$") as caught:
        rate_for(PARCEL, weight=30_001, subtotal=1000)
    assert (caught.value.kind, caught.value.value, caught.value.limit) == (RateKind.WEIGHT, 30_001, 30_000)
    assert isinstance(caught.value, ValueError)


def test_free_shipping_does_not_carry_what_the_method_cannot():
    rate = ShippingRate(RateKind.WEIGHT, bands=PARCEL.bands, free_over=5000)
    with pytest.raises(NoBand):
        rate_for(rate, weight=40_000, subtotal=10_000)


@pytest.mark.parametrize(("currency", "most"), [("USD", "$500.00"), ("EUR", "€500.00")])
def test_a_subtotal_above_the_last_band_is_refused(currency, most):
    rate = ShippingRate(RateKind.SUBTOTAL, bands=(Band(50_000, 1000),))
    assert rate_for(rate, weight=0, subtotal=50_000, currency=currency) == 1000
    with pytest.raises(NoBand) as caught:
        rate_for(rate, weight=0, subtotal=50_001, currency=currency)
    assert str(caught.value) == f"This order's subtotal is more than this method covers (max {most})."


def test_a_band_rate_without_bands_carries_nothing():
    with pytest.raises(NoBand, match=r"^This order is heavier than this method carries\.$"):
        rate_for(ShippingRate(RateKind.WEIGHT), weight=0, subtotal=0)


@pytest.mark.parametrize(("weight", "subtotal"), [(-1, 0), (0, -1)])
def test_negative_weight_or_subtotal_is_refused(weight, subtotal):
    with pytest.raises(ValueError, match="must not be negative"):
        rate_for(PARCEL, weight=weight, subtotal=subtotal)


@pytest.mark.parametrize(
    ("grams", "shown"),
    [(30_000, "30.0 kg"), (1250, "1.25 kg"), (500, "0.5 kg"), (1001, "1.001 kg"), (0, "0.0 kg")],
)
def test_format_kg(grams, shown):
    assert format_kg(grams) == shown


def test_validate_bands_sorts_with_the_open_band_last():
    bands = [Band(None, 900), Band(5000, 690), Band(0, 100), Band(1000, 490)]
    assert validate_bands(bands) == (Band(0, 100), Band(1000, 490), Band(5000, 690), Band(None, 900))


@pytest.mark.parametrize(
    ("bands", "error"),
    [
        ([], "^Add at least one band.$"),
        ([Band(1000, 490), Band(1000, 590)], r"^Two bands have the same upper limit \(1000\)\.$"),
        ([Band(None, 490), Band(None, 590)], "^Only one band may have no upper limit.$"),
        ([Band(1000, -1)], r"^A band's price must not be negative \(-1\)\.$"),
        ([Band(-5, 100)], r"^A band's upper limit must not be negative \(-5\)\.$"),
    ],
)
def test_validate_bands_refuses(bands, error):
    with pytest.raises(ValueError, match=error):
        validate_bands(bands)
