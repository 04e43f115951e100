"""Every admin route refuses whoever is not an admin: the routes come from the app's own route table.

A route is an admin route when its handler (or its controller) carries ``requires_admin`` or
``requires_shop_staff`` (the pages under ``/admin``; the second also lets shop members in, issue 16)
or ``api_admin`` (the API's admin operations). A route added later is checked
without anyone writing a test for it. Guards run before a handler reads its path parameters, body or
dependencies, so any well-typed path parameter (``1`` for an int) and an empty body will do.

What the app does today, per kind (the per-module guard tests check the same for a few routes, and
that nothing changed in the database):

- pages: signed out, a plain request is sent to the sign-in form (303, ``?next=`` back) and an htmx
  request is told to go there (``HX-Redirect``); a signed-in customer gets the 403 page.
- API: no token is 401 with a ``Bearer`` challenge; a customer's token is 403; both problem+json.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from litestar import Litestar
from sqlalchemy import func, select

from tests.factories import make_user
from tests.shopper import PASSWORD, csrf, sign_in
from webshop.db.models import AuditEvent
from webshop.security.jwt import api_admin
from webshop.security.session import requires_admin
from webshop.shops.guards import requires_shop_staff

PAGE_403 = "This page is for administrators"
HTMX = {"HX-Request": "true"}
PAGE_GUARDS = {requires_admin, requires_shop_staff}
"""The admin pages' guards: the same answers to the signed out and to customers."""
PLATFORM_ONLY = ("/admin/users", "/admin/categories", "/admin/shops")
"""Admin areas that stay with platform admins (``requires_admin``) when shop members use the others."""
OWNERS_TOO = re.compile(r"^/admin/shops/\{shop_id:int\}(/members(/\{user_id:int\}/remove)?|/logo(/remove)?)?$")
"""Within ``/admin/shops``, a shop's own page, profile, logo and staff: its members reach them (the shop
service lets owners change them, staff only look, anyone else finds no such shop)."""
PARAMETER_RE = re.compile(r"\{(\w+):(\w+)\}")
SAMPLE_VALUES = {"int": "1", "str": "x", "uuid": str(uuid.UUID(int=1)), "path": "x"}
"""A value of each path parameter type: the guard refuses the request before the handler looks it up."""


@dataclass(frozen=True)
class AdminRoute:
    """One method of one admin route: ``kind`` is ``page`` (``requires_admin``) or ``api`` (``api_admin``)."""

    method: str
    path: str
    kind: str

    @property
    def url(self) -> str:
        return PARAMETER_RE.sub(lambda m: SAMPLE_VALUES[m.group(2)], self.path)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def guards_of(handler: Any) -> set[Any]:
    """The guards of a route handler from every layer (app, router, controller, handler), unwrapped."""
    return {getattr(guard, "func", guard) for guard in handler.resolve_guards()}


def handlers(app: Litestar) -> list[tuple[str, Any]]:
    """Every (path, HTTP route handler) of the app, Litestar's automatic OPTIONS handlers left out."""
    return [
        (route.path, handler)
        for route in app.routes
        for handler in getattr(route, "route_handlers", ())
        if getattr(handler, "http_methods", None) and handler.http_methods != {"OPTIONS"}
    ]


