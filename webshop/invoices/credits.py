"""What a credit note credits: the tax per rate a refund gives back.

A refund reduces the taxable amount of the sale it refunds, so its credit note states the tax it gives
back, rate by rate (EU VAT Directive 2006/112/EC, art. 90 and art. 219). The notes of an order must never
credit more of a rate than its invoice charged, and the notes of a fully refunded order add up to the
invoice's tax exactly.

Two rules, because a note once issued always draws the same:

- ``tax_to_credit``, the rule of every note issued since the notes kept their tax
  (``Invoice.credited_tax``, written by ``webshop.invoices.numbering.issue_credit_note`` in the
  transaction that records the refund): each rate's tax is credited at most down to what the notes
  issued before it left of that rate.
- ``credited_tax``, the earlier rule, kept to draw the notes issued before that (their column is
  ``NULL``): an amount refund took a share of every rate the order charged, so after a line refund
  had credited all of a rate it could credit more of it than was left.

Every amount is minor units of the order's currency; rates are basis points; the rounding is
``webshop.pricing.rounding``'s (half up), through ``split_gross`` and ``round_half_up``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from webshop.pricing.rounding import round_half_up
from webshop.pricing.tax import split_gross, tax_of_net

if TYPE_CHECKING:
    from webshop.db.models import Invoice, Order, OrderLine, Refund

TaxByRate = dict[int, int]
"""``{rate_bp: minor units of tax}``."""


def tax_by_rate(lines: Iterable[OrderLine]) -> list[tuple[int, int, int]]:
    """``[(rate_bp, net, tax)]`` summed over ``lines`` per tax rate (minor units), lowest rate first."""
    sums: dict[int, list[int]] = {}
    for line in lines:
        entry = sums.setdefault(line.tax_rate_bp, [0, 0])
        entry[0] += line.net_amount
        entry[1] += line.tax_amount
    return [(rate, net, tax) for rate, (net, tax) in sorted(sums.items())]


def order_tax_by_rate(order: Order, lines: Iterable[OrderLine]) -> list[tuple[int, int, int]]:
    """``[(rate_bp, net, tax)]`` of ``order`` as it was charged (its ``tax_breakdown``, shipping
    included), or summed over ``lines`` for an order placed before orders kept it."""
    if order.tax_breakdown:
        return [(int(row["rate_bp"]), int(row["net"]), int(row["tax"])) for row in order.tax_breakdown]
    return tax_by_rate(lines)


def shipping_rate(order: Order) -> int:
    """The rate shipping was taxed at: the rate of the order's breakdown that gives exactly its shipping
    tax (``webshop.pricing.tax``), else 0."""
    if not order.shipping_tax:
        return 0
    for row in order.tax_breakdown or []:
        rate = int(row["rate_bp"])
        if order.prices_include_tax:
            if split_gross(order.shipping_total, rate)[1] == order.shipping_tax:
                return rate
        elif tax_of_net(order.shipping_total, rate) == order.shipping_tax:
            return rate
    return 0


def included_tax(gross: int, rate_bp: int) -> int:
    """The tax contained in ``gross`` minor units at ``rate_bp``, rounded half up:
    ``included_tax(1200, 2000) == 200``."""
    return split_gross(gross, rate_bp)[1]


def tax_to_credit(
    refund: Refund,
    order: Order,
    lines: Sequence[OrderLine],
    *,
    credited_before: Mapping[int, int],
    refunded_before: int,
) -> TaxByRate:
    """The tax ``refund``'s credit note credits per rate, given what the order's earlier notes did.

    What is left of a rate is the invoice's tax at that rate (``order_tax_by_rate``, shipping's
    included) less ``credited_before`` of it, never below nothing; no note credits more than that.
    Within it: refunded lines credit the tax their amounts contain at each line's rate; a parcel's
    shipping (``is_shipping``) the tax it contains at shipping's rate; an amount without lines a share
    of the tax left at every rate, in proportion to the money left to refund (``order.total`` less
    ``refunded_before``). The refund that brings the refunds to the order's total credits all that is
    left, so a fully refunded order's notes add up to its invoice's tax, rate by rate.

    Args:
        refund: The refund, with its ``lines`` loaded (amounts in minor units, tax included).
        order: The refunded order (``total``, ``tax_breakdown``, shipping tax).
        lines: The order's lines (each one's rate).
        credited_before: ``{rate_bp: tax}`` the notes issued before this one credited (``credited_by``).
        refunded_before: The amounts of the refunds of those notes, summed.

    Returns:
        ``{rate_bp: tax}``, rates with nothing to credit left out.
    """
    left = {rate: max(tax - credited_before.get(rate, 0), 0) for rate, _net, tax in order_tax_by_rate(order, lines)}
    money_left = order.total - refunded_before
    if order.total and refund.amount >= money_left:
        return {rate: tax for rate, tax in left.items() if tax > 0}
    credited: TaxByRate = {}

    def credit(rate: int, tax: int) -> None:
        tax = min(tax, left.get(rate, 0) - credited.get(rate, 0))
        if tax > 0:
            credited[rate] = credited.get(rate, 0) + tax

    by_id = {line.id: line for line in lines}
    for refunded in refund.lines:
        line = by_id.get(refunded.order_line_id)
        rate = line.tax_rate_bp if line is not None else 0
        credit(rate, included_tax(refunded.amount, rate))
    rest = refund.amount - sum(refunded.amount for refunded in refund.lines)
    if refund.is_shipping:
        rate = shipping_rate(order)
        credit(rate, included_tax(rest, rate))
    elif rest and money_left > 0:
        for rate, tax in left.items():
            credit(rate, round_half_up(rest * tax, money_left))
    return credited


def credited_tax(refund: Refund, order: Order, lines: Sequence[OrderLine], earlier: Sequence[Refund] = ()) -> TaxByRate:
    """``{rate_bp: minor units}``: the tax a note issued before the notes kept their tax credits (the
    earlier rule, kept so that such a note always draws the same).

    Refunded lines: the tax their amounts contain at each line's rate (``included_tax``). A parcel's
    shipping (``is_shipping``): at the rate shipping was taxed at. An amount without lines: split over the
    order's rates in proportion to the tax charged per rate, shipping's included (``order_tax_by_rate``).
    The refund that brings the order's refunds to its total credits what is left of each rate's tax: the
    invoice's, less what the credit notes issued before its own (``earlier``) credited, never below
    nothing. An amount refund after a line refund could so credit more of a rate than was left, which
    ``tax_to_credit`` does not.
    """
    if order.total and refund.amount + sum(before.amount for before in earlier) >= order.total:
        credited: TaxByRate = {}
        for before in earlier:
            for rate, tax in credited_tax(before, order, lines).items():
                credited[rate] = credited.get(rate, 0) + tax
        left = {rate: tax - credited.get(rate, 0) for rate, _net, tax in order_tax_by_rate(order, lines)}
        return {rate: tax for rate, tax in left.items() if tax > 0}
    by_id = {line.id: line for line in lines}
    taxes: TaxByRate = {}
    for refunded in refund.lines:
        line = by_id.get(refunded.order_line_id)
        rate = line.tax_rate_bp if line is not None else 0
        taxes[rate] = taxes.get(rate, 0) + included_tax(refunded.amount, rate)
    rest = refund.amount - sum(refunded.amount for refunded in refund.lines)
    if refund.is_shipping:
        rate = shipping_rate(order)
        taxes[rate] = taxes.get(rate, 0) + included_tax(rest, rate)
    elif rest and order.total:
        for rate, _net, tax in order_tax_by_rate(order, lines):  # shipping's tax too: it was charged
            if tax:
                taxes[rate] = taxes.get(rate, 0) + round_half_up(rest * tax, order.total)
    return taxes


def stored(note: Invoice) -> TaxByRate | None:
    """The tax per rate ``note`` kept when it was issued (``Invoice.credited_tax``); ``None`` for a note
    issued before notes kept it."""
    if note.credited_tax is None:
        return None
    return {int(row["rate_bp"]): int(row["tax"]) for row in note.credited_tax}


def storable(taxes: Mapping[int, int]) -> list[dict[str, Any]]:
    """``taxes`` as ``Invoice.credited_tax`` keeps it: ``[{"rate_bp": ..., "tax": ...}]``, lowest rate
    first (JSON object keys are strings, so the rates are values)."""
    return [{"rate_bp": rate, "tax": tax} for rate, tax in sorted(taxes.items())]


def note_tax(
    note: Invoice, refund: Refund, order: Order, lines: Sequence[OrderLine], earlier: Sequence[Refund]
) -> TaxByRate:
    """The tax per rate ``note`` (the credit note of ``refund``) credits: what it kept when issued,
    else the earlier rule's (``credited_tax``, with ``earlier`` the refunds of the notes before it)."""
    kept = stored(note)
    return kept if kept is not None else credited_tax(refund, order, lines, earlier)


def credited_by(notes: Sequence[tuple[Invoice, Refund]], order: Order, lines: Sequence[OrderLine]) -> TaxByRate:
    """``{rate_bp: tax}`` the credit notes ``notes`` (each with its refund, in the order they were
    issued) credited between them, each as it draws (``note_tax``)."""
    total: TaxByRate = {}
    for index, (note, refund) in enumerate(notes):
        earlier = [before for _note, before in notes[:index]]
        for rate, tax in note_tax(note, refund, order, lines, earlier).items():
            total[rate] = total.get(rate, 0) + tax
    return total
