"""PostgreSQL goes down under load and comes back: 503s in bounded time, then recovery without a restart.

The test runs a PostgreSQL server of its own (``initdb`` in a temporary folder, its own port and
socket folder), never the shared one, because it stops it. ``webshop serve`` runs with two workers
against it while clients browse pages, call the API and check out. Then the server is stopped
(``pg_ctl stop -m immediate``, as in a crash) and started again. Checked:

* while it is down every request is answered, within ``BOUND_S`` seconds, with 503: the friendly
  HTML page for pages, ``application/problem+json`` under ``/api``, with ``Retry-After``; never 500;
  ``/health`` (the process is up) keeps answering 200;
* after it is back, requests succeed again within ``RECOVERY_S`` seconds, with the same app processes;
* no order is half-written, the stock ledger is consistent, no stock is negative.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import glob
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import _migrate, make_settings, unavailable
from tests.factories import SMALL_CATALOG, P, seed_catalog
from tests.live import free_port, shop_env
from tests.order_checks import assert_orders_whole
from tests.server_process import serve
from tests.shopper import PASSWORD
from webshop.db.engine import create_alchemy_config

BOUND_S = 5.0
RECOVERY_S = 15.0
OUTAGE_S = 4.0
CATALOG = (*SMALL_CATALOG, P("Outage Fern", "plants", None, ("green",), (("OF-1", (), 1500, 100_000),)))
PAGES = ("/", "/products/epsilon-plant", "/?q=camera")
API = ("/api/products?limit=10", "/api/categories")
CHECKOUT_BODY = {
    "shipping_address": {"name": "A", "line1": "1 Way", "city": "Town", "postal_code": "1", "country": "US"},
    "shipping_method": "standard",
    "payment": {"token": "tok_visa"},
}


class OwnPostgres:
    """A throw-away PostgreSQL cluster in ``root``: initdb, start and stop with pg_ctl, on its own port."""

    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.root, self.bin_dir = root, bin_dir
        self.data, self.socket_dir, self.log = root / "data", root / "socket", root / "postgres.log"
        self.port = free_port()

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}\n{log}")

    def init(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            for path in (self.root, self.socket_dir):
                shutil.chown(path, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=80"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "immediate") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    """A PostgreSQL server this test may stop: never the shared one. Removed afterwards."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        unavailable("the database outage test needs PostgreSQL's initdb (apt-get install postgresql)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        unavailable("running as root, the outage test needs runuser to start PostgreSQL as the postgres user")
    root = Path(tempfile.mkdtemp(prefix="webshop-pg-"))
    server = OwnPostgres(root, Path(bins[-1]).parent)
    try:
        server.init()
        server.start()
        yield server
    finally:
        with contextlib.suppress(RuntimeError):
            server.stop("fast")
        shutil.rmtree(root, ignore_errors=True)


@dataclasses.dataclass
class Answer:
    """One request's outcome: what was asked, when (monotonic seconds), and what came back."""

    kind: str  # "page", "api", "checkout" or "health"
    path: str
    started: float
    ended: float
    status: int  # -1: no HTTP answer at all
    content_type: str = ""
    retry_after: str | None = None
    body: str = ""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


async def ask(answers: list[Answer], kind: str, client: httpx.AsyncClient, method: str, path: str, **kw) -> Answer:
    started = time.monotonic()
    try:
        response = await client.request(method, path, **kw)
        answer = Answer(
            kind,
            path,
            started,
            time.monotonic(),
            response.status_code,
            response.headers.get("content-type", ""),
            response.headers.get("retry-after"),
            response.text[:400],
        )
    except httpx.HTTPError as exc:
        answer = Answer(kind, path, started, time.monotonic(), -1, body=f"{type(exc).__name__}: {exc}")
    answers.append(answer)
    return answer


async def browse(base_url: str, product_id: int, answers: list[Answer], stop: asyncio.Event, offset: int) -> None:
    """A visitor: pages, API reads and the health check, round and round."""
    paths = [("page", p) for p in PAGES] + [("api", p) for p in (*API, f"/api/products/{product_id}")]
    paths.append(("health", "/health"))
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        index = offset
        while not stop.is_set():
            kind, path = paths[index % len(paths)]
            await ask(answers, kind, client, "GET", path)
            index += 1
            await asyncio.sleep(0.02)


