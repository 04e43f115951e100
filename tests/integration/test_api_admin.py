"""Admin catalog writes through the JSON API, on both engines: categories, products, variants, stock, photos.

Every route is checked for its guard (no token → 401, a customer's token → 403, each as problem+json),
its validation (unknown fields such as ``id`` or ``deleted_at`` are refused, never stored) and its effect as
a shopper or an admin then sees it through the API.
"""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from PIL import Image
from sqlalchemy import func, select

from tests.api_user import assert_problem, bearer, token_pair
from tests.factories import audit_events, make_user
from tests.factories import ledger_ok as ledger_is_consistent
from webshop.db.engine import write_session
from webshop.db.models import AuditEvent, Category, Product, StockMovement, UserRole, Variant


@pytest.fixture
async def admin(client, alchemy, skus):
    """Bearer headers of an admin (the catalog is seeded)."""
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN, name="Boss")
    return {"Authorization": f"Bearer {(await token_pair(client, 'boss@example.com'))['access_token']}"}


@pytest.fixture
async def customer(client, skus):
    """Bearer headers of a customer."""
    return await bearer(client, "ada@example.com")


async def category_id(alchemy, slug):
    async with write_session(alchemy) as session:
        return await session.scalar(select(Category.id).where(Category.slug == slug))


# --- categories -------------------------------------------------------------------------------


async def test_create_category_derives_a_free_slug_and_appears_in_the_tree(client, alchemy, admin):
    electronics = await category_id(alchemy, "electronics")
    response = await client.post("/api/categories", json={"name": "  Audio  ", "parent_id": electronics}, headers=admin)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "Audio" and body["slug"] == "audio" and body["parent_id"] == electronics
    assert body["position"] == 2  # after Computers and Photo
    tree = (await client.get("/api/categories")).json()
    children = next(node for node in tree if node["slug"] == "electronics")["children"]
    assert [c["slug"] for c in children] == ["computers", "photo", "audio"]

    # "Photo" exists under Electronics; under Sports the slug "photo" is taken, so the parent's goes first.
    sports = await category_id(alchemy, "sports")
    other = await client.post("/api/categories", json={"name": "Photo", "parent_id": sports}, headers=admin)
    assert other.status_code == 201 and other.json()["slug"] == "sports-photo"
    events = await audit_events(alchemy, "category", body["id"])
    assert [e.action for e in events] == ["create"] and events[0].actor_email == "boss@example.com"


async def test_create_category_rules(client, alchemy, admin):
    electronics = await category_id(alchemy, "electronics")
    same = await client.post("/api/categories", json={"name": "computers", "parent_id": electronics}, headers=admin)
    assert "already a category" in assert_problem(same, 422)["errors"]["name"]
    taken = await client.post("/api/categories", json={"name": "New", "slug": "photo"}, headers=admin)
    assert "already used" in assert_problem(taken, 422)["errors"]["slug"]
    missing = await client.post("/api/categories", json={"name": "Orphan", "parent_id": 999999}, headers=admin)
    assert "parent_id" in assert_problem(missing, 422)["errors"]  # an unknown id in the body is bad input
    for bad in (
        {"name": ""},
        {"name": "   "},
        {"name": "a|b"},
        {"name": "x" * 121},
        {"name": "Ok", "slug": "Not A Slug"},
    ):
        assert_problem(await client.post("/api/categories", json=bad, headers=admin), 400)


async def test_create_category_refuses_fields_a_client_must_not_set(client, alchemy, admin):
    for field in ("id", "created_at", "position", "products"):
        response = await client.post("/api/categories", json={"name": "Sneaky", field: 1}, headers=admin)
        body = assert_problem(response, 400)
        assert field in response.text and body["errors"], field
    async with write_session(alchemy) as session:
        assert await session.scalar(select(func.count()).where(Category.name == "Sneaky")) == 0


async def test_rename_keeps_the_slug_unless_given(client, alchemy, admin):
    photo = await category_id(alchemy, "photo")
    renamed = await client.patch(f"/api/categories/{photo}", json={"name": "Camera & Photo"}, headers=admin)
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Camera & Photo" and renamed.json()["slug"] == "photo"
    reslugged = await client.patch(f"/api/categories/{photo}", json={"slug": "cameras"}, headers=admin)
    assert reslugged.json()["slug"] == "cameras"
    assert (await client.get("/api/products", params={"category": "cameras"})).json()["items"]
    events = await audit_events(alchemy, "category", photo)
    assert [e.action for e in events] == ["rename", "rename"]
    assert events[0].changes == {"name": ["Photo", "Camera & Photo"]}
    assert events[1].changes == {"slug": ["photo", "cameras"]}


