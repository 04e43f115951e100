"""What the JSON API's controllers share: the admins' guard list and the bases of the controllers whose
every route is for admins (``AdminApiController``) or for shop staff (``ShopStaffApiController``).

Controllers that mix such routes with others set the guards per route; the others set them once.
``OPTIONS`` needs no token either way: both guards let it pass (``webshop.security.jwt.api_admin``,
``webshop.shops.guards.api_shop_staff``).
"""

from litestar import Controller

from webshop.security.jwt import BEARER, api_admin
from webshop.shops.guards import api_shop_staff

ADMIN = [api_admin]
"""Guards of an admin-only route: no bearer token 401, a token of anyone but an admin 403."""


class AdminApiController(Controller):
    """A controller every route of which is for admins: the bearer token in the OpenAPI document, and
    the ``ADMIN`` guards on the controller."""

    security = BEARER
    guards = ADMIN


class ShopStaffApiController(Controller):
    """A controller every route of which is for admins and the members of a shop (the services keep each
    member to their shop's rows): the bearer token in the OpenAPI document, ``api_shop_staff`` on the controller."""

    security = BEARER
    guards = [api_shop_staff]
