"""Case-insensitive matching of any script's letters, on both engines.

SQLite's ``lower()``, ``LIKE`` and SQLAlchemy's ``ilike`` (``lower(x) LIKE lower(y)`` there) fold the 26
ASCII letters only (SQLite, "Built-in scalar SQL functions": lower), so an admin's search for "Élodie",
"ÅNGSTRÖM" or "CAFÉ" found nothing on the default engine. ``folded(x)`` is ``lower(x)`` on PostgreSQL
(which folds every letter under a UTF-8 ``LC_CTYPE``) and ``webshop_lower(x)`` on SQLite: Python's
``str.lower``, registered on each connection (``register_sqlite_functions``). The search text is folded
with ``fold`` (the same ``str.lower``), so both sides agree.

Not for indexes or constraints (``uq_users_email_lower`` stays on SQLite's own ``lower``): a function the
application registers must not decide what an index holds, or a connection without it would disagree.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import GenericFunction

SQLITE_LOWER = "webshop_lower"
"""The name of the SQLite function ``folded`` calls (``str.lower``)."""


class folded(GenericFunction[str]):
    """``folded(column)``: the column's text folded for case-insensitive matching (the module docstring)."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _lower(element: folded, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(folded, "sqlite")
def _sqlite_lower(element: folded, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def fold(text: str) -> str:
    """``text`` as ``folded`` folds a column, in Unicode NFC as the shop stores text: ``fold("ÉLODIE") == "élodie"``."""
    return unicodedata.normalize("NFC", text).lower()


def _sqlite_fold(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Register ``webshop_lower`` on a new SQLite connection (the engine's ``connect`` hook)."""
    dbapi_connection.create_function(SQLITE_LOWER, 1, _sqlite_fold, deterministic=True)
