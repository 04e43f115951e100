"""Small helpers shared by HTML controllers: page-or-fragment responses, post/redirect/get, page counts."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from litestar.plugins.htmx import HTMXRequest, HXLocation
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from webshop.web import AnyRequest
from webshop.web.templating import CachedPageTemplate


def page_or_fragment(
    request: AnyRequest,
    page: str,
    fragments: dict[str, str],
    context: dict[str, Any],
    *,
    status_code: int = 200,
    page_key: Any = None,
) -> Template:
    """Render ``page``, or, for an htmx request whose ``HX-Target`` is a key of ``fragments``, that fragment.

    The response varies on ``HX-Request`` (so caches keep page and fragment apart). With ``page_key``
    the whole page (not a fragment) is kept and reused under that key (``CachedPageTemplate``).
    """
    template = page
    if isinstance(request, HTMXRequest) and request.htmx:
        target = request.htmx.target
        if target and target in fragments:
            template = fragments[target]
    headers = {"Vary": "HX-Request"}
    if page_key is not None and template == page:
        return CachedPageTemplate(
            template, context=context, status_code=status_code, headers=headers, page_key=page_key
        )
    return Template(template, context=context, status_code=status_code, headers=headers)


def wants_fragment(request: AnyRequest) -> bool:
    """True for an htmx request that swaps a part of the page (``hx-get``/``hx-post``), False for a plain
    request or a boosted link or form (which swaps the whole body, so it wants the page)."""
    return isinstance(request, HTMXRequest) and bool(request.htmx) and not request.htmx.boosted


def route_url(
    request: AnyRequest,
    route_name: str,
    /,
    *,
    query: dict[str, str] | None = None,
    fragment: str | None = None,
    **path_params: Any,
) -> str:
    """The path of the route named ``route_name`` (``Litestar.route_reverse``), with a query and a fragment.

    ``route_url(request, "order", number="WS-1", query={"placed": "1"})`` is ``/orders/WS-1?placed=1``;
    ``route_url(request, "admin_categories", fragment="category-7")`` is ``/admin/categories#category-7``.
    Query values are percent-encoded with ``/`` left as it is (``?next=/checkout/review``).

    Raises:
        NoRouteMatchFoundException: no route has that name, or a path parameter is missing or of the wrong type.
    """
    url: str = request.app.route_reverse(route_name, **path_params)
    if query:
        url += "?" + urlencode(query, safe="/", quote_via=quote)
    if fragment:
        url += "#" + fragment
    return url


def see_other(request: AnyRequest, url: str) -> Redirect | HXLocation:
    """Answer a successful form post: 303 for a plain or boosted request, ``HX-Location`` for other htmx.

    A boosted form follows the 303 itself (htmx swaps the body and pushes the final URL).
    """
    if wants_fragment(request):
        return HXLocation(redirect_to=url)
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


def see_other_to(request: AnyRequest, route_name: str, /, **url_parts: Any) -> Redirect | HXLocation:
    """``see_other`` to the route named ``route_name``; ``url_parts`` are ``route_url``'s (the path
    parameters, ``query``, ``fragment``): ``see_other_to(request, "order", number=n, query={"placed": "1"})``.

    Raises:
        NoRouteMatchFoundException: as ``route_url``.
    """
    return see_other(request, route_url(request, route_name, **url_parts))


MAX_PAGE = 100_000
"""The last page number a list reads (a higher one is read as this one: past the end, it is empty)."""


def page_number(page: int) -> int:
    """A list's ``?page=`` as a page to read: 1 to ``MAX_PAGE`` (so its offset always fits the database)."""
    return min(max(page, 1), MAX_PAGE)


def page_count(total: int, page_size: int) -> int:
    """How many pages of ``page_size`` rows ``total`` rows fill (at least 1: an empty list is one page)."""
    return max(1, -(-total // page_size))
