"""The HTML side of the app: templating, forms, error pages and the responses pages share."""

from typing import Any, TypeAlias

from litestar import Request

AnyRequest: TypeAlias = Request[Any, Any, Any]
"""A request from anyone, signed in or not: ``request.user`` may be absent, and the session and state are
untyped (a page's or middleware's own reading of them gives them their types)."""
