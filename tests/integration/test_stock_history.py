"""A variant's stock history (the stock ledger read back) on both engines: the admin page and
``GET /api/variants/{id}/stock-movements``, newest first, each movement with the units on hand it left,
paged; a shop's member sees their shops' variants only."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from tests.api_user import assert_problem, bearer_of
from tests.factories import make_user, shop_selling
from tests.shopper import post as submit
from tests.shopper import text_of
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Product, StockReason, UserRole
from webshop.stock.service import return_stock, take_stock


async def _movements(alchemy: ShopAlchemyConfig, variant_id: int) -> None:
    """After the seed's import of 12: a sale of 3, its cancellation, a sale of 2 (DC-1 ends at 10)."""
    async with write_session(alchemy) as session:
        assert await take_stock(session, variant_id, 3, reason=StockReason.SALE, reference="WS-1001")
        await return_stock(session, variant_id, 3, reason=StockReason.CANCELLATION, reference="WS-1001 cancelled")
        assert await take_stock(session, variant_id, 2, reason=StockReason.SALE, reference="WS-1002")
        await session.commit()


async def test_the_api_lists_a_variants_movements_newest_first_with_the_level_each_left(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int], admin_headers: dict[str, str]
) -> None:
    chair = skus["DC-1"]
    await _movements(alchemy, chair)
    adjusted = await client.post(
        f"/api/variants/{chair}/stock-adjustments",
        json={"delta": 5, "reason": "found in the back"},
        headers=admin_headers,
    )
    assert adjusted.status_code == 201, adjusted.text

    response = await client.get(f"/api/variants/{chair}/stock-movements", headers=admin_headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["variant_id"], body["sku"], body["stock"], body["next_cursor"]) == (chair, "DC-1", 15, None)
    assert [(m["delta"], m["reason"], m["level_after"]) for m in body["items"]] == [
        (5, "adjustment", 15),
        (-2, "sale", 10),
        (3, "cancellation", 12),
        (-3, "sale", 9),
        (12, "import", 12),
    ]
    assert body["items"][1]["reference"] == "WS-1002" and "found in the back" in body["items"][0]["reference"]

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"/api/variants/{chair}/stock-movements", params=params, headers=admin_headers)).json()
        pages.append([m["level_after"] for m in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [[15, 10], [12, 9], [12]]  # each page's levels agree with the whole list's

    other = (await client.get(f"/api/variants/{skus['AL-15']}/stock-movements", headers=admin_headers)).json()
    assert [m["level_after"] for m in other["items"]] == [0] and other["stock"] == 0  # the seed's 0 units
    assert_problem(await client.get("/api/variants/999999/stock-movements", headers=admin_headers), 404)
    assert_problem(await client.get(f"/api/variants/{chair}/stock-movements"), 401)
    assert_problem(
        await client.get(f"/api/variants/{chair}/stock-movements", params={"cursor": "x"}, headers=admin_headers), 400
    )


async def test_a_shops_member_reads_their_shops_variants_history_only(
    client: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]
) -> None:
    await shop_selling(alchemy, "ann@example.com", "beta-camera")
    await make_user(alchemy, "ada@example.com", UserRole.CUSTOMER)
    ann, ada = await bearer_of(client, "ann@example.com"), await bearer_of(client, "ada@example.com")
    mine = await client.get(f"/api/variants/{skus['BC-1']}/stock-movements", headers=ann)
    assert mine.status_code == 200 and [m["level_after"] for m in mine.json()["items"]] == [3]
    assert_problem(await client.get(f"/api/variants/{skus['DC-1']}/stock-movements", headers=ann), 404)
    assert_problem(await client.get(f"/api/variants/{skus['DC-1']}/stock-movements", headers=ada), 403)

    from tests.shopper import sign_in

    assert (await sign_in(client, "ann@example.com")).status_code == 303
    assert (await client.get(f"/admin/stock/variants/{skus['BC-1']}")).status_code == 200
    assert (await client.get(f"/admin/stock/variants/{skus['DC-1']}")).status_code == 404


async def test_the_stock_history_page_lists_the_movements_and_pages_back(
    admin: Any, alchemy: ShopAlchemyConfig, skus: dict[str, int]
) -> None:
    chair = skus["DC-1"]
    await _movements(alchemy, chair)
    product_page = (await admin.get(f"/admin/products/{await _product_id(alchemy, 'delta-chair')}")).text
    assert f'href="/admin/stock/variants/{chair}"' in product_page  # "Stock history" beside each variant
    medium = await admin.get("/admin/stock", params={"level": "medium"})
    assert f'href="/admin/stock/variants/{chair}"' in medium.text  # and on the stock page's rows

    page = await admin.get(f"/admin/stock/variants/{chair}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Stock history of DC-1" in text and "10 on hand" in text
    rows = re.findall(r'<tr data-reason="(\w+)">', page.text)
    assert rows == ["sale", "cancellation", "sale", "import"]
    assert "-2 Sale WS-1002 10" in text and "+3 Cancellation WS-1001 cancelled 12" in text
    assert "+12 Import test seed 12" in text
    assert "Older changes" not in text

    # An adjustment with a typographic minus (U+2212) removes units; its reason shows by its label.
    adjusted = await submit(
        admin,
        "/admin/stock/adjust",
        {"sku": "DC-1", "delta": "\u22122", "reason": "damaged", "note": "Dropped"},
        token_from="/admin/stock",
    )
    assert adjusted.status_code == 303, adjusted.text[:300]
    text = text_of((await admin.get(f"/admin/stock/variants/{chair}")).text)
    assert "-2 Adjustment Damaged: Dropped 8" in text and "8 on hand" in text

    async with write_session(alchemy) as session:
        for number in range(30):  # 60 more movements
            assert await take_stock(session, chair, 1, reason=StockReason.SALE, reference=f"WS-{2000 + number}")
            await return_stock(session, chair, 1, reason=StockReason.CANCELLATION, reference=f"WS-{2000 + number}")
        await session.commit()
    first = await admin.get(f"/admin/stock/variants/{chair}")
    assert len(re.findall(r"<tr data-reason=", first.text)) == 50
    older = re.search(r'href="([^"]+)" rel="next">Older changes', first.text)
    assert older is not None
    second = await admin.get(older.group(1).replace("&amp;", "&"))
    assert len(re.findall(r"<tr data-reason=", second.text)) == 15 and "Newest changes" in second.text
    assert "+12 Import test seed 12" in text_of(second.text)
    assert (await admin.get("/admin/stock/variants/999999")).status_code == 404
    # A hand-typed ?before= that is no number shows the newest page.
    assert (await admin.get(f"/admin/stock/variants/{chair}", params={"before": "x"})).status_code == 200


async def _product_id(alchemy: ShopAlchemyConfig, slug: str) -> int:
    async with alchemy.get_session() as session:
        product_id = await session.scalar(select(Product.id).where(Product.slug == slug))
        assert product_id is not None
        return product_id
