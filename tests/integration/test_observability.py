"""Observability over HTTP, on both engines: request ids, structured logs without secrets, Server-Timing,
slow-request and security-event logs, ``/health`` and ``/ready``, and Prometheus metrics.

Log lines are captured from the root logger through the app's own formatter (``log_formatter``), so the
tests see exactly what an operator's log collector would get.
"""

from __future__ import annotations

import io
import json
import logging
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import AsyncTestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text, update
from sqlalchemy.engine import make_url

from tests.api_user import bearer
from tests.factories import seed_catalog
from tests.live import free_port, live_server, shop_env
from tests.shopper import DECLINED_CARD, PASSWORD, SUCCESS_CARD, place, ready_to_pay
from tests.shopper import csrf as csrf_token
from webshop.accounts.service import UserService
from webshop.app import create_app
from webshop.config import Settings
from webshop.db.engine import create_alchemy_config, write_session
from webshop.db.models import RefreshToken, UserRole, Variant
from webshop.observability.logging import configure_logging, get_logger, log_formatter

REQUEST_ID = re.compile(r"^[0-9a-f]{32}$")
SERVER_TIMING = re.compile(r'^app;dur=\d+\.\d(, db;dur=\d+\.\d;desc="\d+ queries")?$')


class Logs:
    """Log output captured as JSON lines through the app's formatter."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    @property
    def text(self) -> str:
        return self.buffer.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]

    def events(self, **match: object) -> list[dict[str, Any]]:
        return [line for line in self.lines() if all(line.get(k) == v for k, v in match.items())]

    def requests(self, **match: object) -> list[dict[str, Any]]:
        """The per-request lines (``request``, or ``slow request`` on a busy machine)."""
        return [line for line in self.events(**match) if line["event"] in {"request", "slow request"}]


@pytest.fixture
def logs(app: Any) -> Iterator[Logs]:
    """Everything logged at INFO and above while the test runs (the app is built first: it sets up logging)."""
    captured = Logs()
    handler = logging.StreamHandler(captured.buffer)
    handler.setFormatter(log_formatter("json"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield captured
    finally:
        root.removeHandler(handler)


def via_proxy(app: Any, peer: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")


def metric(body: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` with ``labels`` in a /metrics body (0 when absent)."""
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


async def scrape(client: Any) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


# --- request ids ---------------------------------------------------------------------------------


async def test_every_response_and_log_line_carries_the_request_id(client, logs):
    first, second = await client.get("/account/sign-in"), await client.get("/no-such-page")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert all(REQUEST_ID.match(i) for i in ids) and ids[0] != ids[1]

    token = await csrf_token(client)
    failed = await client.post(
        "/account/sign-in", data={"email": "nobody@example.com", "password": "nope", "_csrf_token": token}
    )
    request_id = failed.headers["x-request-id"]
    assert logs.events(request_id=request_id, event="sign-in failed")
    request_line = logs.requests(request_id=request_id)[0]
    assert request_line["method"] == "POST" and request_line["route"] == "/account/sign-in"
    assert request_line["status"] == 400 and request_line["duration_ms"] > 0
    # A made-up id from an ordinary client is not taken over.
    spoofed = await client.get("/account/sign-in", headers={"X-Request-ID": "client-chosen-id-123"})
    assert REQUEST_ID.match(spoofed.headers["x-request-id"])


async def test_a_trusted_proxy_passes_its_request_id_and_the_client_address(settings, alchemy, logs):
    app = create_app(settings.with_values(trusted_proxies=("10.0.0.1",)), alchemy=alchemy)
    async with AsyncTestClient(app=app), via_proxy(app, "10.0.0.1") as proxy:
        forwarded = {"X-Request-ID": "edge-0f3a9c2e-77b1", "X-Forwarded-For": "203.0.113.9"}
        response = await proxy.get("/account/sign-in", headers=forwarded)
        assert response.headers["x-request-id"] == "edge-0f3a9c2e-77b1"
        assert logs.requests(request_id="edge-0f3a9c2e-77b1")[0]["client"] == "203.0.113.9"
        malformed = await proxy.get("/account/sign-in", headers={"X-Request-ID": "no spaces <allowed>"})
        assert REQUEST_ID.match(malformed.headers["x-request-id"])


# --- log format and redaction --------------------------------------------------------------------


