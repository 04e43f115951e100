"""Promotions, shipping zones and tax rates managed by admins: the pages (JavaScript off) and the API.

Admins only: a customer gets 403 (pages and API), a visitor is sent to sign in (pages) or gets 401 (API).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from sqlalchemy import func, select, update

from tests.api_user import assert_problem, bearer, token_pair
from tests.factories import make_order, make_user
from tests.integration.conftest import ADMIN_EMAIL
from tests.shopper import post, register, text_of
from webshop.db.engine import write_session
from webshop.db.models import Category, Promotion, PromotionUsage, ShippingMethod, ShippingZone, TaxRate

PAGES = ["/admin/promotions", "/admin/promotions/new", "/admin/shipping-zones", "/admin/tax-rates"]


DELETE_LINK_RE = re.compile(r'<a class="button secondary" href="([^"]+/delete)">([^<]+)…</a>')
CONFIRM_FORM_RE = re.compile(r'<form action="([^"]+)" method="post" class="confirm-form">')


async def delete_through_the_question(admin, page: str) -> tuple[str, object]:
    """Press the page's "Delete …" link, read the question page it opens (opening it changes nothing) and
    press its "Yes" button: ``(the question's text, the answer to the delete)``."""
    link = DELETE_LINK_RE.search((await admin.get(page)).text)
    assert link, f"no delete link on {page}"
    question = await admin.get(unescape(link.group(1)))
    assert question.status_code == 200, question.text[:300]
    action = CONFIRM_FORM_RE.search(question.text)
    assert action and 'class="button secondary">Keep it</a>' in question.text
    answer = await post(admin, unescape(action.group(1)), {}, token_from=unescape(link.group(1)))
    return text_of(question.text), answer


async def admin_api(client) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await token_pair(client, ADMIN_EMAIL))['access_token']}"}


async def test_only_admins_reach_the_pages_and_the_api(client, alchemy, admin_id):
    for path in PAGES:
        response = await client.get(path, follow_redirects=False)
        assert response.status_code in (302, 303) and "/account/sign-in" in response.headers["location"], path
    for path in ("/api/promotions", "/api/shipping-zones", "/api/tax-rates"):
        assert_problem(await client.get(path), 401)
    customer = await bearer(client, "customer@example.com")
    for path in ("/api/promotions", "/api/shipping-zones", "/api/tax-rates"):
        assert_problem(await client.get(path, headers=customer), 403)
    assert_problem(
        await client.post("/api/promotions", json={"name": "X", "kind": "percentage", "value": 5}, headers=customer),
        403,
    )
    for method, path in (
        ("PATCH", "/api/promotions/1"),
        ("DELETE", "/api/promotions/1"),
        ("POST", "/api/shipping-zones"),
        ("PATCH", "/api/shipping-zones/1"),
        ("DELETE", "/api/shipping-zones/1"),
        ("POST", "/api/shipping-zones/1/methods"),
        ("PATCH", "/api/shipping-zones/1/methods/1"),
        ("DELETE", "/api/shipping-zones/1/methods/1"),
        ("POST", "/api/tax-rates"),
        ("PATCH", "/api/tax-rates/1"),
        ("DELETE", "/api/tax-rates/1"),
    ):
        body = {} if method != "DELETE" else None
        answer = await client.request(method, path, json=body, headers=customer)
        assert answer.status_code == 403, (method, path, answer.status_code)
    await register(client, "page-customer@example.com")
    for path in PAGES:
        assert (await client.get(path)).status_code == 403, path
    for path in (
        "/admin/promotions/new",
        "/admin/promotions/1",
        "/admin/promotions/1/delete",
        "/admin/shipping-zones",
        "/admin/shipping-zones/1",
        "/admin/shipping-zones/1/delete",
        "/admin/shipping-zones/1/methods",
        "/admin/shipping-zones/1/methods/1",
        "/admin/shipping-zones/1/methods/1/delete",
        "/admin/tax-rates",
        "/admin/tax-rates/1",
        "/admin/tax-rates/1/delete",
    ):
        refused = await post(client, path, {}, token_from="/cart")
        assert refused.status_code == 403, (path, refused.status_code)
    async with alchemy.get_session() as session:  # nothing changed
        assert await session.scalar(select(ShippingZone.name).where(ShippingZone.id == 1)) == "Rest of the world"


