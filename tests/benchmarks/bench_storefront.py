"""Benchmark: the storefront's reads beside a bare Litestar hello-world "B", as ratios, at three sizes.

One command measures what issue 14 asks for, in a single run:

* for each engine (SQLite with 1 worker, PostgreSQL with 2 workers) and each catalog size (by default
  1,000, 10,000 and 100,000 generated products): a fresh database, ``webshop db upgrade``,
  ``webshop import-catalog`` (timed) and ``ANALYZE``;
* ``webshop serve`` and the hello-world B (tests/benchmarks/hello_app.py, served by uvicorn with the
  same settings: worker count, uvloop + httptools, keep-alive) run side by side, the servers pinned to
  their own cores and the load generator to the others where the machine has enough cores (with 2
  cores: SQLite's one worker on core 0 and the load generator on core 1; PostgreSQL's two workers
  and its server share both cores, so nothing is pinned there);
* the load generator is ``wrk`` (Debian package ``wrk``; a C program, so it is not the bottleneck a
  Python client would be): ``--connections`` keep-alive connections (32), ``--duration`` seconds per
  target (5), and the targets are interleaved: every round measures B, then each target once, and
  ``--rounds`` rounds (3) are run; the medians of requests per second are reported with their ratio
  to B's median;
* the targets (the same URLs as a shopper's browser or an API client sends them):

  ==============  ===========================================================================
  catalog         ``GET /``
  page 400        ``GET /?page=400`` (the last page where the catalog has fewer than 400)
  facet           ``GET /?category=<the largest category>&brand=<a brand in it>``
  search          ``GET /?q=<word>`` with ``HX-Request: true`` and ``HX-Target: catalog-results``
                  (the results fragment the search box asks for while typing)
  product         ``GET /products/<slug>``, cycling through 200 products
  api list        ``GET /api/products?limit=100``
  api detail      ``GET /api/products/<id>``, cycling through 200 products
  ==============  ===========================================================================

* afterwards, the resident memory (RSS) of each webshop worker process.

Any non-2xx answer or socket error counts as an error; the script exits 1 when it saw one.

Run from the project root (``apt-get install -y wrk`` first)::

    .venv/bin/python -m tests.benchmarks.bench_storefront \\
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
    .venv/bin/python -m tests.benchmarks.bench_storefront --sizes 1000,10000 --engines sqlite --rounds 1

The figures are ratios because the machines here are shared and noisy: B, measured in the same run
under the same conditions, is the ceiling for this server, this machine and this load generator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.benchmarks._common import (
    check_postgres_url,
    cli,
    default_postgres_url,
    fresh_database,
    machine,
    table,
    warn_if_busy,
    workdir,
    write_json,
)
from tests.live import CLI, free_port, running, shop_env

ROOT = Path(__file__).resolve().parents[2]
TARGETS = ("catalog", "page 400", "facet", "search", "product", "api list", "api detail")
FRAGMENT_HEADERS = {"HX-Request": "true", "HX-Target": "catalog-results"}
PAGE_SIZE = 24
WORKERS = {"sqlite": 1, "postgres": 2}


@dataclass
class Target:
    """One kind of request: the paths wrk cycles through and the headers it sends with each."""

    name: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class WrkResult:
    """What one wrk run reported: requests per second, latency percentiles (ms), errors."""

    rps: float
    p50: float
    p99: float
    errors: int
    requests: int


# --- processes --------------------------------------------------------------------------------------------


def core_plan(workers: int) -> tuple[list[int] | None, list[int] | None]:
    """``(server cores, load generator cores)``, or ``(None, None)`` when there are too few to separate.

    The servers get ``workers`` cores and the load generator at least one other; B and the shop share
    the server cores (they are measured one after the other, never at once).
    """
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < workers + 1:
        return None, None
    return cores[:workers], cores[workers:]


def pinned(command: list[str], cores: list[int] | None) -> list[str]:
    """``command`` run under ``taskset -c CORES`` (children inherit the affinity), or as it is."""
    if cores is None or not shutil.which("taskset"):
        return command
    return ["taskset", "-c", ",".join(map(str, cores)), *command]


def hello_command(port: int, workers: int) -> list[str]:
    """uvicorn serving the hello-world with the settings ``webshop serve`` uses."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "tests.benchmarks.hello_app:app",
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)),
        *("--loop", "uvloop", "--http", "httptools", "--no-proxy-headers", "--no-server-header"),
        *("--timeout-keep-alive", "75", "--log-level", "warning"),
    ]


