"""Jinja configuration: the template directory, and the filters and globals every page uses."""

from __future__ import annotations

import functools
import html
import itertools
from collections.abc import Callable, Iterable
from mimetypes import guess_type
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context
from litestar.enums import MediaType
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.response.base import ASGIResponse
from litestar.template.config import TemplateConfig
from litestar.utils.empty import value_or_default
from litestar.utils.scope.state import ScopeState
from markupsafe import Markup

from webshop.checkout.quote import countries, country_name
from webshop.media import image_url
from webshop.money import format_money
from webshop.orders.figures import OrderFigures
from webshop.pricing.tax import rate_label
from webshop.text import readable_email
from webshop.web import AnyRequest, seo
from webshop.web.caching import STATIC_DIR, StaticAssets

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie

    from webshop.config import Settings

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"


def money(amount: int | None, currency: str = "USD") -> str:
    """Jinja filter: ``{{ 129900 | money("USD") }}`` → ``$1,299.00``; the one place money is formatted."""
    return "" if amount is None else format_money(amount, currency)


SHARED_FILTERS: dict[str, Callable[..., str]] = {
    "money": money,
    "rate_label": rate_label,
    "readable_email": readable_email,
}
"""The Jinja filters the pages and the e-mails (``webshop.mail.render``) both use: an amount in minor units
with its currency (``money``), a tax rate as a percentage (``rate_label``) and an address as people read it
(``readable_email``)."""


def query_url(path: str, params: dict[str, Any]) -> str:
    """Jinja global: ``path`` with ``params`` as a query string (lists repeat the key)."""
    query = urlencode(params, doseq=True)
    return f"{path}?{query}" if query else path


_URLS_STATE_KEY = "webshop_url_paths"
"""Key in ``app.state`` of ``{(route name, path parameters): path}`` (``url_for``'s memory)."""
_MAX_URLS = 50_000
"""Remembered paths per application (product slugs make the most); the map starts afresh beyond."""


@pass_context
def url_for(context: Context, route_name: str, /, **path_parameters: Any) -> str:
    """Jinja global: the path of the route named ``route_name`` with ``path_parameters``, as Litestar's
    own ``url_for`` makes it (``Litestar.route_reverse``), remembered per application.

    The routes do not change while an application runs, so a name and its parameters always give the
    same path; Litestar's reverse look-up sorts and scans the route's candidates on every call, which
    was a seventh of a product page's time.

    Raises:
        NoRouteMatchFoundException: no route has that name, or a path parameter is missing or of the
            wrong type (from ``route_reverse``; nothing is remembered then).
    """
    app = context["request"].app
    known = app.state.get(_URLS_STATE_KEY)
    if known is None:
        known = app.state[_URLS_STATE_KEY] = {}
    try:
        key: Any = (route_name, *sorted(path_parameters.items()))
        path = known.get(key)
    except TypeError:  # an unhashable parameter: not remembered
        return app.route_reverse(route_name, **path_parameters)  # type: ignore[no-any-return]
    if path is None:
        path = app.route_reverse(route_name, **path_parameters)
        if len(known) >= _MAX_URLS:
            known.clear()
        known[key] = path
    return path  # type: ignore[no-any-return]


_TOKEN_MARK = "\x00csrf-token\x00"  # noqa: S105 (a placeholder, not a secret)
"""Stands for the visitor's CSRF token in cached HTML (a NUL never occurs in rendered text)."""


@pass_context
def cached_fragment(context: Context, name: str, key: Any) -> Markup:
    """Jinja global: template ``name`` rendered with the current context, cached under ``key``.

    ``{{ cached_fragment("catalog/_catalog.html", result.cache_key) }}`` renders the catalog's grid,
    filters and category tree once per query and catalog version (``key`` holds both, see
    ``CatalogPage.cache_key``); the entry lives in the catalog's per-process cache, so a write that
    bumps the version stops its use on every worker at the next request, and old entries age out.
    The one per-visitor part of such HTML, the CSRF token in the cards' add-to-cart forms, is stored
    as a mark and replaced by this visitor's token on every use (OWASP CSRF Prevention Cheat Sheet:
    a token per session, never shared). ``key=None`` renders without caching.
    """
    if key is None:
        # The output of an autoescaping template: already escaped HTML.
        return Markup(context.environment.get_template(name).render(context.get_all()))  # noqa: S704
    request = context.get("request")
    token = _visitor_token(request) if request is not None else ""
    full = ("html", key, name)
    stored = _recall(full, token)
    if stored is None:
        stored = context.environment.get_template(name).render(context.get_all())
        _keep(full, stored, token)
    return Markup(stored)  # noqa: S704 (escaped template output, escaped token)


def _visitor_token(request: AnyRequest) -> str:
    """The visitor's CSRF token as it stands in rendered HTML (escaped), or ``""``."""
    return html.escape(value_or_default(ScopeState.from_scope(request.scope).csrf_token, ""))


