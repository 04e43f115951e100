"""What the JSON API's controllers share: the admins' guard list and the base of the admin-only controllers.

Controllers that mix admin routes with others set ``guards=ADMIN`` per route; a controller whose every
route is for admins sets it once (``AdminApiController``). ``OPTIONS`` needs no token either way: the
guard lets it pass (``webshop.security.jwt.api_admin``).
"""

from litestar import Controller

from webshop.security.jwt import BEARER, api_admin

ADMIN = [api_admin]
"""Guards of an admin-only route: no bearer token 401, a token of anyone but an admin 403."""


class AdminApiController(Controller):
    """A controller every route of which is for admins: the bearer token in the OpenAPI document, and
    the ``ADMIN`` guards on the controller."""

    security = BEARER
    guards = ADMIN
