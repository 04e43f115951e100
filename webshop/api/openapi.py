"""OpenAPI 3.1 for ``/api``: the schema at ``/api/openapi.json``, Swagger UI, ReDoc and Scalar beside it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec
from litestar import Router
from litestar._openapi.schema_generation.plugins import StructSchemaPlugin  # type: ignore[attr-defined]  # private
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, RedocRenderPlugin, ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import OpenAPIType, Operation, Reference, RequestBody, Schema, Server
from litestar.typing import FieldDefinition

from webshop import __version__
from webshop.text import openapi_pattern
from webshop.web.caching import STATIC_DIR, StaticAssets

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

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
        if isinstance(self.request_body, RequestBody):
            self.request_body.required = False


SCALAR_OPTIONS = {
    "withDefaultFonts": False,
    "telemetry": False,
    "showDeveloperTools": "never",
    "agent": {"disabled": True},
}
"""Scalar's configuration: nothing that loads from or reports to another host."""


def openapi_config(bearer: Any, *, static_url: Callable[[str], str] | None = None) -> OpenAPIConfig:
    """The OpenAPI config; ``bearer`` is the JWT auth config whose security scheme the routes name.

    The three documentation UIs load their bundles from ``static/vendor`` (``static_url`` makes their
    fingerprinted URLs; default: hash the static folder now), never from a CDN: Swagger UI
    (``swagger-ui-dist``), ReDoc 2 (``redoc``: its ``Redoc.init`` is what Litestar's page calls; ReDoc
    3 dropped that global) and Scalar (``@scalar/api-reference``, with its web fonts, telemetry,
    developer toolbar and AI agent off: each would reach Scalar's servers).
    """
    url = static_url or StaticAssets(STATIC_DIR).url
    favicon = f'<link rel="icon" href="{url("favicon.svg")}" type="image/svg+xml">'
    style = f'<link rel="stylesheet" href="{url("css/api-docs.css")}">'
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
            SwaggerRenderPlugin(
                path="/docs",
                js_url=url("vendor/swagger-ui/swagger-ui-bundle.js"),
                css_url=url("vendor/swagger-ui/swagger-ui.css"),
                standalone_preset_js_url=url("vendor/swagger-ui/swagger-ui-standalone-preset.js"),
                favicon=favicon,
                style=style,
            ),
            RedocRenderPlugin(
                path="/redoc",
                js_url=url("vendor/redoc/redoc.standalone.js"),
                google_fonts=False,
                favicon=favicon,
                style=style,
            ),
            ScalarRenderPlugin(
                path="/scalar",
                js_url=url("vendor/scalar/standalone.js"),
                css_url=url("css/api-docs.css"),
                options=SCALAR_OPTIONS,
                favicon=favicon,
                style="",
            ),
        ],
    )


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's msgspec schema plugin, plus ``additionalProperties: false`` for strict input Structs.

    A Struct declared with ``forbid_unknown_fields=True`` refuses unknown fields (mass assignment);
    saying so in the schema keeps clients and schema-driven tools from sending them as valid.
    """

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        """The component schema of a Struct: closed when it forbids unknown fields, with every constraint."""
        schema = super().to_openapi_schema(field_definition, schema_creator)
        info = msgspec.inspect.type_info(field_definition.type_)
        if isinstance(info, msgspec.inspect.StructType):
            if info.forbid_unknown_fields:
                schema.additional_properties = False
            for field in info.fields:
                _constrain((schema.properties or {}).get(field.encode_name), field.type)
        return schema


def _constrain(schema: Schema | Reference | None, kind: msgspec.inspect.Type) -> None:
    """Write the msgspec constraints of ``kind`` into ``schema``, nested ones included.

    Litestar drops a bound of 0 (``ge=0``: it tests the value for truth), writes bounds as floats, and
    leaves out the constraints of list items and dict keys and values; the server enforces all of them,
    so the schema states them. Struct references are left alone (their own component gets this too).
    """
    if not isinstance(schema, Schema):
        return
    if isinstance(kind, msgspec.inspect.Metadata):
        kind = kind.type
    if isinstance(kind, msgspec.inspect.UnionType):
        arms = [t for t in kind.types if not isinstance(t, msgspec.inspect.NoneType)]  # UNSET is left out already
        if len(arms) != 1:
            return
        kind = arms[0].type if isinstance(arms[0], msgspec.inspect.Metadata) else arms[0]
    if isinstance(kind, msgspec.inspect.IntType):
        for attribute, value in (
            ("minimum", kind.ge),
            ("exclusive_minimum", kind.gt),
            ("maximum", kind.le),
            ("exclusive_maximum", kind.lt),
        ):
            if value is not None:
                setattr(schema, attribute, value)
    elif isinstance(kind, msgspec.inspect.StrType):
        text_rules: tuple[tuple[str, int | str | None], ...] = (
            ("min_length", kind.min_length),
            ("max_length", kind.max_length),
            ("pattern", kind.pattern and openapi_pattern(kind.pattern)),  # Python's ``\Z`` is ECMA's ``$``
        )
        for attribute, text_rule in text_rules:
            if text_rule is not None:
                setattr(schema, attribute, text_rule)
    elif isinstance(kind, msgspec.inspect.ListType):
        target = _arm(schema, lambda s: s.items is not None)
        if target is not None:
            target.min_items = kind.min_length if kind.min_length is not None else target.min_items
            target.max_items = kind.max_length if kind.max_length is not None else target.max_items
            _constrain(target.items, kind.item_type)
    elif isinstance(kind, msgspec.inspect.DictType):
        target = _arm(schema, lambda s: isinstance(s.additional_properties, Schema))
        if target is not None:
            _constrain(target.additional_properties, kind.value_type)  # type: ignore[arg-type]
            names = Schema(type=OpenAPIType.STRING)
            _constrain(names, kind.key_type)
            if names.min_length is not None or names.max_length is not None or names.pattern is not None:
                target.property_names = names


def _arm(schema: Schema, test: Callable[[Schema], bool]) -> Schema | None:
    """``schema`` itself, or the ``oneOf`` arm of it, that passes ``test``."""
    if test(schema):
        return schema
    return next((arm for arm in schema.one_of or () if isinstance(arm, Schema) and test(arm)), None)


class AllowHeaderMiddleware:
    """Answer ``OPTIONS`` with every method the path has (RFC 9110 §9.3.7, §10.2.1), ``HEAD`` with
    ``GET`` (``webshop.web.head``).

    Litestar 2 builds its automatic ``OPTIONS`` handler when the first handler of a path is
    registered, so ``Allow`` lists only that handler's methods (litestar-org/litestar#4169, fixed in
    Litestar 3). This middleware rewrites the header from the app's route map.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._allow: dict[str, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; on an ``OPTIONS`` response replace ``Allow`` with the path's methods."""
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "OPTIONS":
            await self.app(scope, receive, send)
            return
        allow = self._allowed(scope)

        async def send_with_allow(message: Message) -> None:
            if allow and message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                if "allow" in headers:
                    headers["Allow"] = allow
            await send(message)

        await self.app(scope, receive, send_with_allow)

    def _allowed(self, scope: Scope) -> str:
        """``Allow`` for the matched route: every method registered for its path (``""`` if unknown)."""
        handler = scope.get("route_handler")
        paths = sorted(getattr(handler, "paths", ()) or ())
        if not paths:
            return ""
        if paths[0] not in self._allow:
            methods = scope["app"].route_handler_method_map.get(paths[0], {})
            allowed = {*methods, "OPTIONS", *(("HEAD",) if "GET" in methods else ())} - {"websocket", "asgi"}
            self._allow[paths[0]] = ", ".join(sorted(allowed)) if methods else ""
        return self._allow[paths[0]]
