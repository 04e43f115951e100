"""Outbound webhooks end to end, through a real HTTP receiver started by the test on 127.0.0.1.

The app's background sender POSTs to a ``http.server`` on a free port; each test reads what that
receiver got (headers and raw body) and checks the signature twice: with ``webshop.webhooks.signing.verify``
and with an independent HMAC computed here from the Standard Webhooks recipe. Every test runs on SQLite
and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select

from tests.api_user import assert_problem, token_pair
from tests.conftest import app_client, make_settings
from tests.factories import make_user
from tests.integration.conftest import ADMIN_EMAIL
from tests.shopper import post, text_of
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import User, UserRole, WebhookDelivery, WebhookEvent
from webshop.webhooks.events import queue_event
from webshop.webhooks.sender import WebhookSender
from webshop.webhooks.service import WebhookService
from webshop.webhooks.signing import verify


@pytest.fixture
def settings(db_url: str, tmp_path: Any) -> Settings:
    """Settings with a fast webhook sender: polls every 50 ms, retries after 50 ms (then 100 ms...)."""
    return make_settings(
        db_url, tmp_path / "media", webhook_poll_seconds=0.05, webhook_retry_seconds=0.05, webhook_timeout=5.0
    )


async def admin_headers(client: Any, alchemy: ShopAlchemyConfig) -> dict[str, str]:
    await make_user(alchemy, ADMIN_EMAIL, UserRole.ADMIN, name="Boss")
    return {"Authorization": f"Bearer {(await token_pair(client, ADMIN_EMAIL))['access_token']}"}


def independent_signature(secret: str, event_id: str, timestamp: str, body: bytes) -> str:
    """Standard Webhooks' recipe, written out here: key = base64 after ``whsec_``."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{event_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


