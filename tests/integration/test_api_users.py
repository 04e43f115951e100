"""User administration and erasure through the JSON API (issue 17), on both engines.

``/api/users`` and ``/api/users/{id}`` are for admins (no token 401, a customer 403, as problem+json);
``DELETE /api/users/me`` erases one's own account with the password. The rules are the admin pages'
(``UserService``): the shop keeps an active admin, deactivating signs the user out everywhere, erasing
removes the personal data and keeps the orders whole.
"""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, or_, select

from tests.api_user import assert_problem, bearer, token_pair
from tests.conftest import BASE_URL
from tests.factories import audit_events, make_order, make_user
from tests.shopper import PASSWORD, sign_in
from webshop.db.engine import write_session
from webshop.db.models import Address, OrderStatus, User, UserRole


def auth(tokens: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
async def boss(client, alchemy) -> dict[str, str]:
    """Bearer headers of an admin, Boss."""
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    return auth(await token_pair(client, "boss@example.com"))


async def user_id(alchemy, email: str) -> int:
    async with alchemy.get_session() as session:
        found = await session.scalar(select(User.id).where(User.email == email))
        assert found is not None, email
        return found


async def test_only_admins_reach_the_user_routes(client, alchemy, boss):
    customer = await bearer(client, "ada@example.com")
    ada = await user_id(alchemy, "ada@example.com")
    calls = [
        ("GET", "/api/users", None),
        ("GET", f"/api/users/{ada}", None),
        ("PATCH", f"/api/users/{ada}", {"role": "admin"}),
        ("DELETE", f"/api/users/{ada}", None),
    ]
    for method, path, body in calls:
        assert_problem(await client.request(method, path, json=body), 401)
        assert_problem(await client.request(method, path, json=body, headers=customer), 403)
    assert_problem(await client.request("DELETE", "/api/users/me", json={"password": PASSWORD}), 401)
    for method, body in (("GET", None), ("PATCH", {"name": "X"}), ("DELETE", None)):
        assert_problem(await client.request(method, "/api/users/999999", json=body, headers=boss), 404)
    # /api/users/me is the signed-in user's, never taken for an id.
    assert (await client.get("/api/users/me", headers=customer)).json()["email"] == "ada@example.com"
    assert (await client.get(f"/api/users/{ada}", headers=boss)).json()["role"] == "customer"


async def test_list_searches_filters_and_pages_and_detail_has_order_figures(client, alchemy, boss, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada Lovelace")
    await make_user(alchemy, "grace@example.com", name="Grace Hopper")
    await make_user(alchemy, "old@example.com", name="Old Timer")
    async with write_session(alchemy) as session:
        (await session.get(User, await user_id(alchemy, "old@example.com"))).is_active = False
        await session.commit()

    async def emails(query: str) -> list[str]:
        response = await client.get(f"/api/users{query}", headers=boss)
        assert response.status_code == 200, response.text
        return [u["email"] for u in response.json()["items"]]

    assert await emails("?q=LOVELACE") == ["ada@example.com"]
    assert await emails("?q=grace@") == ["grace@example.com"]
    assert await emails("?role=admin") == ["boss@example.com"]
    assert await emails("?is_active=false") == ["old@example.com"]
    assert_problem(await client.get("/api/users?role=owner", headers=boss), 400)
    # Newest first, one at a time, linked by next_cursor, to the end.
    seen, cursor = [], ""
    while True:
        page = (await client.get(f"/api/users?limit=1{cursor}", headers=boss)).json()
        seen += [u["email"] for u in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == ["old@example.com", "grace@example.com", "ada@example.com", "boss@example.com"]
    # A user who registers between two pages neither repeats one nor hides one (QA: offset paging did).
    first = (await client.get("/api/users?limit=2", headers=boss)).json()
    await make_user(alchemy, "newcomer@example.com", name="Newcomer")
    rest = (await client.get(f"/api/users?limit=2&cursor={first['next_cursor']}", headers=boss)).json()
    assert [u["email"] for u in first["items"] + rest["items"]] == seen

    paid = await make_order(alchemy, ada, "W-1", {"DC-1": 1})
    await make_order(alchemy, ada, "W-2", {"DC-1": 2}, status=OrderStatus.CANCELLED)
    await make_order(alchemy, ada, "W-3", {"DC-1": 1}, status=OrderStatus.DELIVERED)
    detail = (await client.get(f"/api/users/{ada}", headers=boss)).json()
    paid_total = (await client.get(f"/api/orders/{paid}", headers=boss)).json()["total"]
    assert detail["name"] == "Ada Lovelace" and detail["email"] == "ada@example.com"
    assert (detail["order_count"], detail["cancellations"]) == (3, 1)
    assert detail["total_spent"] == {"amount": 2 * paid_total["amount"], "currency": "USD"}


async def test_patch_changes_name_role_and_access_only_and_keeps_an_admin(client, alchemy, app, boss):
    boss_id = await user_id(alchemy, "boss@example.com")
    await bearer(client, "ada@example.com")
    ada = await user_id(alchemy, "ada@example.com")
    # Mass assignment: only name, role and is_active; anything else is refused and nothing changes.
    for extra in ({"email": "evil@example.com"}, {"password_hash": "x"}, {"erased_at": None}, {"id": 1}):
        body = assert_problem(await client.patch(f"/api/users/{ada}", json={"name": "Eve", **extra}, headers=boss), 400)
        assert next(iter(extra)) in str(body)
    assert_problem(await client.patch(f"/api/users/{ada}", json={"role": "owner"}, headers=boss), 400)
    assert_problem(await client.patch(f"/api/users/{ada}", json={"name": "   "}, headers=boss), 400)
    assert (await client.get(f"/api/users/{ada}", headers=boss)).json()["name"] == "Ada"

    changed = await client.patch(f"/api/users/{ada}", json={"name": " Ada L. ", "role": "admin"}, headers=boss)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["role"]) == ("Ada L.", "admin")
    events = await audit_events(alchemy, "user", ada)
    assert [(e.action, e.actor_email, e.changes) for e in events] == [
        ("rename", "boss@example.com", {"name": ["Ada", "Ada L."]}),
        ("role", "boss@example.com", {"role": ["customer", "admin"]}),
    ]

    # Deactivating ends the user's API sign-in (access and refresh token) and browser session at once.
    tokens = await token_pair(client, "ada@example.com")
    async with AsyncTestClient(app=app, base_url=BASE_URL) as browser:
        assert (await sign_in(browser, "ada@example.com")).status_code == 303
        assert (await browser.get("/account", follow_redirects=False)).status_code == 200
        off = await client.patch(f"/api/users/{ada}", json={"is_active": False, "role": "customer"}, headers=boss)
        assert off.status_code == 200 and off.json()["is_active"] is False
        assert_problem(await client.get("/api/users/me", headers=auth(tokens)), 401)
        assert_problem(await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
        gone = await browser.get("/account", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/account/sign-in")

    # The last active admin can be neither demoted nor deactivated, even along with another change.
    for body in ({"role": "customer"}, {"is_active": False}, {"name": "Boss 2", "is_active": False}):
        refused = assert_problem(await client.patch(f"/api/users/{boss_id}", json=body, headers=boss), 409)
        assert "at least one active administrator" in refused["detail"]
    me = (await client.get(f"/api/users/{boss_id}", headers=boss)).json()
    assert (me["name"], me["role"], me["is_active"]) == ("Boss", "admin", True)
    assert await audit_events(alchemy, "user", boss_id) == []


async def test_delete_erases_the_account_and_keeps_its_orders(client, alchemy, boss, skus):
    boss_id = await user_id(alchemy, "boss@example.com")
    assert_problem(await client.delete(f"/api/users/{boss_id}", headers=boss), 409)  # the last active admin

    await bearer(client, "Ada.Lovelace@Example.com")
    ada = await user_id(alchemy, "Ada.Lovelace@example.com")
    tokens = await token_pair(client, "Ada.Lovelace@example.com")
    order_id = await make_order(alchemy, ada, "W-1", {"DC-1": 2})
    async with write_session(alchemy) as session:
        session.add(Address(user_id=ada, name="Ada", line1="1 Way", city="London", postal_code="N1", country="GB"))
        await session.commit()
    before = (await client.get(f"/api/orders/{order_id}", headers=boss)).json()
    assert before["lines"][0]["quantity"] == 2 and before["total"]["amount"] > 0

    response = await client.delete(f"/api/users/{ada}", headers=boss)
    assert response.status_code == 204 and response.content == b""
    # Gone from the API; the row that stays (for the orders) says nothing about Ada.
    for method, body in (("GET", None), ("PATCH", {"is_active": True}), ("DELETE", None)):
        assert_problem(await client.request(method, f"/api/users/{ada}", json=body, headers=boss), 404)
    assert [u["id"] for u in (await client.get("/api/users", headers=boss)).json()["items"]] == [boss_id]
    async with alchemy.get_session() as session:
        erased = await session.get(User, ada)
        assert (erased.email, erased.name, erased.role) == (f"deleted-{ada}@invalid", "Deleted user", "customer")
        assert erased.is_active is False and erased.erased_at is not None and erased.email_verified_at is None
        matches = select(func.count()).where(or_(User.email.ilike("%lovelace%"), User.name.ilike("%ada%")))
        assert await session.scalar(matches) == 0
        assert await session.scalar(select(func.count()).where(Address.user_id == ada)) == 0
    assert_problem(await client.get("/api/users/me", headers=auth(tokens)), 401)
    denied = await client.post("/api/auth/token", data={"username": "Ada.Lovelace@example.com", "password": PASSWORD})
    assert_problem(denied, 401)
    # The order is as it was: lines, ship-to snapshot and totals.
    assert (await client.get(f"/api/orders/{order_id}", headers=boss)).json() == before
    events = await audit_events(alchemy, "user", ada)
    assert [(e.action, e.actor_email) for e in events] == [("erase", "boss@example.com")]
    assert "Lovelace" not in events[0].summary


async def test_delete_me_needs_the_password(client, alchemy, boss, skus):
    headers = await bearer(client, "ada@example.com")
    ada = await user_id(alchemy, "ada@example.com")
    order_id = await make_order(alchemy, ada, "W-1", {"DC-1": 1})
    assert_problem(await client.delete("/api/users/me", headers=headers), 400)  # no body
    assert_problem(
        await client.request("DELETE", "/api/users/me", json={"password": PASSWORD, "x": 1}, headers=headers), 400
    )
    wrong = assert_problem(
        await client.request("DELETE", "/api/users/me", json={"password": "wrong guess"}, headers=headers), 422
    )
    assert wrong["detail"] == "This is not your password: your account was not deleted."
    assert (await client.get("/api/users/me", headers=headers)).json()["email"] == "ada@example.com"

    response = await client.request("DELETE", "/api/users/me", json={"password": PASSWORD}, headers=headers)
    assert response.status_code == 204
    assert_problem(await client.get("/api/users/me", headers=headers), 401)
    assert_problem(await client.get(f"/api/users/{ada}", headers=boss), 404)
    order = (await client.get(f"/api/orders/{order_id}", headers=boss)).json()
    assert order["number"] == "W-1" and order["lines"][0]["sku"] == "DC-1"
    assert [(e.action, e.actor_email) for e in await audit_events(alchemy, "user", ada)] == [
        ("erase", f"deleted-{ada}@invalid")
    ]

    # The last active admin cannot erase themselves either.
    refused = assert_problem(
        await client.request("DELETE", "/api/users/me", json={"password": PASSWORD}, headers=boss), 409
    )
    assert "at least one active administrator" in refused["detail"]