def test_logs_are_json_in_production_and_readable_in_development(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in [n for n in list(__import__("os").environ) if n.startswith("WEBSHOP_")]:
        monkeypatch.delenv(name)
    assert Settings.from_env().server.log_format == "console"
    monkeypatch.setenv("WEBSHOP_LOG_FORMAT", "json")
    assert Settings.from_env().server.log_format == "json"
    monkeypatch.delenv("WEBSHOP_LOG_FORMAT")
    monkeypatch.setenv("WEBSHOP_ENV", "production")
    monkeypatch.setenv("WEBSHOP_SECRET_KEY", "k9Qz2Lw8Xv4Rt6Yp1Nm3Bc5Hd7Fg0Js2Ae")
    monkeypatch.setenv("WEBSHOP_METRICS_TOKEN", "scrape-token-0123456789")  # production refuses open metrics
    production = Settings.from_env()
    assert production.server.log_format == "json"

    json_out, console_out = io.StringIO(), io.StringIO()
    try:
        configure_logging(production.server, stream=json_out)
        get_logger("webshop.test").warning("something happened", order="WS-1", password="hunter22!")
        logging.getLogger("uvicorn.error").warning("a %s from uvicorn", "line")
        configure_logging(production.with_values(log_format="console").server, stream=console_out)
        get_logger("webshop.test").info("readable", answer=42)
    finally:
        configure_logging(production.with_values(log_format="console").server)
    ours, uvicorn = (json.loads(line) for line in json_out.getvalue().splitlines())
    assert ours["event"] == "something happened" and ours["level"] == "warning" and ours["order"] == "WS-1"
    assert ours["logger"] == "webshop.test" and ours["timestamp"].endswith("Z")
    assert ours["password"] == "[REDACTED]" and "hunter22" not in json_out.getvalue()
    assert uvicorn["event"] == "a line from uvicorn" and uvicorn["logger"] == "uvicorn.error"
    readable = console_out.getvalue()
    assert "readable" in readable and "answer=42" in readable and not readable.lstrip().startswith("{")


@pytest.fixture
def sql_logged() -> Iterator[None]:
    """Log every SQL statement with its parameters (what ``WEBSHOP_ECHO_SQL`` would show)."""
    sql = logging.getLogger("sqlalchemy.engine")
    level = sql.level
    sql.setLevel(logging.INFO)
    try:
        yield
    finally:
        sql.setLevel(level)


async def test_no_password_token_cookie_or_card_number_is_ever_logged(client, alchemy, logs, sql_logged):
    """Sign-up, a failed and a good sign-in, API tokens and a refresh, and checkouts with cards, with every
    SQL statement and its parameters logged too, and a careless log call of a whole form and headers."""
    skus = await seed_catalog(alchemy)
    wrong_password = "Wr0ng-Pa55word-xyz"

    form = await ready_to_pay(client, "ada@example.com", skus["DC-1"])  # registers and signs in on the page
    assert (await place(client, form, card=SUCCESS_CARD)).status_code == 303
    token = await csrf_token(client)
    bad = await client.post(
        "/account/sign-in", data={"email": "ada@example.com", "password": wrong_password, "_csrf_token": token}
    )
    assert bad.status_code in {302, 303, 400}
    async with AsyncTestClient(app=client.app, base_url="http://127.0.0.1:8000") as other:
        form = await ready_to_pay(other, "bob@example.com", skus["DC-1"])
        assert (await place(other, form, card=DECLINED_CARD)).status_code in {200, 402, 422}
        session_cookie = other.cookies.get("webshop_session")
        csrf_cookie = other.cookies.get("webshop_csrf")
    issued = await client.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
    pair = issued.json()
    refreshed = (await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})).json()
    me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {refreshed['access_token']}"})
    assert me.status_code == 200

    careless = get_logger("webshop.careless")
    careless.warning(
        "form received",
        form={"email": "ada@example.com", "password": PASSWORD, "card_number": "4242 4242 4242 4242"},
        headers={"Authorization": f"Bearer {pair['access_token']}", "Cookie": f"webshop_session={session_cookie}"},
    )
    logging.getLogger("webshop.careless").warning(
        "retrying with password=%s and refresh_token=%s for card %s", PASSWORD, pair["refresh_token"], SUCCESS_CARD
    )

    output = logs.text
    assert "sign-in failed" in output and '"route": "/api/auth/token"' in output and "INSERT INTO orders" in output
    assert "[REDACTED]" in output and "[CARD]" in output
    secrets = {
        "password": PASSWORD,
        "wrong password": wrong_password,
        "access token": pair["access_token"],
        "refreshed access token": refreshed["access_token"],
        "refresh token": pair["refresh_token"],
        "new refresh token": refreshed["refresh_token"],
        "session cookie": session_cookie,
        "csrf cookie": csrf_cookie,
        "card": SUCCESS_CARD,
        "declined card": DECLINED_CARD,
        "spaced card": "4242 4242 4242 4242",
        "password hash": "$argon2id$",
    }
    leaked = [name for name, value in secrets.items() if value and value in output]
    assert leaked == []