async def test_promotion_pages_create_edit_refuse_and_delete(admin, alchemy):
    async with alchemy.get_session() as session:
        photo = await session.scalar(select(Category.id).where(Category.slug == "photo"))
    if photo is None:
        async with write_session(alchemy) as session:
            category = Category(name="Photo", slug="photo")
            session.add(category)
            await session.commit()
            photo = category.id
    created = await post(
        admin,
        "/admin/promotions/new",
        {
            "name": "Photo week",
            "code": "photo10",
            "kind": "percentage",
            "value": "10",
            "category_ids": str(photo),
            "active": "on",
            "combinable": "on",
            "usage_limit": "100",
        },
        token_from="/admin/promotions/new",
    )
    assert created.status_code == 303, text_of(created.text)[:400]
    listed = text_of((await admin.get("/admin/promotions")).text)
    assert "Photo week" in listed and "PHOTO10" in listed and "10%" in listed and "0 of 100" in listed

    # The same code in another case, a bad amount and an end before the start: the form again, values kept.
    again = await post(
        admin,
        "/admin/promotions/new",
        {
            "name": "Copy",
            "code": "Photo10",
            "kind": "fixed_amount",
            "value": "lots",
            "starts_at": "2026-12-24T10:00",
            "ends_at": "2026-12-01T10:00",
        },
        token_from="/admin/promotions/new",
    )
    assert again.status_code == 422
    assert "Enter a price of 0 or more" in again.text and 'value="Copy"' in again.text
    again = await post(
        admin,
        "/admin/promotions/new",
        {
            "name": "Copy",
            "code": "Photo10",
            "kind": "fixed_amount",
            "value": "5.00",
            "starts_at": "2026-12-24T10:00",
            "ends_at": "2026-12-01T10:00",
        },
        token_from="/admin/promotions/new",
    )
    assert again.status_code == 422
    assert "Another promotion has this code." in again.text and "The end must come after the start." in again.text
    # A name over its limit is said in words beside the field (QA: msgspec's "Expected `str` of length <= 120").
    long_name = await post(
        admin,
        "/admin/promotions/new",
        {"name": "N" * 300, "kind": "percentage", "value": "10"},
        token_from="/admin/promotions/new",
    )
    assert long_name.status_code == 422
    assert "At most 120 characters." in text_of(long_name.text) and "Expected" not in long_name.text

    free = await post(
        admin,
        "/admin/promotions/new",
        {"name": "Free shipping over 50", "kind": "free_shipping", "min_subtotal": "50.00", "active": "on"},
        token_from="/admin/promotions/new",
    )
    assert free.status_code == 303
    async with alchemy.get_session() as session:
        rows = {p.name: p for p in await session.scalars(select(Promotion))}
    assert rows["Free shipping over 50"].code is None and rows["Free shipping over 50"].min_subtotal == 5000
    assert rows["Photo week"].category_ids == [photo] and rows["Photo week"].code == "PHOTO10"

    promotion_id = rows["Photo week"].id
    page = await admin.get(f"/admin/promotions/{promotion_id}")
    assert 'value="PHOTO10"' in page.text
    saved = await post(
        admin,
        f"/admin/promotions/{promotion_id}",
        {"name": "Photo fortnight", "code": "PHOTO10", "kind": "percentage", "value": "15", "active": "on"},
        token_from=f"/admin/promotions/{promotion_id}",
    )
    assert saved.status_code == 303
    async with alchemy.get_session() as session:
        changed = await session.get(Promotion, promotion_id)
        assert (changed.name, changed.value, changed.category_ids, changed.combinable) == (
            "Photo fortnight",
            15,
            [],
            False,
        )

    question, deleted = await delete_through_the_question(admin, f"/admin/promotions/{promotion_id}")
    assert "Delete the promotion “Photo fortnight”?" in question
    assert "No order has used it: it is deleted for good." in question
    assert deleted.status_code == 303
    async with alchemy.get_session() as session:
        assert await session.get(Promotion, promotion_id) is None


