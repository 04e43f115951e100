"""What the admin form pages (shipping and tax, promotions, shops, webhooks) share: the types their
handlers take and the answer to a post the service accepted.

A form handler reads its form and calls the service inside a ``try``; on a ``DomainError`` it renders its
page again with the form and the reason (the error's status); otherwise ``done`` says what happened in a
flash message and sends the browser on with a 303 (post/redirect/get).
"""

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from litestar.plugins.flash import flash
from litestar.plugins.htmx import HXLocation
from litestar.response import Redirect

from webshop.audit.service import AuditService
from webshop.config import Settings
from webshop.db.models import User
from webshop.web.responses import see_other_to

AdminRequest: TypeAlias = Request[User, Any, Any]
"""An admin page's request: the controllers' guards let only a signed-in ``User`` in."""

SettingsDep: TypeAlias = NamedDependency[Settings]
"""The ``settings`` dependency (the shop's currency for amounts typed in major units)."""

AuditDep: TypeAlias = NamedDependency[AuditService]
"""The ``audit_service`` dependency (the audit trail a page shows)."""


def done(request: AdminRequest, message: str, route_name: str, /, **url_parts: Any) -> Redirect | HXLocation:
    """Answer a post the service accepted: flash ``message`` as a success and see the browser on to a page.

    Args:
        request: The post.
        message: What was done, shown on the next page.
        route_name: The next page's route; ``url_parts`` its path parameters, ``query`` and ``fragment``
            (as ``see_other_to``'s).
    """
    flash(request, message, "success")
    return see_other_to(request, route_name, **url_parts)
