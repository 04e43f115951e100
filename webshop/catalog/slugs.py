"""URL slugs: made from names, and kept free of the ones already taken (products, categories, imports)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence


def slugify(text: str) -> str:
    """URL slug of ``text``: ASCII, lowercase, words joined by ``-`` ("Home & Garden" -> "home-garden")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def free_slug(candidates: Sequence[str], taken: Collection[str], *, limit: int, fallback: str) -> str:
    """The first of ``candidates`` not in ``taken``, else the last one with ``-2``, ``-3``, ... added.

    Each candidate is cut to ``limit`` characters (leaving room for the number is the caller's choice
    of ``limit``); empty ones are skipped, and ``fallback`` stands in when none is left.
    """
    cut = [candidate[:limit].strip("-") for candidate in candidates]
    cut = [candidate for candidate in cut if candidate] or [fallback]
    for candidate in cut:
        if candidate not in taken:
            return candidate
    number = 2
    while f"{cut[-1]}-{number}" in taken:
        number += 1
    return f"{cut[-1]}-{number}"
