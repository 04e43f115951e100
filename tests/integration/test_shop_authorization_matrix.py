"""Issue 16: the authorization matrix of the admin PAGES and HTMX FRAGMENTS (the API half is in
test_api_shop_products.py, test_api_shops.py and test_shop_orders.py), on both engines.

Every admin page route that acts on a product, variant, photo, stock row, order or shop (``ROUTES``:
GET pages, POST actions, and their htmx variants: the inline cells of the product table, the list
fragments picked by ``HX-Target``) is tried by each of anonymous, customer, owner of shop A, staff of
shop A, owner of shop B and platform admin against an object of shop A. ``expected`` says what each
gets; after a refusal nothing changed (a snapshot of the rows involved, ``snapshot``, is the same
before and after), and where the request is allowed its effect shows in exactly the rows it names.

One world per test (one role, one engine); the routes run in the order of ``ROUTES``, which puts the
destructive ones (delete a variant, a product, a photo, the shop) after the ones that need them.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from tests.api_user import bearer, token_pair
from tests.factories import ledger_ok, make_user
from tests.shopper import CSRF_RE, sign_in, text_of
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import (
    AuditEvent,
    Fulfilment,
    Order,
    Product,
    ProductImage,
    Shop,
    ShopMember,
    StockMovement,
    User,
    UserRole,
    Variant,
)
from webshop.shops.schemas import MemberWrite, ShopWrite
from webshop.shops.service import ShopService

ROLES = ("anonymous", "customer", "owner_a", "staff_a", "owner_b", "admin")
SIGN_IN = 0
"""``expected``'s answer for a signed-out visitor: the sign-in redirect (303, or ``HX-Redirect`` for htmx)."""
PAGE_403 = "This page is for administrators"
PRODUCT_NAME = "Matrix pan"
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}
INCIDENTAL = frozenset({"audit", "ledger"})
"""Snapshot keys an allowed write may change besides its own (its audit event, its stock ledger row)."""


@dataclass(frozen=True)
class Route:
    """One admin page route tried by every role.

    Attributes:
        name: What the row is called in assertion messages.
        method: ``GET`` or ``POST`` (a POST carries the CSRF token).
        url: A template filled with ``World.ids`` (``{pid}``, ``{vid}``, ``{vid2}``, ``{iid}``, ``{oid}``,
            ``{shop}``, ``{extra}``).
        data: The form of a valid request.
        htmx: Send ``HX-Request: true`` (with ``target`` as ``HX-Target`` when given): the fragment.
        target: The ``HX-Target`` of a list's results fragment.
        upload: The name of the file field of a multipart post (a small PNG), or ``""``.
        allowed: The status of an allowed request (200 page or fragment, 303 redirect).
        stranger: What the owner of shop B gets (404: another shop's object is not found; 200 on a
            list, which does not show shop A's rows; 403 for a forged shop; 422 for an unknown SKU).
        admin_only: Only platform admins may (``requires_admin``): members get 403.
        owner_only: The shop's owners (and admins) may; its staff get 403 (``ShopService``'s owner rules).
        changes: The snapshot keys an allowed request changes (every other stays as it was).
        marker: Text an allowed user sees in the answer and the owner of B must not.
    """

    name: str
    method: str
    url: str
    data: dict[str, str] | None = None
    htmx: bool = False
    target: str = ""
    upload: str = ""
    allowed: int = 200
    stranger: int = 404
    admin_only: bool = False
    owner_only: bool = False
    changes: frozenset[str] = frozenset()
    marker: str = ""


def _post(name: str, url: str, changes: str = "", **kwargs: Any) -> Route:
    """A POST ``Route`` answered by a 303 when allowed; ``changes`` is a space-separated key list."""
    kwargs.setdefault("allowed", 303)
    return Route(name, "POST", url, changes=frozenset(changes.split()), **kwargs)


UPDATE_FORM = {
    "name": "Matrix pan renamed",
    "option_groups": "size",
    "is_active": "on",
    "new_rows": "0",
    **{
        f"variants-{i}-{field}": value
        for i, (vid, sku, size, price, stock) in enumerate(
            (("{vid}", "A-1", "S", "20.00", "4"), ("{vid2}", "A-2", "L", "30.00", "4"))
        )
        for field, value in (
            ("id", vid),
            ("sku", sku),
            ("option_values", size),
            ("price", price),
            ("stock", stock),
            ("stock_seen", stock),
            ("low_stock_threshold", "5"),
            ("tax_category", "standard"),
        )
    },
}
"""The product form as the edit page fills it, with a new name (``{vid}``/``{vid2}`` filled per world)."""

