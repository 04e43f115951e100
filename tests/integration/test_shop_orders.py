"""Issue 16: one checkout across three shops, each shop sees and ships only its part (both engines).

The customer buys from the default shop, shop A and shop B in one checkout: the order keeps the shop
of every line, shipping is charged once per shop, and each shop gets a part to fulfil. Each shop's
members see only their lines (and totals of those) through the API, ship their part with a carrier
and tracking number, and the order is shipped when the last part is. Cancelling restocks every
shop's stock exactly once, and once a part has shipped the order can no longer be cancelled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import select, update

from tests.api_user import assert_problem, bearer, token_pair
from tests.factories import ledger_ok, make_user, stock
from tests.integration.test_invoices import text_of_pdf
from tests.integration.test_refunds import Unreachable
from tests.order_checks import assert_orders_whole
from tests.shopper import add_to_cart, choose_address_and_shipping, path_of, place, register, review, sign_in, text_of
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import (
    Fulfilment,
    Order,
    OutboundEmail,
    Promotion,
    ShippingMethod,
    User,
    UserRole,
    Variant,
)
from webshop.orders.refunds import RefundService
from webshop.payments.registry import build_provider
from webshop.shops.schemas import MemberWrite, ShopWrite
from webshop.shops.service import ShopService

ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}
EXPRESS = 1000  # minor units, per shop (webshop.checkout.pricing.SHIPPING_METHODS)


async def _headers(client: Any, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await token_pair(client, email))['access_token']}"}


@pytest.fixture
async def world(client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]) -> dict[str, Any]:
    """Shops A (owner and staff) and B (owner), each selling one product made through the API by its
    owner; the seeded catalog is the default shop's. Bearer headers by role name."""
    ids = {
        name: await make_user(alchemy, f"{name}@example.com", UserRole.ADMIN if name == "admin" else UserRole.CUSTOMER)
        for name in ("admin", "owner_a", "staff_a", "owner_b")
    }
    async with write_session(alchemy) as session:
        admin = await session.get(User, ids["admin"])
        shops = ShopService(session=session)
        a = await shops.create_shop(admin, ShopWrite(name="Shop A"))
        b = await shops.create_shop(admin, ShopWrite(name="Shop B"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=ids["owner_a"], role="owner"))
        await shops.add_member(admin, a.id, MemberWrite(user_id=ids["staff_a"]))
        await shops.add_member(admin, b.id, MemberWrite(user_id=ids["owner_b"], role="owner"))
        shop_ids = {"a": a.id, "b": b.id, "default": (await shops.default_shop()).id}
    headers = {name: await _headers(client, f"{name}@example.com") for name in ids}
    for who, sku in (("owner_a", "A-KNIFE"), ("owner_b", "B-BOWL")):
        body = {"name": f"{sku} product", "variants": [{"sku": sku, "price": 2000, "stock": 5}]}
        created = await client.post("/api/products", json=body, headers=headers[who])
        assert created.status_code == 201, created.text
    headers["customer"] = await bearer(client, "ada@example.com")
    headers["stranger"] = await bearer(client, "eve@example.com")
    return {"headers": headers, "shops": shop_ids}


async def _buy(client: Any, headers: dict[str, str], key: str) -> dict[str, Any]:
    for sku in ("DC-1", "A-KNIFE", "B-BOWL"):
        added = await client.post("/api/cart/items", json={"sku": sku, "quantity": 1}, headers=headers)
        assert added.status_code in (200, 201), added.text
    body = {"shipping_address": ADDRESS, "shipping_method": "express", "payment": {"token": "tok_visa"}}
    placed = await client.post("/api/checkout", json=body, headers={**headers, "Idempotency-Key": key})
    assert placed.status_code == 201, placed.text
    return placed.json()


