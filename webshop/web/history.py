"""The browser's address bar after an htmx form post: it stays on the page the form was on.

With ``hx-boost`` htmx puts the URL of a boosted request into the history once the answer is swapped
in. For a post answered with a redirect that is right: the browser followed it, and htmx pushes the
page it landed on (post/redirect/get). But a post answered with the form again (a wrong password, a
stock adjustment that is not a number: 4xx with the messages) would leave the post's URL in the
address bar (``/account/password``), and reloading it, or coming back to it, asks for that URL with
``GET``: a 405 page. So every answer to an htmx request other than ``GET``/``HEAD`` says
``HX-Push-Url: false`` (htmx's response header: "prevents the browser's history from being
updated"), unless the handler set a history header of its own. Redirects are not affected: the
browser follows them and the ``GET`` at the end of the redirect answers without this header.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

HISTORY_HEADERS = frozenset({b"hx-push-url", b"hx-replace-url", b"hx-redirect", b"hx-location", b"hx-refresh"})
"""Headers by which a handler decides the history itself (htmx 2 response headers)."""


class KeepAddressOnPosts:
    """ASGI middleware: an htmx request with a method other than ``GET``/``HEAD`` is answered with
    ``HX-Push-Url: false`` (see the module docstring).

    Args:
        app: The application to wrap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the header to the answer's start when the request is an htmx post."""
        if (
            scope["type"] != ScopeType.HTTP
            or scope.get("method") in ("GET", "HEAD")
            or (b"hx-request", b"true") not in scope["headers"]
        ):
            await self.app(scope, receive, send)
            return

        async def keep_address(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() in HISTORY_HEADERS for name, _ in headers):
                    headers.append((b"hx-push-url", b"false"))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, keep_address)


def install(app: Litestar) -> Litestar:
    """Wrap ``app``'s request handling in ``KeepAddressOnPosts``; returns ``app`` itself."""
    app.asgi_handler = KeepAddressOnPosts(app.asgi_handler)
    return app
