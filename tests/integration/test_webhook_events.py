"""Issue 17: the domain services queue outbound webhook events with the change they report (both engines).

Three endpoints are registered straight in the database: one listening to everything (a real HTTP
receiver started by the test, which checks each event's signature), one to
``order.placed`` and ``order.paid`` only, and a switched-off one listening to everything. The shop is
then driven through the JSON API as a shopper and an admin would (and a CSV import as the command
line runs it), and the ``webhook_deliveries`` rows are read back: one per event and listening
endpoint, the same event id for every endpoint of one event, the payload as documented in
``webshop.webhooks.payloads``; a checkout that fails (a declined card, stock gone) queues nothing.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from tests.api_user import assert_problem, bearer, token_pair
from tests.factories import make_user
from tests.webhook_receiver import Receiver
from webshop.catalog.csv.apply import import_catalog
from webshop.catalog.csv.parse import COLUMNS
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import UserRole, WebhookDelivery, WebhookEndpoint, WebhookEvent
from webshop.webhooks.signing import verify

ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}
EVERY_EVENT = [event.value for event in WebhookEvent]
ALL_SECRET = "a" * 32


@pytest.fixture
async def endpoints(alchemy: ShopAlchemyConfig, receiver: Receiver) -> dict[str, int]:
    """``{"all", "orders", "off"}`` → endpoint id: everything (the test's real HTTP receiver); order.placed
    and order.paid; everything but inactive."""
    rows = {
        "all": WebhookEndpoint(url=receiver.url, secret=ALL_SECRET, events=EVERY_EVENT),
        "orders": WebhookEndpoint(
            url="https://hooks.example.com/orders", secret="b" * 32, events=["order.placed", "order.paid"]
        ),
        "off": WebhookEndpoint(
            url="https://hooks.example.com/off", secret="c" * 32, events=EVERY_EVENT, is_active=False
        ),
    }
    async with write_session(alchemy) as session:
        session.add_all(rows.values())
        await session.commit()
        return {name: row.id for name, row in rows.items()}


@pytest.fixture
async def admin(client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]) -> dict[str, str]:
    """Bearer headers of an admin (the small catalog is seeded)."""
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    return {"Authorization": f"Bearer {(await token_pair(client, 'boss@example.com'))['access_token']}"}


async def received(alchemy: ShopAlchemyConfig, endpoint_id: int) -> list[WebhookDelivery]:
    """The deliveries queued for one endpoint, oldest first."""
    async with alchemy.get_session() as session:
        rows = await session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id)
        )
        return list(rows)


def data_of(deliveries: list[WebhookDelivery], event: str) -> list[dict[str, Any]]:
    """The ``data`` of each delivery of ``event``, checking the body's envelope on the way."""
    found = []
    for delivery in deliveries:
        if delivery.event_type == event:
            body = delivery.payload
            assert body["id"] == delivery.event_id and body["id"].startswith("evt_") and body["type"] == event
            assert body["created_at"].endswith("Z")
            found.append(body["data"])
    return found


async def test_orders_and_stock_emit_their_events_once_and_failed_checkouts_none(
    client: Any,
    alchemy: ShopAlchemyConfig,
    skus: dict[str, int],
    admin: dict[str, str],
    endpoints: dict[str, int],
    receiver: Receiver,
) -> None:
    ada = await bearer(client, "ada@example.com")

    async def add(lines: dict[str, int]) -> None:
        for sku, quantity in lines.items():
            added = await client.post("/api/cart/items", json={"sku": sku, "quantity": quantity}, headers=ada)
            assert added.status_code in (200, 201), added.text

    async def checkout(lines: dict[str, int], key: str, card: str = "tok_visa") -> Any:
        await add(lines)
        body = {"shipping_address": ADDRESS, "shipping_method": "standard", "payment": {"token": card}}
        return await client.post("/api/checkout", json=body, headers={**ada, "Idempotency-Key": key})

    # DC-1 goes 12 → 5, crossing its threshold of 5; EP-1 40 → 39 stays well above it.
    first = await checkout({"DC-1": 7, "EP-1": 1}, "webhook-events-order-1")
    assert first.status_code == 201, first.text
    first_order = first.json()
    # DC-1 5 → 4: already low, no second stock.low. The shopper then cancels this order.
    second = await checkout({"DC-1": 1}, "webhook-events-order-2")
    assert second.status_code == 201, second.text
    second_order = second.json()
    assert (await client.post(f"/api/orders/{second_order['id']}/cancel", headers=ada)).status_code == 200
    # The admin ships the first order, marks it delivered (no event), gives $5.00 back (refund.succeeded:
    # API QA, a partial refund told no one) and refunds the rest.
    shipped = await client.post(
        f"/api/orders/{first_order['id']}/shipments",
        json={"carrier": "DHL", "tracking_number": "JD0146"},
        headers=admin,
    )
    assert shipped.status_code == 201, shipped.text
    changed = await client.patch(f"/api/orders/{first_order['id']}", json={"status": "delivered"}, headers=admin)
    assert changed.status_code == 200, changed.text
    part = await client.post(
        f"/api/orders/{first_order['id']}/refunds",
        json={"amount": 500, "reason": "Scratched"},
        headers={**admin, "Idempotency-Key": "webhook-events-refund-1"},
    )
    assert part.status_code == 201, part.text
    changed = await client.patch(f"/api/orders/{first_order['id']}", json={"status": "refunded"}, headers=admin)
    assert changed.status_code == 200, changed.text
    # Failed checkouts: a declined card whose reservation took EP-1 across its threshold (39 → 5, then
    # returned when the order was cancelled: no stock.low), then stock gone between cart and checkout
    # (BC-1: 3 → 2, no crossing: no order at all).
    assert_problem(await checkout({"EP-1": 34}, "webhook-events-order-3", card="tok_chargeDeclined"), 402)
    await add({"BC-1": 3})
    adjusted = await client.post(
        f"/api/variants/{skus['BC-1']}/stock-adjustments", json={"delta": -1, "reason": "count"}, headers=admin
    )
    assert adjusted.status_code == 201, adjusted.text
    assert_problem(await checkout({}, "webhook-events-order-4"), 409)

    everything = await received(alchemy, endpoints["all"])
    assert [d.event_type for d in everything] == [
        "order.placed",
        "order.paid",
        "stock.low",  # with the sale that crossed it, once paid
        "order.placed",
        "order.paid",
        "order.cancelled",
        "refund.succeeded",  # the cancel's refund, once made
        "order.shipped",
        "refund.succeeded",  # the $5.00
        "order.refunded",
        "refund.succeeded",  # the rest
        "order.placed",  # the declined checkout: placed, then cancelled when its payment failed
        "order.cancelled",
    ]
    orders_only = await received(alchemy, endpoints["orders"])
    assert [(d.event_type, d.event_id) for d in orders_only] == [
        (d.event_type, d.event_id) for d in everything if d.event_type in ("order.placed", "order.paid")
    ]
    order_events = [e for e in everything if e.event_type in ("order.placed", "order.paid")]
    assert all(d.payload == e.payload for d, e in zip(orders_only, order_events, strict=True))
    assert len({d.event_id for d in everything}) == len(everything)
    assert await received(alchemy, endpoints["off"]) == []
    # The endpoint listening to everything is a real HTTP receiver: each event arrives once, signed.
    got = await receiver.wait_for(len(everything))
    assert sorted(headers["webhook-id"] for _, headers, _ in got) == sorted(d.event_id for d in everything)
    for _, headers, body in got:
        assert json.loads(body)["id"] == verify(ALL_SECRET, headers, body)

    [low] = data_of(everything, "stock.low")
    assert low == {
        "variant_id": skus["DC-1"],
        "sku": "DC-1",
        "product_id": low["product_id"],
        "product_name": "Delta Chair",
        "stock": 5,
        "low_stock_threshold": 5,
    }
    placed, again, declined = data_of(everything, "order.placed")
    # Placed when checkout creates it, waiting for its payment; paid a moment later (order.paid).
    assert (placed["id"], placed["number"], placed["status"]) == (first_order["id"], first_order["number"], "pending")
    assert again["number"] == second_order["number"]
    assert placed["currency"] == "USD" and placed["total"] == first_order["total"]["amount"]
    assert placed["total"] == placed["subtotal"] + placed["shipping_total"] + placed["tax_total"]
    assert placed["customer"]["email"] == "ada@example.com"
    assert placed["paid_at"] is None and placed["created_at"].endswith("Z")
    assert {(ln["sku"], ln["quantity"], ln["unit_price"], ln["line_total"]) for ln in placed["lines"]} == {
        ("DC-1", 7, 8900, 62300),
        ("EP-1", 1, 1999, 1999),
    }
    assert [p["status"] for p in placed["parts"]] == ["pending"]
    paid = data_of(everything, "order.paid")[0]
    assert paid == {**placed, "status": "paid", "paid_at": paid["paid_at"]} and paid["paid_at"] is not None
    cancelled, declined_cancelled = data_of(everything, "order.cancelled")
    assert (declined_cancelled["number"], declined_cancelled["refund_amount"]) == (declined["number"], 0)
    assert (cancelled["number"], cancelled["status"]) == (second_order["number"], "cancelled")
    assert cancelled["cancelled_at"] is not None and cancelled["refund_amount"] == cancelled["total"]
    assert cancelled["refunded_total"] == cancelled["total"] and placed["refunded_total"] == 0
    assert [p["status"] for p in cancelled["parts"]] == ["cancelled"]  # it will not ship (QA: it said "pending")
    [ship] = data_of(everything, "order.shipped")
    assert ship["status"] == "shipped"
    assert [(p["status"], p["carrier"], p["tracking_number"]) for p in ship["parts"]] == [("shipped", "DHL", "JD0146")]
    [refunded] = data_of(everything, "order.refunded")
    assert (refunded["number"], refunded["status"], refunded["refund_amount"]) == (
        first_order["number"],
        "refunded",
        placed["total"] - 500,
    )
    cancel_refund, scratched, rest = data_of(everything, "refund.succeeded")
    assert scratched == {
        "id": part.json()["id"],
        "order_id": first_order["id"],
        "order_number": first_order["number"],
        "currency": "USD",
        "amount": 500,
        "reason": "Scratched",
        "lines": [],
        "is_shipping": False,
        "restock": False,
        "returned_by_shop": False,
        "reference": scratched["reference"],
        "credit_note": scratched["credit_note"],
        "refunded_at": scratched["refunded_at"],
        "status": "succeeded",
        "failure_reason": "",
        "order_status": "delivered",
        "order_refunded_total": 500,
    }
    assert scratched["reference"] and scratched["credit_note"].startswith("CN-") and scratched["refunded_at"]
    assert (rest["amount"], rest["order_status"], rest["order_refunded_total"]) == (
        placed["total"] - 500,
        "refunded",
        placed["total"],
    )
    assert rest["reason"] == "Order refunded" and rest["credit_note"] != scratched["credit_note"]
    assert (cancel_refund["order_number"], cancel_refund["amount"]) == (second_order["number"], cancelled["total"])
    assert cancel_refund["order_status"] == "cancelled" and cancel_refund["reason"] == "Order cancelled"


def _csv(folder: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """A catalog folder whose ``products.csv`` has one single-variant product per ``(name, slug, sku, price)``."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    with (folder / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for name, slug, sku, price in rows:
            writer.writerow([name, slug, "", "", "", "", "", sku, price, "standard", "3", "", "", ""])
    return folder


async def test_product_writes_and_imports_emit_product_events_and_adjustments_stock_low(
    client: Any,
    alchemy: ShopAlchemyConfig,
    settings: Settings,
    tmp_path: Path,
    skus: dict[str, int],
    admin: dict[str, str],
    endpoints: dict[str, int],
) -> None:
    body = {
        "name": "Trail Shoe",
        "option_groups": ["size"],
        "variants": [{"sku": "TS-42", "price": 12900, "option_values": ["42"], "stock": 4}],
    }
    refused = {**body, "variants": [{**body["variants"][0], "sku": "DC-1"}]}  # a SKU in use: nothing written
    assert_problem(await client.post("/api/products", json=refused, headers=admin), 422)
    created = await client.post("/api/products", json=body, headers=admin)
    assert created.status_code == 201, created.text
    product = created.json()
    url = f"/api/products/{product['id']}"
    assert (await client.patch(url, json={"name": "Trail Shoe 2"}, headers=admin)).status_code == 200
    variant = {"sku": "TS-44", "price": 13900, "option_values": ["44"], "stock": 9}
    assert (await client.post(f"{url}/variants", json=variant, headers=admin)).status_code == 201
    assert (await client.delete(url, headers=admin)).status_code == 204
    # An admin adjustment crossing the threshold (ZS-42: 7 → 5) is news; the next one (5 → 4) is not.
    for delta in (-2, -1):
        adjusted = await client.post(
            f"/api/variants/{skus['ZS-42']}/stock-adjustments", json={"delta": delta, "reason": "count"}, headers=admin
        )
        assert adjusted.status_code == 201, adjusted.text
    # A CSV import: one event per product created; re-imported, one per product changed, none for the rest.
    media = settings.shop.media_dir
    first = _csv(tmp_path / "one", [("Kettle", "kettle", "K-1", "9.99"), ("Teapot", "teapot", "T-1", "19.99")])
    assert (await import_catalog(alchemy, first, media)).products_created == 2
    second = _csv(tmp_path / "two", [("Kettle", "kettle", "K-1", "8.99"), ("Teapot", "teapot", "T-1", "19.99")])
    await import_catalog(alchemy, second, media)

    everything = await received(alchemy, endpoints["all"])
    assert [d.event_type for d in everything] == [
        "product.created",
        "product.updated",
        "product.updated",
        "product.deleted",
        "stock.low",
        "product.created",
        "product.created",
        "product.updated",
    ]
    assert await received(alchemy, endpoints["orders"]) == []  # not subscribed to these
    assert await received(alchemy, endpoints["off"]) == []

    new, renamed, grown, *imported_updates = data_of(everything, "product.created")[:1] + data_of(
        everything, "product.updated"
    )
    assert (new["id"], new["slug"], new["name"], new["is_visible"]) == (product["id"], "trail-shoe", "Trail Shoe", True)
    assert new["shop_id"] == product["shop_id"] and new["option_groups"] == ["size"]
    assert [(v["sku"], v["price"], v["currency"], v["stock"]) for v in new["variants"]] == [("TS-42", 12900, "USD", 4)]
    assert renamed["name"] == "Trail Shoe 2"
    assert [(v["sku"], v["stock"]) for v in grown["variants"]] == [("TS-42", 4), ("TS-44", 9)]
    [deleted] = data_of(everything, "product.deleted")
    assert deleted["id"] == product["id"] and deleted["is_deleted"] and not deleted["is_visible"]
    assert deleted["deleted_at"] is not None
    [low] = data_of(everything, "stock.low")
    assert (low["sku"], low["stock"], low["low_stock_threshold"]) == ("ZS-42", 5, 5)
    kettle, teapot = data_of(everything, "product.created")[1:]
    assert (kettle["slug"], teapot["slug"]) == ("kettle", "teapot")
    assert [(v["sku"], v["price"], v["stock"]) for v in kettle["variants"]] == [("K-1", 999, 3)]
    [repriced] = imported_updates
    assert repriced["slug"] == "kettle" and repriced["variants"][0]["price"] == 899


async def test_the_endpoints_are_read_once_a_transaction_and_afresh_in_the_next(alchemy: ShopAlchemyConfig) -> None:
    from webshop.webhooks.events import subscribers

    async with alchemy.get_session() as session:  # a reader: the writes below do not wait for it
        assert await subscribers(session, WebhookEvent.STOCK_LOW) == []
        async with write_session(alchemy) as other:
            endpoint = WebhookEndpoint(url="https://hooks.example.com/new", secret="d" * 32, events=["stock.low"])
            other.add(endpoint)
            await other.commit()
        assert await subscribers(session, WebhookEvent.STOCK_LOW) == []  # this transaction's view
        await session.rollback()
        assert await subscribers(session, WebhookEvent.STOCK_LOW) == [endpoint.id]
        assert await subscribers(session, WebhookEvent.ORDER_PAID) == []
        await session.commit()
        async with write_session(alchemy) as other:
            switched = await other.get(WebhookEndpoint, endpoint.id)
            assert switched is not None
            switched.is_active = False
            await other.commit()
        assert await subscribers(session, WebhookEvent.STOCK_LOW) == []
