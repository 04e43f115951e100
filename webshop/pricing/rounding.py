"""The one place where the shop rounds money: half away from zero, and largest-remainder splitting.

Every other pricing function computes an exact integer ratio and hands it to :func:`round_half_up`,
or splits an amount with :func:`allocate`; nothing else in :mod:`webshop.pricing` rounds.
"""

from __future__ import annotations

from collections.abc import Sequence


def round_half_up(numerator: int, denominator: int) -> int:
    """Round the exact ratio ``numerator / denominator`` to the nearest integer, halves away from zero.

    This is the shop's single rounding rule ("commercial rounding", symmetric for negatives):
    ``round_half_up(5, 10) == 1``, ``round_half_up(-5, 10) == -1``, ``round_half_up(149, 100) == 1``.

    Args:
        numerator: Any integer (minor units times a rate, for example).
        denominator: A positive integer.

    Returns:
        The rounded integer.

    Raises:
        ValueError: ``denominator`` is zero or negative.
    """
    if denominator <= 0:
        raise ValueError(f"The denominator must be positive, not {denominator}.")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return -quotient if numerator < 0 else quotient


def allocate(amount: int, weights: Sequence[int]) -> list[int]:
    """Split ``amount`` minor units over ``weights`` in proportion, by the largest-remainder method.

    The largest-remainder (Hamilton) method, as used for apportioning seats: each share is first
    ``floor(amount * weight / sum(weights))``; the units still left over then go one each to the shares
    with the largest remainders, ties to the earlier index. So ``allocate(1000, [1, 1, 1]) ==
    [334, 333, 333]``; the result always sums to ``amount`` exactly and a zero weight always gets 0.

    Args:
        amount: Minor units to split, ``>= 0``.
        weights: One non-negative weight per share (line amounts, for example).

    Returns:
        One share per weight, in the same order, summing to ``amount``.

    Raises:
        ValueError: ``amount`` or a weight is negative, or ``amount > 0`` with no positive weight.
    """
    if amount < 0:
        raise ValueError(f"Cannot allocate a negative amount ({amount}).")
    if any(weight < 0 for weight in weights):
        raise ValueError("Allocation weights must not be negative.")
    total = sum(weights)
    if total == 0:
        if amount:
            raise ValueError(f"Cannot allocate {amount} over weights that are all zero.")
        return [0] * len(weights)
    shares = [amount * weight // total for weight in weights]
    remainders = [amount * weight % total for weight in weights]
    leftover = amount - sum(shares)
    # leftover * total == sum(remainders) and each remainder < total, so only positive remainders get a unit.
    order = sorted(range(len(weights)), key=lambda index: (-remainders[index], index))
    for index in order[:leftover]:
        shares[index] += 1
    return shares
