"""E-mail templates: ``templates/email/<kind>.txt`` (plain text) and ``<kind>.html`` (HTML).

The text template sets the subject with ``{% set subject = "..." %}``; both templates get the same
context, plus ``shop_url`` (the shop's public URL) and the ``money`` filter used by the pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from webshop.orders.figures import OrderFigures
from webshop.web.templating import SHARED_FILTERS, TEMPLATE_DIR


@dataclass(frozen=True)
class RenderedEmail:
    """A rendered message: subject line, plain-text body and HTML body."""

    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Autoescape only the HTML part; StrictUndefined turns a missing variable into an error at queue
    # time (inside the transaction that caused the mail) instead of a message with a hole in it.
    environment = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR / "email"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(SHARED_FILTERS)
    environment.globals["order_figures"] = OrderFigures.of
    return environment


def render_email(kind: str, context: dict[str, Any]) -> RenderedEmail:
    """Render the ``kind`` templates with ``context``.

    Args:
        kind: Template name without extension, e.g. ``verify_email`` or ``order_confirmation``.
        context: Template variables (``shop_url`` must be among them).

    Returns:
        The subject (from the text template's ``subject`` variable, one line), text and HTML bodies.

    Raises:
        jinja2.TemplateError: a template is missing or uses a variable the context lacks.
    """
    environment = _environment()
    text_module = environment.get_template(f"{kind}.txt").make_module(context)
    subject = " ".join(str(getattr(text_module, "subject", "")).split())
    if not subject:
        raise ValueError(f"templates/email/{kind}.txt must set a subject")
    html = environment.get_template(f"{kind}.html").render(context, subject=subject)
    return RenderedEmail(subject=subject, text=str(text_module).strip() + "\n", html=html)
