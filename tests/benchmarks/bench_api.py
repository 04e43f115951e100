"""Benchmark: the JSON API on a 10,000-product catalog, beside a bare Litestar hello-world, 32 clients.

What it does, end to end, through the real command line, for each engine asked for:

1. ``webshop generate-catalog --products N`` into a temporary folder (once for all engines);
2. a fresh database: a SQLite file, or a database with a random name on the PostgreSQL server of
   ``--postgres-url`` / ``WEBSHOP_TEST_POSTGRES_URL``, dropped afterwards; ``webshop db upgrade`` and
   ``webshop import-catalog``; then ``ANALYZE`` unless ``--no-analyze`` (planner statistics, as a
   running shop has them);
3. ``webshop serve --workers W`` on 127.0.0.1; after a warm-up, ``--clients`` concurrent clients
   (one ``httpx.AsyncClient`` each, keep-alive) fetch, for ``--duration`` seconds per scenario:

   ========  =========================================================
   list      ``GET /api/products?limit=100`` (the first page, 100 items)
   detail    ``GET /api/products/{id}``, ids drawn at random (seeded)
   ========  =========================================================

4. then, in the same run, the bare hello-world (tests/benchmarks/hello_app.py) served by uvicorn
   with the settings of ``webshop serve`` (same worker count, uvloop + httptools, no proxy headers):

   ========  =========================================================
   hello     ``GET /`` answering ``{"hello": "world"}``
   ========  =========================================================

Measured: every request's latency (sent to last body byte, client side) and status; anything but a
200 with the expected JSON is an error. Reported per scenario: requests, errors, throughput (req/s)
and p50/p90/p99/max latency in ms, mean body size, and the CPU the load generator used.

The load generator is Python and shares the machine with the server: on a small machine it takes
CPU from the server, and for the hello-world it is likely the bottleneck itself (see "client CPU").
Compare figures from the same run, or at least from the same machine.

Run from the project root::

    .venv/bin/python -m tests.benchmarks.bench_api                      # both engines if PostgreSQL is set
    .venv/bin/python -m tests.benchmarks.bench_api --engine sqlite --duration 5 --products 2000
    .venv/bin/python -m tests.benchmarks.bench_api --engine postgres \\
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test --workers 2 --json out/api.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.benchmarks._common import (
    Summary,
    check_postgres_url,
    cli,
    default_postgres_url,
    fresh_database,
    machine,
    server_log_tail,
    table,
    warn_if_busy,
    workdir,
    write_json,
)
from tests.live import free_port, live_server, running, shop_env

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ("list", "detail", "hello")


@dataclass
class Run:
    """One scenario's measurements: latencies (s), body sizes (bytes), errors, wall and client CPU seconds."""

    latencies: list[float] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu_s: float = 0.0

    def figures(self) -> dict[str, Any]:
        """Throughput, latency summary (ms), mean body size, errors, client CPU."""
        summary = Summary.of(self.latencies, len(self.errors))
        return {
            "requests": len(self.latencies),
            "throughput_rps": round(len(self.latencies) / self.seconds, 1) if self.seconds else 0.0,
            "latency_ms": summary.as_dict(),
            "mean_bytes": round(sum(self.sizes) / len(self.sizes)) if self.sizes else 0,
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "seconds": round(self.seconds, 2),
            "client_cpu_s": round(self.client_cpu_s, 2),
        }


