"""A webhook event committed before its server process is killed (SIGKILL) still arrives after a restart.

``webshop serve`` (one worker) commits a test event for an endpoint whose receiver is down; its first
attempt fails and the next is due seconds later. The process is killed before that attempt, the
receiver comes up, and a new ``webshop serve`` on the same database delivers the event: the same event
id, signed, exactly once. The outbox row, not the process's memory, carries the event (issue 17).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from tests.factories import make_user
from tests.live import shop_env
from tests.server_process import serve
from tests.shopper import PASSWORD
from tests.webhook_receiver import Receiver
from webshop.db.models import UserRole, WebhookDelivery
from webshop.webhooks.signing import verify


async def delivery(alchemy) -> WebhookDelivery:
    async with alchemy.get_session() as session:
        row = await session.scalar(select(WebhookDelivery))
    assert row is not None
    return row


async def test_an_event_committed_before_a_kill_is_delivered_after_the_restart(
    db_url: str, alchemy, tmp_path: Path, receiver: Receiver
):
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    env = shop_env(db_url, tmp_path, WEBSHOP_WEBHOOK_RETRY_SECONDS="3", WEBSHOP_WEBHOOK_POLL_SECONDS="0.2")
    receiver.fail_next = 1  # the receiver is "down" for the first attempt
    with serve(env, tmp_path, workers=1) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            token = await client.post("/api/auth/token", data={"username": "boss@example.com", "password": PASSWORD})
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            created = await client.post(
                "/api/webhooks", json={"url": receiver.url, "events": ["order.placed"]}, headers=headers
            )
            assert created.status_code == 201, created.text
            secret = created.json()["secret"]
            assert (await client.post(f"/api/webhooks/{created.json()['id']}/test", headers=headers)).status_code == 202
        [(status, first, _)] = await receiver.wait_for(1)
        assert status == 500
        deadline = time.monotonic() + 5
        while (await delivery(alchemy)).status != "pending":  # the failure is recorded; a retry is due later
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(10)
    left = await delivery(alchemy)
    assert left.status == "pending" and left.attempts == 1 and left.delivered_at is None

    with serve(env, tmp_path, workers=1):
        _, (status, again, body) = await receiver.wait_for(2, timeout=30)
    assert status == 200
    assert again["webhook-id"] == first["webhook-id"]  # the same event, so the receiver can de-duplicate
    assert verify(secret, again, body) == first["webhook-id"]
    done = await delivery(alchemy)
    assert done.status == "delivered" and done.attempts == 2 and len(receiver.requests) == 2
