"""OpenAPI 3.1 for ``/api``: the schema at ``/api/openapi.json``, Swagger UI, ReDoc and Scalar beside it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Router
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Operation, Server

from webshop import __version__

DESCRIPTION = """\
The webshop JSON API: the same catalog, cart, checkout and orders as the shop's pages, with the same
rules. Authenticate with the OAuth2 password flow (`POST /api/auth/token`) and send
`Authorization: Bearer <access_token>`. Money is `{amount, currency}` with `amount` in integer minor
units (cents). Errors are RFC 9457 `application/problem+json`. `POST /api/checkout` needs an
`Idempotency-Key` header. Test cards: 4242424242424242 succeeds, 4000000000000002 is declined.
"""


class DocsRouter(Router):
    """The router of the docs pages; it leaves unknown ``/api/...`` paths to the app's problem+json 404.

    Litestar adds an HTML "not found" page for ``{docs path}/{anything}``; under ``/api`` that would
    answer API clients with HTML, so that one handler is not registered.
    """

    def register(self, value: Any) -> Any:
        """Register a route handler, except Litestar's HTML not-found page for the docs path."""
        if getattr(getattr(value, "fn", None), "__name__", "") == "handle_schema_path_not_found":
            return []
        return super().register(value)


@dataclass
class OptionalBodyOperation(Operation):
    """An operation whose request body may be left out (Litestar always marks a body ``required``)."""

    def __post_init__(self) -> None:
        if self.request_body is not None:
            self.request_body.required = False


def openapi_config(bearer: Any) -> OpenAPIConfig:
    """The OpenAPI config; ``bearer`` is the JWT auth config whose security scheme the routes name."""
    return OpenAPIConfig(
        title="webshop API",
        version=__version__,
        description=DESCRIPTION,
        path="/api",
        openapi_router=DocsRouter("/api", route_handlers=[], include_in_schema=False),
        servers=[Server(url="/")],
        components=[bearer.openapi_components],
        use_handler_docstrings=True,
        render_plugins=[
            JsonRenderPlugin(path="/openapi.json"),
            SwaggerRenderPlugin(path="/docs"),
            RedocRenderPlugin(path="/redoc"),
            ScalarRenderPlugin(path="/scalar"),
        ],
    )