async def test_move_within_the_tree(client, alchemy, admin):
    furniture, sports, electronics = [await category_id(alchemy, s) for s in ("furniture", "sports", "electronics")]
    moved = await client.patch(f"/api/categories/{furniture}", json={"parent_id": sports, "position": 0}, headers=admin)
    assert moved.status_code == 200, moved.text
    assert moved.json()["parent_id"] == sports and moved.json()["position"] == 0
    tree = (await client.get("/api/categories")).json()
    assert [c["slug"] for c in next(n for n in tree if n["slug"] == "sports")["children"]] == ["furniture", "footwear"]
    # The shop follows: Sports now includes the chair.
    names = [p["name"] for p in (await client.get("/api/products", params={"category": "sports"})).json()["items"]]
    assert "Delta Chair" in names

    to_top = await client.patch(f"/api/categories/{furniture}", json={"parent_id": None}, headers=admin)
    assert to_top.json()["parent_id"] is None
    first = await client.patch(f"/api/categories/{furniture}", json={"position": 0}, headers=admin)
    assert first.json()["position"] == 0
    tree = (await client.get("/api/categories")).json()
    assert tree[0]["slug"] == "furniture"

    into_itself = await client.patch(f"/api/categories/{electronics}", json={"parent_id": electronics}, headers=admin)
    assert "itself" in assert_problem(into_itself, 422)["errors"]["parent_id"]
    computers = await category_id(alchemy, "computers")
    into_child = await client.patch(f"/api/categories/{electronics}", json={"parent_id": computers}, headers=admin)
    assert_problem(into_child, 422)


async def test_a_refused_move_leaves_the_rename_sent_with_it_undone(client, alchemy, admin):
    electronics, computers = [await category_id(alchemy, s) for s in ("electronics", "computers")]
    both = {"name": "Gadgets", "slug": "gadgets", "parent_id": computers}
    refused = await client.patch(f"/api/categories/{electronics}", json=both, headers=admin)
    assert "itself" in assert_problem(refused, 422)["errors"]["parent_id"]
    tree = (await client.get("/api/categories")).json()
    assert [(n["name"], n["slug"]) for n in tree if n["id"] == electronics] == [("Electronics", "electronics")]
    assert [e.action for e in await audit_events(alchemy, "category", electronics)] == []

    done = await client.patch(f"/api/categories/{electronics}", json={**both, "parent_id": None}, headers=admin)
    assert done.status_code == 200, done.text
    assert (done.json()["name"], done.json()["slug"], done.json()["parent_id"]) == ("Gadgets", "gadgets", None)


async def test_delete_is_refused_while_products_or_subcategories_remain(client, alchemy, admin):
    electronics, photo = await category_id(alchemy, "electronics"), await category_id(alchemy, "photo")
    body = assert_problem(await client.delete(f"/api/categories/{electronics}", headers=admin), 409)
    assert "2 subcategories" in body["detail"]
    body = assert_problem(await client.delete(f"/api/categories/{photo}", headers=admin), 409)
    assert "2 products" in body["detail"]
    empty = (await client.post("/api/categories", json={"name": "Empty"}, headers=admin)).json()["id"]
    assert (await client.delete(f"/api/categories/{empty}", headers=admin)).status_code == 204
    assert_problem(await client.delete(f"/api/categories/{empty}", headers=admin), 404)
    assert [e.action for e in await audit_events(alchemy, "category", empty)] == ["create", "delete"]


# --- products ---------------------------------------------------------------------------------

NEW_PRODUCT = {
    "name": "Trail Shoe",
    "description": "Grippy.",
    "facets": {"brand": ["Salomon"], "color": ["blue"]},
    "option_groups": ["size"],
    "variants": [
        {"sku": "TS-42", "price": 12900, "option_values": ["42"], "stock": 4},
        {"sku": "TS-44", "price": 12900, "option_values": ["44"], "stock": 0, "low_stock_threshold": 2},
    ],
}


