"""Benchmark: catalog page response time with 10,000 products, many shoppers browsing at once.

What it does, end to end, through the real command line:

1. ``webshop generate-catalog --products N`` into a temporary folder;
2. a fresh database: a SQLite file, or (``--engine postgres``) a database with a random name on the
   PostgreSQL server of ``--postgres-url`` / ``WEBSHOP_TEST_POSTGRES_URL``, dropped afterwards;
3. ``webshop db upgrade`` and ``webshop import-catalog`` (timed: wall-clock seconds, CLI start-up included);
   with ``--analyze``, then ``ANALYZE`` (planner statistics, which PostgreSQL otherwise only gets from
   autovacuum, a minute or more later, or never where autovacuum is off);
4. ``webshop serve --workers W`` on 127.0.0.1, a short warm-up, then ``--clients`` concurrent clients
   (one ``httpx.AsyncClient`` each, with its own cookies) fetch catalog URLs from a seeded mix:

   ========  ==========================================================  ======
   kind      URL                                                         weight
   ========  ==========================================================  ======
   home      ``/``                                                       10 %
   page      ``/?page=N``, shallow and deep pages                        20 %
   sort      ``/?sort=price|-price|-name|newest`` (sometimes a page)     10 %
   category  ``/?category=<slug>`` (top-level or leaf)                   15 %
   brand     ``/?brand=<brand>``                                         10 %
   search    ``/?q=<word from the generated names>``                     20 %
   fragment  a filter combination as htmx asks for it: ``HX-Request``    15 %
             and ``HX-Target: catalog-results`` (the results fragment)
   ========  ==========================================================  ======

Measured: every request's latency (sent to last body byte, client side) and its status; anything but
200 (or a fragment answered with a whole page, or the reverse) is an error. Reported: count, errors,
throughput (req/s over the measured window) and p50/p90/p99/max latency in ms, overall and per kind.
The script exits 1 when any error was seen.

The load generator shares the machine with the server, so on a small machine it takes some CPU
from the server; compare runs made on the same machine only.

Run from the project root::

    .venv/bin/python -m tests.benchmarks.bench_catalog                       # SQLite, 2,000 requests
    .venv/bin/python -m tests.benchmarks.bench_catalog --duration 60 --json out/catalog.json
    .venv/bin/python -m tests.benchmarks.bench_catalog --engine postgres \\
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import csv
import math
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

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
from tests.live import live_server, shop_env

PAGE_SIZE = 24  # the shop's default WEBSHOP_PAGE_SIZE (shop_env passes no WEBSHOP_* settings through)
SORTS = ("price", "-price", "-name", "newest")  # webshop.catalog.browse.SORTS besides the default "name"
KINDS = {"home": 10, "page": 20, "sort": 10, "category": 15, "brand": 10, "search": 20, "fragment": 15}
FRAGMENT_HEADERS = {"HX-Request": "true", "HX-Target": "catalog-results"}
WORD_RE = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class CatalogFacts:
    """What the URL mix is built from: the imported catalog's categories, facet values and words."""

    products: int
    categories: tuple[str, ...]
    brands: tuple[str, ...]
    colors: tuple[str, ...]
    words: tuple[str, ...]

    @property
    def pages(self) -> int:
        """Pages of the unfiltered catalog."""
        return max(1, math.ceil(self.products / PAGE_SIZE))


