"""The audit trails of orders, shops and users in the API (``GET /api/{orders,shops,users}/{id}/history``),
as their admin pages show them, on both engines: the changes made through the API, newest first, to whoever
the page shows them to; everyone else gets the route's 401, 403 or 404."""

from __future__ import annotations

from typing import Any

from tests.api_user import assert_problem, bearer, bearer_of
from tests.factories import account, make_order, make_user, shop_selling
from tests.integration.conftest import ADMIN_EMAIL
from webshop.db.engine import ShopAlchemyConfig


def actions(events: list[dict[str, Any]]) -> list[str]:
    """The events' ``action``s, in the order given."""
    return [event["action"] for event in events]


async def test_an_orders_history_lists_its_status_changes_newest_first_to_admins_only(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int], admin_headers: dict[str, str]
) -> None:
    customer = await bearer(client, "ada@example.com")
    ada = await account(alchemy, "ada@example.com")
    await shop_selling(alchemy, "ann@example.com", "delta-chair")
    order_id = await make_order(alchemy, ada.id, "WS-1001", {"DC-1": 1})
    for status in ("shipped", "delivered"):
        changed = await client.patch(f"/api/orders/{order_id}", json={"status": status}, headers=admin_headers)
        assert changed.status_code == 200, changed.text

    response = await client.get(f"/api/orders/{order_id}/history", headers=admin_headers)
    assert response.status_code == 200, response.text
    events = response.json()
    assert {(e["entity_type"], e["entity_id"]) for e in events} == {("order", order_id)}
    status_changes = [e["changes"]["status"] for e in events if e["action"] == "status"]
    assert status_changes == [["shipped", "delivered"], ["paid", "shipped"]]
    assert events[0]["action"] == "status" and events[0]["actor_email"] == ADMIN_EMAIL
    assert "WS-1001" in events[0]["summary"] and events[0]["created_at"]

    assert_problem(await client.get("/api/orders/999999/history", headers=admin_headers), 404)
    assert_problem(await client.get(f"/api/orders/{order_id}/history"), 401)
    # The customer and the shop that sold the chair see the order, but not its history (the platform's).
    assert (await client.get(f"/api/orders/{order_id}", headers=customer)).status_code == 200
    assert_problem(await client.get(f"/api/orders/{order_id}/history", headers=customer), 403)
    ann = await bearer_of(client, "ann@example.com")
    assert (await client.get(f"/api/orders/{order_id}", headers=ann)).status_code == 200
    assert_problem(await client.get(f"/api/orders/{order_id}/history", headers=ann), 403)


