"""Guards of the routes a shop's members use: the API's product, variant, photo and stock writes, and
the admin pages they share with platform admins (``requires_shop_staff``).

A guard only lets in who may use such a route at all (an admin, or a member of some shop); which
products they may change is the services' rule (``ProductMixin.check_runs``: another shop's product
is not found).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from webshop.security.jwt import guarded_user
from webshop.shops.service import ShopService

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession


async def runs_a_shop(connection: ASGIConnection[Any, Any, Any, Any], user: Any) -> bool:
    """True when ``user`` is an admin or a member of a shop (one query on the request's session)."""
    if user.is_admin:
        return True
    config = connection.app.plugins.get(SQLAlchemyPlugin).config[0]
    session = config.provide_session(connection.app.state, connection.scope)
    return (await ShopService(session=cast("AsyncSession", session)).access(user)).runs_a_shop


async def api_shop_staff(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard: the bearer token's user must be an admin or a member of a shop; ``OPTIONS`` passes
    (``webshop.security.jwt.guarded_user``).

    Raises:
        NotAuthorizedException: no token (401).
        PermissionDeniedException: a customer who runs no shop (403).
    """
    user = guarded_user(connection)
    if user is not None and not await runs_a_shop(connection, user):
        raise PermissionDeniedException("This operation is for administrators and shop staff.")


async def requires_shop_staff(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of the admin pages a shop's members use too (products, stock, orders, CSV, the dashboard):
    the session's user must be an admin or a member of a shop, with ``requires_admin``'s answers.

    Raises:
        NotAuthorizedException: nobody is signed in (pages redirect to the sign-in form).
        PermissionDeniedException: a signed-in user who is neither an admin nor a shop member (403 page).
    """
    user = connection.scope.get("user")
    if user is None:
        raise NotAuthorizedException("Please sign in to continue.")
    if not await runs_a_shop(connection, user):
        raise PermissionDeniedException("This page is for administrators and shop staff.")
