"""Benchmark: checkout throughput and add-to-cart latency with 32 shoppers at once, on SQLite and PostgreSQL.

For each engine (``--engine sqlite|postgres|both``), through the real command line and HTTP:

1. a fresh database (a SQLite file, or a database with a random name on the PostgreSQL server of
   ``--postgres-url`` / ``WEBSHOP_TEST_POSTGRES_URL``, dropped afterwards), ``webshop db upgrade``;
2. a small catalog seeded with ``tests.factories.seed_catalog``: ``--products`` single-variant products
   with ample stock (``--stock`` each, written to the stock ledger like an import);
3. ``webshop serve --workers W`` on 127.0.0.1 (default: 1 worker on SQLite, 2 on PostgreSQL);
4. ``--shoppers`` shoppers, one ``httpx.AsyncClient`` each (own cookies), register (not measured), then
   all at once repeat a round, as a browser without JavaScript would, following every redirect:

   product page -> **add to cart** (POST /cart/items) -> cart -> address page -> address (the saved one
   from the second order on, ``address_id=<id>``) -> shipping page -> shipping -> review page ->
   **place order** (POST /checkout/place: the order is created and its stock reserved) -> the test
   provider's hosted payment page -> pay (the card typed there) -> payment return (the order settled)
   -> order page

   first ``--warmup-rounds`` unmeasured rounds (default 1: cold start; the address is typed once and
   saved), then ``--rounds`` rounds each, or until ``--duration`` seconds have passed (a round under
   way finishes).

Measured: the latency of every request (client side, sent to last body byte), by step; any answer but the
expected status (200 for pages, 303 for form posts, each redirecting where it should) or a transport
error is an error and ends that shopper's round. Reported: add-to-cart, place-order and payment-return
p50/p99 (and all steps), checkout throughput = successful orders / measured window (first round start
to last round end).

Verified afterwards: the orders in the database equal the successful placements (and their order
numbers), the units ordered equal the units added, and ``webshop check-stock`` exits 0. The script exits
1 when a verification fails or any error was seen.

The load generator shares the machine with the server; compare runs made on the same machine only.

Run from the project root::

    .venv/bin/python -m tests.benchmarks.bench_checkout                         # SQLite (+ PostgreSQL if
                                                                                # WEBSHOP_TEST_POSTGRES_URL)
    .venv/bin/python -m tests.benchmarks.bench_checkout --engine both \\
        --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/test --duration 45 --json out/checkout.json
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import random
import re
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

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
from tests.factories import TREE, P, seed_catalog
from tests.live import SECRET, live_server, shop_env
from tests.shopper import (
    ADDRESS,
    CARD_FIELD_RE,
    CSRF_RE,
    FORM_RE,
    NAME_RE,
    SIGNATURE_RE,
    SUCCESS_CARD,
    TOKEN_RE,
    path_of,
    register,
)

STEPS = (
    "product page",
    "add to cart",
    "cart page",
    "address page",
    "address submit",
    "shipping page",
    "shipping submit",
    "review page",
    "place order",
    "payment page",
    "pay",
    "payment return",
    "order page",
)
DEFAULT_WORKERS = {"sqlite": 1, "postgres": 2}
CHECKED_ADDRESS_RE = re.compile(r'name="address_id" value="(\d+)"\s*checked')
ANY_ADDRESS_RE = re.compile(r'name="address_id" value="(\d+)"')
ORDER_URL_RE = re.compile(r"^/orders/([A-Z0-9-]+)\?placed=1$")
PAYMENT_URL_RE = re.compile(r"^https?://[^/]+/test-payments/pay/")
RETURN_URL_RE = re.compile(r"^https?://[^/]+/checkout/return/|^/checkout/return/")
MAX_FAILED_ROUNDS_IN_A_ROW = 20  # a shopper gives up then (the server is probably gone)


@dataclass(frozen=True)
class Item:
    """A product the shoppers can buy: its page slug and its only variant."""

    slug: str
    variant_id: int


def bench_products(count: int, stock: int, seed: int) -> tuple[P, ...]:
    """``count`` single-variant products spread over the factories' leaf categories, ``stock`` units each."""
    rng = random.Random(seed)
    leaves = [slug for slug in TREE if not any(parent == slug for _, parent in TREE.values())]
    return tuple(
        P(
            name=f"Bench Item {i:04d}",
            category=leaves[i % len(leaves)],
            brand=rng.choice(("Acme", "Globex", "Initech", None)),
            colors=(rng.choice(("black", "white", "red", "blue")),),
            variants=((f"BENCH-{i:04d}", (), rng.randint(5, 500) * 100 - 1, stock),),
        )
        for i in range(count)
    )


