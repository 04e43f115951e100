"""How handlers get services: one ``Provide`` per service and app, with the service's settings given at
construction.

A service that needs settings takes the groups it needs as keyword arguments of its constructor
(``security=``, ``shop=``: ``webshop.config``), so none of its verbs takes settings as an argument and a
test builds it with exactly the values it means. Services without settings use advanced-alchemy's
``create_service_provider`` unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any, TypeVar

from advanced_alchemy.extensions.litestar.providers import create_service_provider
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from litestar.di import NamedDependency, Provide
from litestar.params import SkipValidation
from sqlalchemy.ext.asyncio import AsyncSession

ServiceT = TypeVar("ServiceT", bound=SQLAlchemyAsyncRepositoryService[Any])


def service_provider(service_class: type[ServiceT], **settings: Any) -> Provide:
    """A ``Provide`` that builds ``service_class`` on the request's ``db_session`` (advanced-alchemy's
    session dependency, committed by its ``before_send`` hook or by the service's own verbs).

    Args:
        service_class: An advanced-alchemy repository service.
        **settings: Keyword arguments for its constructor (settings groups such as ``shop=settings.shop``);
            none means advanced-alchemy's own provider.

    Returns:
        The provider, to be wrapped once per app (parsing a provider per route cost a second of start-up).
    """
    if not settings:
        return Provide(create_service_provider(service_class))

    async def provide(db_session: NamedDependency[SkipValidation[AsyncSession]]) -> AsyncGenerator[ServiceT, None]:
        yield service_class(session=db_session, **settings)

    return Provide(provide)