async def create_product(client, admin, alchemy, **changes):
    body = {**NEW_PRODUCT, "category_id": await category_id(alchemy, "footwear"), **changes}
    response = await client.post("/api/products", json=body, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_product_with_variants_and_initial_stock(client, alchemy, admin):
    product = await create_product(client, admin, alchemy)
    assert product["slug"] == "trail-shoe" and product["category"]["slug"] == "footwear"
    assert product["facets"] == {"brand": ["Salomon"], "color": ["blue"]}
    assert [(v["sku"], v["options"], v["price"], v["stock"]) for v in product["variants"]] == [
        ("TS-42", {"size": "42"}, {"amount": 12900, "currency": "USD"}, 4),
        ("TS-44", {"size": "44"}, {"amount": 12900, "currency": "USD"}, 0),
    ]
    shown = (await client.get(f"/api/products/{product['id']}")).json()
    assert shown["name"] == "Trail Shoe" and len(shown["variants"]) == 2
    found = (await client.get("/api/products", params={"q": "trail"})).json()["items"]
    assert [p["id"] for p in found] == [product["id"]]
    assert await ledger_is_consistent(alchemy)
    actions = {(e.entity_type, e.action) for e in await audit_events(alchemy, "product", product["id"])}
    assert actions == {("product", "create")}


async def test_create_product_validation(client, alchemy, admin):
    mismatch = {**NEW_PRODUCT, "variants": [{"sku": "X-1", "price": 100, "option_values": []}]}
    body = assert_problem(await client.post("/api/products", json=mismatch, headers=admin), 422)
    assert "variants[0].option_values" in body["errors"]
    taken = {**NEW_PRODUCT, "option_groups": [], "variants": [{"sku": "DC-1", "price": 100}]}
    body = assert_problem(await client.post("/api/products", json=taken, headers=admin), 422)
    assert "already used" in body["errors"]["variants[0].sku"]
    unknown = {**NEW_PRODUCT, "category_id": 999999}
    assert (
        "category_id" in assert_problem(await client.post("/api/products", json=unknown, headers=admin), 422)["errors"]
    )
    for bad in (
        {**NEW_PRODUCT, "variants": []},
        {**NEW_PRODUCT, "name": ""},
        {**NEW_PRODUCT, "slug": "Not A Slug"},
        {**NEW_PRODUCT, "variants": [{"sku": "X", "price": -1, "option_values": ["1"]}]},
        {**NEW_PRODUCT, "variants": [{"sku": "X", "price": "12.99", "option_values": ["1"]}]},
    ):
        assert_problem(await client.post("/api/products", json=bad, headers=admin), 400)
    assert (await client.get("/api/products", params={"q": "trail"})).json()["items"] == []


async def test_create_product_refuses_fields_a_client_must_not_set(client, alchemy, admin):
    for where, field in (
        ("product", "id"),
        ("product", "created_at"),
        ("product", "deleted_at"),
        ("product", "images"),
        ("variant", "id"),
        ("variant", "currency"),
        ("variant", "product_id"),
    ):
        body = {**NEW_PRODUCT, "variants": [dict(v) for v in NEW_PRODUCT["variants"]]}
        value = "2000-01-01T00:00:00Z" if field.endswith("_at") else 7
        (body if where == "product" else body["variants"][0])[field] = value
        response = await client.post("/api/products", json=body, headers=admin)
        errors = assert_problem(response, 400)["errors"]
        assert f"unknown field `{field}`" in " ".join(errors.values()), (where, field, errors)
    assert (await client.get("/api/products", params={"q": "trail"})).json()["items"] == []


async def test_update_product_and_refuse_protected_fields(client, alchemy, admin):
    product = await create_product(client, admin, alchemy)
    changed = await client.patch(
        f"/api/products/{product['id']}",
        json={"name": "Trail Shoe 2", "facets": {"brand": ["Hoka"]}, "category_id": None},
        headers=admin,
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["name"] == "Trail Shoe 2" and body["slug"] == "trail-shoe" and body["category"] is None
    assert body["facets"] == {"brand": ["Hoka"]}
    for field, value in (("deleted_at", None), ("id", 1), ("created_at", "2000-01-01T00:00:00Z"), ("variants", [])):
        assert_problem(await client.patch(f"/api/products/{product['id']}", json={field: value}, headers=admin), 400)
    assert_problem(await client.patch("/api/products/999999", json={"name": "x"}, headers=admin), 404)
    events = await audit_events(alchemy, "product", product["id"])
    assert [e.action for e in events] == ["create", "update"]
    assert events[1].changes["name"] == ["Trail Shoe", "Trail Shoe 2"]


async def test_soft_deleted_product_is_gone_from_the_shop_until_restored(client, alchemy, admin, skus):
    listed = (await client.get("/api/products", params={"q": "delta"})).json()["items"]
    chair = listed[0]["id"]
    assert (await client.delete(f"/api/products/{chair}", headers=admin)).status_code == 204
    assert_problem(await client.get(f"/api/products/{chair}"), 404)
    assert (await client.get("/api/products", params={"q": "delta"})).json()["items"] == []
    assert (await client.get("/product/delta-chair")).status_code == 404
    assert (await client.delete(f"/api/products/{chair}", headers=admin)).status_code == 204  # again: harmless
    restored = await client.post(f"/api/products/{chair}/restore", headers=admin)
    assert restored.status_code == 200 and restored.json()["name"] == "Delta Chair"
    assert (await client.get(f"/api/products/{chair}")).status_code == 200
    assert_problem(await client.delete("/api/products/999999", headers=admin), 404)
    assert [e.action for e in await audit_events(alchemy, "product", chair)] == ["delete", "restore"]


# --- variants and stock -----------------------------------------------------------------------


async def test_variant_create_update_delete(client, alchemy, admin):
    product = await create_product(client, admin, alchemy)
    added = await client.post(
        f"/api/products/{product['id']}/variants",
        json={"sku": "TS-46", "price": 13900, "option_values": ["46"], "stock": 3},
        headers=admin,
    )
    assert added.status_code == 201, added.text
    variant = added.json()
    assert variant["options"] == {"size": "46"} and variant["stock"] == 3
    repeat = await client.post(
        f"/api/products/{product['id']}/variants",
        json={"sku": "TS-47", "price": 1, "option_values": ["46"]},
        headers=admin,
    )
    assert "option_values" in assert_problem(repeat, 422)["errors"]

    changed = await client.patch(f"/api/variants/{variant['id']}", json={"price": 9900}, headers=admin)
    assert changed.status_code == 200 and changed.json()["price"]["amount"] == 9900
    for field, value in (("stock", 50), ("id", 1), ("product_id", 1), ("currency", "EUR")):
        assert_problem(await client.patch(f"/api/variants/{variant['id']}", json={field: value}, headers=admin), 400)
    assert (await client.get(f"/api/products/{product['id']}")).json()["variants"][2]["stock"] == 3
    # The first variant takes the values of a later one: refused as an add would be.
    first, later = product["variants"][0], variant
    taken = await client.patch(f"/api/variants/{first['id']}", json={"option_values": ["46"]}, headers=admin)
    assert assert_problem(taken, 422)["errors"] == {"option_values": "Another variant already has these option values."}
    assert [v["options"] for v in (await client.get(f"/api/products/{product['id']}")).json()["variants"]].count(
        later["options"]
    ) == 1

    for v in (variant, *product["variants"][1:]):
        assert (await client.delete(f"/api/variants/{v['id']}", headers=admin)).status_code == 204
    last = await client.delete(f"/api/variants/{product['variants'][0]['id']}", headers=admin)
    assert "at least one variant" in assert_problem(last, 409)["detail"]
    assert_problem(await client.delete(f"/api/variants/{variant['id']}", headers=admin), 404)
    assert await ledger_is_consistent(alchemy)


async def test_stock_adjustments_go_through_the_ledger(client, alchemy, admin, skus):
    variant = skus["DC-1"]  # 12 in stock
    url = f"/api/variants/{variant}/stock-adjustments"
    added = await client.post(url, json={"delta": 5, "reason": "delivery"}, headers=admin)
    assert added.status_code == 201, added.text
    assert added.json() == {"variant_id": variant, "sku": "DC-1", "delta": 5, "reason": "delivery", "stock": 17}
    taken = await client.post(url, json={"delta": -20, "reason": "stock take"}, headers=admin)
    assert "below zero" in assert_problem(taken, 409)["errors"]["delta"]
    too_many = await client.post(url, json={"delta": 2**31 - 2, "reason": "typo"}, headers=admin)
    assert "cannot exceed" in assert_problem(too_many, 422)["errors"]["delta"]  # not an integer overflow (500)
    assert_problem(await client.post(url, json={"delta": 1}, headers=admin), 400)
    assert_problem(await client.post(url, json={"delta": 1, "reason": "x", "stock": 99}, headers=admin), 400)
    assert_problem(
        await client.post("/api/variants/999999/stock-adjustments", json={"delta": 1, "reason": "x"}, headers=admin),
        404,
    )
    async with write_session(alchemy) as session:
        movements = list(await session.scalars(select(StockMovement).where(StockMovement.variant_id == variant)))
    assert [(m.delta, m.reason) for m in movements][-1] == (5, "adjustment")
    assert "delivery" in movements[-1].reference
    assert await ledger_is_consistent(alchemy)
    events = await audit_events(alchemy, "stock", variant)
    assert [(e.action, e.changes) for e in events] == [("adjust", {"stock": [12, 17]})]


async def test_a_stock_adjustment_with_an_idempotency_key_counts_the_goods_once(client, alchemy, admin, skus):
    # A warehouse posts a delivery and retries after a lost answer (API QA: 12 → 17 → 22): counted once.
    variant = skus["DC-1"]  # 12 in stock
    url = f"/api/variants/{variant}/stock-adjustments"
    delivery = {"delta": 5, "reason": "PO-1"}
    keyed = {**admin, "Idempotency-Key": "receipt-PO-1"}
    sent = [await client.post(url, json=delivery, headers=keyed) for _ in range(2)]
    assert [r.status_code for r in sent] == [201, 201] and sent[0].json() == sent[1].json()
    assert sent[0].json() == {"variant_id": variant, "sku": "DC-1", "delta": 5, "reason": "PO-1", "stock": 17}
    racing = await asyncio.gather(
        *(
            client.post(url, json={"delta": 1, "reason": "PO-2"}, headers={**admin, "Idempotency-Key": "PO-2"})
            for _ in range(3)
        )
    )
    assert {r.status_code for r in racing} <= {201, 409} and [r.status_code for r in racing].count(201) >= 1
    # The key with another change, or for another variant, is refused; a refused change frees its key.
    other = await client.post(url, json={"delta": 50, "reason": "PO-1"}, headers=keyed)
    assert "different request" in assert_problem(other, 422)["detail"]
    elsewhere = await client.post(f"/api/variants/{skus['BC-1']}/stock-adjustments", json=delivery, headers=keyed)
    assert_problem(elsewhere, 422)
    too_few = {**admin, "Idempotency-Key": "count-1"}
    assert_problem(await client.post(url, json={"delta": -100, "reason": "count"}, headers=too_few), 409)
    assert (await client.post(url, json={"delta": -1, "reason": "count"}, headers=too_few)).status_code == 201
    async with write_session(alchemy) as session:
        stock = await session.scalar(select(Variant.stock).where(Variant.id == variant))
        deltas = list(await session.scalars(select(StockMovement.delta).where(StockMovement.variant_id == variant)))
    assert stock == 12 + 5 + 1 - 1 and deltas[-3:] == [5, 1, -1]
    assert await ledger_is_consistent(alchemy)


# --- photos -----------------------------------------------------------------------------------


def png_bytes(size=(40, 30), mode="RGB"):
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, "PNG")
    return buffer.getvalue()


async def test_upload_a_real_photo(client, alchemy, admin, settings, shared_catalog):
    product = await create_product(client, admin, alchemy)
    photo = shared_catalog / "images" / "derick-david-409858-unsplash.jpg"
    url = f"/api/products/{product['id']}/images"
    response = await client.post(
        url, files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, data={"alt": "Side view"}, headers=admin
    )
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["alt"] == "Side view" and image["width"] > 0 and set(image["urls"]) == {"320", "640", "1200"}
    key = image["urls"]["640"].removeprefix("/media/").removesuffix("-640.webp")
    assert "derick" not in key and len(key) == 32
    media = settings.shop.media_dir
    assert (media / f"{key}.jpg").is_file() and (media / f"{key}-640.webp").is_file()
    served = await client.get(image["urls"]["320"])
    assert served.status_code == 200 and served.content[:4] == b"RIFF"
    second = await client.post(url, files={"file": ("p.png", png_bytes(), "image/png")}, headers=admin)
    assert second.status_code == 201
    shown = (await client.get(f"/api/products/{product['id']}")).json()
    assert [i["id"] for i in shown["images"]] == [image["id"], second.json()["id"]]
    assert shown["images"][1]["alt"] == "Trail Shoe"  # the product's name by default

    order = await client.put(
        f"/api/products/{product['id']}/image-order",
        json={"image_ids": [second.json()["id"], image["id"]]},
        headers=admin,
    )
    assert order.status_code == 200 and [i["id"] for i in order.json()] == [second.json()["id"], image["id"]]
    partial = await client.put(
        f"/api/products/{product['id']}/image-order", json={"image_ids": [image["id"]]}, headers=admin
    )
    assert "image_ids" in assert_problem(partial, 422)["errors"]

    gone = await client.delete(f"{url}/{image['id']}", headers=admin)
    assert gone.status_code == 204
    assert not (settings.shop.media_dir / f"{key}.jpg").exists()
    assert_problem(await client.delete(f"{url}/{image['id']}", headers=admin), 404)
    assert [i["id"] for i in (await client.get(f"/api/products/{product['id']}")).json()["images"]] == [
        second.json()["id"]
    ]


def bomb_png():
    buffer = io.BytesIO()
    Image.new("1", (9000, 5000)).save(buffer, "PNG")  # 45 megapixels, a few kilobytes
    return buffer.getvalue()


async def test_bad_uploads_are_refused_and_nothing_is_stored(client, alchemy, admin, settings):
    product = await create_product(client, admin, alchemy)
    before = sorted(settings.shop.media_dir.iterdir()) if settings.shop.media_dir.exists() else []
    for name, content, content_type, status, reason in (
        ("big.jpg", b"\xff\xd8\xff" + b"0" * (5 * 1024 * 1024), "image/jpeg", 413, "too large"),  # the service
        ("huge.jpg", b"\xff\xd8\xff" + b"0" * (6 * 1024 * 1024), "image/jpeg", 413, ""),  # the request size limit
        ("notes.txt", b"hello, not a photo", "text/plain", 422, "not an image"),
        ("anim.gif", b"GIF89a" + b"\x00" * 64, "image/gif", 422, "only JPEG, PNG or WebP"),
        ("cut.png", png_bytes((200, 200))[:-40], "image/png", 422, "image"),
        ("bomb.png", bomb_png(), "image/png", 422, "too many pixels"),
    ):
        response = await client.post(
            f"/api/products/{product['id']}/images", files={"file": (name, content, content_type)}, headers=admin
        )
        body = assert_problem(response, status)
        assert reason.lower() in (body["detail"] + str(body.get("errors", ""))).lower(), name
        assert set(body.get("errors") or {}) <= {"file"}, name  # named as this request names the photo
        after = sorted(settings.shop.media_dir.iterdir()) if settings.shop.media_dir.exists() else []
        assert after == before, name
    assert (await client.get(f"/api/products/{product['id']}")).json()["images"] == []


async def test_upload_refuses_unknown_form_fields_and_missing_file(client, alchemy, admin):
    product = await create_product(client, admin, alchemy)
    url = f"/api/products/{product['id']}/images"
    sneaky = await client.post(
        url, files={"file": ("p.png", png_bytes(), "image/png")}, data={"key": "abc"}, headers=admin
    )
    assert "key" in assert_problem(sneaky, 400)["errors"].get("data", "") + sneaky.text
    no_file = await client.post(url, files={"alt": (None, "no file")}, headers=admin)  # multipart, no file
    assert_problem(no_file, 400)
    assert_problem(await client.post(url, data={"alt": "no file"}, headers=admin), 415)  # not multipart at all
    missing = await client.post(
        "/api/products/999999/images", files={"file": ("p.png", png_bytes(), "image/png")}, headers=admin
    )
    assert_problem(missing, 404)


# --- guards -----------------------------------------------------------------------------------

ADMIN_ROUTES = [
    ("POST", "/api/categories", {"name": "X"}),
    ("PATCH", "/api/categories/1", {"name": "X"}),
    ("DELETE", "/api/categories/1", None),
    ("POST", "/api/products", NEW_PRODUCT),
    ("PATCH", "/api/products/1", {"name": "X"}),
    ("DELETE", "/api/products/1", None),
    ("POST", "/api/products/1/restore", None),
    ("POST", "/api/products/1/variants", {"sku": "X", "price": 1}),
    ("POST", "/api/products/1/images", "multipart"),
    ("PUT", "/api/products/1/image-order", {"image_ids": []}),
    ("DELETE", "/api/products/1/images/1", None),
    ("PATCH", "/api/variants/1", {"price": 1}),
    ("DELETE", "/api/variants/1", None),
    ("POST", "/api/variants/1/stock-adjustments", {"delta": 1, "reason": "x"}),
]


async def call(client, method, path, body, headers):
    if body == "multipart":
        return await client.post(path, files={"file": ("p.png", png_bytes(), "image/png")}, headers=headers)
    return await client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ROUTES, ids=[f"{m} {p}" for m, p, _ in ADMIN_ROUTES])
