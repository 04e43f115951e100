"""Jinja configuration: the template directory, and the filters and globals every page uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from webshop.media import image_url
from webshop.money import format_money

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"


def money(amount: int | None, currency: str = "USD") -> str:
    """Jinja filter: ``{{ 129900 | money("USD") }}`` → ``$1,299.00``; the one place money is formatted."""
    return "" if amount is None else format_money(amount, currency)


def query_url(path: str, params: dict[str, Any]) -> str:
    """Jinja global: ``path`` with ``params`` as a query string (lists repeat the key)."""
    query = urlencode(params, doseq=True)
    return f"{path}?{query}" if query else path


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    """Template config for Litestar's Jinja plugin (autoescaping on for HTML)."""
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
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(environment))