async def test_the_promotion_list_says_which_ones_apply_now(admin, alchemy):
    """QA: an expired promotion was listed as "Active"."""
    now = datetime.now(UTC)
    rows = {
        "Over": {"ends_at": now - timedelta(days=1)},
        "Soon": {"starts_at": now + timedelta(days=1)},
        "Gone": {"usage_limit": 1, "times_used": 1},
        "Off": {"active": False},
        "Now": {"starts_at": now - timedelta(days=1), "ends_at": now + timedelta(days=1)},
    }
    async with write_session(alchemy) as session:
        session.add_all(Promotion(name=name, kind="percentage", value=5, **values) for name, values in rows.items())
        await session.commit()
    page = (await admin.get("/admin/promotions")).text
    states = dict(
        re.findall(r'<td><a href="/admin/promotions/\d+">(\w+)</a></td>.*?<td>([\w ]+)</td>\s*</tr>', page, re.S)
    )
    assert states == {"Over": "Ended", "Soon": "Scheduled", "Gone": "Used up", "Off": "Inactive", "Now": "Active"}


async def test_promotions_api(client, alchemy, admin_id, skus):
    headers = await admin_api(client)
    body = {
        "name": "Spring",
        "code": "spring",
        "kind": "fixed_amount",
        "value": 500,
        "min_subtotal": 2000,
        "variant_ids": [skus["DC-1"]],
        "ends_at": "2030-01-01T00:00:00Z",
    }
    created = await client.post("/api/promotions", json=body, headers=headers)
    assert created.status_code == 201, created.text
    promotion = created.json()
    assert promotion["code"] == "SPRING" and promotion["times_used"] == 0 and promotion["variant_ids"] == [skus["DC-1"]]
    duplicate = assert_problem(
        await client.post("/api/promotions", json={**body, "code": "SPRING"}, headers=headers), 422
    )
    assert duplicate["errors"]["code"] == "Another promotion has this code."
    unknown = assert_problem(
        await client.post("/api/promotions", json={**body, "code": "X1", "category_ids": [999999]}, headers=headers),
        422,
    )
    assert "999999" in unknown["errors"]["category_ids"]
    assert_problem(
        await client.post(
            "/api/promotions", json={**body, "code": "X2", "kind": "percentage", "value": 150}, headers=headers
        ),
        422,
    )
    patched = await client.patch(f"/api/promotions/{promotion['id']}", json={"usage_limit": 3}, headers=headers)
    assert patched.status_code == 200 and patched.json()["usage_limit"] == 3 and patched.json()["name"] == "Spring"
    assert (await client.get("/api/promotions", headers=headers)).json()[0]["id"] == promotion["id"]
    assert_problem(await client.get("/api/promotions/999999", headers=headers), 404)
    async with write_session(alchemy) as session:  # two orders have used it
        await session.execute(update(Promotion).where(Promotion.id == promotion["id"]).values(times_used=2))
        await session.commit()
    too_low = assert_problem(
        await client.patch(f"/api/promotions/{promotion['id']}", json={"usage_limit": 1}, headers=headers), 422
    )
    refused = "This promotion has been used 2 times already: the limit cannot be lower."
    assert too_low["errors"] == {"usage_limit": refused}
    assert (await client.get(f"/api/promotions/{promotion['id']}", headers=headers)).json()["usage_limit"] == 3

    # A promotion orders used is withdrawn, not deleted.
    order_id = await _an_order(alchemy)
    async with write_session(alchemy) as session:
        session.add(PromotionUsage(promotion_id=promotion["id"], order_id=order_id, email="x@example.com"))
        await session.commit()
    withdrawn = await client.delete(f"/api/promotions/{promotion['id']}", headers=headers)
    assert withdrawn.status_code == 200 and withdrawn.json() == {"deleted": False}
    assert (await client.get(f"/api/promotions/{promotion['id']}", headers=headers)).json()["active"] is False


async def _an_order(alchemy) -> int:
    user_id = await make_user(alchemy, "orderer@example.com")
    return await make_order(alchemy, user_id, "WS-PROMO01", {"EP-1": 1})


