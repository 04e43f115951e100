"""Long ``IN (...)`` lists in chunks: no statement may pass a database's limit on bound parameters
(SQLite's 32,766, asyncpg's 32,767), so a list of ids, slugs or SKUs read or written at once is cut."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

IN_LIST_SIZE = 500
"""Items per ``IN (...)`` list by default: far below both limits, and few statements for a large list."""


def chunks(items: Sequence[T], size: int = IN_LIST_SIZE) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``, in order (``chunks([1, 2, 3], 2)`` → ``[1, 2]``, ``[3]``)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
