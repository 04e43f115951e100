"""``HEAD`` on every ``GET`` route (RFC 9110 §9.3.2: "the server SHOULD send the same header fields
in response to a HEAD request as it would have sent if the request method had been GET", and §9.1:
all general-purpose servers MUST support GET and HEAD).

Litestar 2 answers ``HEAD`` only on handlers registered for it, so a page checked by an uptime
monitor, a link checker or ``curl -I`` got ``405 Method Not Allowed``. ``HeadAsGet`` runs the request
as a ``GET`` and sends the answer's status and headers (``Content-Length`` included) without its body.

The server must still see ``HEAD`` when the answer goes out: uvicorn reads ``scope["method"]`` as each
response message is sent, and for a ``GET`` it expects ``Content-Length`` bytes of body (httptools:
"Response content shorter than Content-Length", a traceback in the log and the connection closed) or
frames a body without one as chunked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from litestar.enums import ScopeType

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    """ASGI middleware: a ``HEAD`` request is handled as ``GET`` and answered without a body.

    The app sees ``GET`` in the scope while it handles the request; each message passed on to the
    server (the response start and the final, empty body) goes with ``HEAD`` in it, so that the server
    frames a ``HEAD`` response: headers only, ``Content-Length`` as the ``GET`` would have sent it.

    Args:
        app: The application to wrap.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass other requests on unchanged; for ``HEAD``, drop every body chunk but the last (empty)."""
        if scope["type"] != ScopeType.HTTP or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            # The server's protocol holds this same scope dict and reads its method while sending (see
            # the module docstring). ``send`` is Litestar's, its ``before_send`` hooks first (they look
            # at the session in the scope, not the method); the app, still running after the response
            # start, sees GET again.
            scope["method"] = "HEAD"
            try:
                await send(message)
            finally:
                scope["method"] = "GET"

        # The scope itself, not a copy: Litestar's ``before_send`` hooks (the session's commit and close)
        # read the scope the request came in with.
        scope["method"] = "GET"
        try:
            await self.app(scope, receive, headers_only)
        finally:
            scope["method"] = "HEAD"


def install(app: Litestar) -> Litestar:
    """Wrap ``app``'s request handling in ``HeadAsGet``; returns ``app`` itself."""
    app.asgi_handler = HeadAsGet(app.asgi_handler)
    return app