async def test_shipping_zone_and_method_pages(admin, alchemy):
    listed = text_of((await admin.get("/admin/shipping-zones")).text)
    assert "Rest of the world" in listed and "Standard shipping" in listed  # the zone the upgrade seeded
    created = await post(
        admin, "/admin/shipping-zones", {"name": "France", "countries": "FR"}, token_from="/admin/shipping-zones"
    )
    assert created.status_code == 303
    zone_path = created.headers["location"]
    clash = await post(
        admin, "/admin/shipping-zones", {"name": "EU", "countries": ["DE", "FR"]}, token_from="/admin/shipping-zones"
    )
    assert clash.status_code == 422 and "Already in another zone: France (France)." in text_of(clash.text)
    second_world = await post(
        admin, "/admin/shipping-zones", {"name": "World 2", "rest_of_world": "on"}, token_from="/admin/shipping-zones"
    )
    assert second_world.status_code == 422 and "There already is a rest-of-the-world zone." in second_world.text
    twin = await post(
        admin, "/admin/shipping-zones", {"name": " france ", "countries": "BE"}, token_from="/admin/shipping-zones"
    )
    assert twin.status_code == 422 and 'id="f-name-error"' in twin.text
    assert "Another zone is called “france”: give this one a name of its own." in text_of(twin.text)

    method = {
        "name": "Colissimo",
        "code": "colissimo",
        "kind": "weight",
        "bands": "2000 7.90\n- 12.90",
        "delivery_estimate": "2–3 working days",
        "active": "on",
        "position": "0",
    }
    bad = await post(admin, f"{zone_path}/methods", {**method, "bands": "2000 7.90\n2000 9.90"}, token_from=zone_path)
    assert bad.status_code == 422 and "Two bands have the same upper limit (2000)." in bad.text
    assert "2000 9.90" in bad.text  # what the admin typed stays
    added = await post(admin, f"{zone_path}/methods", method, token_from=zone_path)
    assert added.status_code == 303
    page = text_of((await admin.get(zone_path)).text)
    assert "≤ 2000 g: $7.90; above: $12.90" in page
    async with alchemy.get_session() as session:
        zone = await session.scalar(select(ShippingZone).where(ShippingZone.name == "France"))
        row = await session.scalar(select(ShippingMethod).where(ShippingMethod.zone_id == zone.id))
        assert zone.countries == ["FR"] and row.bands == [[2000, 790], [None, 1290]]
    edit_path = f"{zone_path}/methods/{row.id}"
    assert "- 12.90" in (await admin.get(edit_path)).text
    saved = await post(
        admin, edit_path, {**method, "kind": "flat", "price": "6.90", "free_over": "60.00"}, token_from=edit_path
    )
    assert saved.status_code == 303
    async with alchemy.get_session() as session:
        row = await session.get(ShippingMethod, row.id)
        assert (row.kind, row.price, row.bands, row.free_over) == ("flat", 690, [], 6000)
    question, deleted = await delete_through_the_question(admin, edit_path)
    assert "Delete the shipping method “Colissimo”?" in question
    assert "“France” has no other active method: its countries cannot check out until it has one." in question
    assert deleted.status_code == 303
    question, deleted = await delete_through_the_question(admin, zone_path)
    assert "Delete the zone “France”?" in question
    assert "Addresses in France then ship by the rest of the world's methods." in question
    assert deleted.status_code == 303
    async with alchemy.get_session() as session:
        assert await session.scalar(select(ShippingZone).where(ShippingZone.name == "France")) is None


def assert_marked(html: str, messages: dict[str, str]) -> None:
    """Each message (its start) stands beside its field (``f-<field>-error``) on the form's page."""
    for field, message in messages.items():
        assert f'id="f-{field}-error">{message}' in unescape(html), field


async def test_the_promotion_form_marks_every_problem_in_one_round(admin, alchemy, skus):
    """The fields the form cannot read and the service's rules are all marked after one submit (QA: the
    empty name, the bad code and the dates only showed on the next one)."""
    typed = {
        "name": "",
        "code": "SAVE 10!",
        "kind": "percentage",
        "value": "abc",
        "min_subtotal": "-5",
        "usage_limit": "x",
        "starts_at": "2026-12-24T09:00",
        "ends_at": "2026-12-01T09:00",
        "product_ids": "1, abc",
        "variant_skus": "NO-SUCH-SKU",
        "active": "on",
    }
    refused = await post(admin, "/admin/promotions/new", typed, token_from="/admin/promotions/new")
    assert refused.status_code == 422
    marked = {
        "name": "Enter a name.",
        "code": "",
        "value": "The percentage: enter a whole number",
        "min_subtotal": "Enter a price",
        "usage_limit": "The usage limit: enter a whole number",
        "ends_at": "The end must come after the start.",
        "product_ids": "Enter product ids (numbers) separated by commas.",
        "variant_skus": "No variant has the SKU NO-SUCH-SKU.",
    }
    assert_marked(refused.text, marked)
    assert 'value="SAVE 10!"' in refused.text and 'value="abc"' in refused.text  # as typed
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Promotion)) == 0