async def test_signed_out_gets_401_and_a_customer_403_and_nothing_changes(
    client, alchemy, customer, method, path, body
):
    response = await call(client, method, path, body, {})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    response = await call(client, method, path, body, customer)
    assert "administrators" in assert_problem(response, 403)["detail"]
    async with write_session(alchemy) as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 0
        assert await session.scalar(select(func.count()).select_from(Category)) == 8
        assert (
            await session.scalar(select(func.count()).select_from(Product).where(Product.deleted_at.is_not(None))) == 0
        )


def test_every_admin_api_route_is_in_the_guard_list(app):
    """The guard test above must not miss a route added later."""
    guarded = {
        (method, re.sub(r"\{\w+:int\}", "1", route.path))
        for route in app.routes
        if route.path.startswith(("/api/categories", "/api/products", "/api/variants"))
        for method in route.methods
        if method not in {"GET", "OPTIONS", "HEAD"}
    }
    assert guarded == {(method, path) for method, path, _ in ADMIN_ROUTES}


async def test_options_lists_every_method_of_a_path(client):
    for path, methods in (
        ("/api/products", "GET, HEAD, OPTIONS, POST"),
        ("/api/products/1", "DELETE, GET, HEAD, OPTIONS, PATCH"),
        ("/api/categories/1", "DELETE, OPTIONS, PATCH"),
        ("/api/users/me", "DELETE, GET, HEAD, OPTIONS, PATCH"),
    ):
        response = await client.options(path)
        assert response.status_code == 204 and response.headers["allow"] == methods, path