async def api_user(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    registered = await client.post("/api/auth/register", json={"email": email, "password": PASSWORD, "name": "A"})
    assert registered.status_code == 201, registered.text
    token = await client.post("/api/auth/token", data={"username": email, "password": PASSWORD})
    assert token.status_code == 200, token.text
    return {"Authorization": f"Bearer {token.json()['access_token']}"}


async def buy(client: httpx.AsyncClient, auth: dict[str, str], answers: list[Answer], stop: asyncio.Event) -> None:
    """An API client placing one-fern orders, each with a new Idempotency-Key."""
    while not stop.is_set():
        added = await ask(
            answers, "checkout", client, "POST", "/api/cart/items", json={"sku": "OF-1", "quantity": 1}, headers=auth
        )
        if added.status in (200, 201):
            headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
            await ask(answers, "checkout", client, "POST", "/api/checkout", json=CHECKOUT_BODY, headers=headers)
        await asyncio.sleep(0.05)


def describe(answers: list[Answer]) -> str:
    return "\n".join(f"{a.kind} {a.path} {a.status} {a.seconds:.2f}s {a.body[:120]!r}" for a in answers[:15])


async def test_requests_get_503_while_postgres_is_down_and_succeed_after(own_postgres: OwnPostgres, tmp_path: Path):
    await asyncio.to_thread(_create_database, own_postgres)
    url = own_postgres.url("shop")
    await asyncio.to_thread(_migrate, url, tmp_path / "media")
    alchemy = create_alchemy_config(make_settings(url, tmp_path / "media"), null_pool=True)
    try:
        variants = await seed_catalog(alchemy, CATALOG)
    finally:
        await alchemy.get_engine().dispose()
    product_id = await _product_id(url, variants["EP-1"])

    env = shop_env(url, tmp_path, WEBSHOP_DB_CONNECT_TIMEOUT="2", WEBSHOP_DB_POOL_TIMEOUT="2")
    answers: list[Answer] = []
    stop = asyncio.Event()
    with serve(env, tmp_path, workers=2) as server:
        workers_before = server.worker_pids()
        async with contextlib.AsyncExitStack() as stack:
            buyers = [
                await stack.enter_async_context(httpx.AsyncClient(base_url=server.base_url, timeout=30))
                for _ in range(2)
            ]
            auths = [await api_user(c, f"buyer{i}@example.com") for i, c in enumerate(buyers)]
            load = [asyncio.create_task(browse(server.base_url, product_id, answers, stop, i)) for i in range(3)]
            load += [asyncio.create_task(buy(c, a, answers, stop)) for c, a in zip(buyers, auths, strict=True)]
            try:
                await asyncio.sleep(2)
                await asyncio.to_thread(own_postgres.stop, "immediate")
                down = time.monotonic()
                await asyncio.sleep(OUTAGE_S)
                restarting = time.monotonic()
                await asyncio.to_thread(own_postgres.start)
                up = time.monotonic()
                recovered = await _wait_for_recovery(answers, up)
                await asyncio.sleep(2)
            finally:
                stop.set()
                await asyncio.gather(*load)
        assert server.worker_pids() == workers_before, "the app processes were restarted"
        assert server.process.poll() is None

    outage = [a for a in answers if down < a.started < restarting]
    print(
        f"\n{len(answers)} requests; {len(outage)} during the {OUTAGE_S:g} s outage, slowest "
        f"{max(a.seconds for a in outage):.3f} s; statuses {sorted({a.status for a in outage})}; "
        f"PostgreSQL start took {up - restarting:.1f} s, recovered {recovered - up:.2f} s after"
    )
    # Never a 500, never a dropped connection, never slow.
    broken = [a for a in answers if a.status == -1 or (a.status >= 500 and a.status != 503)]
    assert broken == [], describe(broken)
    slow = [a for a in answers if a.seconds > BOUND_S]
    assert slow == [], describe(slow)
    assert all(a.status == 200 for a in answers if a.kind == "health"), "the liveness check failed"

    # While the database was down: 503, a page for pages, problem+json for the API.
    during = [a for a in answers if a.started > down and a.ended < restarting and a.kind != "health"]
    assert len(during) >= 20, f"only {len(during)} requests during the outage"
    assert [a for a in during if a.status != 503] == [], describe([a for a in during if a.status != 503])
    for answer in during:
        assert answer.retry_after, answer
        if answer.kind == "page":
            assert answer.content_type.startswith("text/html"), answer
            assert "Please try again" in answer.body or "<html" in answer.body.lower(), answer
        else:
            assert answer.content_type.startswith("application/problem+json"), answer
            assert '"status":503' in answer.body.replace(" ", ""), answer
    assert {a.kind for a in during} == {"page", "api", "checkout"}

    # Back again, by itself: every request after recovery succeeds.
    assert recovered - up < RECOVERY_S, f"recovered {recovered - up:.1f} s after PostgreSQL was back"
    after = [a for a in answers if a.started > recovered + 0.5]
    assert after and [a for a in after if a.status >= 400] == [], describe([a for a in after if a.status >= 400])
    assert any(a.path == "/api/checkout" and a.status == 201 for a in after), "no order placed after the outage"

    # No half-written order; every checkout that said 201 has its order.
    engine_config = create_alchemy_config(make_settings(url, tmp_path / "media"), null_pool=True)
    try:
        async with engine_config.get_session() as session:
            # A checkout whose payment step met the outage leaves its order pending (stock reserved).
            unanswered = sum(1 for a in answers if a.path == "/api/checkout" and a.status in (-1, 503))
            orders = await assert_orders_whole(session, pending_at_most=unanswered)
    finally:
        await engine_config.get_engine().dispose()
    placed = sum(1 for a in answers if a.path == "/api/checkout" and a.status == 201)
    attempted = sum(1 for a in answers if a.path == "/api/checkout")
    assert placed <= orders <= attempted


async def _wait_for_recovery(answers: list[Answer], up: float) -> float:
    """The moment a page, an API read and a checkout have each succeeded after PostgreSQL was back."""
    deadline = up + RECOVERY_S + BOUND_S
    while time.monotonic() < deadline:
        done = {
            (a.kind, a.path == "/api/checkout")
            for a in answers
            if a.started > up and a.status in (200, 201) and a.kind in ("page", "api", "checkout")
        }
        if {("page", False), ("api", False), ("checkout", True)} <= done:
            return time.monotonic()
        await asyncio.sleep(0.1)
    return time.monotonic()


def _create_database(server: OwnPostgres) -> None:
    from tests.conftest import _pg_exec, in_thread

    in_thread(_pg_exec(server.url("postgres"), 'CREATE DATABASE "shop"'))


async def _product_id(url: str, variant_id: int) -> int:
    from sqlalchemy import select

    from webshop.db.models import Variant

    config = create_alchemy_config(make_settings(url, Path(tempfile.gettempdir())), null_pool=True)
    try:
        async with config.get_session() as session:
            return await session.scalar(select(Variant.product_id).where(Variant.id == variant_id))
    finally:
        await config.get_engine().dispose()