async def until(check: Callable[[], Any], timeout: float = 15) -> Any:
    """Wait until the coroutine function ``check`` returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.03)
    raise AssertionError("the condition did not hold in time")


async def test_a_test_event_is_signed_and_retried_until_the_endpoint_accepts_it(client, alchemy, receiver):
    headers = await admin_headers(client, alchemy)
    created = await client.post(
        "/api/webhooks", json={"url": receiver.url, "events": ["order.placed"], "description": "ERP"}, headers=headers
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    secret = endpoint["secret"]
    assert secret.startswith("whsec_") and len(secret) >= 24

    receiver.fail_next = 2  # two 500 answers, then a 200
    queued = await client.post(f"/api/webhooks/{endpoint['id']}/test", headers=headers)
    assert queued.status_code == 202, queued.text
    event_id = queued.json()["event_id"]

    attempts = await receiver.wait_for(3)
    assert [status for status, _, _ in attempts] == [500, 500, 200]
    assert {h["webhook-id"] for _, h, _ in attempts} == {event_id}  # one id on every attempt
    _, received, body = attempts[-1]
    assert received["content-type"] == "application/json"
    assert verify(secret, received, body) == event_id
    expected = independent_signature(secret, event_id, received["webhook-timestamp"], body)
    assert hmac.compare_digest(received["webhook-signature"], expected)
    payload = json.loads(body)
    assert payload["id"] == event_id and payload["type"] == "webhook.test"
    assert payload["data"]["endpoint_id"] == endpoint["id"]

    async def delivered() -> Any:
        page = (await client.get(f"/api/webhooks/{endpoint['id']}/deliveries", headers=headers)).json()
        return page if page["items"] and page["items"][0]["status"] == "delivered" else None

    log = (await until(delivered))["items"]
    assert len(log) == 1
    assert (log[0]["event_id"], log[0]["attempts"], log[0]["response_status"], log[0]["last_error"]) == (
        event_id,
        3,
        200,
        "",
    )
    assert log[0]["delivered_at"] is not None

    # Redelivery: the same event again with a new round of attempts; refused for another endpoint's
    # delivery (404) and while the endpoint is disabled (409).
    url = f"/api/webhooks/{endpoint['id']}/deliveries/{log[0]['id']}/redeliver"
    again = await client.post(url, headers=headers)
    assert again.status_code == 202, again.text
    assert (again.json()["event_id"], again.json()["attempts"]) == (event_id, 0)
    fourth = (await receiver.wait_for(4))[3]
    assert (fourth[0], fourth[1]["webhook-id"], fourth[2]) == (200, event_id, body)
    log = (await until(delivered))["items"]
    assert (len(log), log[0]["attempts"]) == (1, 1)
    other = await client.post("/api/webhooks", json={"url": receiver.url, "events": ["order.placed"]}, headers=headers)
    assert_problem(
        await client.post(f"/api/webhooks/{other.json()['id']}/deliveries/{log[0]['id']}/redeliver", headers=headers),
        404,
    )
    await client.patch(f"/api/webhooks/{endpoint['id']}", json={"is_active": False}, headers=headers)
    refused = assert_problem(await client.post(url, headers=headers), 409)
    assert refused["detail"] == "This endpoint is disabled: enable it to send it events again."


async def test_only_a_committed_event_is_sent(client, alchemy, receiver):
    headers = await admin_headers(client, alchemy)
    body = {"url": receiver.url, "events": ["order.placed", "stock.low"]}
    assert (await client.post("/api/webhooks", json=body, headers=headers)).status_code == 201
    async with write_session(alchemy) as session:
        await queue_event(session, WebhookEvent.ORDER_PLACED, {"number": "ROLLED-BACK"})
        await session.rollback()
    async with write_session(alchemy) as session:
        await queue_event(session, WebhookEvent.ORDER_PAID, {"number": "NOT-SUBSCRIBED"})
        await queue_event(session, WebhookEvent.STOCK_LOW, {"sku": "KEPT"})
        await session.commit()

    (_, _, sent), *_ = await receiver.wait_for(1)
    assert json.loads(sent)["data"] == {"sku": "KEPT"}
    await asyncio.sleep(0.3)  # a few more polls: nothing else comes
    assert len(receiver.requests) == 1
    async with alchemy.get_session() as session:
        assert [d.event_type for d in await session.scalars(select(WebhookDelivery))] == ["stock.low"]


async def test_the_api_validates_and_refuses_whoever_is_not_an_admin(client, alchemy):
    headers = await admin_headers(client, alchemy)
    url = "https://example.com/hooks"

    bad_scheme = assert_problem(
        await client.post(
            "/api/webhooks", json={"url": "ftp://example.com/x", "events": ["order.paid"]}, headers=headers
        ),
        400,
    )
    assert "http:// or https://" in json.dumps(bad_scheme)
    # A stray bracket makes the URL unreadable (an unclosed IPv6 address): refused, never a 500.
    torn = await client.post("/api/webhooks", json={"url": "http://host]x/", "events": ["order.paid"]}, headers=headers)
    assert "http:// or https://" in json.dumps(assert_problem(torn, 422))
    unknown = assert_problem(
        await client.post("/api/webhooks", json={"url": url, "events": ["order.exploded"]}, headers=headers), 400
    )
    assert "order.placed, order.paid" in json.dumps(unknown)  # the message lists the known events
    short = {"url": url, "events": ["order.paid"], "secret": "too-short"}
    assert_problem(await client.post("/api/webhooks", json=short, headers=headers), 400)
    not_base64 = {"url": url, "events": ["order.paid"], "secret": "whsec_" + "!" * 30}
    assert (
        "base64" in assert_problem(await client.post("/api/webhooks", json=not_base64, headers=headers), 422)["detail"]
    )

    mine = "a-shared-secret-of-enough-length"
    created = await client.post(
        "/api/webhooks", json={"url": url, "events": ["order.paid", "order.placed"], "secret": mine}, headers=headers
    )
    assert created.status_code == 201, created.text
    endpoint = created.json()
    assert (endpoint["secret"], endpoint["events"], endpoint["is_active"]) == (
        mine,
        ["order.placed", "order.paid"],
        True,
    )
    path = f"/api/webhooks/{endpoint['id']}"

    changed = await client.patch(path, json={"events": ["stock.low"], "is_active": False}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["events"], changed.json()["is_active"]) == (["stock.low"], False)
    assert [e["id"] for e in (await client.get("/api/webhooks", headers=headers)).json()] == [endpoint["id"]]
    assert (await client.get(path, headers=headers)).json()["secret"] == mine
    assert "enable it" in assert_problem(await client.post(f"{path}/test", headers=headers), 409)["detail"]

    await make_user(alchemy, "ada@example.com", name="Ada")
    customer = {"Authorization": f"Bearer {(await token_pair(client, 'ada@example.com'))['access_token']}"}
    for method, target in (("GET", "/api/webhooks"), ("GET", path), ("DELETE", path), ("POST", f"{path}/test")):
        assert_problem(await client.request(method, target, headers=customer), 403)
    assert_problem(await client.get("/api/webhooks"), 401)

    assert (await client.delete(path, headers=headers)).status_code == 204
    for method, target in (("GET", path), ("PATCH", path), ("GET", f"{path}/deliveries"), ("POST", f"{path}/test")):
        body = {"description": "x"} if method == "PATCH" else None
        assert_problem(await client.request(method, target, json=body, headers=headers), 404)


async def test_production_refuses_private_addresses_at_registration_and_at_send_time(settings, alchemy, receiver):
    body = {"url": receiver.url, "events": ["order.placed"]}
    async with app_client(settings, alchemy, env="production", base_url="http://127.0.0.1:8000") as shop:
        headers = await admin_headers(shop, alchemy)
        refused = assert_problem(await shop.post("/api/webhooks", json=body, headers=headers), 422)
        assert "127.0.0.1" in refused["detail"] and "WEBSHOP_WEBHOOK_ALLOW_PRIVATE" in refused["detail"]
    overrides = {"env": "production", "base_url": "http://127.0.0.1:8000", "webhook_allow_private": True}
    async with app_client(settings, alchemy, **overrides) as shop:
        assert (await shop.post("/api/webhooks", json=body, headers=headers)).status_code == 201

    # Registered while private addresses were allowed; now they are not: the attempt fails, unsent.
    strict = settings.with_values(env="production", base_url="http://127.0.0.1:8000")
    async with write_session(alchemy) as session:
        admin = await session.scalar(select(User).where(User.email == ADMIN_EMAIL))
        endpoint = (await WebhookService(session=session).list_endpoints())[0]
        delivery = await WebhookService(session=session).send_test(admin, endpoint.id)
    await WebhookSender(strict.webhooks, alchemy, server=strict.server).send_due()
    async with alchemy.get_session() as session:
        row = await session.get(WebhookDelivery, delivery.id)
    assert row is not None and row.status == "failed" and row.attempts == 1
    assert row.last_error.startswith("Not sent: The host 127.0.0.1 resolves to a private")
    assert receiver.requests == []


async def test_admin_registers_an_endpoint_and_sends_a_test_event_without_javascript(admin, alchemy, receiver):
    new = await admin.get("/admin/webhooks/new")
    assert new.status_code == 200
    assert 'for="webhook-url"' in new.text and 'value="order.placed"' in new.text

    refused = await post(
        admin, "/admin/webhooks", {"url": "gopher://x", "events": "order.nope"}, token_from="/admin/webhooks/new"
    )
    assert refused.status_code == 422
    page = text_of(refused.text)
    assert "Use an http:// or https:// URL." in page and "Unknown event order.nope" in page

    form = {"url": receiver.url, "events": ["order.placed", "product.updated"], "description": "Warehouse"}
    created = await post(admin, "/admin/webhooks", form, token_from="/admin/webhooks/new")
    assert created.status_code == 303, created.text
    detail_url = created.headers["location"]
    detail = await admin.get(detail_url)
    assert "Registered " + receiver.url in text_of(detail.text) and "whsec_" in detail.text
    listing = text_of((await admin.get("/admin/webhooks")).text)
    assert receiver.url in listing and "order.placed, product.updated" in listing

    sent = await post(admin, f"{detail_url}/test", token_from=detail_url)
    assert sent.status_code == 303
    (_, received, _), *_ = await receiver.wait_for(1)

    async def logged() -> str:
        text = text_of((await admin.get(detail_url)).text)
        return text if "Delivered" in text else ""

    log = await until(logged)
    assert f"webhook.test {received['webhook-id']} Delivered 1 200" in log

    # "Send again": the same event (same webhook-id and body) once more, logged as delivered again.
    async with write_session(alchemy) as session:
        delivery_id = await session.scalar(select(WebhookDelivery.id))
    again = await post(admin, f"{detail_url}/deliveries/{delivery_id}/redeliver", token_from=detail_url)
    assert again.status_code == 303, again.text
    assert f"Event {received['webhook-id']} queued again" in text_of((await admin.get(detail_url)).text)
    first, second = await receiver.wait_for(2)
    assert second[1]["webhook-id"] == received["webhook-id"] and second[2] == first[2]
    await until(logged)

    disabled = await post(admin, f"{detail_url}/disable", token_from=detail_url)
    assert disabled.status_code == 303
    assert "Disabled" in text_of((await admin.get(detail_url)).text)
    assert (await admin.get(f"{detail_url}/delete")).status_code == 200
    deleted = await post(admin, f"{detail_url}/delete", token_from=f"{detail_url}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/admin/webhooks"
    assert (await admin.get(detail_url)).status_code == 404