async def test_options_answers_every_api_path_without_a_token(app, client):
    """``OPTIONS`` says what a path allows and changes nothing, so it needs no token on any path (admin
    ones included): a generated route list, so a new controller cannot miss it."""
    paths = {re.sub(r"\{\w+:\w+\}", "1", route.path) for route in app.routes if route.path.startswith("/api/")}
    assert "/api/tax-rates" in paths and "/api/promotions/1" in paths
    for path in sorted(paths):
        response = await client.options(path)
        assert response.status_code == 204 and "OPTIONS" in response.headers["allow"], path


async def test_head_answers_every_get_route_with_its_headers_and_no_body(client, skus):
    """RFC 9110 §9.3.2: the same status and header fields as GET (an uptime monitor, ``curl -I``)."""
    for path in ("/", "/products/beta-camera", "/api/products?limit=2", "/robots.txt", "/no-such-page"):
        got, head = await client.get(path), await client.head(path)
        assert head.status_code == got.status_code, path
        assert head.content == b"", path
        assert head.headers["content-type"] == got.headers["content-type"], path
        assert int(head.headers["content-length"]) > 0, path
    form_answer = await client.head("/cart/items", follow_redirects=False)  # POST only: the page of its form
    assert form_answer.status_code == 303 and form_answer.headers["location"] == "/cart"


async def test_admin_routes_are_documented_with_security_and_problems(client):
    schema = (await client.get("/api/openapi.json")).json()
    operations = {
        op["operationId"]: (method, path, op) for path, item in schema["paths"].items() for method, op in item.items()
    }
    for operation_id in (
        "createCategory",
        "updateCategory",
        "deleteCategory",
        "createProduct",
        "updateProduct",
        "deleteProduct",
        "restoreProduct",
        "createVariant",
        "updateVariant",
        "deleteVariant",
        "adjustStock",
        "uploadProductImage",
        "reorderProductImages",
        "deleteProductImage",
    ):
        _method, _path, op = operations[operation_id]
        assert op["security"] == [{"BearerToken": []}], operation_id
        assert {"401", "403"} <= set(op["responses"]), operation_id
        assert op["responses"]["403"]["content"]["application/problem+json"]
    upload = operations["uploadProductImage"][2]
    assert "multipart/form-data" in upload["requestBody"]["content"] and "413" in upload["responses"]
    assert schema["components"]["schemas"]["ProductCreate"]["additionalProperties"] is False
