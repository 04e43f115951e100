"""This process's cache of catalog reads, keyed by catalog version (``webshop.catalog.browse``): a
least-recently-used map with a weight budget.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

# --- the per-process cache ----------------------------------------------------------------------------

_MISS = object()
MISS = _MISS
"""What ``CACHE.get`` answers for a key it does not hold."""


class _Cache:
    """A least-recently-used map with a total weight budget (weights: ids held, facet values...)."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.items: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self.weight = 0

    def get(self, key: Any) -> Any:
        item = self.items.get(key)
        if item is None:
            return _MISS
        self.items.move_to_end(key)
        return item[0]

    def put(self, key: Any, value: Any, weight: int) -> None:
        weight = max(1, weight)
        old = self.items.pop(key, None)
        if old is not None:
            self.weight -= old[1]
        self.items[key] = (value, weight)
        self.weight += weight
        while self.weight > self.budget and len(self.items) > 1:
            _, (_, dropped) = self.items.popitem(last=False)
            self.weight -= dropped

    def clear(self) -> None:
        self.items.clear()
        self.weight = 0


CACHE = _Cache(budget=1_000_000)
"""This process's cache of derived reads: weights are product ids held (8 bytes each) and rendered
HTML (one per 8 characters), so about 8 MB at most."""