def check_answer(scenario: str, response: httpx.Response) -> str | None:
    """Why ``response`` is not the expected answer for ``scenario``, or None."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:120]}"
    body = response.json()
    if scenario == "list" and len(body.get("items", ())) != 100:
        return f"expected 100 items, got {len(body.get('items', ()))}"
    if scenario == "detail" and "variants" not in body:
        return "no variants in the product"
    if scenario == "hello" and body != {"hello": "world"}:
        return f"unexpected body {body!r}"
    return None


async def measure(base_url: str, scenario: str, path: Callable[[random.Random], str], args: argparse.Namespace) -> Run:
    """Warm up, then let ``args.clients`` clients fetch ``path(rng)`` for ``args.duration`` seconds."""
    run = Run()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits))
            for _ in range(args.clients)
        ]
        rngs = [random.Random(args.seed * 1000 + i) for i in range(args.clients)]
        warm = [clients[i % args.clients].get(path(rngs[i % args.clients])) for i in range(args.warmup)]
        for response in await asyncio.gather(*warm):
            if problem := check_answer(scenario, response):
                raise RuntimeError(f"{scenario} warm-up: {problem}")
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + args.duration

        async def client_loop(client: httpx.AsyncClient, rng: random.Random) -> None:
            while time.perf_counter() < deadline:
                target = path(rng)
                sent = time.perf_counter()
                try:
                    response = await client.get(target)
                    problem = check_answer(scenario, response)
                    run.sizes.append(len(response.content))
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"[:200]
                run.latencies.append(time.perf_counter() - sent)
                if problem:
                    run.errors.append(f"{target}: {problem}")

        await asyncio.gather(*(client_loop(c, r) for c, r in zip(clients, rngs, strict=True)))
        run.seconds = time.perf_counter() - started
        run.client_cpu_s = time.process_time() - cpu_started
    return run


@contextlib.contextmanager
def hello_server(work: Path, workers: int) -> Iterator[str]:
    """Serve tests/benchmarks/hello_app.py with the uvicorn settings of ``webshop serve``; yield its URL."""
    port = free_port()
    log_path = work / f"server-hello-{port}.log"
    loop = "uvloop" if _importable("uvloop") else "asyncio"
    http = "httptools" if _importable("httptools") else "h11"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.benchmarks.hello_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--loop",
        loop,
        "--http",
        http,
        "--no-proxy-headers",
        "--no-server-header",
        "--timeout-keep-alive",
        "75",
        "--log-level",
        "info",
    ]
    url = f"http://127.0.0.1:{port}"
    with running(command, env=None, cwd=ROOT, log_path=log_path, ready_url=url):
        yield url


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


async def prepare_database(database_url: str, *, analyze: bool) -> list[int]:
    """Run ``ANALYZE`` if asked; return every product id (the detail scenario draws from them)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            if analyze:
                await conn.execute(text("ANALYZE"))
            return list((await conn.execute(text("SELECT id FROM products ORDER BY id"))).scalars())
    finally:
        await engine.dispose()