ROUTES: tuple[Route, ...] = (
    # products: the table, its results fragment, the edit page and form
    Route("product list", "GET", "/admin/products?state=all", stranger=200, marker=PRODUCT_NAME),
    Route(
        "product list fragment",
        "GET",
        "/admin/products?state=all",
        htmx=True,
        target="product-results",
        stranger=200,
        marker=PRODUCT_NAME,
    ),
    Route("product page", "GET", "/admin/products/{pid}", marker=PRODUCT_NAME),
    _post("product update", "/admin/products/{pid}", "product", data=UPDATE_FORM),
    _post("product form: one more row", "/admin/products/{pid}", "", data={"name": "x", "action": "more"}, allowed=200),
    # inline cells of the product table (htmx fragments; a plain request gets a page or a redirect)
    Route("price cell fragment", "GET", "/admin/products/variants/{vid}/price", htmx=True),
    Route("price cell without htmx", "GET", "/admin/products/variants/{vid}/price", allowed=303),
    Route("price editor page", "GET", "/admin/products/variants/{vid}/price/edit"),
    Route("stock editor fragment", "GET", "/admin/products/variants/{vid}/stock/edit", htmx=True),
    _post(
        "price cell save (htmx)",
        "/admin/products/variants/{vid}/price",
        "variants",
        data={"value": "21.00"},
        htmx=True,
        allowed=200,
    ),
    _post("stock cell save", "/admin/products/variants/{vid}/stock", "variants", data={"value": "3", "expected": "4"}),
    # photos
    _post("photo upload", "/admin/products/{pid}/images", "images", data={"alt": "A pan"}, upload="image"),
    _post("photo move", "/admin/products/{pid}/images/{iid}/move", "images", data={"direction": "down"}),
    _post("photo delete", "/admin/products/{pid}/images/{iid}/delete", "images"),
    # variants, delete and restore
    Route("variant delete question", "GET", "/admin/products/{pid}/variants/{vid2}/delete"),
    _post("variant delete", "/admin/products/{pid}/variants/{vid2}/delete", "variants"),
    _post("product delete", "/admin/products/{pid}/delete", "product"),
    _post("product restore", "/admin/products/{pid}/restore", "product"),
    _post(
        "new product in shop A",
        "/admin/products/new",
        "products_in_a",
        stranger=403,
        data={
            "name": "Matrix lid",
            "new_rows": "1",
            "new-0-sku": "A-LID",
            "new-0-price": "9.00",
            "new-0-stock": "1",
            "shop_id": "{shop}",
        },
    ),
    Route("catalog export", "GET", "/admin/catalog-csv/export", stranger=200, marker="matrix-pan"),
    # stock
    Route("stock page", "GET", "/admin/stock", stranger=200, marker="A-1"),
    Route(
        "stock fragment", "GET", "/admin/stock?level=low", htmx=True, target="stock-health", stranger=200, marker="A-1"
    ),
    _post(
        "stock adjustment",
        "/admin/stock/adjust",
        "variants",
        stranger=422,
        data={"sku": "A-1", "delta": "+2", "reason": "received", "note": "found two"},
    ),
    # orders
    Route("order list", "GET", "/admin/orders", stranger=200, marker="{number}"),
    Route(
        "order list fragment",
        "GET",
        "/admin/orders",
        htmx=True,
        target="order-results",
        stranger=200,
        marker="{number}",
    ),
    Route("order page", "GET", "/admin/orders/{oid}", marker="{number}"),
    Route("order cancel question", "GET", "/admin/orders/{oid}/status?status=cancelled", admin_only=True),
    _post(
        "order part shipped",
        "/admin/orders/{oid}/shipments",
        "order fulfilments",
        data={"shop_id": "{shop}", "carrier": "DHL", "tracking_number": "JD1"},
    ),
    _post("order status change", "/admin/orders/{oid}/status", "order", data={"status": "delivered"}, admin_only=True),
    _post("order refund retry", "/admin/orders/{oid}/refund", admin_only=True),
    # shops: listing, creating, suspending and deleting are the platform admins'; the shop's page is
    # its members', and its profile, logo and staff its owners'
    Route("shop list", "GET", "/admin/shops", admin_only=True, marker="Shop A"),
    Route(
        "shop list fragment", "GET", "/admin/shops", htmx=True, target="shop-results", admin_only=True, marker="Shop A"
    ),
    Route("shop page", "GET", "/admin/shops/{shop}", marker="Shop A"),
    Route("shop delete question", "GET", "/admin/shops/{shop}/delete", admin_only=True),
    _post("shop profile", "/admin/shops/{shop}", "shop", data={"name": "Shop A renamed"}, owner_only=True),
    _post(
        "shop member add",
        "/admin/shops/{shop}/members",
        "members",
        data={"email": "extra@example.com", "role": "staff"},
        owner_only=True,
    ),
    _post("shop member remove", "/admin/shops/{shop}/members/{extra}/remove", "members", owner_only=True),
    _post("shop logo upload", "/admin/shops/{shop}/logo", "shop", upload="logo", owner_only=True),
    _post("shop logo remove", "/admin/shops/{shop}/logo/remove", "shop", owner_only=True),
    _post("shop suspend", "/admin/shops/{shop}/suspend", "shop", admin_only=True),
    _post("shop restore", "/admin/shops/{shop}/restore", "shop", admin_only=True),
    _post("shop delete", "/admin/shops/{shop}/delete", "shop", admin_only=True),
)