def worker_rss_mb(pid: int) -> list[float]:
    """Resident memory (MB) of the worker processes under ``pid``: its children that serve requests,
    or ``pid`` itself when it serves alone (one worker)."""

    def rss(p: int) -> float:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cmdline(p: int) -> str:
        with contextlib.suppress(OSError):
            return Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return ""

    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "resource_tracker" not in cmdline(int(entry.name)):
                children.append(int(entry.name))
    return [round(rss(p), 1) for p in sorted(children)] or [round(rss(pid), 1)]


# --- wrk --------------------------------------------------------------------------------------------------

_LUA = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def lua_quote(value: str) -> str:
    """``value`` as a Lua string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_wrk(base_url: str, target: Target, args: argparse.Namespace, cores: list[int] | None, work: Path) -> WrkResult:
    """Load ``base_url`` with ``target`` for ``args.duration`` seconds; parse wrk's report."""
    script = work / f"wrk-{re.sub(r'[^a-z0-9]+', '-', target.name)}.lua"
    script.write_text(_LUA % ", ".join(lua_quote(p) for p in target.paths))
    threads = max(1, min(args.connections, len(cores) if cores else 2))
    command = [
        "wrk",
        *("--threads", str(threads), "--connections", str(args.connections), "--duration", f"{int(args.duration)}s"),
        *("--timeout", "10s", "--latency", "--script", str(script)),
    ]
    for name, value in target.headers.items():
        command += ["--header", f"{name}: {value}"]
    done = subprocess.run(pinned([*command, base_url], cores), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    """Requests per second, p50/p99 latency (ms), error count and request count from the ``RESULT`` line
    the script's ``done`` hook prints (wrk's own figures: microseconds, counts)."""
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", output, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no RESULT line in wrk's output:\n{output}")
    requests, duration_us, p50_us, p99_us, non_2xx, socket_errors = map(int, found.groups())
    return WrkResult(
        rps=requests / (duration_us / 1e6),
        p50=p50_us / 1000,
        p99=p99_us / 1000,
        errors=non_2xx + socket_errors,
        requests=requests,
    )


# --- the catalog ------------------------------------------------------------------------------------------