# --- timing --------------------------------------------------------------------------------------


async def test_server_timing_on_every_response(client, alchemy):
    await seed_catalog(alchemy)
    page = await client.get("/")
    assert SERVER_TIMING.match(page.headers["server-timing"]) and "db;dur=" in page.headers["server-timing"]
    for path in ("/static/css/site.css", "/no-such-page", "/api/products", "/health"):
        assert SERVER_TIMING.match((await client.get(path)).headers["server-timing"]), path


async def test_slow_requests_are_logged_with_method_route_status_and_duration(settings, alchemy, logs):
    async with AsyncTestClient(app=create_app(settings.with_values(slow_request_ms=1), alchemy=alchemy)) as c:
        await c.get("/account/sign-in")
    slow = logs.events(event="slow request")
    assert slow and slow[0]["level"] == "warning"
    assert (slow[0]["method"], slow[0]["route"], slow[0]["status"]) == ("GET", "/account/sign-in", 200)
    assert slow[0]["duration_ms"] >= 1


async def test_fast_requests_are_not_logged_as_slow(settings, alchemy, logs):
    app = create_app(settings.with_values(slow_request_ms=60_000), alchemy=alchemy)
    async with AsyncTestClient(app=app) as client:
        await client.get("/health")
    assert logs.events(event="request", route="/health", level="info") and not logs.events(event="slow request")


# --- security events -----------------------------------------------------------------------------


async def test_security_events_are_logged(client, alchemy, logs):
    async with write_session(alchemy) as session:
        user = await UserService(session=session).register(email="ada@example.com", name="Ada", password=PASSWORD)
        await session.commit()
    for _ in range(5):
        await client.post("/api/auth/token", data={"username": "ada@example.com", "password": "wrong"})
    await client.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
    failed = logs.events(security_event="sign_in_failed", user_id=user.id)
    assert [line["failures"] for line in failed] == [1, 2, 3, 4, 5]
    assert logs.events(security_event="account_locked", user_id=user.id)[0]["locked_seconds"] == 60
    assert logs.events(security_event="sign_in_locked", user_id=user.id)

    async with write_session(alchemy) as session:
        await session.execute(update(type(user)).where(type(user).id == user.id).values(locked_until=None))
        await session.commit()
    pair = (await client.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})).json()
    await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    async with write_session(alchemy) as session:  # used over the grace period ago (``REUSE_GRACE``)
        await session.execute(update(RefreshToken).values(used_at=datetime.now(UTC) - timedelta(minutes=1)))
        await session.commit()
    await client.post("/api/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert logs.events(security_event="refresh_token_reuse", user_id=user.id)

    async with write_session(alchemy) as session:
        await UserService(session=session).set_role(user.id, UserRole.ADMIN, actor=None)
    role = logs.events(security_event="user_role", user_id=user.id)
    assert role and role[0]["changes"] == {"role": ["customer", "admin"]}


async def test_rate_limit_hits_are_logged(settings, alchemy, logs):
    app = create_app(settings.with_values(rate_limit_auth="1/minute"), alchemy=alchemy)
    async with AsyncTestClient(app=app) as client:
        for _ in range(2):
            response = await client.post("/api/auth/token", data={"username": "x@example.com", "password": "nope"})
    assert response.status_code == 429
    hit = logs.events(security_event="rate_limited")
    assert hit and hit[0]["limit"] == "auth" and hit[0]["path"] == "/api/auth/token"


# --- health and readiness ------------------------------------------------------------------------


async def test_health_and_ready(client):
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "ok"}
    paths = (await client.get("/api/openapi.json")).json()["paths"]
    assert not {"/health", "/ready", "/metrics"} & set(paths)


async def test_ready_is_503_when_the_database_is_behind_the_migrations(client, alchemy):
    async with write_session(alchemy) as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'e33b3bd223b4'"))
        await session.commit()
    response = await client.get("/ready")
    assert response.status_code == 503 and response.headers["retry-after"]
    body = response.json()
    assert body["status"] == "unavailable" and "e33b3bd223b4" in body["reason"] and "migrations" in body["reason"]
    assert (await client.get("/health")).status_code == 200


async def test_ready_is_503_quickly_when_the_database_is_unreachable(db_url, tmp_path, settings):
    if db_url.startswith("sqlite"):
        dead = f"sqlite+aiosqlite:///{tmp_path}/no-such-folder/shop.db"
    else:
        dead = make_url(db_url).set(port=free_port()).render_as_string(hide_password=False)
    broken = settings.with_values(database_url=dead)
    alchemy = create_alchemy_config(broken, null_pool=True)
    try:
        async with AsyncTestClient(app=create_app(broken, alchemy=alchemy)) as client:
            started = time.monotonic()
            response = await client.get("/ready")
            assert time.monotonic() - started < 5
            assert response.status_code == 503 and "unreachable" in response.json()["reason"]
            assert (await client.get("/health")).status_code == 200
    finally:
        await alchemy.get_engine().dispose()


