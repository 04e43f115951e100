"""Issue 16: product, variant, photo and stock writes through the API by shop members (both engines).

Each of anonymous, customer, owner of shop A, staff of shop A, owner of shop B and platform admin
tries every write route against a product of shop A: the expected status, and nothing changed where
it was refused (another shop's product is 404, not 403). ``POST /api/products`` puts the product in
the member's shop; a ``shop_id`` of a shop the user is not in is refused.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from tests.api_user import assert_problem, token_pair
from tests.factories import ledger_ok, make_user
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Product, ProductImage, User, UserRole, Variant
from webshop.shops.schemas import MemberWrite, ShopWrite
from webshop.shops.service import ShopService

NEW = {
    "name": "Copper Pan",
    "variants": [{"sku": "CP-1", "price": 4900, "stock": 3}],
}


async def _headers(client: Any, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await token_pair(client, email))['access_token']}"}


@pytest.fixture
async def world(client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]) -> dict[str, Any]:
    """Shops A and B with an owner each and a staff member of A; a customer and an admin; bearer
    headers of each (``None`` for anonymous), and shop A's ids."""
    ids = {
        name: await make_user(alchemy, f"{name}@example.com", UserRole.ADMIN if name == "admin" else UserRole.CUSTOMER)
        for name in ("admin", "customer", "owner_a", "staff_a", "owner_b")
    }
    async with write_session(alchemy) as session:
        admin = await session.get(User, ids["admin"])
        shops = ShopService(session=session)
        a = await shops.create_shop(admin, ShopWrite(name="Shop A"))
        b = await shops.create_shop(admin, ShopWrite(name="Shop B"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=ids["owner_a"], role="owner"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=ids["staff_a"], role="staff"))
        await shops.add_member(admin, b.id, MemberWrite(user_id=ids["owner_b"], role="owner"))
        shop_ids = {"a": a.id, "b": b.id, "default": (await shops.default_shop()).id}
    headers: dict[str, dict[str, str] | None] = {"anonymous": None}
    for name in ids:
        headers[name] = await _headers(client, f"{name}@example.com")
    return {"headers": headers, "shops": shop_ids}


async def _product_of(client: Any, world: dict[str, Any], sku: str) -> dict[str, Any]:
    response = await client.post(
        "/api/products",
        json={**NEW, "variants": [{**NEW["variants"][0], "sku": sku}]},
        headers=world["headers"]["owner_a"],
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _state(alchemy: ShopAlchemyConfig, product_id: int) -> tuple[Any, ...]:
    async with alchemy.get_session() as session:
        product = await session.get(Product, product_id)
        assert product is not None
        variants = (
            await session.execute(
                select(Variant.sku, Variant.price, Variant.stock)
                .where(Variant.product_id == product_id)
                .order_by(Variant.id)
            )
        ).all()
        images = await session.scalar(select(func.count()).where(ProductImage.product_id == product_id))
        return (product.name, product.deleted_at is None, tuple(map(tuple, variants)), images)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (200, 80, 40)).save(buffer, "PNG")
    return buffer.getvalue()


EXPECTED = {"anonymous": 401, "customer": 403, "owner_b": 404, "owner_a": None, "staff_a": None, "admin": None}
"""Status of a refused write per caller; ``None``: allowed."""


@pytest.mark.parametrize("who", list(EXPECTED))
async def test_every_product_write_route_is_for_the_products_shop_only(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any], who: str
) -> None:
    product = await _product_of(client, world, f"CP-{who}")
    pid, vid = product["id"], product["variants"][0]["id"]
    headers = world["headers"][who]
    refused = EXPECTED[who]
    before = await _state(alchemy, pid)
    attempts = [
        ("PATCH", f"/api/products/{pid}", {"json": {"name": "Renamed"}}, 200),
        ("POST", f"/api/products/{pid}/variants", {"json": {"sku": f"CP-{who}-2", "price": 5900}}, 201),
        ("PATCH", f"/api/variants/{vid}", {"json": {"price": 5100}}, 200),
        ("POST", f"/api/variants/{vid}/stock-adjustments", {"json": {"delta": 2, "reason": "found two"}}, 201),
        ("POST", f"/api/products/{pid}/images", {"files": {"file": ("pan.png", _png(), "image/png")}}, 201),
        ("DELETE", f"/api/products/{pid}", {}, 204),
        ("POST", f"/api/products/{pid}/restore", {}, 200),
    ]
    for method, url, kwargs, allowed in attempts:
        response = await client.request(method, url, headers=headers or {}, **kwargs)
        if refused is None:
            assert response.status_code == allowed, (method, url, response.text)
        else:
            assert_problem(response, refused)
    after = await _state(alchemy, pid)
    if refused is None:
        assert after[0] == "Renamed" and after[1] and len(after[2]) == 2 and after[3] == 1
        assert after[2][0][1:] == (5100, 5)
    else:
        assert after == before  # nothing changed where it was refused
    assert await ledger_ok(alchemy)


