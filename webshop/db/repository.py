"""advanced-alchemy's async repository, one class per model, for the services' ``repository_type``.

Every service of the shop works on one model through advanced-alchemy's ``SQLAlchemyAsyncRepository``
with no repository code of its own; ``repository_for(Order)`` names that class once instead of a
three-line ``class Repo`` in each service.
"""

from __future__ import annotations

from typing import Any

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.repository.typing import ModelT

_MADE: dict[type[Any], type[SQLAlchemyAsyncRepository[Any]]] = {}


def repository_for(model: type[ModelT]) -> type[SQLAlchemyAsyncRepository[ModelT]]:
    """The repository class of ``model`` (``model_type = model``), made on first use and then reused, so
    services of the same model (orders: placement, payment, administration) share it."""
    made = _MADE.get(model)
    if made is None:
        made = _MADE[model] = type(
            f"{model.__name__}Repository",
            (SQLAlchemyAsyncRepository,),
            {"model_type": model, "__doc__": f"{model.__name__} repository.", "__module__": __name__},
        )
    return made