async def test_the_shipping_method_form_marks_every_problem_in_one_round(admin, alchemy, skus):
    """As the promotion form: an unreadable price and position, and the service's rules (a name, a code
    the zone's other method has), all after one submit (QA)."""
    zone_path = "/admin/shipping-zones/1"
    typed = {"name": "", "code": "standard", "kind": "flat", "price": "abc", "position": "x", "active": "on"}
    refused = await post(admin, f"{zone_path}/methods", typed, token_from=zone_path)
    assert refused.status_code == 422
    marked = {"name": "Enter a name.", "code": "Another method of this zone has this code."}
    assert_marked(refused.text, {**marked, "price": "Enter a price", "position": "The position: enter a whole"})
    assert 'value="abc"' in refused.text


async def test_the_forms_refuse_what_the_api_refuses_too_large_amounts_and_counts(admin, alchemy):
    """The pages check the same upper limits as the API's fields (at most $20,000,000.00 and 2,000,000,000
    uses), so nothing is stored that the API would refuse or PostgreSQL's ``integer`` could not hold."""
    promotion = {"name": "Huge", "kind": "fixed_amount", "value": "99999999999", "active": "on"}
    refused = await post(
        admin,
        "/admin/promotions/new",
        {**promotion, "min_subtotal": "99999999999", "usage_limit": "9999999999"},
        token_from="/admin/promotions/new",
    )
    assert refused.status_code == 422
    text = text_of(refused.text)
    assert text.count("Enter a price of at most $20,000,000.00.") == 2, text
    assert "The usage limit: enter a whole number of at most 2,000,000,000." in text
    assert 'value="99999999999"' in refused.text  # what was typed stays
    low = await post(
        admin,
        "/admin/promotions/new",
        {"name": "Low", "kind": "percentage", "value": "-10", "per_customer_limit": "0", "usage_limit": "-1"},
        token_from="/admin/promotions/new",
    )
    text = text_of(low.text)
    assert low.status_code == 422 and "The percentage: enter a whole number of 1 or more." in text, text
    assert "The limit per customer: enter a whole number of 1 or more." in text
    assert "The usage limit: enter a whole number of 1 or more." in text
    halves = await post(
        admin,
        "/admin/promotions/new",
        {"name": "Half", "kind": "percentage", "value": "12.5"},
        token_from="/admin/promotions/new",
    )
    assert "The percentage: enter a whole number of 1 or more, without decimals." in text_of(halves.text)  # QA
    zone_path = "/admin/shipping-zones/1"
    method = {"name": "Dear", "code": "dear", "kind": "flat", "price": "99999999999", "active": "on"}
    too_dear = await post(admin, f"{zone_path}/methods", method, token_from=zone_path)
    assert too_dear.status_code == 422 and "Enter a price of at most $20,000,000.00." in text_of(too_dear.text)
    async with alchemy.get_session() as session:
        assert await session.scalar(select(Promotion).where(Promotion.name == "Huge")) is None
        assert await session.scalar(select(ShippingMethod).where(ShippingMethod.code == "dear")) is None


async def test_shipping_zones_api(client, admin_id):
    headers = await admin_api(client)
    zones = (await client.get("/api/shipping-zones", headers=headers)).json()
    assert [z["name"] for z in zones] == ["Rest of the world"]
    assert {m["code"] for m in zones[0]["methods"]} == {"standard", "express"}
    created = await client.post(
        "/api/shipping-zones", json={"name": "Benelux", "countries": ["be", "NL", "LU"]}, headers=headers
    )
    assert created.status_code == 201, created.text
    zone = created.json()
    assert zone["countries"] == ["BE", "LU", "NL"]
    assert_problem(
        await client.post("/api/shipping-zones", json={"name": "X", "countries": ["QQ"]}, headers=headers), 422
    )
    method = await client.post(
        f"/api/shipping-zones/{zone['id']}/methods",
        json={
            "code": "postnl",
            "name": "PostNL",
            "kind": "subtotal",
            "bands": [{"up_to": 5000, "price": 695}, {"up_to": None, "price": 0}],
        },
        headers=headers,
    )
    assert method.status_code == 201, method.text
    assert method.json()["bands"] == [{"up_to": 5000, "price": 695}, {"up_to": None, "price": 0}]
    bad = await client.post(
        f"/api/shipping-zones/{zone['id']}/methods",
        json={"code": "twice", "name": "Twice", "kind": "weight", "bands": [{"up_to": None, "price": 1}, {"price": 2}]},
        headers=headers,
    )
    assert assert_problem(bad, 422)["errors"]["bands"] == "Only one band may have no upper limit."
    assert_problem(
        await client.post(
            f"/api/shipping-zones/{zone['id']}/methods", json={"code": "postnl", "name": "Again"}, headers=headers
        ),
        422,
    )
    patched = await client.patch(f"/api/shipping-zones/{zone['id']}", json={"countries": ["NL"]}, headers=headers)
    assert patched.status_code == 200 and patched.json()["countries"] == ["NL"]
    assert (await client.delete(f"/api/shipping-zones/{zone['id']}", headers=headers)).status_code == 204
    assert_problem(await client.get(f"/api/shipping-zones/{zone['id']}", headers=headers), 404)