class StepFailed(Exception):
    """A step got an unexpected answer (already recorded); the round ends."""


@dataclass
class Recorder:
    """Latencies (seconds) and errors per step, and what the shoppers ordered."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: collections.defaultdict(list))
    errors: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    error_samples: list[str] = field(default_factory=list)
    order_numbers: list[str] = field(default_factory=list)  # warm-up orders too (the database has them)
    units_added: int = 0
    measuring: bool = False  # latencies, rounds and orders/s count only while measuring
    measured_orders: int = 0
    rounds: int = 0
    failed_rounds: int = 0
    client_cpu_s: float = 0.0  # CPU this process (the load generator) used while measuring

    def error(self, step: str, problem: str, detail: str = "") -> None:
        """Count an error of ``step``; keep the first few with some detail."""
        self.errors[step][problem] += 1
        if len(self.error_samples) < 10:
            self.error_samples.append(f"{step}: {problem} {' '.join(detail.split())[:300]}")

    @property
    def error_count(self) -> int:
        """Unexpected answers and transport errors."""
        return sum(sum(c.values()) for c in self.errors.values())


async def timed(
    rec: Recorder,
    step: str,
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    expect: int,
    data: dict[str, Any] | None = None,
    location: str | re.Pattern[str] | None = None,
) -> httpx.Response:
    """Send one request, record its latency under ``step``, check its status (and redirect target).

    Raises:
        StepFailed: transport error, unexpected status or redirect (recorded as an error of ``step``).
    """
    started = time.perf_counter()
    try:
        response = await client.request(method, url, data=data, follow_redirects=False)
    except httpx.HTTPError as exc:
        rec.error(step, type(exc).__name__, str(exc))
        raise StepFailed from exc
    if rec.measuring:
        rec.latencies[step].append(time.perf_counter() - started)
    if response.status_code != expect:
        rec.error(step, f"HTTP {response.status_code}", response.text)
        raise StepFailed
    if location is not None:
        target = response.headers.get("location", "")
        ok = location.match(target) if isinstance(location, re.Pattern) else target == location
        if not ok:
            rec.error(step, f"redirect to {target or '(none)'}")
            raise StepFailed
    return response


def csrf_token(page: httpx.Response) -> str:
    """The CSRF token of a page's forms."""
    match = CSRF_RE.search(page.text)
    return match.group(1) if match else ""


