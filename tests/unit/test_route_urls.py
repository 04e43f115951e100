"""Redirect targets built from route names: path parameters, query and fragment, 303 or HX-Location."""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get, post
from litestar.params import FromPath
from litestar.plugins.htmx import HTMXPlugin
from litestar.testing import TestClient

from webshop.web.responses import route_url, see_other_to


@get("/orders/{number:str}", name="order", sync_to_thread=False)
def order(number: FromPath[str]) -> str:
    return number


@get("/account/verify-email", name="verify_email.prompt", sync_to_thread=False)
def verify() -> str:
    return ""


@get("/urls", sync_to_thread=False)
def urls(request: Request[Any, Any, Any]) -> list[str]:
    return [
        route_url(request, "order", number="WS-1", query={"placed": "1"}),
        route_url(request, "verify_email.prompt", query={"next": "/checkout/review?x=a b"}),
        route_url(request, "order", number="WS-2", fragment="lines"),
    ]


@post("/go", status_code=200, sync_to_thread=False)
def go(request: Request[Any, Any, Any]) -> Any:
    return see_other_to(request, "order", number="WS-3", query={"cancelled": "1"})


def test_route_url_keeps_slashes_in_query_values_and_adds_the_fragment():
    with TestClient(Litestar([order, verify, urls])) as client:
        assert client.get("/urls").json() == [
            "/orders/WS-1?placed=1",
            "/account/verify-email?next=/checkout/review%3Fx%3Da%20b",
            "/orders/WS-2#lines",
        ]


def test_see_other_to_is_a_303_or_hx_location_for_a_fragment_request():
    with TestClient(Litestar([order, go], plugins=[HTMXPlugin()])) as client:
        plain = client.post("/go", follow_redirects=False)
        assert (plain.status_code, plain.headers["location"]) == (303, "/orders/WS-3?cancelled=1")
        htmx = client.post("/go", headers={"HX-Request": "true"}, follow_redirects=False)
        assert htmx.status_code == 200 and '"/orders/WS-3?cancelled=1"' in htmx.headers["hx-location"]