def expected(route: Route, role: str) -> int:
    """The status ``role`` gets from ``route`` against shop A's object (``SIGN_IN``: the sign-in redirect)."""
    if role == "anonymous":
        return SIGN_IN
    if role == "customer":
        return 403
    if route.admin_only:
        return route.allowed if role == "admin" else 403
    if route.owner_only and role == "staff_a":
        return 403
    if role == "owner_b":
        return route.stranger
    return route.allowed


def _png() -> bytes:
    """A small PNG photo."""
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (40, 120, 200)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
async def world(client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]) -> dict[str, Any]:
    """Shops A (owner, staff) and B (owner), a customer, an admin and ``extra`` (a member to add);
    shop A's product with two variants (A-1 size S, A-2 size L) and a photo, made through the API by
    its owner; a paid order of the customer holding one line of A. ``ids`` fill ``Route.url``."""
    users = {
        name: await make_user(alchemy, f"{name}@example.com", UserRole.ADMIN if name == "admin" else UserRole.CUSTOMER)
        for name in ("admin", "customer", "owner_a", "staff_a", "owner_b", "extra")
    }
    async with write_session(alchemy) as session:
        admin = await session.get(User, users["admin"])
        shops = ShopService(session=session)
        a = await shops.create_shop(admin, ShopWrite(name="Shop A"))
        b = await shops.create_shop(admin, ShopWrite(name="Shop B"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=users["owner_a"], role="owner"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=users["staff_a"], role="staff"))
        await shops.add_member(admin, b.id, MemberWrite(user_id=users["owner_b"], role="owner"))
        shop_a = a.id
    owner = {"Authorization": f"Bearer {(await token_pair(client, 'owner_a@example.com'))['access_token']}"}
    body = {
        "name": PRODUCT_NAME,
        "option_groups": ["size"],
        "variants": [
            {"sku": "A-1", "price": 2000, "stock": 5, "option_values": ["S"], "low_stock_threshold": 5},
            {"sku": "A-2", "price": 3000, "stock": 4, "option_values": ["L"], "low_stock_threshold": 5},
        ],
    }
    created = await client.post("/api/products", json=body, headers=owner)
    assert created.status_code == 201, created.text
    product = created.json()
    photo = await client.post(
        f"/api/products/{product['id']}/images", files={"file": ("pan.png", _png(), "image/png")}, headers=owner
    )
    assert photo.status_code == 201, photo.text
    async with alchemy.get_session() as session:
        image_id = await session.scalar(select(ProductImage.id).where(ProductImage.product_id == product["id"]))
    buyer = await bearer(client, "buyer@example.com")
    added = await client.post("/api/cart/items", json={"sku": "A-1", "quantity": 1}, headers=buyer)
    assert added.status_code in (200, 201), added.text
    checkout = {
        "shipping_address": ADDRESS,
        "shipping_method": "express",
        "payment": {"token": "tok_visa"},
    }
    placed = await client.post("/api/checkout", json=checkout, headers={**buyer, "Idempotency-Key": "matrix-1"})
    assert placed.status_code == 201 and placed.json()["status"] == "paid", placed.text
    variants = {v["sku"]: v["id"] for v in product["variants"]}
    ids = {
        "pid": product["id"],
        "vid": variants["A-1"],
        "vid2": variants["A-2"],
        "iid": image_id,
        "oid": placed.json()["id"],
        "number": placed.json()["number"],
        "shop": shop_a,
        "extra": users["extra"],
    }
    return {"ids": ids}