def _keep(key: Any, rendered: str, token: str) -> None:
    """Keep ``rendered`` HTML under ``key`` in the catalog's cache, the visitor's ``token`` as a mark."""
    from webshop.catalog.cache import CACHE

    CACHE.put(key, rendered.replace(token, _TOKEN_MARK) if token else rendered, len(rendered) // 8)


def _recall(key: Any, token: str) -> str | None:
    """The HTML kept under ``key`` with ``token`` (this visitor's) in place of the mark, or ``None``."""
    from webshop.catalog.cache import CACHE, MISS

    stored = CACHE.get(key)
    return None if stored is MISS else str(stored).replace(_TOKEN_MARK, token)


@functools.lru_cache(maxsize=64)
def template_media_type(template_name: str) -> str:
    """The media type ``Template`` sends for ``template_name`` when neither it nor the handler names
    one: guessed from the name's suffixes (``catalog/product.html`` → ``text/html``), else ``text/plain``.
    """
    for suffix in PurePath(template_name).suffixes:
        if guessed := guess_type(f"name{suffix}")[0]:
            return guessed
    return MediaType.TEXT.value


class CachedPageTemplate(Template):
    """A ``Template`` response whose rendered page is kept under ``page_key`` in the catalog's
    per-process cache and reused while the key is the same (``page_key=None``: rendered as usual).

    For pages whose every part is named by the key but the visitor's CSRF token, which is stored as a
    mark and replaced by this visitor's token on every use, as ``cached_fragment`` does (OWASP CSRF
    Prevention Cheat Sheet: a token per session, never shared). The caller makes the key hold
    whatever else could differ between visitors (webshop/catalog/web.py: anonymous visitors without
    pending messages, by cart count).
    """

    def __init__(self, *args: Any, page_key: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.page_key = page_key

    def to_asgi_response(
        self,
        app: Any,
        request: AnyRequest,
        *,
        media_type: MediaType | str | None = None,
        **kwargs: Any,
    ) -> ASGIResponse:
        """The cached page with this visitor's token, or the page rendered now (and kept)."""
        if self.page_key is None:
            return super().to_asgi_response(app, request, media_type=media_type, **kwargs)
        token = _visitor_token(request)
        full = ("page", self.page_key, self.template_name)
        stored = _recall(full, token)
        if stored is None:
            response = super().to_asgi_response(app, request, media_type=media_type, **kwargs)
            _keep(full, bytes(response.body).decode(self.encoding), token)
            return response
        # What the parent class sends, with the stored body instead of a new render (the template
        # engine's context and render cost a tenth of a kept page's time).
        chosen = self.media_type or media_type or template_media_type(self.template_name or "")
        return self._response(stored.encode(self.encoding), chosen, **kwargs)

    def _response(
        self,
        body: bytes,
        media_type: MediaType | str,
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> ASGIResponse:
        """The ``ASGIResponse`` ``Template.to_asgi_response`` builds, for an already rendered ``body``."""
        return ASGIResponse(
            background=self.background or background,
            body=body,
            content_length=None,
            cookies=self.cookies if cookies is None else itertools.chain(self.cookies, cookies),
            encoded_headers=encoded_headers,
            encoding=self.encoding,
            headers={**headers, **self.headers} if headers is not None else self.headers,
            is_head_response=is_head_response,
            media_type=media_type,
            status_code=self.status_code or status_code,
        )


def template_config(
    settings: Settings | None = None, assets: StaticAssets | None = None
) -> TemplateConfig[JinjaTemplateEngine]:
    """Template config for Litestar's Jinja plugin (autoescaping on for HTML and XML).

    Args:
        settings: ``base_url`` makes the absolute URLs of canonical links, Open Graph tags and JSON-LD
            (default: ``http://127.0.0.1:8000``).
        assets: Content hashes for ``static_url`` (default: the files under ``static/``, hashed now).
    """
    assets = assets or StaticAssets(STATIC_DIR)
    base_url = (settings.shop.base_url if settings else "http://127.0.0.1:8000").rstrip("/")
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters.update(SHARED_FILTERS, country_name=country_name)
    environment.globals["image_url"] = image_url
    environment.globals["query_url"] = query_url
    environment.globals["cached_fragment"] = cached_fragment
    environment.globals["static_url"] = assets.url
    environment.globals["absolute_url"] = functools.partial(seo.absolute_url, base_url)
    environment.globals["listing_canonical"] = seo.listing_canonical
    environment.globals["product_json_ld"] = functools.partial(seo.product_json_ld, base_url=base_url)
    # How prices are shown (WEBSHOP_PRICE_MODE): the storefront says "incl. VAT" or "excl. tax" beside them.
    gross = bool(settings and settings.shop.price_mode == "gross")
    environment.globals["shop_currency"] = settings.shop.currency if settings else "USD"
    environment.globals["prices_include_tax"] = gross
    environment.globals["tax_note"] = "incl. VAT" if gross else "excl. tax"
    environment.globals["default_country"] = settings.shop.default_country if settings else "US"
    # Attempts the worker makes at an unanswered refund (WEBSHOP_REFUND_MAX_ATTEMPTS): the admin's pages
    # say whether it still asks by itself.
    environment.globals["refund_max_attempts"] = settings.payments.refund_max_attempts if settings else 20
    environment.globals["order_figures"] = OrderFigures.of
    environment.globals["countries"] = countries()  # ISO 3166-1, by name: the address forms' list
    engine = JinjaTemplateEngine.from_environment(environment)
    environment.globals["url_for"] = url_for  # after Litestar's own, which it replaces
    return TemplateConfig(instance=engine)
