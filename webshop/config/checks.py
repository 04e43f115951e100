"""Advice on settings that load but are probably wrong, and the base URL of a served shop."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping

from webshop.config.fields import IGNORED_VARIABLES, KNOWN_VARIABLES
from webshop.config.settings import Settings


def unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Warnings for ``WEBSHOP_*`` variables that are no setting, most likely typos.

    Returns:
        One message per unknown name, with the closest known name when there is one:
        ``"<name> is not a webshop setting and is ignored (did you mean WEBSHOP_PAGE_SIZE?)"``.
    """
    environ = os.environ if environ is None else environ
    messages = []
    for name in sorted(environ):
        if not name.startswith("WEBSHOP_") or name in KNOWN_VARIABLES or name in IGNORED_VARIABLES:
            continue
        close = difflib.get_close_matches(name, sorted(KNOWN_VARIABLES), n=1, cutoff=0.75)
        hint = f" (did you mean {close[0]}?)" if close else ""
        messages.append(f"{name} is not a webshop setting and is ignored{hint}")
    return messages


def settings_warnings(settings: Settings, environ: Mapping[str, str] | None = None) -> list[str]:
    """Things that work but are probably wrong: unknown ``WEBSHOP_*`` names, production over plain
    http, production without an SMTP server. Returns one message per finding."""
    messages = unknown_variables(environ)
    if settings.server.production and not settings.security.secure_cookies:
        messages.append(
            f"WEBSHOP_BASE_URL is {settings.shop.base_url} in production: cookies are not marked Secure and HSTS "
            "is off; serve the shop over https and set WEBSHOP_BASE_URL=https://..."
        )
    if settings.server.production and not settings.mail.smtp_host:
        messages.append(
            f"WEBSHOP_SMTP_HOST is not set in production: e-mails are written to {settings.mail.outbox_dir}, "
            "not sent; set WEBSHOP_SMTP_HOST (and WEBSHOP_SMTP_USERNAME/PASSWORD) to send them"
        )
    return messages


def served_base_url(host: str, port: int) -> str:
    """The base URL for links (in e-mails) when ``WEBSHOP_BASE_URL`` is not set: where the shop serves.

    Args:
        host: The interface ``webshop serve``/``demo`` listens on; a wildcard (``0.0.0.0``, ``::``)
            becomes the loopback address, an IPv6 address gets its brackets.
        port: The TCP port it listens on.

    Returns:
        ``http://HOST:PORT``, e.g. ``http://127.0.0.1:8612``.
    """
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host.strip(), host.strip())  # noqa: S104
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