async def test_tax_rate_pages_and_api(admin, alchemy):
    listed = text_of((await admin.get("/admin/tax-rates")).text)
    assert "Every other country" in listed and "standard" in listed and "20%" in listed  # the seeded rates
    created = await post(
        admin,
        "/admin/tax-rates",
        {"country": "FR", "tax_category": "reduced", "rate": "5.5", "name": "TVA"},
        token_from="/admin/tax-rates",
    )
    assert created.status_code == 303
    assert "France (FR)" in text_of((await admin.get("/admin/tax-rates")).text)  # named as the zones name it
    duplicate = await post(
        admin,
        "/admin/tax-rates",
        {"country": "FR", "tax_category": "reduced", "rate": "7", "name": "TVA"},
        token_from="/admin/tax-rates",
    )
    assert duplicate.status_code == 422 and "already has a rate for this tax category" in duplicate.text
    bad = await post(
        admin,
        "/admin/tax-rates",
        {"country": "FR", "tax_category": "standard", "rate": "20.001"},
        token_from="/admin/tax-rates",
    )
    assert bad.status_code == 422 and "at most 2 decimals" in bad.text
    async with alchemy.get_session() as session:
        rate = await session.scalar(select(TaxRate).where(TaxRate.country == "FR"))
        assert (rate.tax_category, rate.rate_bp, rate.name) == ("reduced", 550, "TVA")

    headers = await admin_api(admin)
    rates = (await admin.get("/api/tax-rates", headers=headers)).json()
    assert {(r["country"], r["tax_category"], r["rate_bp"]) for r in rates} >= {
        ("*", "standard", 2000),
        ("FR", "reduced", 550),
    }
    made = await admin.post(
        "/api/tax-rates",
        json={"country": "de", "tax_category": "standard", "rate_bp": 1900, "name": "MwSt"},
        headers=headers,
    )
    assert made.status_code == 201 and made.json()["country"] == "DE"
    region = assert_problem(
        await admin.post(
            "/api/tax-rates",
            json={"country": "US", "region": "CA-ON", "tax_category": "standard", "rate_bp": 725},
            headers=headers,
        ),
        422,
    )
    assert "region" in region["errors"]
    luxury = {"country": "FR", "tax_category": "luxury", "rate_bp": 2000}  # no product can have it
    unusable = assert_problem(await admin.post("/api/tax-rates", json=luxury, headers=headers), 422)
    assert unusable["errors"]["tax_category"].startswith("Choose a tax category the shop's products can have (")
    async with alchemy.get_session() as session:  # a rate of a category the settings no longer have
        session.add(TaxRate(country="FR", region="", tax_category="luxury", rate_bp=2500, name="Old"))
        await session.commit()
        old = await session.scalar(select(TaxRate.id).where(TaxRate.tax_category == "luxury"))
    renamed = await admin.patch(f"/api/tax-rates/{old}", json={"name": "Luxe"}, headers=headers)
    assert renamed.status_code == 200 and renamed.json()["name"] == "Luxe"  # still editable
    patched = await admin.patch(f"/api/tax-rates/{made.json()['id']}", json={"rate_bp": 700}, headers=headers)
    assert patched.status_code == 200 and patched.json()["rate_bp"] == 700
    assert (await admin.delete(f"/api/tax-rates/{made.json()['id']}", headers=headers)).status_code == 204


