"""Small helpers shared by HTML controllers: page-or-fragment responses, post/redirect/get, page counts."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.plugins.htmx import HTMXRequest, HXLocation
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from webshop.web.templating import CachedPageTemplate


def page_or_fragment(
    request: Request[Any, Any, Any],
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


def see_other(request: Request[Any, Any, Any], url: str) -> Redirect | HXLocation:
    """Answer a successful form post: 303 for a plain or boosted request, ``HX-Location`` for other htmx.

    A boosted form follows the 303 itself (htmx swaps the body and pushes the final URL).
    """
    if isinstance(request, HTMXRequest) and request.htmx and not request.htmx.boosted:
        return HXLocation(redirect_to=url)
    return Redirect(url, status_code=HTTP_303_SEE_OTHER)


def page_count(total: int, page_size: int) -> int:
    """How many pages of ``page_size`` rows ``total`` rows fill (at least 1: an empty list is one page)."""
    return max(1, -(-total // page_size))
