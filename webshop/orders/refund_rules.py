"""The rules of a refund, without the database: what a line's units are worth, what is left of an
order to refund, and whether a request makes sense (``webshop.orders.refunds`` applies them under the
order's lock)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from webshop.db.models import Fulfilment, Order, OrderLine, OrderStatus, Refund, RefundLine, RefundStatus
from webshop.errors import Conflict, DomainError, InvalidTransition, ValidationFailed
from webshop.money import format_money

S = OrderStatus
REFUNDABLE = (S.PAID, S.SHIPPED, S.DELIVERED)
"""Statuses in which an order's payment can be refunded (in part or whole) and from which it becomes
``refunded`` once the refunds reach its total."""
REASON_MAX = 300
"""Characters of a refund's reason (the ``refunds.reason`` column)."""


@dataclass(frozen=True)
class RefundRow:
    """A refund as the order pages list it: the refund, its credit note number (empty until it
    succeeded) and its lines with the order lines they refund (``None`` for a deleted one), and the
    credit note's id (``None`` until it succeeded: the API's ``/credit-notes/{id}``)."""

    refund: Refund
    credit_note: str
    lines: list[tuple[OrderLine | None, RefundLine]]
    credit_note_id: int | None = None

    @property
    def whole_order(self) -> bool:
        """The refund of all that was left of the order when it was cancelled or refunded whole (its key
        is ``webshop.orders.refunding.refund_idempotency_key``'s), not an amount an admin chose."""
        return self.refund.idempotency_key.startswith(f"refund-{self.refund.order_id}-")


def any_pending(rows: Iterable[RefundRow]) -> bool:
    """True when one of an order's listed refunds waits for the provider's answer (``pending``): the pages
    then offer no cancel or whole refund, which ``OrderService.transition`` would refuse."""
    return any(row.refund.status == RefundStatus.PENDING.value for row in rows)


def units_given_back(rows: Iterable[RefundRow]) -> dict[int, int]:
    """``{order line id: units}`` whose money the succeeded refunds among ``rows`` gave back: what the
    shopper's order page marks "refunded" beside each line (a pending refund may still fail)."""
    units: dict[int, int] = {}
    for row in rows:
        if row.refund.status == RefundStatus.SUCCEEDED.value:
            for line, part in row.lines:
                if line is not None:
                    units[line.id] = units.get(line.id, 0) + part.quantity
    return units


def amount_given_back(order: Order, rows: Iterable[RefundRow]) -> int:
    """Minor units ``order``'s customer has been given back so far: the refunds among ``rows`` (the
    order's) that succeeded (a pending one may still fail), and a cancelled or refunded order's whole
    refund once made (``refunded_at``), counted once: its row, for an invoiced order, is that same money.
    The order page's "Refunded" and "Net paid" lines."""
    made = sum(
        row.refund.amount for row in rows if row.refund.status == RefundStatus.SUCCEEDED.value and not row.whole_order
    )
    return made + (order.refund_amount if order.refunded_at is not None else 0)


@dataclass(frozen=True)
class LineLeft:
    """One order line as the refund form shows it: bought, already refunded (pending or done), left."""

    line: OrderLine
    refunded: int

    @property
    def left(self) -> int:
        """Units that may still be refunded."""
        return max(self.line.quantity - self.refunded, 0)


def refund_share(line: OrderLine, units: int, already: int = 0) -> int:
    """Minor units paid for ``units`` more units of ``line`` when ``already`` units were refunded before.

    This is the one place refunds round. What the shopper paid for the line is ``net_amount + tax_amount``
    (after its share of the promotions' discount, tax rounded per line at checkout, ``webshop.checkout.quote``);
    each part is spread over the line's units the same way: the first ``n`` units carry
    ``round_half_up(part * n / quantity)``, and a refund of units ``already + 1 .. already + units`` gets the
    difference between two such points. So refunding a line in any number of parts adds up to exactly what
    was charged for it (never a cent more), whatever the order of the parts.

    Raises:
        ValueError: ``units`` or ``already`` out of range (``0 < units``, ``already + units <= quantity``).
    """
    if units <= 0 or already < 0 or already + units > line.quantity:
        raise ValueError(f"cannot refund {units} units of {line.quantity} after {already}")

    def upto(part: int, n: int) -> int:
        return (2 * part * n + line.quantity) // (2 * line.quantity)

    paid = line.net_amount + line.tax_amount
    return upto(paid, already + units) - upto(paid, already)


def parcel_shipping_paid(order: Order, part: Fulfilment) -> int:
    """Minor units the shopper paid for ``part``'s parcel: its shipping, plus the tax on it unless the
    order's prices include tax (then ``shipping_amount`` holds it already; ``Order.total``'s rule)."""
    return part.shipping_amount + (0 if order.prices_include_tax else part.shipping_tax)


