"""Issue 16: the shops JSON API on both engines, route by route, as every kind of client.

The clients: anonymous, a customer, shop A's owner and staff, shop B's owner (another shop's owner)
and a platform admin. Each route answers each of them with the status ``ShopService``'s rules give
(401 without a token, 403 for a role that may not, 404 for a shop the client does not run), and a
refused request changes nothing. Products in the API carry their shop, and a suspended shop's
products leave ``GET /api/products``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.api_user import assert_problem, token_pair
from tests.factories import audit_events, make_user
from tests.integration.test_admin_shops import png
from webshop.catalog.summaries import catalog_changed
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Product, Shop, ShopMember, User, UserRole
from webshop.shops.schemas import MemberWrite, ShopPatch, ShopWrite
from webshop.shops.service import ShopService

Headers = dict[str, str]


@dataclass
class World:
    """Two shops besides the default one and a client of every kind (``headers[role]``)."""

    default_id: int
    a_id: int
    b_id: int
    product_id: int
    user_ids: dict[str, int]
    headers: dict[str, Headers]


ROLES = ("anonymous", "customer", "owner", "staff", "other_owner", "admin")


@pytest.fixture
async def world(client, alchemy: ShopAlchemyConfig, skus: dict[str, int]) -> World:
    """Shop A ("Ann's Kitchen": owner, staff, and the Beta Camera) and shop B ("Bob's Bikes": other_owner)."""
    emails = {
        "customer": "ada@example.com",
        "owner": "ann@example.com",
        "staff": "sam@example.com",
        "other_owner": "bob@example.com",
        "admin": "boss@example.com",
    }
    user_ids = {
        role: await make_user(alchemy, email, UserRole.ADMIN if role == "admin" else UserRole.CUSTOMER)
        for role, email in emails.items()
    }
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        default_id = (await shops.default_shop()).id
        a = await shops.create_shop(None, ShopWrite(name="Ann's Kitchen", description="Pots"))
        b = await shops.create_shop(None, ShopWrite(name="Bob's Bikes"))
        await shops.add_member(None, a.id, MemberWrite(user_id=user_ids["owner"], role="owner"))
        await shops.add_member(None, a.id, MemberWrite(user_id=user_ids["staff"], role="staff"))
        await shops.add_member(None, b.id, MemberWrite(user_id=user_ids["other_owner"], role="owner"))
        product = await session.scalar(select(Product).where(Product.slug == "beta-camera"))
        assert product is not None
        product.shop_id = a.id
        await catalog_changed(session, [product.id])
        await session.commit()
        world = World(default_id, a.id, b.id, product.id, user_ids, {"anonymous": {}})
    for role, email in emails.items():
        token = (await token_pair(client, email))["access_token"]
        world.headers[role] = {"Authorization": f"Bearer {token}"}
    return world


async def _shop(alchemy: ShopAlchemyConfig, shop_id: int) -> Shop:
    async with alchemy.get_session() as session:
        shop = await session.get(Shop, shop_id)
        assert shop is not None
        return shop


async def _roles(alchemy: ShopAlchemyConfig, shop_id: int) -> dict[int, str]:
    async with alchemy.get_session() as session:
        rows = await session.execute(select(ShopMember.user_id, ShopMember.role).where(ShopMember.shop_id == shop_id))
        return {user_id: role for user_id, role in rows}


async def _shop_count(alchemy: ShopAlchemyConfig) -> int:
    async with alchemy.get_session() as session:
        return int(await session.scalar(select(func.count()).select_from(Shop)) or 0)


# --- public reads ---------------------------------------------------------------------------------


async def test_anyone_lists_trading_shops_by_name_in_pages_and_searches_them(client, alchemy, world: World) -> None:
    for role in ROLES:
        response = await client.get("/api/shops", headers=world.headers[role])
        assert response.status_code == 200, (role, response.text)
        body = response.json()
        assert [s["slug"] for s in body["items"]] == ["ann-s-kitchen", "bob-s-bikes", "webshop"]
        assert body["next_cursor"] is None
    ann = body["items"][0]
    assert ann["id"] == world.a_id and ann["name"] == "Ann's Kitchen" and ann["description"] == "Pots"
    assert ann["address"] == {"line1": "", "line2": "", "city": "", "postal_code": "", "country": ""}
    assert ann["logo_url"] is None and ann["is_active"] is True and ann["is_default"] is False

    seen, cursor = [], None
    while True:
        page = (await client.get("/api/shops", params={"limit": 2, **({"cursor": cursor} if cursor else {})})).json()
        seen += [s["slug"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["ann-s-kitchen", "bob-s-bikes", "webshop"]
    # A shop added before the cursor between two pages neither repeats one nor hides one (QA).
    first = (await client.get("/api/shops", params={"limit": 1})).json()
    async with write_session(alchemy) as session:
        await ShopService(session=session).create_shop(None, ShopWrite(name="Aardvark Audio"))
    rest = (await client.get("/api/shops", params={"limit": 5, "cursor": first["next_cursor"]})).json()
    assert [s["slug"] for s in first["items"] + rest["items"]] == seen
    # The shop a page ended with renamed meanwhile: the next page still starts where that page ended (review).
    first = (await client.get("/api/shops", params={"limit": 1, "q": "s"})).json()
    async with write_session(alchemy) as session:
        await ShopService(session=session).update_shop(None, first["items"][0]["id"], ShopPatch(name="Zed's Kitchen"))
    rest = (await client.get("/api/shops", params={"limit": 5, "q": "s", "cursor": first["next_cursor"]})).json()
    assert [s["slug"] for s in rest["items"]] == ["bob-s-bikes", "webshop", "ann-s-kitchen"]
    found = (await client.get("/api/shops", params={"q": "bike"})).json()["items"]
    assert [s["id"] for s in found] == [world.b_id]
    assert (await client.get("/api/shops", params={"q": "nothing like it"})).json()["items"] == []
    assert_problem(await client.get("/api/shops", params={"cursor": "x!"}), 400)  # not the cursor's alphabet
    assert_problem(await client.get("/api/shops", params={"cursor": "eA"}), 422)  # not one the API issued
    assert_problem(await client.get("/api/shops", params={"limit": 0}), 400)


async def test_anyone_reads_a_trading_shop_a_suspended_or_deleted_one_is_not_found(client, alchemy, world) -> None:
    response = await client.get(f"/api/shops/{world.a_id}")
    assert response.status_code == 200 and response.json()["slug"] == "ann-s-kitchen"
    assert_problem(await client.get("/api/shops/999999"), 404)
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        await shops.suspend(None, world.a_id)
        await shops.delete_shop(None, world.b_id)
    for role in ROLES:  # members and admins too: this is the public directory
        assert_problem(await client.get(f"/api/shops/{world.a_id}", headers=world.headers[role]), 404)
        assert_problem(await client.get(f"/api/shops/{world.b_id}", headers=world.headers[role]), 404)
    assert [s["slug"] for s in (await client.get("/api/shops")).json()["items"]] == ["webshop"]


# --- create ---------------------------------------------------------------------------------------


async def test_only_an_admin_creates_a_shop(client, alchemy, world: World) -> None:
    body = {
        "name": "  Cora's Crafts ",
        "description": "Yarn\nand more",
        "address": {"line1": "1 High St", "city": "York", "postal_code": "YO1 7HH", "country": "gb"},
        "contact_email": "cora@example.com",
        "contact_phone": "+44 1904 000000",
    }
    before = await _shop_count(alchemy)
    assert_problem(await client.post("/api/shops", json=body), 401)
    for role in ("customer", "owner", "staff", "other_owner"):
        assert_problem(await client.post("/api/shops", json=body, headers=world.headers[role]), 403)
    assert await _shop_count(alchemy) == before

    response = await client.post("/api/shops", json=body, headers=world.headers["admin"])
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["id"] and made["slug"] == "cora-s-crafts" and made["name"] == "Cora's Crafts"
    assert made["address"] == {
        "line1": "1 High St",
        "line2": "",
        "city": "York",
        "postal_code": "YO1 7HH",
        "country": "GB",
    }
    assert made["contact_email"] == "cora@example.com" and made["is_active"] and not made["is_default"]
    assert (await client.get(f"/api/shops/{made['id']}")).json() == made

    named = await client.post("/api/shops", json={"name": "X", "slug": "x-shop"}, headers=world.headers["admin"])
    assert named.status_code == 201 and named.json()["slug"] == "x-shop"
    assert await _shop_count(alchemy) == before + 2


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"name": "   "}, 400, "name"),
        ({"name": "Nul\u0000"}, 400, "name"),
        ({"name": "A", "id": 5}, 400, "id"),
        ({"name": "A", "is_default": True}, 400, "is_default"),
        ({"name": "A", "slug": "Not A Slug"}, 400, "slug"),
        ({"name": "A", "slug": "webshop"}, 422, "slug"),
        ({"name": "A", "contact_email": "not an address"}, 400, "contact_email"),
        ({"name": "A", "address": {"country": "GBR"}}, 400, "address.country"),
        ({"name": "A", "address": {"country": "zz"}}, 422, "address.country"),  # two letters, no country; nested (QA)
        ({"description": "no name"}, 400, "name"),
    ],
)
async def test_a_bad_new_shop_is_refused_naming_the_field(client, alchemy, world, body, status, field) -> None:
    before = await _shop_count(alchemy)
    problem = assert_problem(await client.post("/api/shops", json=body, headers=world.headers["admin"]), status)
    assert field in str(problem), problem
    assert status != 422 or field in problem["errors"], problem  # named as the body names it, as a 400 does
    assert await _shop_count(alchemy) == before


# --- change ---------------------------------------------------------------------------------------


async def test_the_owner_or_an_admin_changes_a_shop_staff_403_others_404(client, alchemy, world: World) -> None:
    url = f"/api/shops/{world.a_id}"
    change = {"description": "Pans too", "address": {"city": "Leeds"}}
    assert_problem(await client.patch(url, json=change), 401)
    assert_problem(await client.patch(url, json=change, headers=world.headers["staff"]), 403)
    for role in ("customer", "other_owner"):
        assert_problem(await client.patch(url, json=change, headers=world.headers[role]), 404)
    assert (await _shop(alchemy, world.a_id)).description == "Pots"

    response = await client.patch(url, json=change, headers=world.headers["owner"])
    assert response.status_code == 200, response.text
    assert response.json()["description"] == "Pans too" and response.json()["address"]["city"] == "Leeds"
    assert response.json()["name"] == "Ann's Kitchen"  # left out: kept

    renamed = await client.patch(url, json={"name": "Ann's Pans"}, headers=world.headers["admin"])
    assert renamed.status_code == 200 and renamed.json()["slug"] == "ann-s-kitchen"
    taken = await client.patch(url, json={"slug": "bob-s-bikes"}, headers=world.headers["owner"])
    assert_problem(taken, 422)
    assert_problem(await client.patch("/api/shops/999999", json=change, headers=world.headers["admin"]), 404)
    assert_problem(await client.patch(url, json={"is_active": False}, headers=world.headers["owner"]), 400)
    shop = await _shop(alchemy, world.a_id)
    assert (shop.name, shop.slug, shop.city, shop.is_active) == ("Ann's Pans", "ann-s-kitchen", "Leeds", True)


async def test_put_replaces_the_whole_profile_with_the_same_rules(client, alchemy, world: World) -> None:
    url = f"/api/shops/{world.a_id}"
    await client.patch(url, json={"contact_phone": "0123"}, headers=world.headers["owner"])
    whole = {"name": "Ann's Kitchen", "address": {"line1": "2 Low St", "country": "FR"}}
    assert_problem(await client.put(url, json=whole), 401)
    assert_problem(await client.put(url, json=whole, headers=world.headers["staff"]), 403)
    for role in ("customer", "other_owner"):
        assert_problem(await client.put(url, json=whole, headers=world.headers[role]), 404)
    assert (await _shop(alchemy, world.a_id)).contact_phone == "0123"
    assert_problem(await client.put(url, json={"description": "no name"}, headers=world.headers["owner"]), 400)

    for role in ("owner", "admin"):
        response = await client.put(url, json=whole, headers=world.headers[role])
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["slug"] == "ann-s-kitchen"  # a slug left out stays
        assert (body["description"], body["contact_phone"]) == ("", "")  # other fields left out: emptied
        assert body["address"]["line1"] == "2 Low St" and body["address"]["country"] == "FR"
    moved = await client.put(url, json={**whole, "slug": "anns"}, headers=world.headers["owner"])
    assert moved.status_code == 200 and moved.json()["slug"] == "anns"


# --- delete ---------------------------------------------------------------------------------------


async def test_only_an_admin_deletes_a_shop_softly_and_never_the_default_one(client, alchemy, world: World) -> None:
    url = f"/api/shops/{world.a_id}"
    assert_problem(await client.delete(url), 401)
    for role in ("customer", "owner", "staff", "other_owner"):
        assert_problem(await client.delete(url, headers=world.headers[role]), 403)
    assert (await _shop(alchemy, world.a_id)).deleted_at is None

    assert (await client.delete(url, headers=world.headers["admin"])).status_code == 204
    shop = await _shop(alchemy, world.a_id)
    assert shop.deleted_at is not None and not shop.is_active  # kept, for past orders
    assert_problem(await client.get(url), 404)
    # Gone from the API for everyone: its owner and the admin too (the admin pages can restore it).
    for role in ("owner", "admin"):
        assert_problem(await client.patch(url, json={"name": "Back"}, headers=world.headers[role]), 404)
        assert_problem(await client.put(url, json={"name": "Back"}, headers=world.headers[role]), 404)
        assert_problem(await client.get(f"{url}/members", headers=world.headers[role]), 404)
    staff = {"user_id": world.user_ids["customer"]}
    assert_problem(await client.post(f"{url}/members", json=staff, headers=world.headers["admin"]), 404)
    assert_problem(await client.delete(f"{url}/members/{world.user_ids['staff']}", headers=world.headers["admin"]), 404)
    assert (await _shop(alchemy, world.a_id)).name == "Ann's Kitchen"
    assert len(await _roles(alchemy, world.a_id)) == 2

    default = await client.delete(f"/api/shops/{world.default_id}", headers=world.headers["admin"])
    assert_problem(default, 409)
    suspended = await client.post(f"/api/shops/{world.default_id}/suspend", headers=world.headers["admin"])
    assert "cannot be suspended" in assert_problem(suspended, 409)["detail"]
    assert (await _shop(alchemy, world.default_id)).deleted_at is None
    assert (await _shop(alchemy, world.default_id)).is_active
    assert_problem(await client.delete("/api/shops/999999", headers=world.headers["admin"]), 404)


# --- the managed list, suspend and restore, the logo (QA: the admin pages had them, the API did not) ----


async def test_admins_and_members_list_the_shops_they_manage_suspended_ones_too(client, alchemy, world) -> None:
    async with write_session(alchemy) as session:
        await ShopService(session=session).suspend(None, world.b_id)
    assert_problem(await client.get("/api/shops/managed"), 401)
    assert_problem(await client.get("/api/shops/managed", headers=world.headers["customer"]), 403)

    def slugs(body: dict) -> list[tuple[str, bool]]:
        return [(shop["slug"], shop["is_active"]) for shop in body["items"]]

    admin = (await client.get("/api/shops/managed", headers=world.headers["admin"])).json()
    assert slugs(admin) == [("ann-s-kitchen", True), ("bob-s-bikes", False), ("webshop", True)]
    assert (admin["total"], admin["page"], admin["pages"]) == (3, 1, 1)
    assert all(shop["deleted_at"] is None for shop in admin["items"])
    other = (await client.get("/api/shops/managed", headers=world.headers["other_owner"])).json()
    assert slugs(other) == [("bob-s-bikes", False)]  # their suspended shop, which the public list hides
    staff = (await client.get("/api/shops/managed", headers=world.headers["staff"])).json()
    assert slugs(staff) == [("ann-s-kitchen", True)]
    suspended = await client.get("/api/shops/managed", params={"status": "suspended"}, headers=world.headers["admin"])
    assert slugs(suspended.json()) == [("bob-s-bikes", False)]
    paged = await client.get("/api/shops/managed", params={"limit": 2, "page": 2}, headers=world.headers["admin"])
    assert slugs(paged.json()) == [("webshop", True)] and paged.json()["pages"] == 2
    found = await client.get("/api/shops/managed", params={"q": "BIKE"}, headers=world.headers["admin"])
    assert slugs(found.json()) == [("bob-s-bikes", False)]
    assert_problem(
        await client.get("/api/shops/managed", params={"status": "gone"}, headers=world.headers["admin"]), 400
    )


async def test_an_admin_suspends_and_restores_a_shop_its_products_leave_and_come_back(client, alchemy, world) -> None:
    url = f"/api/shops/{world.a_id}"
    for verb in ("suspend", "restore"):
        assert_problem(await client.post(f"{url}/{verb}"), 401)
        for role in ("customer", "owner", "staff", "other_owner"):
            assert_problem(await client.post(f"{url}/{verb}", headers=world.headers[role]), 403)
    assert (await _shop(alchemy, world.a_id)).is_active

    suspended = await client.post(f"{url}/suspend", headers=world.headers["admin"])
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["is_active"] is False and suspended.json()["deleted_at"] is None
    again = await client.post(f"{url}/suspend", headers=world.headers["admin"])  # a repeated call: nothing more
    assert again.status_code == 200 and again.json() == suspended.json()
    assert [event.action for event in await audit_events(alchemy, "shop", world.a_id)].count("suspend") == 1
    assert_problem(await client.get(url), 404)
    assert_problem(await client.get(f"/api/products/{world.product_id}"), 404)
    listed = (await client.get("/api/products", params={"limit": 100})).json()["items"]
    assert world.product_id not in [product["id"] for product in listed]

    restored = await client.post(f"{url}/restore", headers=world.headers["admin"])
    assert restored.status_code == 200 and restored.json()["is_active"] is True
    assert (await client.get(f"/api/products/{world.product_id}")).status_code == 200
    assert (await client.get(url)).json()["slug"] == "ann-s-kitchen"

    # A deleted shop: suspending it is 404 (it is gone), the managed list finds it, restoring brings it back.
    assert (await client.delete(url, headers=world.headers["admin"])).status_code == 204
    assert_problem(await client.post(f"{url}/suspend", headers=world.headers["admin"]), 404)
    deleted = await client.get("/api/shops/managed", params={"status": "deleted"}, headers=world.headers["admin"])
    assert [shop["id"] for shop in deleted.json()["items"]] == [world.a_id]
    assert deleted.json()["items"][0]["deleted_at"] is not None
    back = await client.post(f"{url}/restore", headers=world.headers["admin"])
    assert back.status_code == 200 and back.json()["is_active"] and back.json()["deleted_at"] is None
    assert (await client.get(url)).status_code == 200
    assert_problem(await client.post("/api/shops/999999/restore", headers=world.headers["admin"]), 404)


async def test_a_deleted_shop_whose_name_is_taken_meanwhile_is_not_restored(client, alchemy, world) -> None:
    assert (await client.delete(f"/api/shops/{world.b_id}", headers=world.headers["admin"])).status_code == 204
    made = await client.post("/api/shops", json={"name": "Bob's Bikes"}, headers=world.headers["admin"])
    assert made.status_code == 201, made.text
    refused = await client.post(f"/api/shops/{world.b_id}/restore", headers=world.headers["admin"])
    assert_problem(refused, 409)
    assert "Bob's Bikes" in refused.json()["detail"]
    assert (await _shop(alchemy, world.b_id)).deleted_at is not None


async def test_the_owner_or_an_admin_sets_and_removes_the_logo(client, alchemy, world: World) -> None:
    url = f"/api/shops/{world.a_id}/logo"

    def upload(content: bytes, name: str = "logo.png", mime: str = "image/png") -> dict:
        return {"files": {"file": (name, content, mime)}}

    assert_problem(await client.put(url, **upload(png())), 401)
    assert_problem(await client.put(url, **upload(png()), headers=world.headers["staff"]), 403)
    too_large = upload(b"x" * (5 * 1024 * 1024 + 1))
    assert_problem(await client.put(url, **too_large, headers=world.headers["staff"]), 403)  # who, before what
    assert_problem(await client.put(url, **too_large, headers=world.headers["owner"]), 413)
    for role in ("customer", "other_owner"):
        assert_problem(await client.put(url, **upload(png()), headers=world.headers[role]), 404)
    assert (await _shop(alchemy, world.a_id)).logo_key is None

    response = await client.put(url, **upload(png()), headers=world.headers["owner"])
    assert response.status_code == 200, response.text
    logo_url = response.json()["logo_url"]
    assert logo_url and logo_url.endswith(".webp")
    assert (await client.get(logo_url)).status_code == 200
    assert (await client.get(f"/api/shops/{world.a_id}")).json()["logo_url"] == logo_url

    refused = await client.put(url, **upload(b"not an image", "logo.png"), headers=world.headers["admin"])
    assert_problem(refused, 422)
    assert "file" in str(refused.json())
    assert (await client.get(f"/api/shops/{world.a_id}")).json()["logo_url"] == logo_url  # the old one stays

    assert_problem(await client.delete(url, headers=world.headers["staff"]), 403)
    assert (await client.delete(url, headers=world.headers["admin"])).status_code == 204
    assert (await client.get(f"/api/shops/{world.a_id}")).json()["logo_url"] is None
    assert (await client.delete(url, headers=world.headers["owner"])).status_code == 204  # none already


# --- members --------------------------------------------------------------------------------------


async def test_the_shops_members_and_admins_list_its_members(client, world: World) -> None:
    url = f"/api/shops/{world.a_id}/members"
    assert_problem(await client.get(url), 401)
    for role in ("customer", "other_owner"):
        assert_problem(await client.get(url, headers=world.headers[role]), 404)
    for role in ("owner", "staff", "admin"):
        response = await client.get(url, headers=world.headers[role])
        assert response.status_code == 200, response.text
        assert response.json() == [
            {"user_id": world.user_ids["owner"], "email": "ann@example.com", "name": "Shopper", "role": "owner"},
            {"user_id": world.user_ids["staff"], "email": "sam@example.com", "name": "Shopper", "role": "staff"},
        ]
    assert_problem(await client.get("/api/shops/999999/members", headers=world.headers["admin"]), 404)


async def test_admins_add_owners_and_staff_owners_add_staff_only(client, alchemy, world: World) -> None:
    url = f"/api/shops/{world.a_id}/members"
    newcomer = world.user_ids["customer"]
    before = await _roles(alchemy, world.a_id)
    staff = {"user_id": newcomer, "role": "staff"}
    assert_problem(await client.post(url, json=staff), 401)
    assert_problem(await client.post(url, json=staff, headers=world.headers["staff"]), 403)
    assert_problem(await client.post(url, json={**staff, "role": "owner"}, headers=world.headers["owner"]), 403)
    for role in ("customer", "other_owner"):
        assert_problem(await client.post(url, json=staff, headers=world.headers[role]), 404)
    assert await _roles(alchemy, world.a_id) == before

    response = await client.post(url, json=staff, headers=world.headers["owner"])
    assert response.status_code == 201, response.text
    assert response.json() == {"user_id": newcomer, "email": "ada@example.com", "name": "Shopper", "role": "staff"}
    promoted = await client.post(url, json={**staff, "role": "owner"}, headers=world.headers["admin"])
    assert promoted.status_code == 200 and promoted.json()["role"] == "owner"  # a member already: nothing created
    assert (await _roles(alchemy, world.a_id))[newcomer] == "owner"
    again = await client.post(url, json={**staff, "role": "owner"}, headers=world.headers["admin"])
    assert again.status_code == 200 and again.json()["role"] == "owner"

    unknown = await client.post(url, json={"user_id": 999999}, headers=world.headers["admin"])
    assert "user_id" in assert_problem(unknown, 422)["errors"]
    assert_problem(
        await client.post(url, json={"user_id": newcomer, "role": "boss"}, headers=world.headers["admin"]), 400
    )
    assert_problem(await client.post(url, json={"user_id": 0}, headers=world.headers["admin"]), 400)
    assert_problem(await client.post("/api/shops/999999/members", json=staff, headers=world.headers["admin"]), 404)
    # A new member runs the shop at once: the members list is theirs to read.
    assert (await client.get(url, headers=world.headers["customer"])).status_code == 200


async def test_admins_remove_anyone_owners_remove_staff_only(client, alchemy, world: World) -> None:
    owner, staff = world.user_ids["owner"], world.user_ids["staff"]
    a = f"/api/shops/{world.a_id}/members"
    assert_problem(await client.delete(f"{a}/{staff}"), 401)
    assert_problem(await client.delete(f"{a}/{staff}", headers=world.headers["staff"]), 403)
    assert_problem(await client.delete(f"{a}/{owner}", headers=world.headers["owner"]), 403)
    for role in ("customer", "other_owner"):
        assert_problem(await client.delete(f"{a}/{staff}", headers=world.headers[role]), 404)
    assert await _roles(alchemy, world.a_id) == {owner: "owner", staff: "staff"}

    assert (await client.delete(f"{a}/{staff}", headers=world.headers["owner"])).status_code == 204
    assert_problem(await client.delete(f"{a}/{staff}", headers=world.headers["owner"]), 404)  # not a member now
    assert_problem(await client.get(a, headers=world.headers["staff"]), 404)  # no longer runs the shop
    assert (await client.delete(f"{a}/{owner}", headers=world.headers["admin"])).status_code == 204
    assert await _roles(alchemy, world.a_id) == {}


# --- products carry their shop --------------------------------------------------------------------


async def test_products_in_the_api_carry_their_shop(client, world: World) -> None:
    items = (await client.get("/api/products", params={"limit": 100})).json()["items"]
    shops = {item["slug"]: (item["shop_id"], item["shop"]) for item in items}
    ann = {"id": world.a_id, "name": "Ann's Kitchen", "slug": "ann-s-kitchen"}
    assert shops["beta-camera"] == (world.a_id, ann)
    webshop = {"id": world.default_id, "name": "Webshop", "slug": "webshop"}
    assert shops["delta-chair"] == (world.default_id, webshop)

    detail = (await client.get(f"/api/products/{world.product_id}")).json()
    assert detail["shop_id"] == world.a_id and detail["shop"] == ann
    # A new name is in the list and the product at once (the shop's change moves the catalog version).
    await client.patch(f"/api/shops/{world.a_id}", json={"name": "Ann's Pans"}, headers=world.headers["owner"])
    detail = (await client.get(f"/api/products/{world.product_id}")).json()
    assert detail["shop"]["name"] == "Ann's Pans"
    items = (await client.get("/api/products", params={"limit": 100})).json()["items"]
    assert next(i for i in items if i["id"] == world.product_id)["shop"]["name"] == "Ann's Pans"


async def test_a_suspended_shops_products_leave_the_api(client, alchemy, world: World) -> None:
    listed = {i["id"] for i in (await client.get("/api/products", params={"limit": 100})).json()["items"]}
    assert world.product_id in listed
    async with write_session(alchemy) as session:
        await ShopService(session=session).suspend(None, world.a_id)
    after = {i["id"] for i in (await client.get("/api/products", params={"limit": 100})).json()["items"]}
    assert after == listed - {world.product_id}
    assert_problem(await client.get(f"/api/products/{world.product_id}"), 404)
    assert (await client.get("/api/products/facets")).json()["total"] == len(after)

    async with write_session(alchemy) as session:
        await ShopService(session=session).restore(None, world.a_id)
    assert (await client.get(f"/api/products/{world.product_id}")).status_code == 200


async def test_the_product_list_and_facets_filter_by_shop(client, alchemy, skus):
    """``GET /api/products?shop=<slug>`` lists one shop's products; the facet counts name the shops."""
    admin_id = await make_user(alchemy, "filter-admin@example.com", UserRole.ADMIN)
    async with write_session(alchemy) as session:
        admin = await session.get(User, admin_id)
        second = await ShopService(session=session).create_shop(admin, ShopWrite(name="Second Shop"))
        moved = await session.scalar(select(Product).order_by(Product.id).limit(1))
        moved.shop_id = second.id
        await catalog_changed(session, [moved.id])
        await session.commit()
        moved_id = moved.id
    only = (await client.get("/api/products", params={"shop": "second-shop"})).json()["items"]
    assert [(p["id"], p["shop"]["slug"]) for p in only] == [(moved_id, "second-shop")]
    everything = (await client.get("/api/products", params={"limit": 100})).json()["items"]
    assert moved_id in {p["id"] for p in everything} and len(everything) > 1
    facets = (await client.get("/api/products/facets")).json()["facets"]["shop"]
    assert {(f["value"], f["label"], f["count"]) for f in facets} >= {("second-shop", "Second Shop", 1)}
    assert (await client.get("/api/products", params={"shop": "nowhere"})).json()["items"] == []
