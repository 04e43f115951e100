"""The API documentation pages work without the internet: Swagger UI, ReDoc and Scalar render the
operations from the shop's own vendored bundles, and no request leaves for another host."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from playwright.sync_api import expect

if TYPE_CHECKING:
    from playwright.sync_api import Page, Route

DOCS = ["/api/docs", "/api/redoc", "/api/scalar"]


def test_api_docs_render_from_the_shop_alone(page: Page, live_server: str) -> None:
    origin = urlsplit(live_server).netloc
    elsewhere: list[str] = []

    def only_the_shop(route: Route) -> None:
        if urlsplit(route.request.url).netloc == origin:
            route.continue_()
        else:  # recorded, and refused as if the machine were offline
            elsewhere.append(route.request.url)
            route.abort("internetdisconnected")

    page.route("**/*", only_the_shop)
    for path in DOCS:
        response = page.goto(path, timeout=60_000)  # the first visit compresses MBs of bundles once
        assert response is not None and response.status == 200, path
        assert "http" not in response.headers["content-security-policy"], path  # no other host allowed
        if path.endswith("/scalar"):  # Scalar renders a tag's operations on demand
            page.get_by_text("catalog", exact=True).first.click(timeout=60_000)
        expect(page.get_by_text("/api/products").first).to_be_visible(timeout=60_000)
    assert elsewhere == [], f"requests to other hosts: {elsewhere}"
