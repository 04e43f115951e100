"""Promotions: whether one applies to a cart, how much it takes off each line, and which ones combine.

A promotion takes a percentage or a fixed amount off the lines it targets (categories, products or
variants; none named = the whole order), or makes shipping free. The amount off is split over the
targeted lines with :func:`~webshop.pricing.rounding.allocate` (largest remainder), so the lines' shares
always sum to the promotion's total. Codes, and the reasons a promotion does not apply, live in
:mod:`webshop.pricing.codes` (re-exported here). Datetimes are timezone-aware; a promotion is valid
from ``starts_at`` up to and including ``ends_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from webshop.pricing.codes import NotApplicable, Reason, normalise_code
from webshop.pricing.rounding import allocate, round_half_up

__all__ = [
    "CartItem",
    "Discount",
    "NotApplicable",
    "PromotionKind",
    "PromotionTerms",
    "Reason",
    "best_combination",
    "evaluate",
    "normalise_code",
    "targeted",
]


class PromotionKind(StrEnum):
    """What a promotion takes off."""

    PERCENTAGE = "percentage"
    FIXED_AMOUNT = "fixed_amount"
    FREE_SHIPPING = "free_shipping"


@dataclass(frozen=True)
class PromotionTerms:
    """A promotion's rules, as the admin set them, and how often it has been used.

    Attributes:
        name: Shown to the shopper.
        code: The code to enter (normalised on creation), or None for an automatic promotion.
        kind: Percentage, fixed amount or free shipping.
        value: Whole percent 1..100 (PERCENTAGE), minor units ``>= 1`` (FIXED_AMOUNT); ignored for FREE_SHIPPING.
        starts_at: First moment it is valid (aware), or None.
        ends_at: Last moment it is valid, inclusive (aware), or None.
        min_subtotal: Cart subtotal in minor units needed, ``>= 0``.
        usage_limit: Uses allowed in all, or None.
        times_used: Uses so far, by everyone.
        per_customer_limit: Uses allowed per customer, or None.
        customer_uses: This customer's uses so far.
        combinable: Whether it may be used together with other combinable promotions.
        category_ids: Targeted categories.
        product_ids: Targeted products.
        variant_ids: Targeted variants; all three empty = the whole order.

    Raises:
        ValueError: on creation, a value out of range for the kind, a negative count, or a bad code.
    """

    name: str
    code: str | None
    kind: PromotionKind
    value: int
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_subtotal: int = 0
    usage_limit: int | None = None
    times_used: int = 0
    per_customer_limit: int | None = None
    customer_uses: int = 0
    combinable: bool = True
    category_ids: frozenset[int] = field(default_factory=frozenset)
    product_ids: frozenset[int] = field(default_factory=frozenset)
    variant_ids: frozenset[int] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.code is not None:
            object.__setattr__(self, "code", normalise_code(self.code))
        if self.kind is PromotionKind.PERCENTAGE and not 1 <= self.value <= 100:
            raise ValueError(f"A percentage is a whole number from 1 to 100, not {self.value}.")
        if self.kind is PromotionKind.FIXED_AMOUNT and self.value < 1:
            raise ValueError(f"A fixed amount must be positive, not {self.value}.")
        counts = (self.min_subtotal, self.times_used, self.customer_uses, self.usage_limit, self.per_customer_limit)
        if any(count is not None and count < 0 for count in counts):
            raise ValueError("Limits and counts must not be negative.")

    @property
    def targets_whole_order(self) -> bool:
        """True when no category, product or variant is named."""
        return not (self.category_ids or self.product_ids or self.variant_ids)


@dataclass(frozen=True)
class CartItem:
    """A cart line as promotions see it.

    Attributes:
        key: The line's id or SKU.
        variant_id: The line's variant.
        product_id: The variant's product.
        category_ids: The product's categories.
        quantity: Units, ``>= 1``.
        unit_price: Minor units per unit, in the shop's price mode.
    """

    key: str
    variant_id: int
    product_id: int
    category_ids: frozenset[int]
    quantity: int
    unit_price: int

    @property
    def amount(self) -> int:
        """``quantity * unit_price`` in minor units."""
        return self.quantity * self.unit_price


@dataclass(frozen=True)
class Discount:
    """What one promotion takes off a cart, in minor units.

    Attributes:
        name: The promotion's name.
        code: Its code, or None.
        kind: Its kind.
        lines: ``(line key, minor units off)`` for each targeted line, in cart order.
        shipping: Minor units off shipping (the whole shipping for FREE_SHIPPING, else 0).
        bases: ``(line key, line amount)`` of the targeted lines it was computed on, for capping combinations.
        shipping_base: The shipping price it was computed on.
    """

    name: str
    code: str | None
    kind: PromotionKind
    lines: tuple[tuple[str, int], ...]
    shipping: int
    bases: tuple[tuple[str, int], ...] = ()
    shipping_base: int = 0

    @property
    def total(self) -> int:
        """Everything taken off: the lines' shares plus the shipping."""
        return sum(off for _, off in self.lines) + self.shipping