async def snapshot(alchemy: ShopAlchemyConfig, ids: dict[str, Any]) -> dict[str, Any]:
    """The rows the matrix's routes may change, by key: shop A's product, its variants, photos (in
    order), how many products shop A has, the order's status and parts, shop A's profile and members,
    and (``INCIDENTAL``) how many audit events and stock ledger rows there are."""
    async with alchemy.get_session() as session:
        product = await session.get(Product, ids["pid"])
        assert product is not None
        shop = await session.get(Shop, ids["shop"])
        assert shop is not None
        order = await session.get(Order, ids["oid"])
        assert order is not None
        return {
            "product": (product.name, product.deleted_at is None),
            "variants": tuple(
                map(
                    tuple,
                    await session.execute(
                        select(Variant.id, Variant.price, Variant.stock)
                        .where(Variant.product_id == ids["pid"])
                        .order_by(Variant.id)
                    ),
                )
            ),
            "images": tuple(
                await session.scalars(
                    select(ProductImage.id)
                    .where(ProductImage.product_id == ids["pid"])
                    .order_by(ProductImage.position, ProductImage.id)
                )
            ),
            "products_in_a": await session.scalar(select(func.count()).where(Product.shop_id == ids["shop"])),
            "order": order.status,
            "fulfilments": tuple(
                map(
                    tuple,
                    await session.execute(
                        select(Fulfilment.shop_id, Fulfilment.status, Fulfilment.carrier)
                        .where(Fulfilment.order_id == ids["oid"])
                        .order_by(Fulfilment.id)
                    ),
                )
            ),
            "shop": (shop.name, shop.is_active, shop.deleted_at is None, shop.logo_key),
            "members": tuple(
                map(
                    tuple,
                    await session.execute(
                        select(ShopMember.user_id, ShopMember.role)
                        .where(ShopMember.shop_id == ids["shop"])
                        .order_by(ShopMember.user_id)
                    ),
                )
            ),
            "audit": await session.scalar(select(func.count()).select_from(AuditEvent)),
            "ledger": await session.scalar(select(func.count()).select_from(StockMovement)),
        }


def fill(value: str, ids: dict[str, Any]) -> str:
    """``value`` with ``{pid}``-style placeholders replaced by the world's ids."""
    return value.format(**ids)


async def send(client: Any, route: Route, ids: dict[str, Any], token: str) -> Any:
    """Send ``route``'s request for the world ``ids`` (with the CSRF token ``token`` on a POST);
    redirects are not followed."""
    url = fill(route.url, ids)
    headers = {"HX-Request": "true"} if route.htmx else {}
    if route.target:
        headers["HX-Target"] = route.target
    if route.method == "GET":
        return await client.get(url, headers=headers, follow_redirects=False)
    data = {key: fill(value, ids) for key, value in (route.data or {}).items()}
    data["_csrf_token"] = token
    files = {route.upload: ("matrix.png", _png(), "image/png")} if route.upload else None
    return await client.post(url, data=data, files=files, headers=headers, follow_redirects=False)