async def one_round(client: httpx.AsyncClient, rec: Recorder, items: list[Item], rng: random.Random, n: int) -> None:
    """Add ``n`` random products to the cart, check out, pay, open the order (see the module docstring).

    Raises:
        StepFailed: a step went wrong (recorded); the cart may keep what was added.
    """
    for item in rng.sample(items, k=n):
        page = await timed(rec, "product page", client, "GET", f"/products/{item.slug}", expect=200)
        form = {"variant_id": item.variant_id, "quantity": 1, "_csrf_token": csrf_token(page)}
        await timed(rec, "add to cart", client, "POST", "/cart/items", expect=303, data=form, location="/cart")
        rec.units_added += 1
    await timed(rec, "cart page", client, "GET", "/cart", expect=200)

    page = await timed(rec, "address page", client, "GET", "/checkout/address", expect=200)
    saved = CHECKED_ADDRESS_RE.search(page.text) or ANY_ADDRESS_RE.search(page.text)
    if saved:  # the address book has the first order's address: choose it, as a returning shopper does
        form = {"address_id": saved.group(1), **dict.fromkeys(ADDRESS, ""), "name": "Shopper"}
    else:
        form = {"address_id": "new", **ADDRESS}
    form["_csrf_token"] = csrf_token(page)
    await timed(
        rec, "address submit", client, "POST", "/checkout/address", expect=303, data=form, location="/checkout/shipping"
    )

    page = await timed(rec, "shipping page", client, "GET", "/checkout/shipping", expect=200)
    form = {"shipping_method": "standard", "_csrf_token": csrf_token(page)}
    await timed(
        rec, "shipping submit", client, "POST", "/checkout/shipping", expect=303, data=form, location="/checkout/review"
    )

    page = await timed(rec, "review page", client, "GET", "/checkout/review", expect=200)
    token, signature = TOKEN_RE.search(page.text), SIGNATURE_RE.search(page.text)
    if not token or not signature:
        rec.error("review page", "no payment form", page.text)
        raise StepFailed
    form = {
        "checkout_token": token.group(1),
        "cart_signature": signature.group(1),
        "card_number": SUCCESS_CARD,
        "_csrf_token": csrf_token(page),
    }
    placed = await timed(
        rec, "place order", client, "POST", "/checkout/place", expect=303, data=form, location=PAYMENT_URL_RE
    )
    # The test provider's hosted payment page (as Stripe Checkout's): type the card, pay, come back.
    page = await timed(rec, "payment page", client, "GET", path_of(placed.headers["location"]), expect=200)
    field = CARD_FIELD_RE.search(page.text)
    action = next((a for a in FORM_RE.findall(page.text) if "cancel" not in a), None)
    if not field or not action:
        rec.error("payment page", "no card form", page.text)
        raise StepFailed
    card = {NAME_RE.search(field.group(0)).group(1): SUCCESS_CARD, "_csrf_token": csrf_token(page)}  # type: ignore[union-attr]
    paid = await timed(rec, "pay", client, "POST", unescape(action), expect=303, data=card, location=RETURN_URL_RE)
    back = await timed(
        rec, "payment return", client, "GET", path_of(paid.headers["location"]), expect=303, location=ORDER_URL_RE
    )
    order_url = back.headers["location"]
    rec.order_numbers.append(ORDER_URL_RE.match(order_url).group(1))  # type: ignore[union-attr]
    if rec.measuring:
        rec.measured_orders += 1
    await timed(rec, "order page", client, "GET", order_url, expect=200)


async def warm_up(client: httpx.AsyncClient, rec: Recorder, items: list[Item], rng: random.Random, n: int) -> None:
    """One unmeasured round (its errors still count)."""
    with contextlib.suppress(StepFailed):
        await one_round(client, rec, items, rng, n)


async def shop(
    base_url: str,
    items: list[Item],
    *,
    shoppers: int,
    rounds: int | None,
    duration: float | None,
    warmup_rounds: int,
    items_per_order: int,
    seed: int,
) -> tuple[Recorder, float]:
    """Register shoppers, warm up, then let them all check out; return the records and the measured window (s)."""
    rec = Recorder()
    run_id = uuid.uuid4().hex[:8]
    clients = [httpx.AsyncClient(base_url=base_url, timeout=60) for _ in range(shoppers)]
    try:
        # Not measured: one account per shopper (argon2 hashing is slow on purpose).
        await asyncio.gather(
            *(register(c, f"bench-{run_id}-{i}@example.com", f"Shopper {i}") for i, c in enumerate(clients))
        )
        rngs = [random.Random(seed * 1000 + i) for i in range(shoppers)]
        # Not measured either: the first rounds (cold connections and caches; the address is entered once).
        for _ in range(warmup_rounds):
            await asyncio.gather(
                *(warm_up(c, rec, items, r, items_per_order) for c, r in zip(clients, rngs, strict=True))
            )
        rec.measuring = True
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + duration if duration else None

        async def shopper(client: httpx.AsyncClient, rng: random.Random) -> None:
            done = failed_in_a_row = 0

            def more() -> bool:
                if rounds:
                    return done < rounds
                return deadline is not None and time.perf_counter() < deadline

            while more():
                done += 1
                try:
                    await one_round(client, rec, items, rng, items_per_order)
                except StepFailed:
                    rec.failed_rounds += 1
                    failed_in_a_row += 1
                    if failed_in_a_row >= MAX_FAILED_ROUNDS_IN_A_ROW:
                        rec.error("shopper", "gave up after repeated failures")
                        return
                else:
                    failed_in_a_row = 0
                rec.rounds += 1

        await asyncio.gather(*(shopper(c, r) for c, r in zip(clients, rngs, strict=True)))
        window = time.perf_counter() - started
        rec.client_cpu_s = time.process_time() - cpu_started
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    return rec, window


