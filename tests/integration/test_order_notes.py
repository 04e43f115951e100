"""Issue 17: the shopper's optional note for the seller, from the checkout page and the API (both engines).

The note travels with the order: the shopper's order page, the admin order page (a shop member's view
too), the order JSON, the confirmation e-mail and the sellers' "new order" e-mail, always as escaped
text with its line breaks. A note that is too long places nothing and takes no stock.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api_user import assert_problem, bearer, token_pair
from tests.factories import make_user, stock
from tests.integration.conftest import ADMIN_EMAIL
from tests.shopper import place, ready_to_pay, sign_in, text_of
from webshop.checkout.notes import clean_customer_note
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Order, OutboundEmail, User, UserRole
from webshop.db.models.orders import ORDER_NOTE
from webshop.errors import ValidationFailed
from webshop.shops.schemas import MemberWrite, ShopWrite
from webshop.shops.service import ShopService

NOTE = "Ring twice <script>alert(1)</script>\r\nLeave it at the back door & thanks"
"""As a browser sends a textarea: CR LF line breaks, and markup that must never run."""
STORED = NOTE.replace("\r\n", "\n")
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical Way", "city": "London", "postal_code": "N1", "country": "GB"}


def escaped_note(html: str) -> str:
    """The text of the page's ``order-note`` paragraph, as the HTML has it (entities not decoded)."""
    match = re.search(r'<p class="order-note" id="order-note">(.*?)</p>', html, re.DOTALL)
    assert match, "no note on the page"
    return match.group(1)


async def count_orders(alchemy: ShopAlchemyConfig) -> int:
    async with alchemy.get_session() as session:
        return await session.scalar(select(func.count()).select_from(Order))


