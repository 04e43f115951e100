"""Pieces every admin HTML controller uses, so that a handler's signature and its post/redirect/get tail stay short.

* ``AdminRequest``: the type of an admin page's ``request`` (the guards let only a signed-in user in).
* The services' ``…Dep`` aliases are ``webshop.deps``'s (shared with the JSON API).
* ``provide_shop_scope`` (``shop_scope: ShopScopeDep``, registered on ``ShopStaffPages``): the shops a
  page shows its user, narrowed by the "Shop" switcher (``?shop=``).
* ``flash_see_other``: the answer to a post that worked: a flash message and a 303 to a page.
* ``confirm_delete``: the page that asks before a delete, saying what goes with it.

A page that several handlers re-render with an error (one order, one category) is best a small class that
Litestar builds per request from the path and the services the page always needs, registered on its
controller as ``dependencies = {**SHOP_STAFF_DEPENDENCIES, "order_page": Provide(OrderPage,
sync_to_thread=False)}`` (a ``ShopStaffPages`` controller keeps its ``shop_scope`` that way; see
``webshop.admin.orders.OrderPage``, ``webshop.admin.users.UserPage``).
"""

from collections.abc import Sequence
from typing import Any, TypeAlias

from litestar.di import NamedDependency
from litestar.params import FromQuery
from litestar.plugins.flash import flash
from litestar.plugins.htmx import HXLocation
from litestar.response import Redirect, Template

from webshop.deps import ShopsDep, UserRequest
from webshop.shops.scope import ShopScope, admin_scope
from webshop.web import AnyRequest
from webshop.web.responses import route_url, see_other_to

AdminRequest: TypeAlias = UserRequest
"""An admin page's request: ``request.user`` is the signed-in admin or shop member."""

ShopScopeDep: TypeAlias = NamedDependency[ShopScope]
"""``shop_scope``: the shops the page shows (``provide_shop_scope``)."""


async def provide_shop_scope(
    request: AdminRequest, shops_service: ShopsDep, shop: FromQuery[str | None] = None
) -> ShopScope:
    """The shops a list page shows its user (``admin_scope``), narrowed to the "Shop" switcher's ``?shop=``
    when it is one of theirs."""
    return await admin_scope(shops_service, request.user, shop)


def flash_see_other(
    request: AnyRequest, message: str, route_name: str, /, *, category: str = "success", **url_parts: Any
) -> Redirect | HXLocation:
    """The answer to a post that worked: flash ``message`` (``category``: ``"success"``, ``"info"``,
    ``"error"``) and ``see_other_to`` the route named ``route_name``; ``url_parts`` are ``route_url``'s
    (the path parameters, ``query``, ``fragment``).

    Raises:
        NoRouteMatchFoundException: as ``route_url``.
    """
    flash(request, message, category)
    return see_other_to(request, route_name, **url_parts)


def confirm_delete(
    request: AnyRequest,
    heading: str,
    consequences: Sequence[str],
    confirm: str,
    *,
    action: str,
    back: tuple[str, str],
    **path: Any,
) -> Template:
    """The page that asks before a delete (``admin/confirm_delete.html``): ``heading`` ("Delete the zone
    “Europe”?"), what goes with it (``consequences``, sentences), and a form posting to the route named
    ``action`` (``path`` its parameters) with the button ``confirm``, beside "Keep it", a link to
    ``back`` (``(label, URL)``). Opening it changes nothing (GOV.UK's "confirm before deleting" pattern);
    JavaScript is not needed.
    """
    label, back_url = back
    context = {
        "heading": heading,
        "consequences": list(consequences),
        "confirm": confirm,
        "action": route_url(request, action, **path),
        "back_label": label,
        "back_url": back_url,
    }
    return Template("admin/confirm_delete.html", context=context)


__all__ = ["AdminRequest", "ShopScopeDep", "confirm_delete", "flash_see_other", "provide_shop_scope"]
