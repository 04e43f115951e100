"""A worker process is killed (SIGKILL) in the middle of checkouts: nothing is half-written.

``webshop serve`` runs with two workers (PostgreSQL: a database of its own on the shared server;
SQLite: one file shared by both workers, which ``webshop serve`` allows). Twelve API shoppers fill
carts with one to three lines and check out, over and over. One worker is killed with SIGKILL; on
PostgreSQL at a moment when one of its database connections is inside a transaction. Afterwards:

* every order is whole: paid (or pending payment, at most one per request the kill cut off), with
  its lines, totals that add up, and stock movements matching its lines (tests/order_checks.py); no
  variant below zero;
* ``webshop check-stock`` exits 0: every variant's stock equals the sum of its ledger;
* the server kept serving: uvicorn started a new worker and checkouts succeed after the kill.

The victim is picked to be busy: on PostgreSQL a worker with an open transaction (pg_stat_activity's
client port matched to the worker's sockets), on SQLite the worker holding the most client connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from pathlib import Path

import httpx
import psutil
from sqlalchemy.engine import make_url

from tests.factories import P, seed_catalog
from tests.live import run_cli, shop_env
from tests.order_checks import assert_orders_whole
from tests.server_process import ServerProcess, serve
from tests.shopper import PASSWORD

SHOPPERS = 12
ORDERS_BEFORE_KILL = 5
AFTER_KILL_S = 4.0
SKUS = ("KL-1", "KL-2", "KL-3")
CATALOG = (
    P("Kill Lamp", "furniture", None, ("white",), ((SKUS[0], (), 2999, 150),)),
    P("Kill Kettle", "furniture", None, ("black",), ((SKUS[1], (), 4550, 150),)),
    P("Kill Kite", "footwear", None, ("red",), ((SKUS[2], (), 1299, 150),)),
)
BODY = {
    "shipping_address": {"name": "K", "line1": "1 Way", "city": "Town", "postal_code": "1", "country": "US"},
    "shipping_method": "standard",
    "payment": {"token": "tok_visa"},
}


class Tally:
    """What the shoppers saw: checkout outcomes with their times, and requests cut off by the kill."""

    def __init__(self) -> None:
        self.placed: list[float] = []  # when each 201 came back
        self.cut: list[str] = []  # requests that got no HTTP answer (their worker died)
        self.statuses: list[int] = []
        self.server_errors: list[str] = []


async def sign_in(base_url: str, index: int) -> dict[str, str]:
    """Register an API shopper and return its Authorization header."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        email = f"kill{index}@example.com"
        registered = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "K"})
        assert registered.status_code == 201, registered.text
        token = await client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
        return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def shopper(index: int, base_url: str, auth: dict[str, str], tally: Tally, stop: asyncio.Event) -> None:
    """Fill the cart (one to three lines) and check out, until told to stop."""
    rng = random.Random(index)
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
        while not stop.is_set():
            try:
                for sku in rng.sample(SKUS, k=rng.randint(1, 3)):
                    await client.post("/api/cart/items", json={"sku": sku, "quantity": rng.randint(1, 2)}, headers=auth)
                headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
                response = await client.post("/api/checkout", json=BODY, headers=headers)
                tally.statuses.append(response.status_code)
                if response.status_code == 201:
                    tally.placed.append(time.monotonic())
                    continue
                if response.status_code >= 500:
                    tally.server_errors.append(f"{response.status_code} {response.text[:300]}")
                await client.delete("/api/cart", headers=auth)  # sold out: start again with an empty cart
            except httpx.TransportError as exc:  # the worker serving this request was killed
                tally.cut.append(f"{type(exc).__name__}: {exc}")


def busiest_worker(server: ServerProcess) -> int:
    """The worker holding the most client connections (the likeliest to be in the middle of a request)."""
    port = int(server.base_url.rsplit(":", 1)[1])

    def connections(pid: int) -> int:
        with contextlib.suppress(psutil.NoSuchProcess):
            return sum(
                1
                for c in psutil.Process(pid).net_connections(kind="tcp")
                if c.laddr and c.laddr.port == port and c.status == psutil.CONN_ESTABLISHED
            )
        return 0

    return max(server.worker_pids(), key=connections)


async def worker_in_a_transaction(server: ServerProcess, db_url: str, timeout: float = 5.0) -> int:
    """PostgreSQL: a worker with a database connection inside a transaction right now (else any worker)."""
    import asyncpg

    url = make_url(db_url)
    connection = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ports = {
                row["client_port"]
                for row in await connection.fetch(
                    "SELECT client_port FROM pg_stat_activity WHERE datname = $1 AND xact_start IS NOT NULL "
                    "AND pid <> pg_backend_pid()",
                    url.database,
                )
            }
            for pid in server.worker_pids():
                with contextlib.suppress(psutil.NoSuchProcess):
                    if ports & {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.laddr}:
                        return pid
            await asyncio.sleep(0.005)
    finally:
        await connection.close()
    return busiest_worker(server)


async def test_sigkill_of_a_worker_leaves_no_half_written_order(db_url: str, alchemy, tmp_path: Path):
    await seed_catalog(alchemy, CATALOG)
    env = shop_env(db_url, tmp_path)
    tally, stop = Tally(), asyncio.Event()
    with serve(env, tmp_path, workers=2) as server:
        workers = server.worker_pids()
        assert len(workers) == 2, server.log[-2000:]
        auths = await asyncio.gather(*(sign_in(server.base_url, i) for i in range(SHOPPERS)))
        shoppers = [asyncio.create_task(shopper(i, server.base_url, auth, tally, stop)) for i, auth in enumerate(auths)]
        try:
            deadline = time.monotonic() + 60
            while len(tally.placed) < ORDERS_BEFORE_KILL:  # checkouts are flowing (on a busy machine it takes a while)
                assert time.monotonic() < deadline, f"only {len(tally.placed)} orders in 60 s: {tally.statuses[:20]}"
                await asyncio.sleep(0.05)
            if make_url(db_url).get_backend_name() == "postgresql":
                victim = await worker_in_a_transaction(server, db_url)
            else:
                victim = busiest_worker(server)
            placed_before = len(tally.placed)
            os.kill(victim, signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.sleep(AFTER_KILL_S)
            deadline = time.monotonic() + 20
            while len(replacement := server.worker_pids()) < 2 or victim in replacement:
                assert time.monotonic() < deadline, f"no new worker: {replacement}\n{server.log[-2000:]}"
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            await asyncio.gather(*shoppers)
        assert server.process.poll() is None, "the server died with its worker"
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            assert (await client.get("/api/products")).status_code == 200

    print(
        f"\n{len(tally.placed)} orders ({placed_before} before the kill), {len(tally.cut)} request(s) cut off, "
        f"statuses {sorted(set(tally.statuses))}, workers {workers} -> {replacement}"
    )
    assert placed_before > 0, "no checkout finished before the kill"
    assert any(t > killed for t in tally.placed), "no checkout succeeded after the kill"
    assert tally.server_errors == []
    assert set(tally.statuses) <= {201, 409, 503}, tally.statuses

    async with alchemy.get_session() as session:
        # A checkout cut off after its reservation committed leaves a pending order (its stock reserved).
        orders = await assert_orders_whole(session, pending_at_most=len(tally.cut))
    assert orders >= len(tally.placed)
    done = run_cli(["check-stock"], env, tmp_path, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "stock ledger consistent" in done.stdout