def check_answer(route: Route, role: str, response: Any, ids: dict[str, Any]) -> None:
    """The answer is the one ``expected`` says, with the right page, fragment or redirect."""
    want = expected(route, role)
    where = (route.name, role, response.status_code, text_of(response.text)[:300])
    assert "Traceback" not in response.text, where
    if want == SIGN_IN:
        if route.htmx:  # htmx follows HX-Redirect with a full page load
            assert response.status_code == 200, where
            assert response.headers["HX-Redirect"].startswith("/account/sign-in?next="), where
        else:
            assert response.status_code == 303, where
            assert response.headers["location"].startswith("/account/sign-in?next="), where
        return
    assert response.status_code == want, where
    if want == 403:
        refusals = (PAGE_403, "only add products to a shop you are a member of", "Only the shop's owners can")
        page = text_of(response.text)
        assert any(refusal in page for refusal in refusals), where
        if PAGE_403 in page and role != "customer":  # a member is not told the page is for shop staff
            assert "This page is for administrators." in page and "shop staff" not in page, where
        elif PAGE_403 in page and not route.admin_only:  # a customer is told who may use it
            assert "This page is for administrators and shop staff." in page, where
    if route.marker and want == 200:
        marker = fill(route.marker, ids)
        if role == "owner_b":
            assert marker not in response.text, where
        else:
            assert marker in response.text, where


@pytest.mark.parametrize("role", ROLES)
async def test_every_admin_page_and_fragment_of_shop_a_answers_each_role_as_its_rule_says(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any], role: str
) -> None:
    ids = world["ids"]
    if role != "anonymous":
        assert (await sign_in(client, f"{role}@example.com")).status_code == 303
    match = CSRF_RE.search((await client.get("/account/sign-in")).text)
    assert match
    token = match.group(1)
    for route in ROUTES:
        before = await snapshot(alchemy, ids)
        response = await send(client, route, ids, token)
        check_answer(route, role, response, ids)
        after = await snapshot(alchemy, ids)
        want = expected(route, role)
        if want in (200, 303) and route.changes and role != "owner_b":
            for key in route.changes:
                assert after[key] != before[key], (route.name, role, key, before[key])
            unchanged = set(before) - route.changes - INCIDENTAL
            assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}, (route.name, role)
        else:
            assert after == before, (route.name, role)  # a refusal, or a read: nothing changed
    assert await ledger_ok(alchemy)


MIXED: tuple[Route, ...] = (
    Route("A's variant under B's product: the question", "GET", "/admin/products/{bpid}/variants/{vid2}/delete"),
    _post("A's variant under B's product", "/admin/products/{bpid}/variants/{vid2}/delete"),
    _post("A's photo under B's product: move", "/admin/products/{bpid}/images/{iid}/move", data={"direction": "down"}),
    _post("A's photo under B's product: delete", "/admin/products/{bpid}/images/{iid}/delete"),
    _post(
        "A's variant in B's product form", "/admin/products/{bpid}", data={**UPDATE_FORM, "name": "Taken"}, stranger=422
    ),
    _post("A's order, B's part named", "/admin/orders/{oid}/shipments", data={"shop_id": "{bshop}", "carrier": "UPS"}),
    _post("A's order, no part named", "/admin/orders/{oid}/shipments", data={"carrier": "UPS"}),
)
"""Requests of shop B's owner that name their own product or shop next to shop A's variant, photo or
order: each is a 404 (A's object is not found under B's), except B's own product form, which shows
A's variant rows as gone (422, "reload the page"); neither shop's rows change."""


async def test_shop_bs_owner_cannot_reach_shop_as_objects_through_their_own_ids(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    owner_b = {"Authorization": f"Bearer {(await token_pair(client, 'owner_b@example.com'))['access_token']}"}
    body = {"name": "Bowl", "variants": [{"sku": "B-1", "price": 1000, "stock": 3}]}
    created = await client.post("/api/products", json=body, headers=owner_b)
    assert created.status_code == 201, created.text
    async with alchemy.get_session() as session:
        b_shop = await session.scalar(select(Product.shop_id).where(Product.id == created.json()["id"]))
    ids = {**world["ids"], "bpid": created.json()["id"], "bshop": b_shop}
    assert (await sign_in(client, "owner_b@example.com")).status_code == 303
    match = CSRF_RE.search((await client.get("/account/sign-in")).text)
    assert match
    for route in MIXED:
        before = await snapshot(alchemy, ids)
        b_before = await snapshot(alchemy, {**ids, "pid": ids["bpid"], "shop": b_shop})
        response = await send(client, route, ids, match.group(1))
        assert response.status_code == route.stranger, (route.name, response.status_code, text_of(response.text)[:300])
        assert await snapshot(alchemy, ids) == before, route.name
        assert await snapshot(alchemy, {**ids, "pid": ids["bpid"], "shop": b_shop}) == b_before, route.name