# --- metrics -------------------------------------------------------------------------------------


async def test_metrics_count_requests_by_route_template(client, alchemy):
    await seed_catalog(alchemy)
    before = await scrape(client)
    assert (await client.get("/products/delta-chair")).status_code == 200
    assert (await client.get("/no-such-page-7f3a")).status_code == 404
    after = await scrape(client)
    route = {"method": "GET", "route": "/products/{slug}", "status": "200"}
    name = "webshop_http_requests_total"
    assert metric(after, name, **route) - metric(before, name, **route) == 1
    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert metric(after, name, **unmatched) - metric(before, name, **unmatched) == 1
    latency = "webshop_http_request_duration_seconds_count"
    assert metric(after, latency, **route) - metric(before, latency, **route) == 1
    assert "delta-chair" not in after and "no-such-page-7f3a" not in after


async def test_metrics_count_orders_and_checkout_failures_by_reason(client, alchemy):
    skus = await seed_catalog(alchemy)
    before = await scrape(client)

    form = await ready_to_pay(client, "ada@example.com", skus["DC-1"])
    assert (await place(client, {**form, "checkout_token": "short"})).status_code == 422  # validation
    async with write_session(alchemy) as session:
        await session.execute(update(Variant).where(Variant.id == skus["DC-1"]).values(stock=0))
        await session.commit()
    assert (await place(client, form, card=SUCCESS_CARD)).status_code == 409  # sold out meanwhile
    async with write_session(alchemy) as session:
        await session.execute(update(Variant).where(Variant.id == skus["DC-1"]).values(stock=12))
        await session.commit()
    assert (await place(client, form, card=SUCCESS_CARD)).status_code == 303
    assert (await place(client, form, card=SUCCESS_CARD)).status_code == 303  # the same form again: no 2nd order
    # A payment declined for good: an API client's declined token (a card declined on the hosted page
    # leaves the order waiting for another card, and is no checkout failure).
    api = {**(await bearer(client, "eve@example.com")), "Idempotency-Key": "metrics-declined"}
    await client.post("/api/cart/items", json={"sku": "DC-1", "quantity": 1}, headers=api)
    address = {"name": "Eve", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345", "country": "US"}
    body = {"shipping_address": address, "shipping_method": "standard", "payment": {"token": "tok_chargeDeclined"}}
    assert (await client.post("/api/checkout", json=body, headers=api)).status_code == 402

    after = await scrape(client)
    orders = "webshop_orders_placed_total"
    assert metric(after, orders) - metric(before, orders) == 1
    failures = "webshop_checkout_failures_total"
    for reason in ("validation", "payment_declined", "out_of_stock"):
        assert metric(after, failures, reason=reason) - metric(before, failures, reason=reason) == 1, reason


async def test_metrics_can_require_a_bearer_token(settings, alchemy):
    app = create_app(settings.with_values(metrics_token="scrape-token-0123456789"), alchemy=alchemy)
    async with AsyncTestClient(app=app) as client:
        assert (await client.get("/metrics")).status_code == 401
        wrong = {"Authorization": "Bearer guess"}
        assert (await client.get("/metrics", headers=wrong)).status_code == 401
        right = {"Authorization": "Bearer scrape-token-0123456789"}
        assert (await client.get("/metrics", headers=right)).status_code == 200


def test_metrics_are_summed_over_several_workers(tmp_path: Path):
    """``webshop serve --workers 2``: whichever worker answers ``/metrics`` reports all workers' requests
    (prometheus_client's multiprocess mode, through ``PROMETHEUS_MULTIPROC_DIR``)."""
    env = shop_env(f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}", tmp_path)

    def static_count(http: httpx.Client) -> float:
        body = http.get("/metrics").text
        return metric(body, "webshop_http_requests_total", method="GET", route="/static/{file_path}", status="200")

    with live_server(env, tmp_path, workers=2) as base_url, httpx.Client(base_url=base_url, timeout=10) as http:
        for _ in range(30):
            with httpx.Client(base_url=base_url, timeout=10) as fresh:  # new connections spread over workers
                assert fresh.get("/static/css/site.css").status_code == 200
        # A request is counted just after its response is sent: give the last one a moment.
        deadline = time.monotonic() + 5
        while static_count(http) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
        counts = {static_count(http) for _ in range(6)}
    assert counts == {30.0}
