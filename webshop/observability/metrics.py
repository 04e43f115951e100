"""Prometheus metrics: requests by route template and status, orders placed, checkout failures by reason.

Served at ``/metrics`` in the text exposition format. Labels use the route *template*
(``/products/{slug:str}``), never the raw path, so one product page does not become ten thousand
series; requests that matched no route are counted under ``<unmatched>``.

Several worker processes (``webshop serve --workers N``): each worker has its own counters, so set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory, writable by the workers, *before* the server
starts (prometheus_client reads it when it is first imported). The workers then write their values
to files there and ``/metrics`` sums them over all workers (prometheus_client's multiprocess mode).
Empty the directory between runs.

``/metrics`` wants ``Authorization: Bearer <token>`` (what Prometheus' ``authorization`` scrape setting
sends) when ``WEBSHOP_METRICS_TOKEN`` is set. Production refuses to start without the token
(``webshop.config``); only development leaves ``/metrics`` open.
"""

from __future__ import annotations

import functools
import hmac
import os
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from litestar import Response, get
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from webshop.errors import CartChanged, InsufficientStock, NotFound, PaymentDeclined, ValidationFailed
from webshop.web import AnyRequest

UNMATCHED = "<unmatched>"
# Seconds: from 5 ms to 10 s, finer where a shop's pages usually are.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "webshop_http_requests_total", "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)  # fmt: skip
LATENCY = Histogram(
    "webshop_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by method, route template and status.",
    ["method", "route", "status"],
    buckets=LATENCY_BUCKETS,
)
ORDERS_PLACED = Counter("webshop_orders_placed_total", "Orders placed (counted after the order is committed).")
CHECKOUT_FAILURES = Counter(
    "webshop_checkout_failures_total",
    "Checkouts that placed no order, by reason: out_of_stock, payment_declined, validation, cart_changed, "
    "not_found, error.",
    ["reason"],
)
RATE_LIMITED = Counter("webshop_rate_limited_total", "Requests refused with 429 by a per-address limit.", ["limit"])
SIGN_IN_FAILURES = Counter("webshop_sign_in_failures_total", "Failed sign-ins (pages and API).")
ACCOUNT_LOCKS = Counter("webshop_account_locks_total", "Times an account (or an unknown e-mail) was locked.")

CHECKOUT_FAILURE_REASONS: tuple[tuple[type[Exception], str], ...] = (
    (InsufficientStock, "out_of_stock"),
    (PaymentDeclined, "payment_declined"),
    (CartChanged, "cart_changed"),
    (ValidationFailed, "validation"),
    (NotFound, "not_found"),
)

P = ParamSpec("P")
T = TypeVar("T")


def checkout_failure_reason(exc: BaseException) -> str:
    """The ``reason`` label for an exception raised by ``place_order``."""
    for kind, reason in CHECKOUT_FAILURE_REASONS:
        if isinstance(exc, kind):
            return reason
    return "error"


def counts_checkouts(place_order: Callable[P, Awaitable[tuple[Any, bool]]]) -> Callable[P, Awaitable[tuple[Any, bool]]]:
    """Decorate ``CheckoutService.place_order``: count a new order once it has returned (it commits
    before returning), and every failure by reason. A replayed order (``created`` False) counts nothing."""

    @functools.wraps(place_order)
    async def counted(*args: P.args, **kwargs: P.kwargs) -> tuple[Any, bool]:
        try:
            order, created = await place_order(*args, **kwargs)
        except Exception as exc:
            CHECKOUT_FAILURES.labels(reason=checkout_failure_reason(exc)).inc()
            raise
        if created:
            ORDERS_PLACED.inc()
        return order, created

    return counted


def _registry() -> CollectorRegistry:
    """The registry to expose: this process's, or the sum over all workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def metrics_handler(token: str) -> Any:
    """The ``GET /metrics`` route; with ``token`` set it requires ``Authorization: Bearer <token>``."""

    @get("/metrics", include_in_schema=False, sync_to_thread=False, name="metrics")
    def metrics(request: AnyRequest) -> Response[bytes]:
        """Prometheus metrics in the text exposition format."""
        if token:
            supplied = request.headers.get("authorization", "")
            if not hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode()):
                return Response(
                    b"metrics need a bearer token\n",
                    status_code=401,
                    media_type="text/plain",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)

    return metrics