def alchemy_for(database_url: str, work: Path) -> Any:
    """The app's database config (NullPool) for seeding and checking from this process."""
    from webshop.config import Settings
    from webshop.db.engine import create_alchemy_config

    settings = Settings.from_flat(database_url=database_url, secret_key=SECRET, media_dir=work / "media")
    return create_alchemy_config(settings, null_pool=True)


async def seed(database_url: str, work: Path, products: tuple[P, ...]) -> list[Item]:
    """Seed the catalog; return what shoppers can buy."""
    alchemy = alchemy_for(database_url, work)
    try:
        ids = await seed_catalog(alchemy, products)
    finally:
        await alchemy.get_engine().dispose()
    return [Item(slug=p.name.lower().replace(" ", "-"), variant_id=ids[p.variants[0][0]]) for p in products]


async def database_totals(database_url: str, work: Path) -> dict[str, Any]:
    """Orders (all, paid), their numbers and the units on their lines, as the database has them."""
    from webshop.db.models import Order, OrderLine, OrderStatus

    alchemy = alchemy_for(database_url, work)
    try:
        async with alchemy.get_session() as session:
            numbers = set(await session.scalars(select(Order.number)))
            paid = await session.scalar(
                select(func.count()).select_from(Order).where(Order.status == OrderStatus.PAID.value)
            )
            units = await session.scalar(select(func.coalesce(func.sum(OrderLine.quantity), 0)))
    finally:
        await alchemy.get_engine().dispose()
    return {"numbers": numbers, "paid": paid or 0, "units": units or 0}


def verify(rec: Recorder, totals: dict[str, Any], check_stock_ok: bool, check_stock_output: str) -> list[str]:
    """Compare what the shoppers saw with the database; return the failed checks (empty when all pass)."""
    placed = set(rec.order_numbers)
    problems = []
    if len(totals["numbers"]) != len(rec.order_numbers):
        problems.append(f"{len(totals['numbers'])} orders in the database, {len(rec.order_numbers)} placements")
    if totals["numbers"] != placed:
        problems.append(f"order numbers differ: {len(totals['numbers'] ^ placed)} not on both sides")
    if totals["paid"] != len(rec.order_numbers):
        problems.append(f"{totals['paid']} paid orders, {len(rec.order_numbers)} placements")
    if not rec.error_count and totals["units"] != rec.units_added:  # a failed round may leave a cart behind
        problems.append(f"{totals['units']} units ordered, {rec.units_added} added to carts")
    if not check_stock_ok:
        problems.append(f"webshop check-stock failed: {check_stock_output.strip()[-500:]}")
    return problems