async def test_a_rate_by_region_warns_that_the_countrys_other_regions_pay_the_rest_of_the_worlds(admin):
    """A rate for California and none for the United States taxes New York at the seeded 20 %: the page
    says so until the country has a rate of its own for the category."""
    warned = "“standard” goods to addresses in the United States outside California and New York are taxed at 20%"
    for region, percent in (("CA", "7.25"), ("NY", "4")):
        created = await post(
            admin,
            "/admin/tax-rates",
            {"country": "US", "region": region, "tax_category": "standard", "rate": percent, "name": "Sales tax"},
            token_from="/admin/tax-rates",
        )
        assert created.status_code == 303
    page = text_of((await admin.get("/admin/tax-rates")).text)
    assert warned + ", the rate for every other country: add a rate for the United States without a region" in page
    country = await post(
        admin,
        "/admin/tax-rates",
        {"country": "US", "tax_category": "standard", "rate": "0", "name": "No sales tax"},
        token_from="/admin/tax-rates",
    )
    assert country.status_code == 303
    assert "outside California" not in text_of((await admin.get("/admin/tax-rates")).text)


@pytest.mark.parametrize("path", ["/admin/promotions", "/admin/shipping-zones", "/admin/tax-rates"])
async def test_the_admin_navigation_links_the_pricing_pages(admin, path):
    page = await admin.get("/admin")
    assert f'href="{path}"' in page.text


async def test_the_services_hold_their_limits_whoever_builds_the_input(alchemy):
    """A Struct built in code skips msgspec's limits (they apply when JSON is decoded): the service checks."""
    from webshop.errors import ValidationFailed
    from webshop.promotions.service import PromotionInput, PromotionService
    from webshop.shipping.service import ShippingMethodInput, ShippingZoneService

    async with write_session(alchemy) as session:
        with pytest.raises(ValidationFailed) as promotion_error:
            await PromotionService(session=session).create_promotion(
                None, PromotionInput(name="Huge", kind="fixed_amount", value=99_999_999_999_900)
            )
        assert set(promotion_error.value.field_errors) == {"value"}
        with pytest.raises(ValidationFailed) as method_error:
            await ShippingZoneService(session=session).create_method(
                None, 1, ShippingMethodInput(code="dear", name="Dear", price=99_999_999_999_900)
            )
        assert set(method_error.value.field_errors) == {"price"}
    async with alchemy.get_session() as session:
        assert await session.scalar(select(Promotion).where(Promotion.name == "Huge")) is None
        assert await session.scalar(select(ShippingMethod).where(ShippingMethod.code == "dear")) is None


async def test_deleting_a_tax_rate_or_a_used_promotion_asks_first_and_says_what_follows(admin, alchemy, skus):
    async with write_session(alchemy) as session:
        california = TaxRate(country="US", region="US-CA", tax_category="standard", rate_bp=725, name="Sales tax")
        spring = Promotion(name="Spring", kind="percentage", value=10, active=True)
        session.add_all([california, spring])
        await session.commit()
        rate_id, promotion_id = california.id, spring.id
    # Opening the question changes nothing; it names the rate that applies there instead.
    question = text_of((await admin.get(f"/admin/tax-rates/{rate_id}/delete")).text)
    assert "Delete the tax rate Sales tax 7.25%, California, United States?" in question
    assert (
        "“standard” goods and shipping to addresses in California, United States are then taxed at 20%, "
        "the rate of every other country."
    ) in question
    async with alchemy.get_session() as session:
        assert await session.get(TaxRate, rate_id) is not None
    question, deleted = await delete_through_the_question(admin, f"/admin/tax-rates/{rate_id}")
    assert deleted.status_code == 303
    async with alchemy.get_session() as session:
        assert await session.get(TaxRate, rate_id) is None

    # A promotion orders used is withdrawn, and the question says so before.
    order_id = await _an_order(alchemy)
    async with write_session(alchemy) as session:
        session.add(PromotionUsage(promotion_id=promotion_id, order_id=order_id, email="x@example.com"))
        await session.commit()
    question, withdrawn = await delete_through_the_question(admin, f"/admin/promotions/{promotion_id}")
    assert "Withdraw the promotion “Spring”?" in question
    assert "Orders used it once, so it is withdrawn (switched off), not deleted: they keep it." in question
    assert withdrawn.status_code == 303
    async with alchemy.get_session() as session:
        assert (await session.get(Promotion, promotion_id)).active is False
