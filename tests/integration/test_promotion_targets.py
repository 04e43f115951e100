"""A promotion whose variant or category is deleted, on both engines (QA: on SQLite a promotion for a
deleted variant took money off the next variant created, which got the freed id); and ids that are never
given again, on SQLite too."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from tests.api_user import bearer
from tests.factories import audit_events
from webshop.db.engine import ShopAlchemyConfig
from webshop.db.models import Category, Promotion

Headers = dict[str, str]


@pytest.fixture(autouse=True)
async def catalog(skus: dict[str, int]) -> dict[str, int]:
    """The small test catalog (``skus``), for every test here."""
    return skus


async def _promotion(alchemy: ShopAlchemyConfig, promotion_id: int) -> Promotion:
    async with alchemy.get_session() as session:
        promotion = await session.get(Promotion, promotion_id)
        assert promotion is not None
        return promotion


async def test_a_deleted_variant_leaves_its_promotions_and_a_new_variant_gets_no_discount(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int], admin_headers: Headers
) -> None:
    made = await client.post(
        "/api/products",
        json={
            "name": "Gamma Mug",
            "option_groups": ["size"],
            "variants": [
                {"sku": "GM-S", "price": 1000, "stock": 5, "option_values": ["S"]},
                {"sku": "GM-L", "price": 1000, "stock": 5, "option_values": ["L"]},
            ],
        },
        headers=admin_headers,
    )
    assert made.status_code == 201, made.text
    product = made.json()
    large = next(v["id"] for v in product["variants"] if v["sku"] == "GM-L")
    only = await client.post(
        "/api/promotions",
        json={"name": "Half off large mugs", "kind": "percentage", "value": 50, "variant_ids": [large]},
        headers=admin_headers,
    )
    both = await client.post(
        "/api/promotions",
        json={"name": "Mugs and cameras", "kind": "percentage", "value": 10, "variant_ids": [large, skus["BC-1"]]},
        headers=admin_headers,
    )
    assert only.status_code == both.status_code == 201, (only.text, both.text)

    assert (await client.delete(f"/api/variants/{large}", headers=admin_headers)).status_code == 204
    first, second = await _promotion(alchemy, only.json()["id"]), await _promotion(alchemy, both.json()["id"])
    assert (first.variant_ids, first.active) == ([], False)  # nothing left to apply to: switched off
    assert (second.variant_ids, second.active) == ([skus["BC-1"]], True)
    summaries = [event.summary for event in await audit_events(alchemy, "promotion", first.id)]
    assert any("variant GM-L was deleted" in summary and "switched off" in summary for summary in summaries)

    # A new variant gets a new id (SQLite used to give it the freed one) and is sold at its price.
    added = await client.post(
        f"/api/products/{product['id']}/variants",
        json={"sku": "GM-XL", "price": 1000, "stock": 5, "option_values": ["XL"]},
        headers=admin_headers,
    )
    assert added.status_code == 201, added.text
    assert added.json()["id"] > large  # never the deleted variant's id, on SQLite too (AUTOINCREMENT)
    shopper = await bearer(client, "ada@example.com")
    cart = await client.post("/api/cart/items", json={"sku": "GM-XL", "quantity": 1}, headers=shopper)
    assert cart.status_code == 201, cart.text
    assert cart.json()["discount_total"]["amount"] == 0 and cart.json()["promotions"] == []


async def test_a_deleted_category_leaves_its_promotions(
    client: Any, alchemy: ShopAlchemyConfig, admin_headers: Headers
) -> None:
    created = await client.post("/api/categories", json={"name": "Gifts"}, headers=admin_headers)
    assert created.status_code == 201, created.text
    gifts = created.json()["id"]
    promotion = await client.post(
        "/api/promotions",
        json={"name": "Gift week", "kind": "percentage", "value": 20, "category_ids": [gifts]},
        headers=admin_headers,
    )
    assert promotion.status_code == 201, promotion.text
    assert (await client.delete(f"/api/categories/{gifts}", headers=admin_headers)).status_code == 204
    stored = await _promotion(alchemy, promotion.json()["id"])
    assert (stored.category_ids, stored.active) == ([], False)
    async with alchemy.get_session() as session:
        assert await session.scalar(select(Category).where(Category.id == gifts)) is None
    again = await client.post("/api/categories", json={"name": "Gifts"}, headers=admin_headers)
    assert again.status_code == 201 and again.json()["id"] > gifts  # a new category, a new id
