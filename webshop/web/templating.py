"""Jinja configuration: the template directory, and the filters and globals every page uses."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from webshop.media import image_url
from webshop.money import format_money
from webshop.web import seo
from webshop.web.caching import STATIC_DIR, StaticAssets

if TYPE_CHECKING:
    from webshop.config import Settings

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"


def money(amount: int | None, currency: str = "USD") -> str:
    """Jinja filter: ``{{ 129900 | money("USD") }}`` → ``$1,299.00``; the one place money is formatted."""
    return "" if amount is None else format_money(amount, currency)


def query_url(path: str, params: dict[str, Any]) -> str:
    """Jinja global: ``path`` with ``params`` as a query string (lists repeat the key)."""
    query = urlencode(params, doseq=True)
    return f"{path}?{query}" if query else path


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
    base_url = (settings.base_url if settings else "http://127.0.0.1:8000").rstrip("/")
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    environment.filters["money"] = money
    environment.globals["image_url"] = image_url
    environment.globals["query_url"] = query_url
    environment.globals["static_url"] = assets.url
    environment.globals["absolute_url"] = functools.partial(seo.absolute_url, base_url)
    environment.globals["listing_canonical"] = seo.listing_canonical
    environment.globals["product_json_ld"] = functools.partial(seo.product_json_ld, base_url=base_url)
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))