class UrlMix:
    """Seeded stream of ``(kind, path, headers)`` catalog requests (see the module docstring)."""

    def __init__(self, facts: CatalogFacts, seed: int) -> None:
        self.facts = facts
        self.rng = random.Random(seed)
        pages = facts.pages
        # Shallow pages, where shoppers go, and a few deep ones, where OFFSET gets expensive.
        self.page_numbers = sorted({n for n in (2, 3, 4, 5, 10, 25, 50, pages // 2, pages) if 2 <= n <= pages}) or [1]

    def next(self) -> tuple[str, str, dict[str, str]]:
        """The next request of the mix."""
        kind = self.rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        return kind, *self.request(kind)

    def request(self, kind: str) -> tuple[str, dict[str, str]]:
        """A random request of ``kind``: its path with query string, and its extra headers."""
        rng, facts = self.rng, self.facts
        params: list[tuple[str, Any]] = []
        headers: dict[str, str] = {}
        if kind == "page":
            params.append(("page", rng.choice(self.page_numbers)))
        elif kind == "sort":
            params.append(("sort", rng.choice(SORTS)))
            if rng.random() < 0.3:
                params.append(("page", rng.choice(self.page_numbers[:4])))
        elif kind == "category":
            params.append(("category", rng.choice(facts.categories)))
        elif kind == "brand":
            params.append(("brand", rng.choice(facts.brands)))
        elif kind == "search":
            params.append(("q", rng.choice(facts.words)))
        elif kind == "fragment":
            params = self._filters()
            headers = dict(FRAGMENT_HEADERS)
        return "/" + (f"?{urlencode(params)}" if params else ""), headers

    def _filters(self) -> list[tuple[str, Any]]:
        """A combination a shopper reaches by ticking filters on the catalog form (htmx ``hx-get``)."""
        rng, facts = self.rng, self.facts
        params: list[tuple[str, Any]] = []
        if rng.random() < 0.5:
            params.append(("category", rng.choice(facts.categories)))
        if rng.random() < 0.3:
            params.append(("q", rng.choice(facts.words)))
        if facts.brands and rng.random() < 0.4:
            params.extend(("brand", b) for b in rng.sample(facts.brands, k=min(len(facts.brands), rng.randint(1, 2))))
        if facts.colors and rng.random() < 0.4:
            params.append(("color", rng.choice(facts.colors)))
        if rng.random() < 0.5:
            params.append(("sort", rng.choice(SORTS)))
        if not params or rng.random() < 0.2:
            params.append(("page", rng.choice(self.page_numbers[:4])))
        return params


@dataclass
class Results:
    """Latencies (seconds) and error statuses per kind of request."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    error_samples: list[str] = field(default_factory=list)
    seconds: float = 0.0
    client_cpu_s: float = 0.0  # CPU this process (the load generator) used while measuring

    def record(self, kind: str, path: str, elapsed: float, problem: str | None) -> None:
        """Keep one request's latency; ``problem`` is None for a good answer."""
        self.latencies[kind].append(elapsed)
        if problem is not None:
            self.errors[kind][problem] += 1
            if len(self.error_samples) < 10:
                self.error_samples.append(f"{kind} {path}: {problem}")

    @property
    def count(self) -> int:
        """Requests measured."""
        return sum(len(v) for v in self.latencies.values())

    @property
    def error_count(self) -> int:
        """Requests with a bad answer."""
        return sum(sum(c.values()) for c in self.errors.values())


def problem_of(response: httpx.Response, fragment: bool) -> str | None:
    """Why ``response`` is not a good catalog answer, or None."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    is_page = "<html" in response.text[:500].lower()
    if fragment and is_page:
        return "whole page instead of the fragment"
    if not fragment and not is_page:
        return "fragment instead of the page"
    return None


async def fetch(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> tuple[float, str | None]:
    """GET ``path``; return the latency in seconds and the problem with the answer (None if good)."""
    started = time.perf_counter()
    try:
        response = await client.get(path, headers=headers)
    except httpx.HTTPError as exc:
        return time.perf_counter() - started, f"{type(exc).__name__}: {exc}"[:200]
    elapsed = time.perf_counter() - started
    return elapsed, problem_of(response, fragment=bool(headers))


async def load(
    base_url: str, mix: UrlMix, *, clients: int, requests: int, duration: float | None, warmup: int
) -> Results:
    """Warm the server up, then let ``clients`` clients fetch ``requests`` URLs (or for ``duration`` s)."""
    results = Results()
    async with contextlib.AsyncExitStack() as stack:
        pool = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=base_url, timeout=60)) for _ in range(clients)
        ]
        # Warm-up (not measured): every kind once, then a burst at full concurrency.
        for kind in KINDS:
            path, headers = mix.request(kind)
            await fetch(pool[0], path, headers)
        warm = [mix.next() for _ in range(warmup)]
        await asyncio.gather(*(fetch(pool[i % clients], p, h) for i, (_, p, h) in enumerate(warm)))

        remaining = requests
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + duration if duration else None

        async def shopper(client: httpx.AsyncClient) -> None:
            nonlocal remaining
            while True:
                if deadline is not None:
                    if time.perf_counter() >= deadline:
                        return
                elif remaining <= 0:
                    return
                remaining -= 1
                kind, path, headers = mix.next()
                elapsed, problem = await fetch(client, path, headers)
                results.record(kind, path, elapsed, problem)

        await asyncio.gather(*(shopper(client) for client in pool))
        results.seconds = time.perf_counter() - started
        results.client_cpu_s = time.process_time() - cpu_started
    return results


async def planner_statistics(database_url: str, *, analyze: bool) -> str:
    """Run ``ANALYZE`` if asked; describe whether the planner has statistics (PostgreSQL: is autovacuum on?)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            if analyze:
                await conn.execute(text("ANALYZE"))
            if engine.dialect.name != "postgresql":
                return "ANALYZE run after the import" if analyze else "no ANALYZE after the import"
            autovacuum = (await conn.execute(text("SHOW autovacuum"))).scalar_one()
            analyzed = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN ('products', 'variants', "
                        "'product_facets') AND (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL)"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    return f"autovacuum {autovacuum}; {analyzed} of products/variants/product_facets analyzed before the load"


async def catalog_facts(database_url: str, catalog_dir: Path) -> CatalogFacts:
    """Read the imported catalog's size, category slugs and facet values, and the generated names' words."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as conn:
            products = (await conn.execute(text("SELECT count(*) FROM products"))).scalar_one()
            categories = (await conn.execute(text("SELECT slug FROM categories ORDER BY slug"))).scalars().all()
            facets = (
                await conn.execute(text("SELECT DISTINCT facet, value FROM product_facets ORDER BY facet, value"))
            ).all()
    finally:
        await engine.dispose()
    with (catalog_dir / "products.csv").open(encoding="utf-8", newline="") as handle:
        names = [row["name"] for row in csv.DictReader(handle) if row["name"]]
    words = sorted({w.lower() for name in names for w in WORD_RE.findall(name)})
    return CatalogFacts(
        products=products,
        categories=tuple(categories),
        brands=tuple(v for f, v in facets if f == "brand"),
        colors=tuple(v for f, v in facets if f == "color"),
        words=tuple(words),
    )


def report(results: Results, setup: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Print the figures as tables; return them for ``--json``."""
    overall = Summary.of([s for v in results.latencies.values() for s in v], results.error_count)
    per_kind = {
        kind: Summary.of(results.latencies.get(kind, []), sum(results.errors.get(kind, {}).values())) for kind in KINDS
    }
    throughput = results.count / results.seconds if results.seconds else 0.0
    print()
    print(f"catalog: {setup['products']} products on {args.engine}, {args.workers} worker(s), {args.clients} clients")
    print(
        f"setup: generate-catalog {setup['generate_s']:.1f} s, db upgrade {setup['upgrade_s']:.1f} s, "
        f"import-catalog {setup['import_s']:.1f} s (wall, CLI start-up included)"
    )
    print(f"import: {setup['import_summary']}")
    print(f"planner statistics: {setup['planner_statistics']}")
    print(
        f"measured: {results.count} requests in {results.seconds:.1f} s = {throughput:.1f} req/s, "
        f"{results.error_count} error(s); load generator CPU {results.client_cpu_s:.1f} s"
    )
    print()
    headers = ("kind", "count", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms")
    rows: list[Sequence[Any]] = [
        (name, s.count, s.errors, s.p50, s.p90, s.p99, s.max, s.mean)
        for name, s in [("all", overall), *per_kind.items()]
    ]
    print(table(headers, rows))
    if results.error_count:
        print("\nerrors:")
        for kind, counter in results.errors.items():
            for problem, count in counter.most_common():
                print(f"  {kind}: {problem} x{count}")
        print("first ones:\n  " + "\n  ".join(results.error_samples))
    return {
        "benchmark": "catalog",
        "config": {k: v for k, v in vars(args).items() if k not in {"json", "postgres_url"}},
        "machine": machine(),
        "setup": setup,
        "seconds": round(results.seconds, 2),
        "throughput_rps": round(throughput, 1),
        "client_cpu_s": round(results.client_cpu_s, 1),
        "overall": overall.as_dict(),
        "per_kind": {k: s.as_dict() for k, s in per_kind.items()},
        "errors": {k: dict(c) for k, c in results.errors.items()},
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up catalog, database and server; run the load; print and return the figures."""
    with workdir("webshop-bench-catalog-", keep=args.keep) as work:
        catalog_dir = work / "catalog"
        print(f"generating {args.products} products in {catalog_dir} ...", flush=True)
        generate_args = ["generate-catalog", "--products", str(args.products), str(catalog_dir)]
        generate_s, _ = cli(generate_args, dict(os.environ), work)
        with fresh_database(args.engine, work, args.postgres_url) as database_url:
            env = shop_env(database_url, work)
            upgrade_s, _ = cli(["db", "upgrade", "--no-prompt"], env, work)
            print("importing ...", flush=True)
            import_s, output = cli(["import-catalog", "--no-progress", str(catalog_dir)], env, work)
            summary = next((ln for ln in output.splitlines() if ln.startswith("products:")), output.strip()[-300:])
            facts = asyncio.run(catalog_facts(database_url, catalog_dir))
            statistics = asyncio.run(planner_statistics(database_url, analyze=args.analyze))
            print(
                f"imported in {import_s:.1f} s: {summary}\n"
                f"mix from {len(facts.categories)} categories, {len(facts.brands)} brands, "
                f"{len(facts.words)} search words, {facts.pages} pages\n"
                f"planner statistics: {statistics}",
                flush=True,
            )
            mix = UrlMix(facts, args.seed)
            what = f"{args.duration:g} s" if args.duration else f"{args.requests} requests"
            load_before = warn_if_busy()
            try:
                with live_server(env, work, workers=args.workers) as base_url:
                    print(f"serving at {base_url} with {args.workers} worker(s); {args.clients} clients, {what} ...")
                    results = asyncio.run(
                        load(
                            base_url,
                            mix,
                            clients=args.clients,
                            requests=args.requests,
                            duration=args.duration,
                            warmup=args.warmup,
                        )
                    )
            except Exception:
                print("server log (end):\n" + server_log_tail(work))
                raise
            if results.error_count:
                print("\nserver log (end):\n" + server_log_tail(work))
        setup = {
            "products": facts.products,
            "generate_s": round(generate_s, 2),
            "upgrade_s": round(upgrade_s, 2),
            "import_s": round(import_s, 2),
            "import_summary": summary,
            "planner_statistics": statistics,
            "load_average_before": round(load_before, 2),
        }
        return report(results, setup, args)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_catalog",
        description="Catalog page latency and throughput on a generated catalog, against `webshop serve`.",
    )
    parser.add_argument("--products", type=int, default=10_000, help="catalog size (default: %(default)s)")
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgres"),
        default=None,
        help="database engine (default: sqlite, or postgres when --postgres-url is given)",
    )
    parser.add_argument(
        "--postgres-url",
        "--database-url",
        dest="postgres_url",
        default=None,
        help="PostgreSQL server, postgresql+asyncpg://user@host:port/db; a database with a random name is "
        "created there and dropped afterwards (default: $WEBSHOP_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--workers", type=int, default=1, help="`webshop serve` worker processes (default: 1)")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients (default: %(default)s)")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests in all (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=None, help="measure for this many seconds instead")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first (default: %(default)s)")
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE after the import, as autovacuum eventually does (default: measure the database as "
        "`webshop import-catalog` leaves it)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the URL mix (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (catalog, SQLite file, logs)")
    args = parser.parse_args(argv)
    if args.postgres_url:
        check_postgres_url(args.postgres_url)
        args.engine = args.engine or "postgres"
    args.engine = args.engine or "sqlite"
    if args.engine == "postgres":
        args.postgres_url = args.postgres_url or default_postgres_url()
    if min(args.products, args.workers, args.clients, args.requests) < 1 or args.warmup < 0:
        parser.error("--products, --workers, --clients and --requests must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: ``python -m tests.benchmarks.bench_catalog``."""
    args = parse_args(argv)
    figures = run(args)
    if args.json:
        write_json(args.json, figures)
    if figures["overall"]["errors"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