def amount_left(order: Order) -> int:
    """Minor units of ``order``'s payment no refund has claimed yet (0 when it cannot be refunded)."""
    return max(order.total - order.refunded_total - order.refund_amount, 0)


def refundable_problem(order: Order) -> DomainError | None:
    """Why ``order`` cannot be refunded now (an ``InvalidTransition`` for its status or payment, a
    ``Conflict`` when nothing is left), or ``None`` when it can."""
    if OrderStatus(order.status) not in REFUNDABLE:
        return InvalidTransition(
            f"Order {order.number} is {order.status}; only paid, shipped or delivered orders can be refunded."
        )
    if not order.money_received:
        return InvalidTransition(f"Order {order.number} has no successful payment to refund.")
    if amount_left(order) <= 0:
        return Conflict(f"Order {order.number} has nothing left to refund.")
    return None


def same_refund(refund: Refund, wanted: dict[int, int] | None, amount: int | None, restock: bool, reason: str) -> bool:
    """Whether ``refund`` (a ``Refund`` with its ``lines``) is the one asked for by ``wanted`` (as
    ``check_input`` returns it), ``amount``, ``restock`` and ``reason``: the test for replaying a refund by
    its idempotency key. A key sent again with another request is refused, not answered with the first
    refund (as checkout's ``Idempotency-Key``; the IETF draft "The Idempotency-Key HTTP Header Field" §2.7)."""
    asked_lines = {line.order_line_id: line.quantity for line in refund.lines}
    same_what = asked_lines == wanted if wanted else not asked_lines and refund.amount == amount
    return same_what and refund.restock == restock and refund.reason == reason.strip()


def check_input(
    lines: Sequence[tuple[int, int]] | None, amount: int | None, restock: bool, reason: str
) -> dict[int, int] | None:
    """``{order line id: units}`` asked for (``None`` for an amount refund), the input checked.

    Raises:
        ValidationFailed: as ``webshop.orders.refunds.RefundService.refund`` says.
    """
    errors: dict[str, str] = {}
    if len(reason.strip()) > REASON_MAX:
        errors["reason"] = f"Keep the reason to {REASON_MAX} characters."
    wanted: dict[int, int] = {}
    for line_id, units in lines or ():
        if units < 0:
            errors["lines"] = "Units to refund cannot be negative."
        elif line_id in wanted:
            errors["lines"] = "Name each order line once."
        elif units:
            wanted[line_id] = units
    if wanted and amount is not None:
        errors["amount"] = "Refund either lines or an amount, not both."
    elif not wanted and amount is None and "lines" not in errors:
        errors["lines"] = "Choose the units to refund, or enter an amount."
    elif amount is not None and amount <= 0:
        errors["amount"] = "Enter an amount above zero."
    if restock and not wanted and "amount" not in errors and "lines" not in errors:
        errors["restock"] = "Only refunded lines can go back to stock; choose their units."
    if errors:
        raise ValidationFailed(next(iter(errors.values())), field_errors=errors)
    return wanted or None


def plan_lines(order: Order, wanted: dict[int, int], refunded: dict[int, int]) -> list[RefundLine]:
    """The refund's lines: each asked-for line with its share (``refund_share``), checked against
    what is left of it (``refunded``: units already refunded, read under the order's lock).

    Raises:
        ValidationFailed: a line not of this order, or more units than are left of it (every such line named).
    """
    by_id = {line.id: line for line in order.lines}
    problems: list[str] = []
    planned: list[RefundLine] = []
    for line_id, units in sorted(wanted.items()):
        line = by_id.get(line_id)
        if line is None:
            problems.append(f"Order {order.number} has no line {line_id}.")
            continue
        already = refunded.get(line_id, 0)
        left = line.quantity - already
        if units > left:
            problems.append(
                f"{line.sku}: {left} of {line.quantity} units left to refund, not {units}."
                if left
                else f"{line.sku}: every unit is refunded already."
            )
            continue
        planned.append(RefundLine(order_line_id=line_id, quantity=units, amount=refund_share(line, units, already)))
    if problems:
        raise ValidationFailed(" ".join(problems), field_errors={"lines": " ".join(problems)})
    return planned


def refund_summary(
    order: Order, refund: Refund, refunded_lines: list[tuple[OrderLine, RefundLine]], credit_note: str, reference: str
) -> str:
    """The order history's line for a refund the provider made: the amount, the units (``2 × SKU``) and
    whether they went back in stock, the credit note, the provider's ``reference`` and the reason."""
    units = ", ".join(f"{rl.quantity} × {line.sku}" for line, rl in refunded_lines)
    return (
        f"Order {order.number}: refunded {format_money(refund.amount, refund.currency)}"
        + (f" for {units}" if units else "")
        + (" (back in stock)" if refund.restock and units else "")
        + f", credit note {credit_note} ({reference})"
        + (f": {refund.reason}" if refund.reason else "")
    )