async def test_a_shops_new_order_email_gives_its_share_of_the_discount(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    """The order's promotion is split over its lines; each shop's e-mail says what its lines were sold for."""
    async with write_session(alchemy) as session:
        session.add(Promotion(name="Ten percent off", kind="percentage", value=10))
        await session.commit()
    order = await _buy(client, world["headers"]["customer"], "discounted")
    async with alchemy.get_session() as session:
        body = await session.scalar(
            select(OutboundEmail.text_body).where(
                OutboundEmail.kind == "shop_new_order", OutboundEmail.to_address == "owner_b@example.com"
            )
        )
    assert body is not None and order["number"] in body
    assert "Subtotal: $20.00\nDiscount: −$2.00\n" in body, body


async def test_one_checkout_across_three_shops_each_ships_its_part(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    h, shops = world["headers"], world["shops"]
    order = await _buy(client, h["customer"], "three-shops-1")
    assert order["status"] == "paid"
    assert order["shipping"]["amount"] == 3 * EXPRESS  # once per shop
    assert {line["sku"]: line["shop_name"] for line in order["lines"]} == {
        "DC-1": "Webshop",
        "A-KNIFE": "Shop A",
        "B-BOWL": "Shop B",
    }
    assert [(p["shop_name"], p["status"], p["shipping"]["amount"]) for p in order["fulfilments"]] == [
        ("Webshop", "pending", EXPRESS),
        ("Shop A", "pending", EXPRESS),
        ("Shop B", "pending", EXPRESS),
    ]
    async with alchemy.get_session() as session:
        await assert_orders_whole(session)
        mails = (
            await session.execute(
                select(OutboundEmail.to_address, OutboundEmail.text_body)
                .where(OutboundEmail.kind == "shop_new_order")
                .order_by(OutboundEmail.to_address)
            )
        ).all()
    # Each shop's members hear of the order, with their shop's lines only; the default shop, which has no
    # members of its own, is the admins' (a single-seller shop's owner hears of every order).
    assert [to for to, _ in mails] == [
        "admin@example.com",
        "owner_a@example.com",
        "owner_b@example.com",
        "staff_a@example.com",
    ]
    skus_of = {"admin@example.com": "DC-1", "owner_b@example.com": "B-BOWL"}
    for to, body in mails:
        mine = skus_of.get(to, "A-KNIFE")
        assert mine in body and order["number"] in body and "12 Analytical Way" in body
        assert not any(sku in body for sku in {"DC-1", "A-KNIFE", "B-BOWL"} - {mine})

    # Each shop sees its lines only, with totals of those lines.
    listed = (await client.get("/api/orders", headers=h["owner_a"])).json()["items"]
    assert [o["number"] for o in listed] == [order["number"]]
    mine = listed[0]
    assert [line["sku"] for line in mine["lines"]] == ["A-KNIFE"]
    assert [p["shop_name"] for p in mine["fulfilments"]] == ["Shop A"]
    assert mine["subtotal"]["amount"] == 2000 and mine["shipping"]["amount"] == EXPRESS
    assert mine["total"]["amount"] == mine["subtotal"]["amount"] + mine["shipping"]["amount"] + mine["tax"]["amount"]
    seen_by_b = (await client.get(f"/api/orders/{order['id']}", headers=h["owner_b"])).json()
    assert [line["sku"] for line in seen_by_b["lines"]] == ["B-BOWL"]
    assert (await client.get("/api/orders", params={"view": "mine"}, headers=h["owner_a"])).json()["items"] == []
    # A customer_id asks for a customer's orders: their own (none), another's refused (QA: their own was 403).
    me = (await client.get("/api/users/me", headers=h["owner_a"])).json()["id"]
    assert (await client.get("/api/orders", params={"customer_id": me}, headers=h["owner_a"])).json()["items"] == []
    assert_problem(await client.get("/api/orders", params={"customer_id": me + 1000}, headers=h["owner_a"]), 403)
    assert_problem(await client.get(f"/api/orders/{order['id']}", headers=h["stranger"]), 404)
    # A shop's member sees the order, so what only its customer or an admin may do is 403, not 404 (API QA).
    for action in ("cancel", "refunds"):
        call = client.post if action == "cancel" else client.get
        refused = assert_problem(await call(f"/api/orders/{order['id']}/{action}", headers=h["owner_a"]), 403)
        assert refused["detail"] == (
            "Only the customer who placed this order, or an administrator, can cancel it or see its refunds."
        )
        assert_problem(await call(f"/api/orders/{order['id']}/{action}", headers=h["stranger"]), 404)
    refused = assert_problem(await client.get(f"/api/orders/{order['id']}/invoice", headers=h["owner_a"]), 403)
    assert refused["detail"] == (
        "Only the customer who placed this order, or an administrator, can download its invoice and credit notes."
    )
    assert_problem(await client.get(f"/api/orders/{order['id']}/invoice", headers=h["stranger"]), 404)

    # The admin cannot ship three shops' parcels in one go, by a shipment naming no shop or by the status
    # (browser and API QA: one click told the shopper every parcel had left, and no seller was told to send).
    url = f"/api/orders/{order['id']}/shipments"
    unnamed = assert_problem(await client.post(url, json={"carrier": "DHL"}, headers=h["admin"]), 422)
    assert (
        unnamed["errors"]["shop_id"]
        == f"Order {order['number']} has parts from 3 shops still to ship: say which one has shipped."
    )
    by_status = await client.patch(f"/api/orders/{order['id']}", json={"status": "shipped"}, headers=h["admin"])
    assert (
        "has parts from 3 shops still to ship: mark each part shipped on its own"
        in assert_problem(by_status, 409)["detail"]
    )
    assert [
        p["status"] for p in (await client.get(f"/api/orders/{order['id']}", headers=h["admin"])).json()["fulfilments"]
    ] == ["pending"] * 3

    assert (await sign_in(client, "admin@example.com")).status_code in (200, 303)
    admin_page = (await client.get(f"/admin/orders/{order['id']}")).text
    assert "Mark as shipped" not in admin_page and admin_page.count("Mark shipped</button>") == 3  # one per part

    # Shop A's staff ships A's part; the order is partly shipped, so no longer cancellable.
    shipped = await client.post(url, json={"carrier": "DHL", "tracking_number": "JD0146"}, headers=h["staff_a"])
    assert shipped.status_code == 201, shipped.text
    assert [(p["status"], p["carrier"], p["tracking_number"]) for p in shipped.json()["fulfilments"]] == [
        ("shipped", "DHL", "JD0146")
    ]
    assert_problem(await client.post(url, json={}, headers=h["owner_a"]), 409)  # already shipped
    # ?status=to_ship lists what is still to send (API QA: it was 400): A's members no longer see the order
    # there, B's do, and so does the admin; the customer's own paid order is still to come.
    for who, expected in (("owner_a", []), ("owner_b", [order["number"]]), ("admin", [order["number"]])):
        waiting = await client.get("/api/orders", params={"status": "to_ship"}, headers=h[who])
        assert [o["number"] for o in waiting.json()["items"]] == expected, who
    mine_to_come = await client.get("/api/orders", params={"status": "to_ship"}, headers=h["customer"])
    assert [o["number"] for o in mine_to_come.json()["items"]] == [order["number"]]
    bogus = assert_problem(await client.get("/api/orders", params={"status": "bogus"}, headers=h["admin"]), 400)
    assert bogus["errors"] == {  # API QA: "Invalid enum value 'bogus'", without the values it takes
        "status": "Must be one of: pending, paid, shipped, delivered, cancelled, refunded, to_ship."
    }
    not_theirs = await client.post(url, json={"shop_id": shops["a"]}, headers=h["owner_b"])
    assert assert_problem(not_theirs, 422)["errors"] == {"shop_id": "That shop's part is not yours to ship."}
    assert_problem(await client.post(url, json={}, headers=h["stranger"]), 403)
    assert_problem(await client.post(f"/api/orders/{order['id']}/cancel", headers=h["customer"]), 409)
    whole = (await client.get(f"/api/orders/{order['id']}", headers=h["customer"])).json()
    assert whole["status"] == "paid"
    assert [p["status"] for p in whole["fulfilments"]] == ["pending", "shipped", "pending"]
    # The shopper's order page groups the lines by shop, each with its own state; no cancel button.
    assert (await sign_in(client, "ada@example.com")).status_code in (200, 303)
    page = text_of((await client.get(f"/orders/{order['number']}")).text)
    assert "Sold by Webshop" in page and "Sold by Shop A" in page and "Sold by Shop B" in page
    assert "Shipped with DHL JD0146" in page and page.count("Being prepared") == 2
    assert "Cancel this order" not in page and "(3 parcels)" in page
    # The cancel page (a bookmark, the e-mail's link) gives the reason, not "It is paid".
    refused = text_of((await client.get(f"/orders/{order['number']}/cancel")).text)
    assert "Part of it has already shipped, so the order can no longer be cancelled." in refused
    assert "It is paid" not in refused

    # B ships; the admin ships what is left (the default shop's part, the one still to ship, so it need
    # not be named): the order has shipped.
    assert (await client.post(url, json={"carrier": "UPS"}, headers=h["owner_b"])).status_code == 201
    # Not by the status either, though one part is left (API QA: it shipped that part with no tracking).
    by_status = await client.patch(f"/api/orders/{order['id']}", json={"status": "shipped"}, headers=h["admin"])
    assert assert_problem(by_status, 409)["detail"] == (
        f"Order {order['number']} has one shop's part still to ship (the others have shipped): mark that part "
        "shipped on its own, with its carrier and tracking number."
    )
    last = await client.post(url, json={}, headers=h["admin"])
    assert last.status_code == 201, last.text
    assert last.json()["status"] == "shipped"
    async with alchemy.get_session() as session:
        shipped_mails = list(
            await session.scalars(select(OutboundEmail.text_body).where(OutboundEmail.kind == "order_shipped"))
        )
        parts = list(
            await session.scalars(
                select(OutboundEmail.text_body)
                .where(OutboundEmail.kind == "order_part_shipped")
                .order_by(OutboundEmail.id)
            )
        )
    assert len(shipped_mails) == 1  # the last part ships the order; its e-mail gives every tracking number
    assert "From Shop A: DHL, tracking number JD0146" in shipped_mails[0] and "From Shop B: UPS" in shipped_mails[0]
    # The shopper heard of each earlier part as it left: its lines, carrier and tracking number.
    assert len(parts) == 2
    assert "from Shop A with DHL, tracking number JD0146" in parts[0] and "A-KNIFE" in parts[0]
    assert "B-BOWL" not in parts[0] and "from Shop B with UPS" in parts[1] and "B-BOWL" in parts[1]
    assert await ledger_ok(alchemy)


async def test_cancelling_a_three_shop_order_restocks_every_shop_once(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    h = world["headers"]
    before = {sku: await stock(alchemy, sku) for sku in ("DC-1", "A-KNIFE", "B-BOWL")}
    order = await _buy(client, h["customer"], "three-shops-2")
    assert {sku: await stock(alchemy, sku) for sku in before} == {sku: n - 1 for sku, n in before.items()}
    cancelled = await client.post(f"/api/orders/{order['id']}/cancel", headers=h["customer"])
    assert cancelled.status_code == 200, cancelled.text
    # No part is still to ship, as the API tells it (QA: it said "pending" while the pages said "Not shipped").
    assert [p["status"] for p in cancelled.json()["fulfilments"]] == ["cancelled"] * 3
    again = await client.post(f"/api/orders/{order['id']}/cancel", headers=h["customer"])
    assert_problem(again, 409)
    assert {sku: await stock(alchemy, sku) for sku in before} == before
    assert_problem(await client.post(f"/api/orders/{order['id']}/shipments", json={}, headers=h["owner_a"]), 409)
    assert (await sign_in(client, "ada@example.com")).status_code in (200, 303)
    page = text_of((await client.get(f"/orders/{order['number']}")).text)
    assert page.count("Not shipped") == 3 and "Being prepared" not in page  # no part is still coming
    assert (await sign_in(client, "admin@example.com")).status_code in (200, 303)
    admin_page = text_of((await client.get(f"/admin/orders/{order['id']}")).text)
    assert admin_page.count("Not shipped") == 3 and "Pending" not in admin_page  # nor on the admin's page
    assert await ledger_ok(alchemy)


async def test_a_part_shipping_while_the_order_is_cancelled_is_one_or_the_other(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    """Both lock the order's row first: the cancel sees a shipped part, or the shipment a cancelled
    order; two members shipping the same part at once get one shipment and a 409 (no 500)."""
    h = world["headers"]
    for attempt in range(3):
        order = await _buy(client, h["customer"], f"race-{attempt}")
        url = f"/api/orders/{order['id']}"
        ship, cancel, ship_again = await asyncio.gather(
            client.post(f"{url}/shipments", json={"carrier": "DHL"}, headers=h["staff_a"]),
            client.post(f"{url}/cancel", headers=h["customer"]),
            client.post(f"{url}/shipments", json={"carrier": "DHL"}, headers=h["owner_a"]),
        )
        whole = (await client.get(url, headers=h["customer"])).json()
        shipped = [part["shop_name"] for part in whole["fulfilments"] if part["status"] == "shipped"]
        if whole["status"] == "cancelled":
            assert shipped == [] and cancel.status_code == 200
            assert (ship.status_code, ship_again.status_code) == (409, 409)
        else:
            assert shipped == ["Shop A"] and cancel.status_code == 409
            assert sorted((ship.status_code, ship_again.status_code)) == [201, 409], (ship.text, ship_again.text)
    assert await ledger_ok(alchemy)


async def test_the_pages_checkout_across_shops_shows_who_sells_what_and_charges_a_parcel_each(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    """The HTML checkout (JavaScript off: plain forms and redirects): the cart and the review page say
    which shop sells each line and that shipping is one parcel per shop; the order keeps the shops."""
    await register(client, "bea@example.com")
    async with alchemy.get_session() as session:
        ids = dict((await session.execute(select(Variant.sku, Variant.id))).all())
    for sku in ("DC-1", "A-KNIFE", "B-BOWL"):
        assert (await add_to_cart(client, ids[sku])).status_code == 303
    cart = text_of((await client.get("/cart")).text)
    assert "Sold by Shop A" in cart and "Sold by Shop B" in cart and "(3 parcels, one per shop)" in cart
    async with write_session(alchemy) as session:  # "free from" is a parcel's: each shop's items alone
        await session.execute(update(ShippingMethod).where(ShippingMethod.code == "express").values(free_over=900000))
        await session.commit()
    await choose_address_and_shipping(client, "standard")
    methods = text_of((await client.get("/checkout/shipping")).text)
    assert "Free from $9,000.00 of one shop's items (each shop sends its own parcel)" in methods, methods
    page = (await client.get("/checkout/review")).text
    assert "Sold by Shop A" in text_of(page) and "(3 parcels, one per shop)" in text_of(page)
    placed = await place(client, await review(client))
    assert placed.status_code == 303, placed.text[:300]
    order_page = text_of((await client.get(placed.headers["location"])).text)
    assert "Sold by Shop A" in order_page and "Sold by Shop B" in order_page and "(3 parcels)" in order_page
    # The invoice says who sold each line, and that shipping is a parcel per shop (QA: "1 × Standard").
    number = path_of(placed.headers["location"]).split("/")[2].split("?")[0]
    invoice = text_of_pdf((await client.get(f"/orders/{number}/invoice.pdf")).content)
    assert "Sold by Shop A" in invoice and "Sold by Shop B" in invoice, invoice
    assert "(3 parcels, one per shop)" in invoice, invoice
    async with alchemy.get_session() as session:
        await assert_orders_whole(session)
        shipping = await session.scalar(
            select(Order.shipping_total).where(Order.user_id != 0).order_by(Order.id.desc())
        )
    assert shipping == 3 * 500


async def _refund_shop_line(client: Any, headers: dict[str, str], order: dict[str, Any], sku: str) -> None:
    [line] = [line for line in order["lines"] if line["sku"] == sku]
    body = {"lines": [{"order_line_id": line["id"], "quantity": line["quantity"]}], "reason": "Out of stock"}
    refunded = await client.post(
        f"/api/orders/{order['id']}/refunds",
        json=body,
        headers={**headers, "Idempotency-Key": f"refund-{order['number']}-{sku}"},
    )
    assert refunded.status_code == 201 and refunded.json()["status"] == "succeeded", refunded.text


async def test_an_item_refunded_after_its_parcel_left_is_not_called_not_coming(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    """Review: shop A's knife ships, arrives broken and is refunded while the order is still paid; when the
    last parcel ships, the shipping e-mail must not say the knife is not coming (it came)."""
    h, shops = world["headers"], world["shops"]
    order = await _buy(client, h["customer"], "returned-after-shipping")
    url = f"/api/orders/{order['id']}"
    assert (await client.post(f"{url}/shipments", json={"carrier": "DHL"}, headers=h["staff_a"])).status_code == 201
    await _refund_shop_line(client, h["admin"], order, "A-KNIFE")
    assert (await client.post(f"{url}/shipments", json={}, headers=h["owner_b"])).status_code == 201
    last = await client.post(f"{url}/shipments", json={"shop_id": shops["default"]}, headers=h["admin"])
    assert last.status_code == 201 and last.json()["status"] == "shipped", last.text
    async with alchemy.get_session() as session:
        mail = await session.scalar(
            select(OutboundEmail.text_body).where(
                OutboundEmail.kind == "order_shipped", OutboundEmail.text_body.contains(order["number"])
            )
        )
    assert mail is not None and "Not coming" not in mail


async def test_a_part_refunded_in_full_is_not_shipped_and_no_longer_holds_the_order_back(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    """Shop B cannot send its item and the admin refunds it: B's part is closed (nothing to ship, no
    "Mark shipped" form), and the order ships with the other parts; the refund that closes the last
    unshipped part ships the order itself."""
    h, shops = world["headers"], world["shops"]
    order = await _buy(client, h["customer"], "refunded-part-1")
    url = f"/api/orders/{order['id']}"
    assert (await client.post(f"{url}/shipments", json={"carrier": "DHL"}, headers=h["staff_a"])).status_code == 201
    await _refund_shop_line(client, h["admin"], order, "B-BOWL")
    whole = (await client.get(url, headers=h["customer"])).json()
    assert (whole["status"], [p["status"] for p in whole["fulfilments"]]) == (
        "paid",
        ["pending", "shipped", "cancelled"],
    )
    refused = assert_problem(await client.post(f"{url}/shipments", json={}, headers=h["owner_b"]), 409)
    assert "was refunded; there is nothing left to ship" in refused["detail"]
    # The parcel that will not be sent is not paid for: its shipping came back, by a refund of its own.
    async with alchemy.get_session() as session:
        part_b = await session.scalar(
            select(Fulfilment).where(Fulfilment.order_id == order["id"], Fulfilment.shop_id == shops["b"])
        )
        placed = await session.get(Order, order["id"])
        assert part_b is not None and placed is not None and part_b.shipping_amount > 0
        parcel = part_b.shipping_amount + (0 if placed.prices_include_tax else part_b.shipping_tax)
    refunds = (await client.get(f"{url}/refunds", headers=h["admin"])).json()
    [shipping] = [r for r in refunds if r["is_shipping"]]
    assert (shipping["amount"]["amount"], shipping["reason"], shipping["status"], shipping["lines"]) == (
        parcel,
        "Shipping of the items from Shop B: nothing is left to send",
        "succeeded",
        [],
    )
    assert len(refunds) == 2
    assert (await sign_in(client, "admin@example.com")).status_code in (200, 303)
    admin_page = text_of((await client.get(f"/admin/orders/{order['id']}")).text)
    assert "Nothing to ship: every item was refunded." in admin_page and admin_page.count("Mark shipped") == 1
    assert (await sign_in(client, "ada@example.com")).status_code in (200, 303)
    page = text_of((await client.get(f"/orders/{order['number']}")).text)
    assert "Not shipped: refunded" in page and page.count("Being prepared") == 1

    # The default shop's part was the last one coming: shipping it ships the order.
    last = await client.post(f"{url}/shipments", json={"shop_id": shops["default"]}, headers=h["admin"])
    assert last.status_code == 201 and last.json()["status"] == "shipped", last.text

    # Every other part gone already: the refund of the last one ships the order (its e-mail and webhook).
    second = await _buy(client, h["customer"], "refunded-part-2")
    url = f"/api/orders/{second['id']}"
    for who, body in (("staff_a", {}), ("admin", {"shop_id": shops["default"]})):
        assert (await client.post(f"{url}/shipments", json=body, headers=h[who])).status_code == 201
    await _refund_shop_line(client, h["admin"], second, "B-BOWL")
    whole = (await client.get(url, headers=h["customer"])).json()
    assert (whole["status"], [p["status"] for p in whole["fulfilments"]]) == (
        "shipped",
        ["shipped", "shipped", "cancelled"],
    )
    async with alchemy.get_session() as session:
        subjects = list(
            await session.scalars(
                select(OutboundEmail.kind).where(OutboundEmail.kind.in_(("order_shipped", "order_refund")))
            )
        )
    assert sorted(subjects) == ["order_refund"] * 4 + ["order_shipped"] * 2  # each parcel's shipping: a refund
    async with alchemy.get_session() as session:
        shipped_mail = await session.scalar(
            select(OutboundEmail.text_body)
            .where(OutboundEmail.kind == "order_shipped", OutboundEmail.text_body.contains(second["number"]))
            .limit(1)
        )
    # The shopper is told what is not in the parcels.
    assert shipped_mail is not None and "Not coming, as these were refunded: 1 × B-BOWL product." in shipped_mail

    # Every item refunded: with each parcel's shipping, that is all of it, and the order is refunded.
    third = await _buy(client, h["customer"], "refunded-part-3")
    for sku in ("DC-1", "A-KNIFE", "B-BOWL"):
        await _refund_shop_line(client, h["admin"], third, sku)
    whole = (await client.get(f"/api/orders/{third['id']}", headers=h["admin"])).json()
    assert (whole["status"], {p["status"] for p in whole["fulfilments"]}) == ("refunded", {"cancelled"})

    # An amount refunded by hand first may have been shipping: the parcels' shipping is then the admin's
    # to give back. Every part closed, nothing is left to ship, so the order cannot be marked shipped.
    third = await _buy(client, h["customer"], "refunded-part-4")
    url = f"/api/orders/{third['id']}"
    by_hand = {"amount": 100, "reason": "Late"}
    refunded = await client.post(f"{url}/refunds", json=by_hand, headers={**h["admin"], "Idempotency-Key": "hand"})
    assert refunded.status_code == 201, refunded.text
    for sku in ("DC-1", "A-KNIFE", "B-BOWL"):
        await _refund_shop_line(client, h["admin"], third, sku)
    assert len((await client.get(f"{url}/refunds", headers=h["admin"])).json()) == 4
    whole = (await client.get(url, headers=h["admin"])).json()
    assert (whole["status"], {p["status"] for p in whole["fulfilments"]}) == ("paid", {"cancelled"})
    refused = assert_problem(await client.patch(url, json={"status": "shipped"}, headers=h["admin"]), 409)
    assert "was refunded; there is nothing to ship" in refused["detail"]
    assert (await sign_in(client, "admin@example.com")).status_code in (200, 303)
    admin_page = await client.get(f"/admin/orders/{third['id']}")
    assert 'data-status="shipped"' not in admin_page.text and 'data-status="refunded"' in admin_page.text
    notice = "Every item was refunded, so nothing is left to ship. Cancel the order to give back the rest ($"
    assert notice in text_of(admin_page.text)
    # Cancelling gives back what is left (the shipping) once, and closes the order.
    cancelled = await client.patch(url, json={"status": "cancelled"}, headers=h["admin"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    order_row = (await client.get(url, headers=h["admin"])).json()
    assert order_row["status"] == "cancelled"
    assert await ledger_ok(alchemy)


async def _shop_mails(alchemy: ShopAlchemyConfig, number: str, kind: str) -> dict[str, str]:
    """``{recipient: text body}`` of the ``kind`` e-mails about order ``number`` (at most one each)."""
    async with alchemy.get_session() as session:
        rows = await session.execute(
            select(OutboundEmail.to_address, OutboundEmail.text_body).where(
                OutboundEmail.kind == kind, OutboundEmail.text_body.contains(number)
            )
        )
    mails = [(to, body) for to, body in rows]
    assert len({to for to, _body in mails}) == len(mails), f"someone got two {kind} e-mails: {mails}"
    return dict(mails)


async def test_the_shops_hear_what_not_to_send_after_a_refund_or_a_cancel(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    """Each shop that has not sent its part is told by e-mail what to leave out: the refunded units
    (and what is still to send), or the whole part when the paid order is cancelled or refunded in full.
    The default shop has no members, so its e-mails go to the admin."""
    h = world["headers"]
    customer = h["customer"]
    for sku, quantity in (("A-KNIFE", 2), ("B-BOWL", 1), ("DC-1", 1)):
        added = await client.post("/api/cart/items", json={"sku": sku, "quantity": quantity}, headers=customer)
        assert added.status_code in (200, 201), added.text
    body = {"shipping_address": ADDRESS, "shipping_method": "express", "payment": {"token": "tok_visa"}}
    placed = await client.post("/api/checkout", json=body, headers={**customer, "Idempotency-Key": "tell-shops-1"})
    assert placed.status_code == 201, placed.text
    order = placed.json()
    number, url = order["number"], f"/api/orders/{order['id']}"
    [knives] = [line for line in order["lines"] if line["sku"] == "A-KNIFE"]
    one_knife = {"lines": [{"order_line_id": knives["id"], "quantity": 1}], "reason": "Damaged"}
    refunded = await client.post(f"{url}/refunds", json=one_knife, headers={**h["admin"], "Idempotency-Key": "k1"})
    assert refunded.status_code == 201, refunded.text
    await _refund_shop_line(client, h["admin"], order, "B-BOWL")

    told = await _shop_mails(alchemy, number, "shop_items_refunded")
    assert set(told) == {"owner_a@example.com", "staff_a@example.com", "owner_b@example.com"}
    shop_a = told["staff_a@example.com"]
    assert "Please do not send them:\n\n1 × A-KNIFE product, SKU A-KNIFE\n" in shop_a, shop_a
    assert "Still to send:\n\n1 × A-KNIFE product, SKU A-KNIFE\n" in shop_a
    assert "Nothing of this order is left to send from Shop B." in told["owner_b@example.com"]

    # The customer cancels: the parts still to send are called off (not B's, closed by its refund).
    cancelled = await client.post(f"{url}/cancel", headers=customer)
    assert cancelled.status_code == 200, cancelled.text
    called_off = await _shop_mails(alchemy, number, "shop_order_cancelled")
    assert set(called_off) == {"owner_a@example.com", "staff_a@example.com", "admin@example.com"}
    assert f"Order {number} was cancelled before Shop A sent its part." in called_off["owner_a@example.com"]
    assert "do not send these items:\n\n1 × A-KNIFE product, SKU A-KNIFE\n\nSee" in called_off["owner_a@example.com"]
    assert "DC-1" in called_off["admin@example.com"] and "A-KNIFE" not in called_off["admin@example.com"]

    # An order refunded in full by an amount: every shop hears it, as the order's status says.
    second = await _buy(client, customer, "tell-shops-2")
    whole = {"amount": second["total"]["amount"], "reason": "Goodwill"}
    refunded = await client.post(
        f"/api/orders/{second['id']}/refunds", json=whole, headers={**h["admin"], "Idempotency-Key": "k2"}
    )
    assert refunded.status_code == 201 and refunded.json()["status"] == "succeeded", refunded.text
    called_off = await _shop_mails(alchemy, second["number"], "shop_order_cancelled")
    assert set(called_off) == {"owner_a@example.com", "staff_a@example.com", "owner_b@example.com", "admin@example.com"}
    assert (
        f"Order {second['number']} was refunded in full before Shop B sent its part."
        in called_off["owner_b@example.com"]
    )
    assert await _shop_mails(alchemy, second["number"], "shop_items_refunded") == {}

    # Refunded in full by a last refund of items (the shipping went back first): the shop whose items
    # it covered is told not to send them; the others, whose parts had closed, are not written to again.
    third = await _buy(client, customer, "tell-shops-3")
    paid_for_lines = sum(line["line_total"]["amount"] + line["tax"]["amount"] for line in third["lines"])
    shipping = {"amount": third["total"]["amount"] - paid_for_lines, "reason": "Shipping"}
    refunded = await client.post(
        f"/api/orders/{third['id']}/refunds", json=shipping, headers={**h["admin"], "Idempotency-Key": "k3"}
    )
    assert refunded.status_code == 201, refunded.text
    for sku in ("A-KNIFE", "DC-1", "B-BOWL"):
        await _refund_shop_line(client, h["admin"], third, sku)
    assert (await client.get(f"/api/orders/{third['id']}", headers=customer)).json()["status"] == "refunded"
    called_off = await _shop_mails(alchemy, third["number"], "shop_order_cancelled")
    assert set(called_off) == {"owner_b@example.com"}
    assert "do not send these items:\n\n1 × B-BOWL product, SKU B-BOWL\n" in called_off["owner_b@example.com"]


async def test_a_cancel_waits_for_a_pending_refund_and_each_shop_hears_once_what_not_to_send(
    client: Any, alchemy: ShopAlchemyConfig, settings: Settings, world: dict[str, Any]
) -> None:
    """A line refund the provider answers late (it stays pending) while the customer tries to cancel: the
    cancel waits for the answer (409, ``webshop.orders.refund_retries``); then shop B hears its bowl is
    refunded (its part closed), and the cancel tells the other shops not to send theirs, not shop B again."""
    h = world["headers"]
    order = await _buy(client, h["customer"], "late-refund")
    [bowl] = [line for line in order["lines"] if line["sku"] == "B-BOWL"]
    async with write_session(alchemy) as session:
        refund = await RefundService(session=session, provider=Unreachable()).refund(  # type: ignore[arg-type]
            order["id"], lines=[(bowl["id"], 1)], actor=None, idempotency_key="late-1"
        )
    assert refund.status == "pending"
    refused = await client.post(f"/api/orders/{order['id']}/cancel", headers=h["customer"])
    assert refused.status_code == 409 and "still waiting for the payment provider" in refused.text
    assert await _shop_mails(alchemy, order["number"], "shop_order_cancelled") == {}
    async with write_session(alchemy) as session:
        late = await RefundService(session=session, provider=build_provider(settings, alchemy)).retry(refund.id)
    assert late.status == "succeeded"
    refunded = await _shop_mails(alchemy, order["number"], "shop_items_refunded")
    assert set(refunded) == {"owner_b@example.com"} and "1 × B-BOWL product" in refunded["owner_b@example.com"]
    cancelled = await client.post(f"/api/orders/{order['id']}/cancel", headers=h["customer"])
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled", cancelled.text
    told = await _shop_mails(alchemy, order["number"], "shop_order_cancelled")
    assert set(told) == {"owner_a@example.com", "staff_a@example.com", "admin@example.com"}
    assert "B-BOWL" not in "".join(told.values())


async def test_a_shop_without_active_members_has_its_orders_announced_to_the_admins(
    client: Any, alchemy: ShopAlchemyConfig, world: dict[str, Any]
) -> None:
    """Shop B's only member is deactivated: its "new order" e-mail goes to the admin, so someone sends it."""
    async with write_session(alchemy) as session:
        owner_b = await session.scalar(select(User).where(User.email == "owner_b@example.com"))
        assert owner_b is not None
        owner_b.is_active = False
        await session.commit()
    order = await _buy(client, world["headers"]["customer"], "unstaffed")
    async with alchemy.get_session() as session:
        rows = await session.execute(
            select(OutboundEmail.to_address, OutboundEmail.subject).where(OutboundEmail.kind == "shop_new_order")
        )
        sent = sorted((to, subject) for to, subject in rows)
    number = order["number"]
    assert ("admin@example.com", f"New order {number} for Shop B") in sent
    assert ("owner_b@example.com", f"New order {number} for Shop B") not in sent
    assert [to for to, subject in sent if subject.endswith("Shop A")] == ["owner_a@example.com", "staff_a@example.com"]