def run_engine(engine: str, args: argparse.Namespace) -> dict[str, Any]:
    """Database, catalog, server and shoppers for one engine; print and return its figures."""
    workers = args.workers or DEFAULT_WORKERS[engine]
    products = bench_products(args.products, args.stock, args.seed)
    print(f"\n=== {engine}: {args.shoppers} shoppers, {workers} worker(s) ===", flush=True)
    with (
        workdir(f"webshop-bench-checkout-{engine}-", keep=args.keep) as work,
        fresh_database(engine, work, args.postgres_url) as database_url,
    ):
        extra = (
            {} if args.max_active_requests is None else {"WEBSHOP_MAX_ACTIVE_REQUESTS": str(args.max_active_requests)}
        )
        env = shop_env(database_url, work, **extra)
        cli(["db", "upgrade", "--no-prompt"], env, work)
        items = asyncio.run(seed(database_url, work, products))
        print(f"seeded {len(items)} products with {args.stock} units each", flush=True)
        load_before = warn_if_busy()
        try:
            with live_server(env, work, workers=workers) as base_url:
                what = f"{args.rounds} rounds each" if args.rounds else f"{args.duration:g} s"
                print(f"serving at {base_url}; shoppers register, then check out for {what} ...", flush=True)
                rec, window = asyncio.run(
                    shop(
                        base_url,
                        items,
                        shoppers=args.shoppers,
                        rounds=args.rounds,
                        duration=None if args.rounds else args.duration,
                        warmup_rounds=args.warmup_rounds,
                        items_per_order=args.items,
                        seed=args.seed,
                    )
                )
        except Exception:
            print("server log (end):\n" + server_log_tail(work))
            raise
        if rec.error_count:
            print("server log (end):\n" + server_log_tail(work))
        totals = asyncio.run(database_totals(database_url, work))
        try:
            cli(["check-stock"], env, work)
            check_stock_ok, check_stock_output = True, ""
        except RuntimeError as exc:
            check_stock_ok, check_stock_output = False, str(exc)
    problems = verify(rec, totals, check_stock_ok, check_stock_output)
    figures = report_engine(engine, workers, rec, window, totals, check_stock_ok, problems)
    return {**figures, "load_average_before": round(load_before, 2)}