def admin_routes(app: Litestar) -> list[AdminRoute]:
    """Every method of every route guarded for admins, in the app's order."""
    found = []
    for path, handler in handlers(app):
        guards = guards_of(handler)
        kind = "page" if guards & PAGE_GUARDS else "api" if api_admin in guards else None
        if kind:
            found.extend(AdminRoute(method, path, kind) for method in sorted(handler.http_methods - {"HEAD"}))
    return found


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_route_table_has_admin_routes_and_every_admin_path_is_guarded(app):
    routes = admin_routes(app)
    assert {route.kind for route in routes} == {"page", "api"}, routes
    unguarded = [
        f"{path} {sorted(handler.http_methods)}"
        for path, handler in handlers(app)
        if path.startswith("/admin") and not guards_of(handler) & PAGE_GUARDS
    ]
    assert unguarded == []
    open_to_members = [
        f"{path} {sorted(handler.http_methods)}"
        for path, handler in handlers(app)
        if path.startswith(PLATFORM_ONLY)
        and requires_admin not in guards_of(handler)
        and not (OWNERS_TOO.match(path) and "delete" not in path)
    ]
    assert open_to_members == []
    # The API's admin operations live under /api, and no page outside /admin is for admins only.
    assert all(route.path.startswith("/api/") for route in routes if route.kind == "api"), routes
    assert all(route.path.startswith("/admin") for route in routes if route.kind == "page"), routes
    # Every path parameter type has a sample value, so the test below can call every route.
    types = {kind for route in routes for _, kind in PARAMETER_RE.findall(route.path)}
    assert types <= set(SAMPLE_VALUES), f"add a sample value for {types - set(SAMPLE_VALUES)}"


async def call(client: Any, route: AdminRoute, headers: dict[str, str]) -> Any:
    """The route called with an empty body (no redirect followed)."""
    return await client.request(route.method, route.url, headers=headers, follow_redirects=False)


def problem(response: Any, status: int) -> dict[str, Any] | None:
    """The problem+json body if the response is that status as problem+json, else None."""
    if response.status_code != status or not response.headers.get("content-type", "").startswith(
        "application/problem+json"
    ):
        return None
    return response.json()


async def test_every_admin_route_sends_the_signed_out_to_sign_in_and_refuses_a_customer(client, app, alchemy):
    """One app, one client: every admin route signed out, then as a customer (browser and API)."""
    routes = admin_routes(app)
    pages = [route for route in routes if route.kind == "page"]
    apis = [route for route in routes if route.kind == "api"]
    assert pages and apis
    failures: list[str] = []

    # Signed out.
    token = {"x-csrftoken": await csrf(client)}
    for route in pages:
        unsafe = token if route.method != "GET" else {}
        plain = await call(client, route, unsafe)
        location = plain.headers.get("location", "")
        if plain.status_code != 303 or not location.startswith("/account/sign-in?next=/admin"):
            failures.append(f"{route} signed out: {plain.status_code} to {location!r}, not 303 to the sign-in form")
        htmx = await call(client, route, {**unsafe, **HTMX})
        if not htmx.headers.get("hx-redirect", "").startswith("/account/sign-in?next=/admin"):
            failures.append(f"{route} signed out, htmx: {htmx.status_code} without HX-Redirect to the sign-in form")
    for route in apis:
        response = await call(client, route, {})
        if problem(response, 401) is None or not response.headers.get("www-authenticate", "").startswith("Bearer"):
            failures.append(f"{route} without a token: {response.status_code}, not a 401 problem with a challenge")

    # A signed-in customer, in the browser and with an API token.
    await make_user(alchemy, "eve@example.com", name="Eve")
    assert (await sign_in(client, "eve@example.com")).status_code == 303
    token = {"x-csrftoken": await csrf(client, "/account")}
    for route in pages:
        unsafe = token if route.method != "GET" else {}
        for headers in (unsafe, {**unsafe, **HTMX}):
            response = await call(client, route, headers)
            if response.status_code != 403 or PAGE_403 not in response.text:
                failures.append(
                    f"{route} as a customer{' (htmx)' if headers.get('HX-Request') else ''}: "
                    f"{response.status_code}, not the 403 page"
                )
    issued = await client.post("/api/auth/token", data={"username": "eve@example.com", "password": PASSWORD})
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['access_token']}"}
    for route in apis:
        response = await call(client, route, bearer)
        body = problem(response, 403)
        if body is None or "administrators" not in body.get("detail", ""):
            failures.append(f"{route} with a customer's token: {response.status_code}, not a 403 problem")

    assert failures == [], "\n".join(failures)
    async with alchemy.get_session() as session:  # no handler ran: nothing was done, so nothing audited
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0
