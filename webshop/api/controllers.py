"""What the JSON API's controllers share: the admins' guard list and the base of the admin-only controllers.

Most controllers that mix admin routes with others set ``guards=ADMIN`` per route, not on the controller:
Litestar's automatic ``OPTIONS`` handler of a path inherits its first handler's controller, and
``OPTIONS`` must not need a token (``webshop.catalog.admin_api``).
"""

from litestar import Controller

from webshop.security.jwt import BEARER, api_admin

ADMIN = [api_admin]
"""Guards of an admin-only route: no bearer token 401, a token of anyone but an admin 403."""


class AdminApiController(Controller):
    """A controller every route of which is for admins: the bearer token in the OpenAPI document, and
    the ``ADMIN`` guards on the controller (its paths' ``OPTIONS`` answers need the token too)."""

    security = BEARER
    guards = ADMIN