def test_the_note_rule_trims_normalises_line_breaks_and_refuses_controls_and_length() -> None:
    assert clean_customer_note(None) == "" and clean_customer_note(" \r\n\t ") == ""
    assert clean_customer_note("  a\r\nb\rc\n\td  ") == "a\nb\nc\n\td"
    # A textarea counts a line break once, and sends it as CR LF: the limit counts it once too.
    assert len(clean_customer_note("x\r\n" * (ORDER_NOTE // 2 - 1) + "xx")) == ORDER_NOTE
    for bad, says in (("x" * (ORDER_NOTE + 1), "at most 500"), ("a\x00b", "control"), ("a\x1bb", "control")):
        with pytest.raises(ValidationFailed) as refused:
            clean_customer_note(bad)
        assert says in refused.value.field_errors["customer_note"]


async def test_a_note_typed_at_checkout_shows_escaped_on_the_order_the_admin_page_and_the_email(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int], admin_id: int
) -> None:
    form = await ready_to_pay(client, "ada@example.com", skus["DC-1"])
    before = await stock(alchemy, "DC-1")
    review = (await client.get("/checkout/review")).text
    assert 'name="customer_note"' in review and f'maxlength="{ORDER_NOTE}"' in review
    assert "Note for the seller (optional)" in text_of(review)

    # Too long: the page again, the note kept in the box with a message beside it; nothing ordered.
    too_long = await place(client, {**form, "customer_note": "<b>" + "x" * (ORDER_NOTE - 2)})
    assert too_long.status_code == 422
    assert f"Use at most {ORDER_NOTE} characters" in text_of(too_long.text)
    assert "&lt;b&gt;xxx" in too_long.text and "<b>xxx" not in too_long.text
    assert await count_orders(alchemy) == 0 and await stock(alchemy, "DC-1") == before

    placed = await place(client, {**form, "customer_note": NOTE})
    assert placed.status_code == 303, placed.text[:500]
    page = (await client.get(placed.headers["location"])).text
    assert "Your note for the seller" in text_of(page)
    shown = escaped_note(page)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "\n" in shown and "<script>" not in page
    async with alchemy.get_session() as session:
        order = await session.scalar(select(Order))
        assert order.customer_note == STORED
        mail = await session.scalar(select(OutboundEmail).where(OutboundEmail.kind == "order_confirmation"))
    assert "> Ring twice <script>alert(1)</script>\n> Leave it at the back door & thanks" in mail.text_body
    assert (
        "Ring twice &lt;script&gt;alert(1)&lt;/script&gt;<br>Leave it at the back door &amp; thanks" in mail.html_body
    )
    assert "<script>" not in mail.html_body

    assert (await sign_in(client, ADMIN_EMAIL)).status_code == 303
    admin_page = (await client.get(f"/admin/orders/{order.id}")).text
    assert "Note from the customer" in text_of(admin_page)
    assert escaped_note(admin_page) == escaped_note(page) and "<script>" not in admin_page


async def test_the_api_takes_a_note_and_every_view_of_the_order_gives_it_back(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]
) -> None:
    # A shop with an owner who sells one product (issue 16): its sellers get the order and its note.
    ids = {
        name: await make_user(alchemy, f"{name}@example.com", UserRole.ADMIN if name == "boss" else UserRole.CUSTOMER)
        for name in ("boss", "olive")
    }
    async with write_session(alchemy) as session:
        boss = await session.get(User, ids["boss"])
        shops = ShopService(session=session)
        shop = await shops.create_shop(boss, ShopWrite(name="Olive's"))
        await shops.add_member(boss, shop.id, MemberWrite(user_id=ids["olive"], role="owner"))
    tokens = {name: (await token_pair(client, f"{name}@example.com"))["access_token"] for name in ids}
    boss_h, olive_h = ({"Authorization": f"Bearer {tokens[n]}"} for n in ("boss", "olive"))
    product = {"name": "Olive oil", "variants": [{"sku": "OIL-1", "price": 900, "stock": 5}]}
    assert (await client.post("/api/products", json=product, headers=olive_h)).status_code == 201
    ada = await bearer(client)

    async def checkout(key: str, **note: str) -> Any:
        assert (
            await client.post("/api/cart/items", json={"sku": "OIL-1", "quantity": 1}, headers=ada)
        ).status_code in (200, 201)
        body = {
            "shipping_address": ADDRESS,
            "shipping_method": "standard",
            "payment": {"token": "tok_visa"},
        }
        return await client.post("/api/checkout", json={**body, **note}, headers={**ada, "Idempotency-Key": key})

    # Longer than the schema's maxLength: the schema's 400, naming the field; nothing ordered.
    refused = assert_problem(await checkout("too-long", customer_note="x" * (ORDER_NOTE + 1)), 400)
    assert "customer_note" in refused["errors"]
    assert await count_orders(alchemy) == 0 and await stock(alchemy, "OIL-1") == 5

    plain = await checkout("no-note")
    assert plain.status_code == 201, plain.text
    assert plain.json()["customer_note"] == ""

    body_note = "  <b>Gift</b> wrap, please\r\nNo invoice in the box\t"
    noted = await checkout("with-note", customer_note=body_note)
    assert noted.status_code == 201, noted.text
    order = noted.json()
    note = "<b>Gift</b> wrap, please\nNo invoice in the box"
    assert order["customer_note"] == note
    replay = await client.post(  # the same key and body: the same order, note and all
        "/api/checkout",
        json={
            "shipping_address": ADDRESS,
            "shipping_method": "standard",
            "payment": {"token": "tok_visa"},
            "customer_note": body_note,
        },
        headers={**ada, "Idempotency-Key": "with-note"},
    )
    assert replay.status_code == 201 and replay.json()["id"] == order["id"]
    for headers in (ada, boss_h, olive_h):  # the shopper, an admin, the shop's owner
        seen = await client.get(f"/api/orders/{order['id']}", headers=headers)
        assert seen.status_code == 200 and seen.json()["customer_note"] == note

    async with alchemy.get_session() as session:
        mail = await session.scalar(
            select(OutboundEmail).where(
                OutboundEmail.kind == "shop_new_order", OutboundEmail.text_body.contains(order["number"])
            )
        )
    assert "Note from the customer:\n> <b>Gift</b> wrap, please\n> No invoice in the box" in mail.text_body
    assert "&lt;b&gt;Gift&lt;/b&gt; wrap, please<br>No invoice in the box" in mail.html_body
    assert "<b>Gift" not in mail.html_body

    # The shop member's view of the order page shows it as well.
    assert (await sign_in(client, "olive@example.com")).status_code == 303
    page = (await client.get(f"/admin/orders/{order['id']}")).text
    assert escaped_note(page) == "&lt;b&gt;Gift&lt;/b&gt; wrap, please\nNo invoice in the box"