async def catalog_targets(database_url: str) -> tuple[int, list[Target]]:
    """Run ``ANALYZE``; read the imported catalog and build the seven targets' URLs from it."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ANALYZE"))
            products = (await conn.execute(text("SELECT count(*) FROM products"))).scalar_one()
            rows = (await conn.execute(text("SELECT id, slug FROM products ORDER BY id"))).all()
            category = (
                await conn.execute(
                    text(
                        "SELECT c.slug, count(*) AS n FROM products p JOIN categories c ON c.id = p.category_id "
                        "GROUP BY c.slug ORDER BY n DESC, c.slug LIMIT 1"
                    )
                )
            ).one()
            brand = (
                await conn.execute(
                    text(
                        "SELECT f.value FROM product_facets f JOIN products p ON p.id = f.product_id "
                        "JOIN categories c ON c.id = p.category_id WHERE f.facet = 'brand' AND c.slug = :slug "
                        "GROUP BY f.value ORDER BY count(*) DESC, f.value LIMIT 1"
                    ),
                    {"slug": category.slug},
                )
            ).scalar_one()
            name = (await conn.execute(text("SELECT name FROM products ORDER BY id LIMIT 1"))).scalar_one()
    finally:
        await engine.dispose()
    step = max(1, len(rows) // 200)
    sample = rows[::step][:200]
    last_page = max(1, -(-products // PAGE_SIZE))
    word = max(re.findall(r"[A-Za-z]{4,}", name), key=len).lower()
    targets = [
        Target("catalog", ["/"]),
        Target("page 400", [f"/?page={min(400, last_page)}"]),
        Target("facet", [f"/?category={category.slug}&brand={brand.replace(' ', '+')}"]),
        Target("search", [f"/?q={word}"], FRAGMENT_HEADERS),
        Target("product", [f"/products/{slug}" for _, slug in sample]),
        Target("api list", ["/api/products?limit=100"]),
        Target("api detail", [f"/api/products/{pid}" for pid, _ in sample]),
    ]
    return products, targets


def generate(size: int, catalogs: Path) -> Path:
    """Generate (once per run) a catalog of ``size`` products; return its folder."""
    folder = catalogs / f"catalog-{size}"
    if not folder.exists():
        seconds, _ = cli(["generate-catalog", "--products", str(size), str(folder)], {**os.environ}, catalogs)
        print(f"generate-catalog --products {size}: {seconds:.1f} s", flush=True)
    return folder


# --- one configuration ------------------------------------------------------------------------------------


def measure(engine: str, size: int, catalog: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Import ``catalog`` into a fresh ``engine`` database, serve it beside B, run the rounds; the figures."""
    workers = WORKERS[engine]
    server_cores, load_cores = core_plan(workers)
    print(f"\n== {engine}, {size:,} products, {workers} worker(s)", flush=True)
    folder = work / f"{engine}-{size}"
    folder.mkdir()
    with fresh_database(engine, folder, args.postgres_url) as database_url:
        env = shop_env(database_url, folder, WEBSHOP_LOG_LEVEL="warning")
        cli(["db", "upgrade", "--no-prompt"], env, folder)
        import_s, _ = cli(["import-catalog", "--no-progress", str(catalog)], env, folder, timeout=1800)
        products, targets = asyncio.run(catalog_targets(database_url))
        print(f"import-catalog: {import_s:.1f} s for {products:,} products", flush=True)
        if server_cores:
            print(f"servers on core(s) {server_cores}, wrk on core(s) {load_cores}")
        else:
            print("too few cores to separate the servers from wrk: nothing is pinned")
        warn_if_busy()
        shop_port, hello_port = free_port(), free_port()
        shop = pinned(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(shop_port), "--workers", str(workers)], server_cores
        )
        hello = pinned(hello_command(hello_port, workers), server_cores)
        shop_url, hello_url = f"http://127.0.0.1:{shop_port}", f"http://127.0.0.1:{hello_port}"
        runs: dict[str, list[WrkResult]] = {name: [] for name in ("B", *TARGETS)}
        with (
            running(
                shop, env=env, cwd=folder, log_path=folder / "shop.log", ready_url=f"{shop_url}/health"
            ) as shop_process,
            running(hello, env=None, cwd=ROOT, log_path=folder / "hello.log", ready_url=hello_url),
        ):
            hello_target = Target("B", ["/"])
            for target in [hello_target, *targets]:  # warm-up: caches, connections, the JIT-less interpreter
                base = hello_url if target is hello_target else shop_url
                warm = argparse.Namespace(**{**vars(args), "duration": 1})
                run_wrk(base, target, warm, load_cores, folder)
            for number in range(1, args.rounds + 1):
                for target in [hello_target, *targets]:
                    base = hello_url if target is hello_target else shop_url
                    result = run_wrk(base, target, args, load_cores, folder)
                    runs[target.name].append(result)
                    print(
                        f"  round {number} {target.name:<10} {result.rps:9.1f} req/s  p50 {result.p50:7.1f} ms"
                        f"  p99 {result.p99:7.1f} ms  errors {result.errors}",
                        flush=True,
                    )
            rss = worker_rss_mb(shop_process.pid)
    b = statistics.median(r.rps for r in runs["B"])
    figures = {}
    for name, results in runs.items():
        rps = statistics.median(r.rps for r in results)
        figures[name] = {
            "rps": round(rps, 1),
            "ratio_to_b": round(rps / b, 4) if b else 0.0,
            "p50_ms": round(statistics.median(r.p50 for r in results), 1),
            "p99_ms": round(statistics.median(r.p99 for r in results), 1),
            "errors": sum(r.errors for r in results),
            "requests": sum(r.requests for r in results),
        }
    return {
        "engine": engine,
        "workers": workers,
        "products": products,
        "import_s": round(import_s, 1),
        "rss_mb_per_worker": rss,
        "targets": figures,
    }