def report_engine(
    engine: str,
    workers: int,
    rec: Recorder,
    window: float,
    totals: dict[str, Any],
    check_stock_ok: bool,
    problems: list[str],
) -> dict[str, Any]:
    """Print one engine's tables; return its figures."""
    orders = rec.measured_orders
    throughput = orders / window if window else 0.0
    steps = {step: Summary.of(rec.latencies.get(step, []), sum(rec.errors.get(step, {}).values())) for step in STEPS}
    add, place = steps["add to cart"], steps["place order"]
    print(
        f"\n{engine}: {orders} orders in {window:.1f} s = {throughput:.2f} orders/s "
        f"({rec.rounds} rounds, {rec.failed_rounds} failed; {len(rec.order_numbers) - orders} warm-up orders "
        f"before), {rec.error_count} error(s); load generator CPU {rec.client_cpu_s:.1f} s"
    )
    print(f"add to cart: p50 {add.p50:.1f} ms, p99 {add.p99:.1f} ms; place order: p50 {place.p50:.1f} ms, ", end="")
    print(f"p99 {place.p99:.1f} ms")
    print()
    headers = ("step", "count", "errors", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms")
    print(table(headers, [(name, s.count, s.errors, s.p50, s.p90, s.p99, s.max, s.mean) for name, s in steps.items()]))
    if rec.error_count:
        print("\nerrors:")
        for step, counter in rec.errors.items():
            for problem, count in counter.most_common():
                print(f"  {step}: {problem} x{count}")
        print("first ones:\n  " + "\n  ".join(rec.error_samples))
    print(
        f"\ndatabase: {len(totals['numbers'])} orders ({totals['paid']} paid), {totals['units']} units; "
        f"check-stock {'passed' if check_stock_ok else 'FAILED'}"
    )
    print("verification: " + ("passed" if not problems else "FAILED\n  " + "\n  ".join(problems)))
    return {
        "engine": engine,
        "workers": workers,
        "seconds": round(window, 2),
        "orders": orders,
        "orders_per_s": round(throughput, 2),
        "client_cpu_s": round(rec.client_cpu_s, 1),
        "rounds": rec.rounds,
        "failed_rounds": rec.failed_rounds,
        "errors": {k: dict(c) for k, c in rec.errors.items()},
        "error_count": rec.error_count,
        "steps": {k: s.as_dict() for k, s in steps.items()},
        "database": {"orders": len(totals["numbers"]), "paid": totals["paid"], "units": totals["units"]},
        "check_stock": check_stock_ok,
        "verification_problems": problems,
    }


def print_comparison(figures: list[dict[str, Any]]) -> None:
    """One line per engine with the headline figures."""
    headers = (
        *("engine", "workers", "orders/s", "add p50", "add p99", "place p50", "place p99"),
        *("return p50", "return p99", "errors", "verified"),
    )
    rows = [
        (
            f["engine"],
            f["workers"],
            float(f["orders_per_s"]),
            float(f["steps"]["add to cart"]["p50"]),
            float(f["steps"]["add to cart"]["p99"]),
            float(f["steps"]["place order"]["p50"]),
            float(f["steps"]["place order"]["p99"]),
            float(f["steps"]["payment return"]["p50"]),
            float(f["steps"]["payment return"]["p99"]),
            f["error_count"],
            "yes" if not f["verification_problems"] else "NO",
        )
        for f in figures
    ]
    print("\nsummary (latencies in ms)\n" + table(headers, rows))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options (see ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.bench_checkout",
        description="Checkout throughput and add-to-cart / place-order latency against `webshop serve`.",
    )
    parser.add_argument(
        "--engine",
        choices=("sqlite", "postgres", "both"),
        default=None,
        help="database engine(s) (default: both when a PostgreSQL server is configured, else sqlite)",
    )
    parser.add_argument(
        "--postgres-url",
        "--database-url",
        dest="postgres_url",
        default=None,
        help="PostgreSQL server, postgresql+asyncpg://user@host:port/db; a database with a random name is "
        "created there and dropped afterwards (default: $WEBSHOP_TEST_POSTGRES_URL)",
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="`webshop serve` worker processes (default: 1 on SQLite, 2 on PG)"
    )
    parser.add_argument(
        "--max-active-requests",
        type=int,
        default=None,
        help="the server's WEBSHOP_MAX_ACTIVE_REQUESTS (default: the shop's default; 0: no limit)",
    )
    parser.add_argument("--shoppers", type=int, default=32, help="concurrent shoppers (default: %(default)s)")
    amount = parser.add_mutually_exclusive_group()
    amount.add_argument("--rounds", type=int, default=None, help="orders per shopper")
    amount.add_argument("--duration", type=float, default=30.0, help="seconds to shop for (default: %(default)s)")
    parser.add_argument(
        "--warmup-rounds", type=int, default=1, help="unmeasured rounds per shopper first (default: %(default)s)"
    )
    parser.add_argument("--items", type=int, default=1, help="products added per order (default: %(default)s)")
    parser.add_argument("--products", type=int, default=200, help="catalog size (default: %(default)s)")
    parser.add_argument("--stock", type=int, default=100_000, help="units of each product (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the catalog and choices (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the work folders (SQLite file, server logs)")
    args = parser.parse_args(argv)
    args.postgres_url = args.postgres_url or default_postgres_url()
    if args.postgres_url:
        check_postgres_url(args.postgres_url)
    args.engine = args.engine or ("both" if args.postgres_url else "sqlite")
    if args.engine != "sqlite" and not args.postgres_url:
        parser.error("PostgreSQL needs --postgres-url or WEBSHOP_TEST_POSTGRES_URL")
    if min(args.shoppers, args.items, args.products, args.stock, args.rounds or 1, args.workers or 1) < 1:
        parser.error("--shoppers, --items, --products, --stock, --rounds and --workers must be at least 1")
    if args.items > args.products:
        parser.error("--items cannot exceed --products")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: ``python -m tests.benchmarks.bench_checkout``."""
    args = parse_args(argv)
    engines = ("sqlite", "postgres") if args.engine == "both" else (args.engine,)
    figures = [run_engine(engine, args) for engine in engines]
    if len(figures) > 1:
        print_comparison(figures)
    if args.json:
        write_json(
            args.json,
            {
                "benchmark": "checkout",
                "config": {k: v for k, v in vars(args).items() if k not in {"json", "postgres_url"}},
                "machine": machine(),
                "engines": figures,
            },
        )
    if any(f["verification_problems"] or f["error_count"] for f in figures):
        sys.exit(1)


if __name__ == "__main__":
    main()