async def test_a_shops_history_is_its_admins_and_members_and_a_deleted_shops_the_admins(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int], admin_headers: dict[str, str]
) -> None:
    created = await client.post("/api/shops", json={"name": "Olive's Oils"}, headers=admin_headers)
    assert created.status_code == 201, created.text
    shop_id = created.json()["id"]
    olive_id = await make_user(alchemy, "olive@example.com")
    sam_id = await make_user(alchemy, "sam@example.com")
    for user_id, role in ((olive_id, "owner"), (sam_id, "staff")):
        added = await client.post(
            f"/api/shops/{shop_id}/members", json={"user_id": user_id, "role": role}, headers=admin_headers
        )
        assert added.status_code == 201, added.text
    olive = await bearer_of(client, "olive@example.com")
    renamed = await client.patch(f"/api/shops/{shop_id}", json={"name": "Olive's Fine Oils"}, headers=olive)
    assert renamed.status_code == 200, renamed.text
    assert (await client.post(f"/api/shops/{shop_id}/suspend", headers=admin_headers)).status_code == 200

    response = await client.get(f"/api/shops/{shop_id}/history", headers=admin_headers)
    assert response.status_code == 200, response.text
    events = response.json()
    assert actions(events) == ["suspend", "update", "member", "member", "create"]
    assert {(e["entity_type"], e["entity_id"]) for e in events} == {("shop", shop_id)}
    assert events[0]["changes"] == {"is_active": [True, False]} and events[0]["actor_email"] == ADMIN_EMAIL
    assert events[1]["changes"]["name"] == ["Olive's Oils", "Olive's Fine Oils"]
    assert events[1]["actor_email"] == "olive@example.com"
    # Its members read the same trail, the suspended shop's too; staff as well as owners, as on the page.
    assert (await client.get(f"/api/shops/{shop_id}/history", headers=olive)).json() == events
    sam = await bearer_of(client, "sam@example.com")
    assert (await client.get(f"/api/shops/{shop_id}/history", headers=sam)).json() == events

    assert_problem(await client.get(f"/api/shops/{shop_id}/history"), 401)
    assert_problem(await client.get("/api/shops/999999/history", headers=admin_headers), 404)
    customer = await bearer(client, "ada@example.com")
    assert_problem(await client.get(f"/api/shops/{shop_id}/history", headers=customer), 403)  # runs no shop
    await shop_selling(alchemy, "ann@example.com", "beta-camera")
    ann = await bearer_of(client, "ann@example.com")
    assert_problem(await client.get(f"/api/shops/{shop_id}/history", headers=ann), 404)  # another shop's

    assert (await client.delete(f"/api/shops/{shop_id}", headers=admin_headers)).status_code == 204
    assert_problem(await client.get(f"/api/shops/{shop_id}", headers=admin_headers), 404)
    deleted = await client.get(f"/api/shops/{shop_id}/history", headers=admin_headers)
    assert deleted.status_code == 200, deleted.text
    assert actions(deleted.json()) == ["delete", *actions(events)]
    # A deleted shop is no one's to run: its owner, who runs no other shop now, is refused as a customer.
    assert_problem(await client.get(f"/api/shops/{shop_id}/history", headers=olive), 403)


async def test_a_users_history_lists_their_account_changes_newest_first_to_admins_erased_or_not(
    client: Any, alchemy: ShopAlchemyConfig, admin_headers: dict[str, str]
) -> None:
    customer = await bearer(client, "ada@example.com")
    ada = await account(alchemy, "ada@example.com")
    for change in ({"name": "Ada Lovelace"}, {"is_active": False}):
        changed = await client.patch(f"/api/users/{ada.id}", json=change, headers=admin_headers)
        assert changed.status_code == 200, changed.text

    response = await client.get(f"/api/users/{ada.id}/history", headers=admin_headers)
    assert response.status_code == 200, response.text
    events = response.json()
    assert actions(events) == ["deactivate", "rename"]
    assert {(e["entity_type"], e["entity_id"]) for e in events} == {("user", ada.id)}
    assert events[0]["changes"] == {"is_active": [True, False]} and events[0]["actor_email"] == ADMIN_EMAIL
    assert events[1]["changes"] == {"name": ["Ada", "Ada Lovelace"]}

    assert_problem(await client.get(f"/api/users/{ada.id}/history"), 401)
    assert_problem(await client.get("/api/users/999999/history", headers=admin_headers), 404)
    await make_user(alchemy, "bob@example.com")
    bob = await bearer_of(client, "bob@example.com")
    assert_problem(await client.get(f"/api/users/{ada.id}/history", headers=bob), 403)
    assert_problem(await client.get(f"/api/users/{ada.id}/history", headers=customer), 401)  # signed out

    # An erased account is gone from the rest of the API; its trail stays, ending with the erasure.
    assert (await client.delete(f"/api/users/{ada.id}", headers=admin_headers)).status_code == 204
    assert_problem(await client.get(f"/api/users/{ada.id}", headers=admin_headers), 404)
    erased = (await client.get(f"/api/users/{ada.id}/history", headers=admin_headers)).json()
    assert actions(erased) == ["erase", "deactivate", "rename"]
    assert "ada@example.com" not in str(erased) and "Ada" not in str(erased)  # the renames' names too
