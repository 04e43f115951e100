"""Tax per line in net or gross price mode, and an order's totals with tax by rate.

Prices are entered in the shop's :class:`PriceMode`: NET (excluding tax, B2B or US style) or GROSS
(including tax, EU consumer style). Tax is computed and rounded **per line** (after the line's discount),
never on the order total, so every line's ``net + tax == gross`` exactly and the order's totals are plain
sums of its lines. Rounding is :func:`webshop.pricing.rounding.round_half_up` (half away from zero).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from webshop.pricing.rounding import allocate, round_half_up

_BP = 10_000  # basis points in one whole


class PriceMode(StrEnum):
    """Whether entered prices exclude tax (``net``) or include it (``gross``)."""

    NET = "net"
    GROSS = "gross"


def rate_label(rate_bp: int) -> str:
    """A tax rate in basis points as a percentage: ``2000`` → ``"20%"``, ``550`` → ``"5.5%"``."""
    whole, part = divmod(int(rate_bp), 100)
    return f"{whole}%" if not part else f"{whole}.{part:02d}".rstrip("0") + "%"


def tax_of_net(net: int, rate_bp: int) -> int:
    """Tax on ``net`` minor units at ``rate_bp`` basis points, rounded half up.

    ``tax_of_net(999, 2000) == 200`` (199.8 rounds up).

    Raises:
        ValueError: ``rate_bp`` is negative.
    """
    _check_rate(rate_bp)
    return round_half_up(net * rate_bp, _BP)


def split_gross(gross: int, rate_bp: int) -> tuple[int, int]:
    """Split a tax-inclusive amount into ``(net, tax)`` minor units; ``net + tax == gross`` exactly.

    The tax is ``gross * rate / (1 + rate)`` rounded half up, and the net is what is left:
    ``split_gross(1199, 2000) == (999, 200)``; ``split_gross(10000, 1900) == (8403, 1597)``.

    Raises:
        ValueError: ``rate_bp`` is negative.
    """
    _check_rate(rate_bp)
    tax = round_half_up(gross * rate_bp, _BP + rate_bp)
    return gross - tax, tax


@dataclass(frozen=True)
class TaxedLine:
    """One priced line after its discount, in minor units; build it with :func:`price_line`.

    Attributes:
        key: The line's id or SKU (``"shipping"`` for the shipping line).
        quantity: Units, ``>= 1``.
        unit_price: Price of one unit as entered, in the shop's price mode.
        rate_bp: Tax rate in basis points.
        discount: Minor units taken off the line, in the same mode as the price.
        net: Line amount excluding tax, after the discount.
        tax: Tax on the line, rounded per line.
        gross: Line amount including tax; always ``net + tax``.
    """

    key: str
    quantity: int
    unit_price: int
    rate_bp: int
    discount: int
    net: int
    tax: int
    gross: int

    @property
    def amount(self) -> int:
        """The line before its discount, ``quantity * unit_price``, in the shop's price mode."""
        return self.quantity * self.unit_price


def price_line(key: str, quantity: int, unit_price: int, rate_bp: int, mode: PriceMode, discount: int = 0) -> TaxedLine:
    """Price one line: ``quantity * unit_price - discount`` taxed at ``rate_bp``, rounded on this line.

    In NET mode that amount is the net and the tax is added (:func:`tax_of_net`); in GROSS mode it is the
    gross and the tax is taken out of it (:func:`split_gross`).

    Args:
        key: Line id or SKU.
        quantity: Units, ``>= 1``.
        unit_price: Minor units per unit, ``>= 0``, in ``mode``.
        rate_bp: Tax rate in basis points, ``>= 0``.
        mode: Whether ``unit_price`` and ``discount`` exclude or include tax.
        discount: Minor units off the whole line, ``0 <= discount <= quantity * unit_price``.

    Returns:
        The line with its net, tax and gross.

    Raises:
        ValueError: a quantity below 1, a negative price or rate, or a discount out of range.
    """
    if quantity < 1:
        raise ValueError(f"Line {key!r}: the quantity must be at least 1, not {quantity}.")
    if unit_price < 0:
        raise ValueError(f"Line {key!r}: the unit price must not be negative ({unit_price}).")
    _check_rate(rate_bp)
    amount = quantity * unit_price
    if not 0 <= discount <= amount:
        raise ValueError(f"Line {key!r}: the discount {discount} is not between 0 and the line amount {amount}.")
    after = amount - discount
    if mode is PriceMode.NET:
        net, tax = after, tax_of_net(after, rate_bp)
    else:
        net, tax = split_gross(after, rate_bp)
    return TaxedLine(key, quantity, unit_price, rate_bp, discount, net, tax, net + tax)


