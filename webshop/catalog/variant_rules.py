"""The rules of a product's variant set, in one place: pure functions, no database and no I/O.

A product names its variant axes (``option_groups``, e.g. ``["size", "colour"]``) and each variant gives
one value per group, in the same order. The rules:

* option groups: at most ``limits.OPTION_GROUPS``, each named once (ignoring case), each name at most
  ``limits.OPTION_GROUP`` characters;
* option values: one per option group, none empty, each at most ``limits.OPTION_VALUE`` characters;
* within one product no SKU repeats, and no two variants have the same option values (ignoring case).

Two callers word the problems found here for their own readers: ``ProductService`` (``webshop.catalog.rules``,
messages keyed by form and API field) and the CSV importer (``webshop.catalog.csv.parse``, one message per
row naming the CSV column and line). So the functions return what is wrong, as values, not messages; a
rule changed here changes for the admin pages, the API and the importer at once.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from webshop.catalog import limits

GroupProblem = Literal["repeated", "too_many", "too_long"]
"""What can be wrong with a product's option groups (``option_groups_problem``)."""
ValueProblem = Literal["empty", "too_long"]
"""What can be wrong with one variant's option values taken alone (``option_values_problem``)."""


def option_groups_problem(groups: Sequence[str]) -> GroupProblem | None:
    """The first thing wrong with a product's option groups, or ``None`` when they follow the rules.

    Args:
        groups: The option group names, trimmed, empty ones already dropped.

    Returns:
        ``"repeated"`` when a name appears twice ignoring case (``Size`` and ``size``), ``"too_many"``
        for more than ``limits.OPTION_GROUPS`` groups, ``"too_long"`` for a name over
        ``limits.OPTION_GROUP`` characters or holding a NUL; else ``None``.
    """
    if len({group.casefold() for group in groups}) != len(groups):
        return "repeated"
    if len(groups) > limits.OPTION_GROUPS:
        return "too_many"
    if any(len(group) > limits.OPTION_GROUP or "\x00" in group for group in groups):
        return "too_long"
    return None


def option_values_problem(values: Sequence[str]) -> ValueProblem | None:
    """The first thing wrong with one variant's option values taken alone, or ``None``.

    Args:
        values: The values, trimmed, in option group order.

    Returns:
        ``"empty"`` when a value is empty, ``"too_long"`` for one over ``limits.OPTION_VALUE``
        characters or holding a NUL; else ``None``. Whether there is one per group is ``fits_groups``.
    """
    if any(not value for value in values):
        return "empty"
    if any(len(value) > limits.OPTION_VALUE or "\x00" in value for value in values):
        return "too_long"
    return None


def fits_groups(groups: Sequence[str], values: Sequence[str]) -> bool:
    """True when ``values`` gives exactly one value per option group (``len(values) == len(groups)``)."""
    return len(values) == len(groups)


def combination_key(values: Iterable[str]) -> tuple[str, ...]:
    """Option values as compared for repeats: case-insensitively (``("Red", "M")`` repeats ``("red", "m")``)."""
    return tuple(value.casefold() for value in values)


def first_seen(keys: Iterable[Hashable | None]) -> dict[int, int]:
    """Where each key repeats an earlier one: ``{index: index of its first occurrence}``.

    ``None`` keys are skipped (a missing SKU, option values that do not fit the groups).
    ``first_seen(["A", "B", "A", None, "A"]) == {2: 0, 4: 0}``.
    """
    first: dict[Hashable, int] = {}
    repeats: dict[int, int] = {}
    for index, key in enumerate(keys):
        if key is None:
            continue
        if key in first:
            repeats[index] = first[key]
        else:
            first[key] = index
    return repeats


@dataclass(frozen=True, slots=True)
class SetProblem:
    """One variant of a set that breaks a rule across the set (``variant_set_problems``).

    Attributes:
        index: The variant's place in the list given (0-based).
        kind: ``"value_count"`` (not one value per option group), ``"sku"`` (an earlier variant has
            its SKU) or ``"combination"`` (an earlier variant has its option values, ignoring case).
        earlier: For ``"sku"`` and ``"combination"``, the index of the first variant with the same
            SKU or values; ``None`` for ``"value_count"``.
    """

    index: int
    kind: Literal["value_count", "sku", "combination"]
    earlier: int | None = None


def variant_set_problems(
    groups: Sequence[str], variants: Sequence[tuple[str | None, Sequence[str]]]
) -> list[SetProblem]:
    """Every rule across one product's variants that the set breaks, variant by variant.

    Args:
        groups: The product's option groups.
        variants: ``(sku, option values)`` of each variant in order (the stored ones as they will be
            after the change, then the new ones); a ``None`` or empty SKU is not compared.

    Returns:
        The problems in variant order, at most one of each kind per variant; a variant whose values do
        not fit the groups gets ``"value_count"`` and is left out of the combination check, and the
        combination check is skipped for a product without option groups. Empty when the set is fine.
    """
    problems = [
        SetProblem(index, "value_count")
        for index, (_sku, values) in enumerate(variants)
        if not fits_groups(groups, values)
    ]
    skus = first_seen(sku or None for sku, _values in variants)
    problems += [SetProblem(index, "sku", earlier) for index, earlier in skus.items()]
    if groups:
        keys = (combination_key(values) if fits_groups(groups, values) else None for _sku, values in variants)
        problems += [SetProblem(index, "combination", earlier) for index, earlier in first_seen(keys).items()]
    problems.sort(key=lambda problem: problem.index)
    return problems