def report(results: list[dict[str, Any]]) -> None:
    """One table per engine: targets down, sizes across, ``req/s (1/N of B)``; then the scale ratios and RSS."""
    for engine in dict.fromkeys(r["engine"] for r in results):
        rows_of = [r for r in results if r["engine"] == engine]
        sizes = [f"{r['products']:,}" for r in rows_of]
        print(f"\n{engine}, {rows_of[0]['workers']} worker(s), median req/s and the fraction of B")
        rows = []
        for name in ("B", *TARGETS):
            cells = []
            for r in rows_of:
                t = r["targets"][name]
                cells.append(f"{t['rps']:.0f}" if name == "B" else f"{t['rps']:.0f} (1/{1 / t['ratio_to_b']:.1f})")
            first, last = rows_of[0]["targets"][name]["rps"], rows_of[-1]["targets"][name]["rps"]
            cost = f"{first / last:.2f}x" if last and name != "B" else ""
            rows.append([name, *cells, cost])
        print(table(["target", *sizes, "cost largest/smallest"], rows))
        print(
            "p99 ms: "
            + "; ".join(
                f"{r['products']:,}: " + ", ".join(f"{n} {r['targets'][n]['p99_ms']:.0f}" for n in TARGETS)
                for r in rows_of
            )
        )
        print("import-catalog s: " + ", ".join(f"{r['products']:,}: {r['import_s']}" for r in rows_of))
        print(
            "RSS per worker after the run, MB: "
            + ", ".join(f"{r['products']:,}: {r['rss_mb_per_worker']}" for r in rows_of)
        )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (``--help``)."""
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1000,10000,100000", help="catalog sizes, comma-separated (default: 1000,10000,100000)"
    )
    parser.add_argument(
        "--engines", default=None, help="sqlite,postgres (default: both when a PostgreSQL URL is known)"
    )
    parser.add_argument("--postgres-url", default=default_postgres_url(), help="server for the PostgreSQL runs")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default: 3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per target per round (default: 5)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default: 32)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines or ("sqlite,postgres" if args.postgres_url else "sqlite")
    args.engines = [e.strip() for e in engines.split(",")]
    if "postgres" in args.engines:
        args.postgres_url = check_postgres_url(args.postgres_url or "")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Run every engine and size; print the tables; exit 1 on any error answer."""
    args = parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install -y wrk")
    started = time.perf_counter()
    results = []
    with workdir("webshop-storefront-", keep=args.keep) as work:
        catalogs = work / "catalogs"
        catalogs.mkdir()
        for size in args.sizes:
            catalog = generate(size, catalogs)
            for engine in args.engines:
                results.append(measure(engine, size, catalog, work, args))
    report(results)
    print(f"\nwhole run: {time.perf_counter() - started:.0f} s; machine: {machine()}")
    if args.json:
        write_json(args.json, {"machine": machine(), "results": results})
    errors = sum(t["errors"] for r in results for t in r["targets"].values())
    if errors:
        print(f"{errors} error answer(s)")
        raise SystemExit(1)


if __name__ == "__main__":
    main()