@dataclass(frozen=True)
class LineInput:
    """A line to price with :func:`price_order`: the cart line as entered, before any order discount.

    Attributes:
        key: Line id or SKU.
        quantity: Units, ``>= 1``.
        unit_price: Minor units per unit in the shop's price mode.
        rate_bp: Tax rate in basis points (the line's tax category at the destination).
        discount: Minor units off this line alone (a line promotion), in the same mode.
    """

    key: str
    quantity: int
    unit_price: int
    rate_bp: int
    discount: int = 0


@dataclass(frozen=True)
class OrderTax:
    """An order's priced lines and totals, in minor units; build it with :func:`price_order`.

    Invariants: ``gross_total == net_total + tax_total`` == the sum of the lines' (and shipping's) grosses;
    the taxes of ``tax_by_rate`` sum to ``tax_total`` and its nets to ``net_total``.

    Attributes:
        lines: The goods lines, in input order, each carrying its share of the order discount.
        shipping: The shipping line (key ``"shipping"``), or None when the order has no shipping charge.
        net_total: Sum of the nets, shipping included.
        tax_total: Sum of the per-line taxes, shipping included.
        gross_total: Sum of the grosses, shipping included.
        discount_total: Every discount applied (line, order and shipping), in the shop's price mode.
        tax_by_rate: ``(rate_bp, net, tax)`` per rate, ascending by rate, shipping included.
    """

    lines: tuple[TaxedLine, ...]
    shipping: TaxedLine | None
    net_total: int
    tax_total: int
    gross_total: int
    discount_total: int
    tax_by_rate: tuple[tuple[int, int, int], ...]


def price_order(
    lines: Sequence[LineInput],
    mode: PriceMode,
    *,
    shipping: int = 0,
    shipping_rate_bp: int = 0,
    order_discount: int = 0,
    shipping_discount: int = 0,
) -> OrderTax:
    """Price an order: allocate the order discount over the lines, tax each line, add shipping, total up.

    The order discount is split with :func:`~webshop.pricing.rounding.allocate` in proportion to each
    line's amount after its own discount, so no line goes below zero; an order discount larger than the
    goods is cut to their sum. Shipping is a line of its own, taxed at ``shipping_rate_bp`` (the standard
    rate of the destination); ``shipping_discount`` is cut to the shipping price (free shipping: the whole
    of it). ``shipping`` and both discounts are in ``mode`` like the prices.

    Args:
        lines: The cart lines.
        mode: Whether the prices exclude (NET) or include (GROSS) tax.
        shipping: Shipping price in minor units, ``>= 0``; 0 means no shipping line.
        shipping_rate_bp: Tax rate on shipping in basis points.
        order_discount: Minor units off the whole order, ``>= 0``.
        shipping_discount: Minor units off the shipping, ``>= 0``.

    Returns:
        The priced order.

    Raises:
        ValueError: a negative shipping price or discount, or a line :func:`price_line` refuses.
    """
    if min(shipping, order_discount, shipping_discount) < 0:
        raise ValueError("Shipping and discounts must not be negative.")
    for line in lines:
        if line.discount < 0 or line.discount > line.quantity * line.unit_price:
            raise ValueError(f"Line {line.key!r}: the discount {line.discount} is out of range.")
    remaining = [line.quantity * line.unit_price - line.discount for line in lines]
    shares = allocate(min(order_discount, sum(remaining)), remaining)
    priced = tuple(
        price_line(line.key, line.quantity, line.unit_price, line.rate_bp, mode, line.discount + share)
        for line, share in zip(lines, shares, strict=True)
    )
    shipping_line = (
        price_line("shipping", 1, shipping, shipping_rate_bp, mode, min(shipping_discount, shipping))
        if shipping
        else None
    )
    every = priced + ((shipping_line,) if shipping_line else ())
    by_rate: dict[int, tuple[int, int]] = {}
    for taxed in every:
        net, tax = by_rate.get(taxed.rate_bp, (0, 0))
        by_rate[taxed.rate_bp] = (net + taxed.net, tax + taxed.tax)
    return OrderTax(
        lines=priced,
        shipping=shipping_line,
        net_total=sum(taxed.net for taxed in every),
        tax_total=sum(taxed.tax for taxed in every),
        gross_total=sum(taxed.gross for taxed in every),
        discount_total=sum(taxed.discount for taxed in every),
        tax_by_rate=tuple((rate, net, tax) for rate, (net, tax) in sorted(by_rate.items())),
    )


def _check_rate(rate_bp: int) -> None:
    if rate_bp < 0:
        raise ValueError(f"A tax rate must not be negative ({rate_bp} bp).")
