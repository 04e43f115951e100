"""A product's audit trail in the API (``GET /api/products/{id}/history``), as its admin page shows it, on
both engines: who changed what and when, newest first; a shop's member reads their shops' products only."""

from __future__ import annotations

from typing import Any

from tests.api_user import assert_problem, bearer, bearer_of
from tests.factories import shop_selling
from tests.integration.conftest import ADMIN_EMAIL
from webshop.db.engine import ShopAlchemyConfig


async def test_the_history_lists_the_products_variants_and_stocks_changes_newest_first(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int], admin_headers: dict[str, str]
) -> None:
    product = (await client.get("/api/products/by-slug/delta-chair")).json()
    chair = skus["DC-1"]
    assert (
        await client.patch(f"/api/products/{product['id']}", json={"name": "Delta Chair II"}, headers=admin_headers)
    ).status_code == 200
    assert (
        await client.patch(f"/api/variants/{chair}", json={"price": 9900}, headers=admin_headers)
    ).status_code == 200
    adjusted = await client.post(
        f"/api/variants/{chair}/stock-adjustments", json={"delta": 3, "reason": "found"}, headers=admin_headers
    )
    assert adjusted.status_code == 201, adjusted.text

    response = await client.get(f"/api/products/{product['id']}/history", headers=admin_headers)
    assert response.status_code == 200, response.text
    events = response.json()
    assert [(e["entity_type"], e["action"]) for e in events][:3] == [
        ("stock", "adjust"),
        ("variant", "update"),
        ("product", "update"),
    ]
    assert events[0]["changes"] == {"stock": [12, 15]} and events[0]["actor_email"] == ADMIN_EMAIL
    assert events[2]["changes"]["name"] == ["Delta Chair", "Delta Chair II"]
    assert all(e["created_at"] for e in events)

    assert_problem(await client.get("/api/products/999999/history", headers=admin_headers), 404)
    assert_problem(await client.get(f"/api/products/{product['id']}/history"), 401)
    customer = await bearer(client, "ada@example.com")
    assert_problem(await client.get(f"/api/products/{product['id']}/history", headers=customer), 403)
    await shop_selling(alchemy, "ann@example.com", "beta-camera")
    ann = await bearer_of(client, "ann@example.com")
    assert_problem(await client.get(f"/api/products/{product['id']}/history", headers=ann), 404)  # another shop's
    camera = (await client.get("/api/products/by-slug/beta-camera")).json()
    assert (await client.get(f"/api/products/{camera['id']}/history", headers=ann)).status_code == 200


async def test_a_new_products_history_names_the_fields_it_sets_and_not_the_empty_ones(
    client: Any, admin_headers: dict[str, str]
) -> None:
    body = {"name": "Bare Stool", "variants": [{"sku": "BS-1", "price": 1500, "stock": 2}]}
    created = await client.post("/api/products", json=body, headers=admin_headers)
    assert created.status_code == 201, created.text
    events = (await client.get(f"/api/products/{created.json()['id']}/history", headers=admin_headers)).json()
    [made] = [e for e in events if (e["entity_type"], e["action"]) == ("product", "create")]
    assert made["changes"]["name"] == [None, "Bare Stool"]
    assert "category_id" not in made["changes"]  # no category: not "— → —" (QA)
    assert all(after not in (None, "") for _, after in made["changes"].values())