def targeted(terms: PromotionTerms, items: Sequence[CartItem]) -> list[CartItem]:
    """The items a promotion applies to: all of them, or those whose variant, product or a category is named."""
    if terms.targets_whole_order:
        return list(items)
    return [
        item
        for item in items
        if item.variant_id in terms.variant_ids
        or item.product_id in terms.product_ids
        or item.category_ids & terms.category_ids
    ]


def evaluate(
    terms: PromotionTerms, items: Sequence[CartItem], *, subtotal: int, shipping: int, now: datetime, currency: str
) -> Discount:
    """Check a promotion against a cart and compute what it takes off.

    The checks, in order: validity window (``starts_at <= now <= ends_at``), overall uses, this customer's
    uses, targeted items, minimum subtotal (``subtotal >= min_subtotal``). A percentage is
    ``round_half_up(eligible * percent, 100)`` of the targeted lines' total; a fixed amount is cut to that
    total; either is then allocated over the targeted lines in proportion to their amounts.

    Args:
        terms: The promotion.
        items: The cart's lines.
        subtotal: The cart subtotal in minor units (compared with ``min_subtotal``).
        shipping: The shipping price in minor units (taken off whole by FREE_SHIPPING).
        now: The current moment, timezone-aware.
        currency: Currency code of the amounts, for messages.

    Returns:
        The discount.

    Raises:
        NotApplicable: the promotion does not apply; its ``message`` tells the shopper why.
        ValueError: ``now`` is naive.
    """
    if now.tzinfo is None:
        raise ValueError("`now` must be timezone-aware.")
    if terms.starts_at is not None and now < terms.starts_at:
        raise NotApplicable(Reason.NOT_YET_VALID, when=terms.starts_at)
    if terms.ends_at is not None and now > terms.ends_at:
        raise NotApplicable(Reason.EXPIRED, when=terms.ends_at)
    if terms.usage_limit is not None and terms.times_used >= terms.usage_limit:
        raise NotApplicable(Reason.USED_UP)
    if terms.per_customer_limit is not None and terms.customer_uses >= terms.per_customer_limit:
        raise NotApplicable(Reason.USED_UP_BY_YOU)
    eligible = targeted(terms, items)
    if not eligible:
        raise NotApplicable(Reason.NOT_FOR_THESE_ITEMS)
    if subtotal < terms.min_subtotal:
        raise NotApplicable(Reason.MINIMUM_NOT_REACHED, shortfall=terms.min_subtotal - subtotal, currency=currency)
    amounts = [item.amount for item in eligible]
    eligible_total = sum(amounts)
    if terms.kind is PromotionKind.PERCENTAGE:
        off = round_half_up(eligible_total * terms.value, 100)
    elif terms.kind is PromotionKind.FIXED_AMOUNT:
        off = min(terms.value, eligible_total)
    else:
        off = 0
    shares = allocate(off, amounts) if eligible_total else [0] * len(eligible)
    return Discount(
        name=terms.name,
        code=terms.code,
        kind=terms.kind,
        lines=tuple((item.key, share) for item, share in zip(eligible, shares, strict=True)),
        shipping=shipping if terms.kind is PromotionKind.FREE_SHIPPING else 0,
        bases=tuple((item.key, item.amount) for item in eligible),
        shipping_base=shipping,
    )


def best_combination(discounts: Sequence[tuple[PromotionTerms, Discount]]) -> list[Discount]:
    """Choose which applicable promotions to use together.

    The rule: every combinable promotion is used, in the order given, each capped so that no line and
    no shipping goes below zero (a later promotion gets what the earlier ones left; a line's amount is
    its ``bases`` entry). If a non-combinable promotion takes off strictly more than all of those
    together, it is used alone instead (the largest such one; the earlier on a tie).

    Args:
        discounts: ``(terms, discount)`` pairs from :func:`evaluate` on the same cart.

    Returns:
        The discounts to apply, capped; empty when there are none.
    """
    usable = [discount for terms, discount in discounts if terms.combinable]
    left: dict[str, int] = {}  # what is still left of each line with a known amount
    for discount in usable:
        for key, base in discount.bases:
            left[key] = max(left.get(key, 0), base)
    shipping_left = max((max(discount.shipping_base, discount.shipping) for discount in usable), default=0)
    together: list[Discount] = []
    for discount in usable:
        lines = []
        for key, off in discount.lines:
            taken = min(off, left[key]) if key in left else off
            if key in left:
                left[key] -= taken
            lines.append((key, taken))
        shipping = min(discount.shipping, shipping_left)
        shipping_left -= shipping
        together.append(replace(discount, lines=tuple(lines), shipping=shipping))
    combined = sum(discount.total for discount in together)
    alone = [discount for terms, discount in discounts if not terms.combinable]
    best = max(alone, key=lambda discount: discount.total, default=None)
    if best is not None and best.total > combined:
        return [best]
    return together