async def test_new_products_go_to_the_members_shop_and_forged_shop_ids_are_refused(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    headers, shops = world["headers"], world["shops"]
    mine = await _product_of(client, world, "CP-MINE")
    forged = await client.post(
        "/api/products",
        json={**NEW, "variants": [{"sku": "CP-F", "price": 1}], "shop_id": shops["b"]},
        headers=headers["owner_a"],
    )
    assert_problem(forged, 403)
    admins = await client.post(
        "/api/products", json={**NEW, "variants": [{"sku": "CP-ADM", "price": 1}]}, headers=headers["admin"]
    )
    named = await client.post(
        "/api/products",
        json={**NEW, "variants": [{"sku": "CP-B", "price": 1}], "shop_id": shops["b"]},
        headers=headers["admin"],
    )
    assert admins.status_code == named.status_code == 201
    moved = await client.patch(f"/api/products/{mine['id']}", json={"shop_id": shops["b"]}, headers=headers["owner_a"])
    assert_problem(moved, 400)  # a product stays in its shop: the field is not accepted on update
    async with alchemy.get_session() as session:
        rows = dict((await session.execute(select(Variant.sku, Product.shop_id).join(Product))).all())
    assert rows["CP-MINE"] == shops["a"] and rows["CP-ADM"] == shops["default"] and rows["CP-B"] == shops["b"]
    assert "CP-F" not in rows


async def test_members_and_admins_list_the_products_they_manage_switched_off_and_deleted_too(
    client: Any, world: dict[str, Any]
) -> None:
    """QA (API parity): a product switched off was 404 in ``GET /api/products/{id}`` though ``PATCH`` changed
    it, and no route listed switched-off, deleted or low-stock products as the admin table does."""
    headers = world["headers"]
    off = await _product_of(client, world, "CP-OFF")
    assert (
        await client.patch(f"/api/products/{off['id']}", json={"is_active": False}, headers=headers["owner_a"])
    ).is_success
    gone = await _product_of(client, world, "CP-GONE")
    assert (await client.delete(f"/api/products/{gone['id']}", headers=headers["owner_a"])).status_code == 204
    assert (await client.get(f"/api/products/{off['id']}")).status_code == 404  # not on sale: not in the shop

    def listed(body: dict[str, Any]) -> dict[str, tuple[bool, bool]]:
        return {
            item["variants"][0]["sku"]: (item["is_active"], item["deleted_at"] is not None) for item in body["items"]
        }

    mine = await client.get("/api/products/managed", params={"q": "CP-"}, headers=headers["staff_a"])
    assert mine.status_code == 200, mine.text
    assert listed(mine.json()) == {"CP-OFF": (False, False)} and mine.json()["total"] == 1  # deleted: not by default
    every = (
        await client.get("/api/products/managed", params={"q": "CP-", "state": "all"}, headers=headers["staff_a"])
    ).json()
    assert listed(every) == {"CP-OFF": (False, False), "CP-GONE": (True, True)}
    deleted = await client.get("/api/products/managed", params={"state": "deleted"}, headers=headers["owner_a"])
    assert listed(deleted.json()) == {"CP-GONE": (True, True)}
    # Another shop's member sees none of shop A's; an admin sees every shop's; a customer is refused.
    other = await client.get("/api/products/managed", params={"q": "CP-", "state": "all"}, headers=headers["owner_b"])
    assert other.json() == {"items": [], "total": 0, "page": 1, "pages": 1}
    admin = await client.get("/api/products/managed", params={"state": "all", "limit": 200}, headers=headers["admin"])
    assert {"CP-OFF", "CP-GONE", "DC-1"} <= {item["variants"][0]["sku"] for item in admin.json()["items"]}
    assert_problem(await client.get("/api/products/managed", headers=headers["customer"]), 403)
    assert_problem(await client.get("/api/products/managed"), 401)
    assert_problem(
        await client.get("/api/products/managed", params={"sort": "cheapest"}, headers=headers["admin"]), 400
    )
    # Stock levels, as the admin table's filter: CP-OFF sold out.
    variant_id = off["variants"][0]["id"]
    sold_out = {"delta": -3, "reason": "counted"}
    adjusted = await client.post(
        f"/api/variants/{variant_id}/stock-adjustments", json=sold_out, headers=headers["owner_a"]
    )
    assert adjusted.is_success, adjusted.text
    out = (await client.get("/api/products/managed", params={"stock_level": "out"}, headers=headers["owner_a"])).json()
    assert listed(out) == {"CP-OFF": (False, False)}
