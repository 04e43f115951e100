"""What the services share around advanced-alchemy: a repository class per model and the steps of a
partial update (``PATCH``). A row or its 404 is advanced-alchemy's own ``get(id, error_messages=...)``.

Every service of the shop works on one model through advanced-alchemy's ``SQLAlchemyAsyncRepository``
with no repository code of its own; ``repository_for(Order)`` names that class once instead of a
three-line ``class Repo`` in each service. A partial update reads the fields its body sets (``sent``),
checks the row's whole new state (``patched``) and writes it (``assign``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.repository.typing import ModelT
from sqlalchemy import select

_MADE: dict[type[Any], type[SQLAlchemyAsyncRepository[Any]]] = {}


def repository_for(model: type[ModelT]) -> type[SQLAlchemyAsyncRepository[ModelT]]:
    """The repository class of ``model`` (``model_type = model``), made on first use and then reused, so
    services of the same model (orders: placement, payment, administration) share it."""
    made = _MADE.get(model)
    if made is None:
        base: Any = select(model)  # immutable: every query derives a new statement from it

        def __init__(self: SQLAlchemyAsyncRepository[Any], *, statement: Any = None, **kwargs: Any) -> None:
            # advanced-alchemy builds ``select(model)`` for each repository, and a service (with its
            # repository) is made for every request: 3-4 % of a cached product page's CPU.
            SQLAlchemyAsyncRepository.__init__(self, statement=base if statement is None else statement, **kwargs)

        made = _MADE[model] = type(
            f"{model.__name__}Repository",
            (SQLAlchemyAsyncRepository,),
            {
                "model_type": model,
                "__init__": __init__,
                "__doc__": f"{model.__name__} repository.",
                "__module__": __name__,
            },
        )
    return made


def sent(patch: msgspec.Struct) -> dict[str, Any]:
    """``{field: value}`` of the fields a partial update sets (a ``PATCH`` body: the others are ``UNSET``)."""
    return {name: value for name, value in msgspec.structs.asdict(patch).items() if value is not msgspec.UNSET}


def patched(row: object, fields: Iterable[str], patch: msgspec.Struct) -> dict[str, Any]:
    """``row``'s current ``fields`` with what ``patch`` sets over them: the whole new state to check."""
    return {**{name: getattr(row, name) for name in fields}, **sent(patch)}


def assign(row: object, values: Mapping[str, Any]) -> None:
    """Set each of ``values`` on ``row`` (checked values, for the unit of work to write)."""
    for name, value in values.items():
        setattr(row, name, value)