def run_engine(engine: str, catalog_dir: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Database, import, server; the three scenarios; return the figures."""
    print(f"\n== {engine}", flush=True)
    with fresh_database(engine, work, args.postgres_url) as database_url:
        env = shop_env(database_url, work)
        cli(["db", "upgrade", "--no-prompt"], env, work)
        import_s, output = cli(["import-catalog", "--no-progress", str(catalog_dir)], env, work)
        summary = next((ln for ln in output.splitlines() if ln.startswith("products:")), output.strip()[-300:])
        ids = asyncio.run(prepare_database(database_url, analyze=args.analyze))
        print(f"imported in {import_s:.1f} s: {summary}", flush=True)
        load_before = warn_if_busy()
        runs: dict[str, Run] = {}
        try:
            with live_server(env, work, workers=args.workers) as base_url:
                print(f"webshop serve --workers {args.workers}: {args.clients} clients, {args.duration:g} s each")
                runs["list"] = asyncio.run(measure(base_url, "list", lambda _: "/api/products?limit=100", args))
                runs["detail"] = asyncio.run(
                    measure(base_url, "detail", lambda rng: f"/api/products/{rng.choice(ids)}", args)
                )
        except Exception:
            print("server log (end):\n" + server_log_tail(work))
            raise
        with hello_server(work, args.workers) as hello_url:
            runs["hello"] = asyncio.run(measure(hello_url, "hello", lambda _: "/", args))
    figures = {name: run.figures() for name, run in runs.items()}
    for name, run in runs.items():
        if run.errors:
            print(f"{name}: {len(run.errors)} error(s), first: {run.errors[:3]}")
    return {
        "engine": engine,
        "products": len(ids),
        "import_s": round(import_s, 2),
        "load_average_before": round(load_before, 2),
        "scenarios": figures,
    }


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """One row per engine and scenario."""
    labels = {
        "list": "GET /api/products?limit=100",
        "detail": "GET /api/products/{id}",
        "hello": "hello-world (bare Litestar)",
    }
    rows = []
    for result in results:
        for name in SCENARIOS:
            f = result["scenarios"][name]
            lat = f["latency_ms"]
            rows.append(
                (
                    f"{result['engine']:8s} {labels[name]}",
                    f["requests"],
                    f["errors"],
                    f["throughput_rps"],
                    lat["p50"],
                    lat["p90"],
                    lat["p99"],
                    lat["max"],
                    f["mean_bytes"],
                    f["client_cpu_s"],
                )
            )
    print(
        f"\n{results[0]['products']} products, {args.workers} worker(s), {args.clients} clients, "
        f"{args.duration:g} s per scenario ({os.cpu_count()} CPUs, load generator on the same machine)\n"
    )
    headers = (
        "engine / request",
        "count",
        "errors",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "bytes",
        "client CPU s",
    )
    print(table(headers, rows))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_api",
        description="JSON API throughput and latency at 10,000 products, beside a bare Litestar hello-world.",
    )
    parser.add_argument("--products", type=int, default=10_000, help="catalog size (default: %(default)s)")
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgres", "both"),
        default=None,
        help="database engine(s) (default: both when a PostgreSQL server is configured, else sqlite)",
    )
    parser.add_argument(
        "--postgres-url",
        dest="postgres_url",
        default=None,
        help="PostgreSQL server, postgresql+asyncpg://user@host:port/db; a database with a random name is "
        "created there and dropped afterwards (default: $WEBSHOP_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes, shop and hello (default: 2)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per scenario (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests first (default: %(default)s)")
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="skip ANALYZE after the import (measure the database as import-catalog leaves it)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random ids (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (catalog, SQLite file, logs)")
    args = parser.parse_args(argv)
    args.postgres_url = args.postgres_url or default_postgres_url()
    if args.postgres_url:
        check_postgres_url(args.postgres_url)
    args.engine = args.engine or ("both" if args.postgres_url else "sqlite")
    if args.engine != "sqlite" and not args.postgres_url:
        parser.error("PostgreSQL needs --postgres-url or WEBSHOP_TEST_POSTGRES_URL")
    if min(args.products, args.workers, args.clients) < 1 or args.duration <= 0 or args.warmup < 0:
        parser.error("--products, --workers, --clients and --duration must be positive")
    if args.products < 100:
        parser.error("--products must be at least 100 (the list scenario asks for 100)")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: ``python -m tests.benchmarks.bench_api``."""
    args = parse_args(argv)
    engines = ("sqlite", "postgres") if args.engine == "both" else (args.engine,)
    with workdir("webshop-bench-api-", keep=args.keep) as work:
        catalog_dir = work / "catalog"
        print(f"generating {args.products} products ...", flush=True)
        cli(["generate-catalog", "--products", str(args.products), str(catalog_dir)], dict(os.environ), work)
        results = []
        for engine in engines:
            engine_work = work / engine
            engine_work.mkdir()
            results.append(run_engine(engine, catalog_dir, engine_work, args))
    print_table(results, args)
    if args.json:
        config = {k: v for k, v in vars(args).items() if k not in {"json", "postgres_url"}}
        write_json(args.json, {"benchmark": "api", "config": config, "machine": machine(), "results": results})
    if any(f["errors"] for r in results for f in r["scenarios"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
