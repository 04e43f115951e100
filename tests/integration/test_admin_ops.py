"""Admin operations over HTTP on both engines: guards, orders, users and stock (issue 5).

Data is set up through the ORM and the services (as the factories do); everything a test checks goes
through the admin pages (or the API and sign-in forms a user would use) against a real database.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from tests.conftest import BASE_URL
from tests.factories import audit_events as audit
from tests.factories import ledger_ok, make_order, make_user, stock
from tests.shopper import PASSWORD, sign_in, text_of
from tests.shopper import csrf as token_of
from tests.shopper import post as submit
from webshop.db.engine import write_session
from webshop.db.models import (
    AuthSession,
    Order,
    OrderStatus,
    Product,
    StockMovement,
    TokenFamily,
    User,
    UserRole,
    Variant,
)

# --- set-up helpers ---------------------------------------------------------------------------


# --- guards -----------------------------------------------------------------------------------

FRAGMENT = {"HX-Request": "true"}
ROUTES = [
    ("GET", "/admin", {}),
    ("GET", "/admin/orders", {}),
    ("GET", "/admin/orders?status=paid", {**FRAGMENT, "HX-Target": "order-results"}),
    ("GET", "/admin/orders/{order_id}", {}),
    ("POST", "/admin/orders/{order_id}/status", {}),
    ("POST", "/admin/orders/{order_id}/status", FRAGMENT),
    ("GET", "/admin/orders/{order_id}/status?status=cancelled", {}),
    ("POST", "/admin/orders/{order_id}/refund", {}),
    ("GET", "/admin/orders/{order_id}/refunds", {}),
    ("POST", "/admin/orders/{order_id}/refunds", {}),
    ("POST", "/admin/orders/{order_id}/refunds/{order_id}/retry", {}),  # any refund id: the guard answers first
    ("GET", "/admin/orders/{order_id}/invoice.pdf", {}),
    ("GET", "/admin/orders/{order_id}/credit-notes/{order_id}", {}),  # any file name: the guard answers first
    ("POST", "/admin/orders/{order_id}/shipments", {}),
    ("GET", "/admin/users", {}),
    ("GET", "/admin/users?q=ada", {**FRAGMENT, "HX-Target": "user-results"}),
    ("GET", "/admin/users/{user_id}", {}),
    ("POST", "/admin/users/{user_id}/promote", {}),
    ("POST", "/admin/users/{user_id}/demote", {}),
    ("POST", "/admin/users/{user_id}/deactivate", {}),
    ("POST", "/admin/users/{user_id}/reactivate", {}),
    ("POST", "/admin/users/{user_id}/erase", {}),
    ("GET", "/admin/stock", {}),
    ("GET", "/admin/stock?level=low", {**FRAGMENT, "HX-Target": "stock-health"}),
    ("POST", "/admin/stock/adjust", {}),
    ("POST", "/admin/stock/adjust", FRAGMENT),
    ("GET", "/admin/stock/variants/{user_id}", {}),  # any variant id: the guard answers first
]
FORMS = {
    "/status": {"status": "shipped"},
    "/shipments": {"carrier": "DHL", "tracking_number": "T-1"},
    "/adjust": {"sku": "DC-1", "delta": "-5", "reason": "lost", "note": "sneaky"},
    "/erase": {"confirm": "yes"},
}


def test_every_admin_route_of_this_module_is_in_the_guard_list(app):
    """The guard test below must not miss a route added later."""
    listed = {re.sub(r"\{\w+\}", "{}", path.split("?")[0]) for _, path, _ in ROUTES}
    registered = {
        re.sub(r"\{\w+:(int|str)\}", "{}", route.path)
        for route in app.routes
        if route.path.startswith(("/admin/orders", "/admin/users", "/admin/stock")) or route.path == "/admin"
    }
    assert registered == listed


@pytest.mark.parametrize(
    ("method", "path", "headers"), ROUTES, ids=[f"{m} {p} {'htmx' if h else ''}" for m, p, h in ROUTES]
)
async def test_signed_out_goes_to_sign_in_and_customer_gets_403(client, app, alchemy, skus, method, path, headers):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    order_id = await make_order(alchemy, ada, "W-1", {"DC-1": 1})
    url = path.format(order_id=order_id, user_id=ada)
    data = next((form for suffix, form in FORMS.items() if url.endswith(suffix)), {})

    async def call(who):
        if method == "GET":
            return await who.get(url, headers=headers, follow_redirects=False)
        token = await token_of(who)
        return await who.post(url, data={**data, "_csrf_token": token}, headers=headers, follow_redirects=False)

    # Signed out: sent to sign in, and back here afterwards.
    response = await call(client)
    target = response.headers.get("hx-redirect") if headers else response.headers.get("location")
    assert response.status_code in (200, 303) if headers else response.status_code == 303
    assert target and target.startswith("/account/sign-in?next=/admin"), (response.status_code, response.headers)

    # A customer: the 403 page, and nothing changes.
    async with AsyncTestClient(app=app, base_url=BASE_URL) as customer:
        await make_user(alchemy, "eve@example.com", name="Eve")
        assert (await sign_in(customer, "eve@example.com")).status_code == 303
        response = await call(customer)
        assert response.status_code == 403, response.text[:300]
        assert "This page is for administrators" in response.text
    async with alchemy.get_session() as session:
        user = await session.get(User, ada)
        order = await session.get(Order, order_id)
        assert (user.role, user.is_active, order.status) == ("customer", True, "paid")
    assert await stock(alchemy, "DC-1") == 11
    assert await audit(alchemy, "order", order_id) == []


async def test_admin_link_in_header_only_for_admins(client, app, alchemy, admin_id):
    await make_user(alchemy, "ada@example.com", name="Ada")
    async with AsyncTestClient(app=app, base_url=BASE_URL) as customer:
        await sign_in(customer, "ada@example.com")
        assert 'href="/admin"' not in (await customer.get("/")).text
    await sign_in(client, "boss@example.com")
    home = (await client.get("/")).text
    assert '<a href="/admin">Admin</a>' in home
    dashboard = await client.get("/admin")
    assert dashboard.status_code == 200
    for path in ("/admin/products", "/admin/categories", "/admin/stock", "/admin/orders", "/admin/users"):
        assert f'href="{path}"' in dashboard.text


async def test_sign_in_redirects_back_to_the_admin_page(client, admin_id):
    response = await client.get("/admin/orders?status=paid", follow_redirects=False)
    assert response.headers["location"] == "/account/sign-in?next=/admin/orders%3Fstatus%3Dpaid"
    back = await submit(
        client,
        "/account/sign-in",
        {"email": "boss@example.com", "password": PASSWORD, "next": "/admin/orders?status=paid"},
    )
    assert back.headers["location"] == "/admin/orders?status=paid"


# --- orders -----------------------------------------------------------------------------------


async def test_order_list_filters_by_status_dates_and_customer(admin, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada Lovelace")
    bob = await make_user(alchemy, "bob@example.org", name="Bob Builder")
    day = datetime(2026, 3, 10, 12, tzinfo=UTC)
    await make_order(alchemy, ada, "W-ADA-1", {"EP-1": 1}, created_at=day)
    await make_order(alchemy, ada, "W-ADA-2", {"EP-1": 1}, status=OrderStatus.SHIPPED, created_at=day + timedelta(1))
    await make_order(alchemy, bob, "W-BOB-1", {"EP-1": 1}, status=OrderStatus.PENDING, created_at=day + timedelta(2))

    async def numbers(query: str, headers: dict[str, str] | None = None) -> list[str]:
        response = await admin.get(f"/admin/orders{query}", headers=headers or {})
        assert response.status_code == 200
        return re.findall(r'data-order="([^"]+)"', response.text)

    assert await numbers("") == ["W-BOB-1", "W-ADA-2", "W-ADA-1"]  # newest first
    assert await numbers("?status=shipped") == ["W-ADA-2"]
    assert await numbers("?customer=BOB@EXAMPLE") == ["W-BOB-1"]
    assert await numbers("?customer=lovelace") == ["W-ADA-2", "W-ADA-1"]
    assert await numbers("?customer=%25") == []  # a LIKE wildcard is taken literally
    assert await numbers("?date_from=2026-03-11&date_to=2026-03-11") == ["W-ADA-2"]  # the "to" day is included
    assert await numbers("?date_from=2026-03-11") == ["W-BOB-1", "W-ADA-2"]
    assert await numbers("?date_to=2026-03-10&customer=ada") == ["W-ADA-1"]
    dashboard = await admin.get("/admin")
    assert re.search(r'id="orders-to-ship">1<', dashboard.text)
    bad = await admin.get("/admin/orders?date_from=yesterday")
    assert bad.status_code == 200 and "Enter a date as YYYY-MM-DD." in bad.text
    # htmx filtering gets the results fragment only, and the response varies on HX-Request.
    fragment = await admin.get(
        "/admin/orders?status=pending", headers={"HX-Request": "true", "HX-Target": "order-results"}
    )
    assert fragment.text.lstrip().startswith('<section id="order-results"')
    assert "<html" not in fragment.text and "HX-Request" in fragment.headers["vary"]
    assert re.findall(r'data-order="([^"]+)"', fragment.text) == ["W-BOB-1"]


async def test_the_lists_find_names_in_any_case_of_any_letter(admin, alchemy, skus):
    """QA: on SQLite, ``lower()`` and ``LIKE`` fold ASCII only: "ÉLODIE" found no "Élodie" (webshop.db.folding)."""
    elodie = await make_user(alchemy, "elodie@example.com", name="Élodie Ångström")
    await make_order(alchemy, elodie, "W-ELO-1", {"EP-1": 1})
    for typed in ("ÉLODIE", "élodie", "ÅNGSTRÖM"):
        assert "Élodie Ångström" in text_of((await admin.get(f"/admin/users?q={typed}")).text), typed
        assert "W-ELO-1" in (await admin.get(f"/admin/orders?customer={typed}")).text, typed
    assert "W-ELO-1" not in (await admin.get("/admin/orders?customer=zoë")).text


async def test_order_list_pages(admin, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(27):
        await make_order(alchemy, ada, f"W-{n:03d}", {"EP-1": 1}, created_at=start + timedelta(hours=n))
    first = await admin.get("/admin/orders?customer=ada")
    assert "27 orders" in first.text and "Page 1 of 2" in first.text
    assert len(re.findall(r"data-order=", first.text)) == 25
    assert 'href="/admin/orders?customer=ada&amp;page=2"' in first.text  # the filter is kept
    second = await admin.get("/admin/orders?customer=ada&page=2")
    assert re.findall(r'data-order="([^"]+)"', second.text) == ["W-001", "W-000"]
    backwards = text_of((await admin.get("/admin/orders?date_from=2026-01-02&date_to=2026-01-01")).text)
    assert "The last day comes before the first: no order can match." in backwards  # QA: said nothing


async def test_order_detail_shows_lines_address_totals_and_customer(admin, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada Lovelace")
    order_id = await make_order(alchemy, ada, "W-1", {"AL-13": 2, "EP-1": 3})
    page = await admin.get(f"/admin/orders/{order_id}")
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Order W-1" in text and "Status: Paid" in text
    assert "Alpha Laptop" in text and "AL-13" in text and "$1,299.00" in text and "$2,598.00" in text
    assert "Epsilon Plant" in text and "$59.97" in text
    assert "12 Analytical Way" in text and "London N1 9GU" in text
    assert re.search(r'id="order-total"><strong>\$2,662\.97<', page.text)
    assert "Ada Lovelace ada@example.com" in text
    assert f'href="/admin/users/{ada}"' in page.text
    # Only the moves the state machine allows are offered.
    assert sorted(re.findall(r'data-status="(\w+)"', page.text)) == ["cancelled", "refunded", "shipped"]
    assert (await admin.get("/admin/orders/999999")).status_code == 404


async def test_status_changes_follow_the_state_machine_and_are_audited(admin, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    order_id = await make_order(alchemy, ada, "W-1", {"DC-1": 2}, status=OrderStatus.PENDING)
    detail = f"/admin/orders/{order_id}"
    for status in ("paid", "shipped", "delivered"):
        response = await submit(admin, f"{detail}/status", {"status": status}, token_from=detail)
        assert response.status_code == 303 and response.headers["location"] == detail
        page = await admin.get(detail)
        assert f">{status.capitalize()}</strong>" in page.text
        assert f"Order W-1 is now {status}." in page.text  # the flash message
    assert await stock(alchemy, "DC-1") == 10  # shipping moves no stock
    history = text_of((await admin.get(detail)).text)
    assert "Order W-1: pending → paid" in history
    assert "Order W-1: paid → shipped" in history and "Order W-1: shipped → delivered" in history
    assert "boss@example.com" in history
    events = await audit(alchemy, "order", order_id)
    assert [e.changes["status"] for e in events] == [["pending", "paid"], ["paid", "shipped"], ["shipped", "delivered"]]
    assert {e.actor_email for e in events} == {"boss@example.com"}
    # A delivered order can only be refunded, which returns no stock (the goods left the warehouse).
    response = await submit(admin, f"{detail}/status", {"status": "refunded"}, token_from=detail)
    assert response.status_code == 303
    assert await stock(alchemy, "DC-1") == 10
    assert await ledger_ok(alchemy)


async def test_invalid_transition_is_a_clear_message_not_a_500(admin, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    order_id = await make_order(alchemy, ada, "W-1", {"DC-1": 1}, status=OrderStatus.SHIPPED)
    detail = f"/admin/orders/{order_id}"
    response = await submit(admin, f"{detail}/status", {"status": "paid"}, token_from=detail)
    assert response.status_code == 409
    assert "Order W-1 is shipped; it cannot become paid." in unescape(response.text)
    assert 'role="alert"' in response.text and "<h1>Order W-1</h1>" in response.text
    cancel = await submit(admin, f"{detail}/status", {"status": "cancelled"}, token_from=detail)
    assert cancel.status_code == 409 and "it cannot become cancelled" in cancel.text
    nonsense = await submit(admin, f"{detail}/status", {"status": "teleported"}, token_from=detail)
    assert nonsense.status_code == 409 and "is not an order status" in nonsense.text
    assert await stock(alchemy, "DC-1") == 11
    assert await audit(alchemy, "order", order_id) == []
    missing = await submit(admin, "/admin/orders/999999/status", {"status": "paid"}, token_from=detail)
    assert missing.status_code == 404


async def test_cancel_before_shipping_restores_stock_exactly_once(admin, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    order_id = await make_order(alchemy, ada, "W-1", {"DC-1": 4, "ZS-42": 2})
    assert (await stock(alchemy, "DC-1"), await stock(alchemy, "ZS-42")) == (8, 5)
    detail = f"/admin/orders/{order_id}"
    token = await token_of(admin, detail)
    # Two admins press "Cancel" at the same moment: one wins, the other is told.
    responses = await asyncio.gather(
        *(
            admin.post(f"{detail}/status", data={"status": "cancelled", "_csrf_token": token}, follow_redirects=False)
            for _ in range(2)
        )
    )
    assert sorted(r.status_code for r in responses) == [303, 409]
    assert (await stock(alchemy, "DC-1"), await stock(alchemy, "ZS-42")) == (12, 7)
    again = await submit(admin, f"{detail}/status", {"status": "cancelled"}, token_from=detail)
    assert again.status_code == 409
    assert (await stock(alchemy, "DC-1"), await stock(alchemy, "ZS-42")) == (12, 7)
    page = text_of((await admin.get(detail)).text)
    assert "Status: Cancelled" in page and "paid → cancelled (stock returned)" in page
    assert len(await audit(alchemy, "order", order_id)) == 1
    assert await ledger_ok(alchemy)


async def test_refund_of_a_paid_order_returns_its_stock(admin, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    order_id = await make_order(alchemy, ada, "W-1", {"EP-1": 5})
    detail = f"/admin/orders/{order_id}"
    assert (await submit(admin, f"{detail}/status", {"status": "refunded"}, token_from=detail)).status_code == 303
    assert await stock(alchemy, "EP-1") == 40
    page = await admin.get(detail)
    assert ">Refunded</strong>" in page.text and "its status can no longer change" in page.text
    assert await ledger_ok(alchemy)


async def test_api_patch_and_shopper_cancel_are_audited_too(admin, client, app, alchemy, skus):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    first = await make_order(alchemy, ada, "W-1", {"EP-1": 1})
    second = await make_order(alchemy, ada, "W-2", {"EP-1": 1})
    tokens = (await client.post("/api/auth/token", data={"username": "boss@example.com", "password": PASSWORD})).json()
    patched = await client.patch(
        f"/api/orders/{first}",
        json={"status": "shipped"},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert patched.status_code == 200 and patched.json()["status"] == "shipped"
    async with AsyncTestClient(app=app, base_url=BASE_URL) as shopper:
        await sign_in(shopper, "ada@example.com")
        response = await submit(shopper, "/orders/W-2/cancel", token_from="/orders/W-2")
        assert response.status_code == 303
    assert [(e.actor_email, e.changes) for e in await audit(alchemy, "order", first)] == [
        ("boss@example.com", {"status": ["paid", "shipped"]})
    ]
    assert [(e.actor_email, e.changes) for e in await audit(alchemy, "order", second)] == [
        ("ada@example.com", {"status": ["paid", "cancelled"]})
    ]
    assert "ada@example.com" in text_of((await admin.get(f"/admin/orders/{second}")).text)


# --- users ------------------------------------------------------------------------------------


async def test_user_list_and_search(admin, alchemy):
    await make_user(alchemy, "ada@example.com", name="Ada Lovelace")
    await make_user(alchemy, "grace@navy.mil", name="Grace Hopper")
    deactivated = await make_user(alchemy, "eve@example.com", name="Eve")
    async with write_session(alchemy) as session:
        await session.execute(update(User).where(User.id == deactivated).values(is_active=False))
        await session.commit()

    async def emails(query: str) -> list[str]:
        response = await admin.get(f"/admin/users{query}")
        assert response.status_code == 200
        return sorted(re.findall(r'data-email="([^"]+)"', response.text))

    assert await emails("") == ["ada@example.com", "boss@example.com", "eve@example.com", "grace@navy.mil"]
    assert await emails("?q=HOPPER") == ["grace@navy.mil"]
    assert await emails("?q=example.com") == ["ada@example.com", "boss@example.com", "eve@example.com"]
    assert await emails("?role=admin") == ["boss@example.com"]
    assert await emails("?access=deactivated") == ["eve@example.com"]
    assert await emails("?access=active&q=example") == ["ada@example.com", "boss@example.com"]
    fragment = await admin.get("/admin/users?q=ada", headers={"HX-Request": "true", "HX-Target": "user-results"})
    assert fragment.text.lstrip().startswith('<section id="user-results"') and "<html" not in fragment.text


async def test_promote_and_demote_change_admin_access_and_are_audited(admin, app, alchemy):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    page = f"/admin/users/{ada}"
    async with AsyncTestClient(app=app, base_url=BASE_URL) as browser:
        await sign_in(browser, "ada@example.com")
        assert (await browser.get("/admin")).status_code == 403
        response = await submit(admin, f"{page}/promote", token_from=page)
        assert response.status_code == 303 and response.headers["location"] == page
        assert (await browser.get("/admin")).status_code == 200  # the same session, at once
        assert "ada@example.com is now an admin." in (await admin.get(page)).text
        response = await submit(admin, f"{page}/demote", token_from=page)
        assert response.status_code == 303
        assert (await browser.get("/admin")).status_code == 403
    trail = text_of((await admin.get(page)).text)
    assert "ada@example.com promoted to admin" in trail and "ada@example.com changed to customer" in trail
    assert "role : customer → admin" in trail and "role : admin → customer" in trail
    events = await audit(alchemy, "user", ada)
    assert [(e.action, e.actor_email, e.changes) for e in events] == [
        ("role", "boss@example.com", {"role": ["customer", "admin"]}),
        ("role", "boss@example.com", {"role": ["admin", "customer"]}),
    ]


async def test_deactivated_user_is_signed_out_everywhere_and_cannot_sign_in(admin, app, alchemy):
    ada = await make_user(alchemy, "ada@example.com", name="Ada")
    page = f"/admin/users/{ada}"
    async with AsyncTestClient(app=app, base_url=BASE_URL) as browser:
        assert (await sign_in(browser, "ada@example.com")).status_code == 303
        assert (await browser.get("/account", follow_redirects=False)).status_code == 200
        tokens = (
            await browser.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
        ).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await browser.get("/api/users/me", headers=bearer)).status_code == 200

        response = await submit(admin, f"{page}/deactivate", token_from=page)
        assert response.status_code == 303
        assert "ada@example.com is deactivated and signed out everywhere." in (await admin.get(page)).text

        # The browser's cookie and the API tokens stop working at once.
        gone = await browser.get("/account", follow_redirects=False)
        assert gone.status_code == 303 and gone.headers["location"].startswith("/account/sign-in")
        assert (await browser.get("/api/users/me", headers=bearer)).status_code == 401
        refresh = await browser.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refresh.status_code == 401
        # Signing in again is refused, with the usual message.
        refused = await sign_in(browser, "ada@example.com")
        assert refused.status_code == 400 and "The e-mail address or password is incorrect." in refused.text
        api = await browser.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
        assert api.status_code == 401
        async with alchemy.get_session() as session:
            assert await session.scalar(select(func.count()).where(AuthSession.user_id == ada)) == 0
            assert (
                await session.scalar(
                    select(func.count()).where(TokenFamily.user_id == ada, TokenFamily.revoked_at.is_(None))
                )
                == 0
            )

        response = await submit(admin, f"{page}/reactivate", token_from=page)
        assert response.status_code == 303
        assert (await sign_in(browser, "ada@example.com")).status_code == 303
        assert (await browser.get("/account", follow_redirects=False)).status_code == 200
    events = await audit(alchemy, "user", ada)
    assert [(e.action, e.changes) for e in events] == [
        ("deactivate", {"is_active": [True, False]}),
        ("reactivate", {"is_active": [False, True]}),
    ]
    trail = text_of((await admin.get(page)).text)
    assert "ada@example.com deactivated (signed out everywhere)" in trail and "ada@example.com reactivated" in trail


async def test_last_active_admin_cannot_demote_or_deactivate_themselves(admin, app, alchemy, admin_id):
    page = f"/admin/users/{admin_id}"
    for action in ("demote", "deactivate"):
        response = await submit(admin, f"{page}/{action}", token_from=page)
        assert response.status_code == 409
        assert "The shop needs at least one active administrator" in response.text
        assert 'role="alert"' in response.text
    assert (await admin.get("/admin")).status_code == 200
    assert await audit(alchemy, "user", admin_id) == []
    # A deactivated admin does not count: still the last active one.
    other = await make_user(alchemy, "old-boss@example.com", UserRole.ADMIN, name="Old boss")
    async with write_session(alchemy) as session:
        await session.execute(update(User).where(User.id == other).values(is_active=False))
        await session.commit()
    assert (await submit(admin, f"{page}/demote", token_from=page)).status_code == 409
    # With another active admin, demoting yourself is allowed (and ends your admin access).
    await submit(admin, f"/admin/users/{other}/reactivate", token_from=page)
    response = await submit(admin, f"{page}/demote", token_from=page)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert (await admin.get("/admin")).status_code == 403
    async with AsyncTestClient(app=app, base_url=BASE_URL) as old_boss:
        await sign_in(old_boss, "old-boss@example.com")
        other_page = f"/admin/users/{other}"
        response = await submit(old_boss, f"{other_page}/deactivate", token_from=other_page)
        assert response.status_code == 409 and "at least one active administrator" in response.text


async def test_two_admins_demoting_each_other_at_once_leave_one_admin(admin, app, alchemy, admin_id):
    other = await make_user(alchemy, "second@example.com", UserRole.ADMIN, name="Second")
    async with AsyncTestClient(app=app, base_url=BASE_URL) as second:
        await sign_in(second, "second@example.com")
        token_a = await token_of(admin, "/admin/users")
        token_b = await token_of(second, "/admin/users")
        responses = await asyncio.gather(
            admin.post(f"/admin/users/{other}/demote", data={"_csrf_token": token_a}, follow_redirects=False),
            second.post(f"/admin/users/{admin_id}/demote", data={"_csrf_token": token_b}, follow_redirects=False),
        )
    # One wins; the other is refused: by the last-admin rule (409), or, when the winner committed before
    # the loser's request started, by the admin guard (403: the loser is no longer an admin).
    codes = sorted(r.status_code for r in responses)
    assert codes in ([303, 403], [303, 409]), codes
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).where(User.role == "admin", User.is_active.is_(True))) == 1


# --- stock ------------------------------------------------------------------------------------


def classify(stock_level: int, threshold: int) -> str:
    """The dashboard's rule, written out independently of the SQL."""
    if stock_level == 0:
        return "out"
    if 2 * stock_level <= threshold:
        return "critical"
    if stock_level <= threshold:
        return "low"
    if stock_level <= 2 * threshold:
        return "medium"
    return "healthy"


async def test_stock_dashboard_counts_match_the_database(admin, alchemy, skus):
    # Thresholds at the edges of each group (default threshold 5: 1-2 critical, 3-5 low).
    async with write_session(alchemy) as session:
        for sku, level, threshold in (
            ("AL-13", 3, 5),
            ("BC-1", 2, 5),
            ("DC-1", 6, 5),
            ("ZS-40", 1, 1),
            ("ZS-42", 4, 8),
        ):
            await session.execute(
                update(Variant).where(Variant.sku == sku).values(stock=level, low_stock_threshold=threshold)
            )
        # A deleted product is left out, whatever its stock.
        gamma = await session.scalar(select(Variant.product_id).where(Variant.sku == "GC-1"))
        await session.execute(update(Product).where(Product.id == gamma).values(deleted_at=datetime.now(UTC)))
        await session.commit()
    async with alchemy.get_session() as session:
        rows = (
            await session.execute(
                select(Variant.sku, Variant.stock, Variant.low_stock_threshold)
                .join(Product)
                .where(Product.deleted_at.is_(None))
            )
        ).all()
    expected = {level: 0 for level in ("out", "critical", "low", "medium", "healthy")}
    for _, level, threshold in rows:
        expected[classify(level, threshold)] += 1
    assert expected == {"out": 1, "critical": 2, "low": 2, "medium": 1, "healthy": 1}

    page = await admin.get("/admin/stock")
    assert page.status_code == 200
    shown = dict(re.findall(r'<li data-level="(\w+)">.*?data-count="(\d+)"', page.text, flags=re.S))
    assert {k: int(v) for k, v in shown.items()} == expected

    def listed(html: str, level: str) -> list[str]:
        table = re.search(rf'<table[^>]*data-level="{level}">(.*?)</table>', html, flags=re.S)
        return sorted(re.findall(r'data-sku="([^"]+)"', table.group(1))) if table else []

    # The page lists the groups that need attention; healthy variants on request (an htmx fragment).
    assert listed(page.text, "out") == ["AL-15"]
    assert listed(page.text, "critical") == ["BC-1", "ZS-42"]
    assert listed(page.text, "low") == ["AL-13", "ZS-40"]
    assert listed(page.text, "healthy") == []
    assert "GC-1" not in page.text
    async with alchemy.get_session() as session:
        alpha = await session.scalar(select(Variant.product_id).where(Variant.sku == "AL-15"))
    assert f'href="/admin/products/{alpha}"' in page.text
    healthy = await admin.get("/admin/stock?level=healthy", headers={"HX-Request": "true", "HX-Target": "stock-health"})
    assert healthy.text.lstrip().startswith('<section id="stock-health"') and "<html" not in healthy.text
    assert listed(healthy.text, "healthy") == ["EP-1"]
    medium = await admin.get("/admin/stock?level=medium", headers={"HX-Request": "true", "HX-Target": "stock-health"})
    assert listed(medium.text, "medium") == ["DC-1"]


async def test_stock_adjustment_goes_through_the_ledger_and_the_audit_trail(admin, alchemy, skus):
    response = await submit(
        admin,
        "/admin/stock/adjust",
        {"sku": " DC-1 ", "delta": "-10", "reason": "damaged", "note": "Water damage in aisle 3"},
        token_from="/admin/stock",
    )
    assert response.status_code == 303 and response.headers["location"] == "/admin/stock"
    assert await stock(alchemy, "DC-1") == 2
    page = await admin.get("/admin/stock")
    assert "Stock of DC-1 is now 2." in page.text
    assert re.search(r'<table[^>]*data-level="critical">.*data-sku="DC-1"', page.text, flags=re.S)
    async with alchemy.get_session() as session:
        movement = await session.scalar(select(StockMovement).order_by(StockMovement.id.desc()).limit(1))
    assert (movement.delta, movement.reason, movement.reference) == (
        -10,
        "adjustment",
        "damaged: Water damage in aisle 3",
    )
    [event] = await audit(alchemy, "stock", skus["DC-1"])
    assert (event.actor_email, event.changes) == ("boss@example.com", {"stock": [12, 2]})
    assert event.summary == "DC-1: -10 (Damaged: Water damage in aisle 3)"
    response = await submit(
        admin, "/admin/stock/adjust", {"sku": "DC-1", "delta": "+8", "reason": "received", "note": "PO 42"}
    )
    assert response.status_code == 303 and await stock(alchemy, "DC-1") == 10
    # A SKU typed in another case is the variant it names, as the product search finds it (browser QA).
    response = await submit(
        admin, "/admin/stock/adjust", {"sku": " dc-1 ", "delta": "+1", "reason": "received", "note": "PO 43"}
    )
    assert response.status_code == 303 and await stock(alchemy, "DC-1") == 11
    assert await ledger_ok(alchemy)


async def test_stock_adjustment_errors_are_shown_on_the_form_and_change_nothing(admin, alchemy, skus):
    response = await submit(
        admin, "/admin/stock/adjust", {"sku": "NOPE-1", "delta": "lots", "reason": "whim", "note": "  "}
    )
    assert response.status_code == 422
    text = text_of(response.text)
    for message in (
        "There is no variant with SKU NOPE-1.",
        "Enter a whole number of units, such as 5 or -3.",
        "Choose a reason.",
        "Say why the stock changes.",
    ):
        assert message in text
    assert 'value="NOPE-1"' in response.text and 'value="lots"' in response.text  # what was typed is kept
    for odd in ("２", "1_0", "²", "+-1"):  # full-width digits, Python's digit groups, a superscript: not numbers here
        refused = await submit(
            admin, "/admin/stock/adjust", {"sku": "DC-1", "delta": odd, "reason": "count", "note": "x"}
        )
        assert refused.status_code == 422 and "Enter a whole number of units, such as 5 or -3." in text_of(refused.text)
    huge = await submit(
        admin, "/admin/stock/adjust", {"sku": "DC-1", "delta": "9" * 23, "reason": "count", "note": "x"}
    )  # a whole number, too large: said so (QA: "not a whole number")
    assert huge.status_code == 422 and "Enter a change of at most 2147483647 units." in text_of(huge.text)
    zero = await submit(admin, "/admin/stock/adjust", {"sku": "DC-1", "delta": "0", "reason": "count", "note": "x"})
    assert zero.status_code == 422 and "Enter a change other than 0." in zero.text
    below = await submit(admin, "/admin/stock/adjust", {"sku": "DC-1", "delta": "-13", "reason": "lost", "note": "x"})
    assert below.status_code == 409  # the stock on hand refuses it, not the input
    assert "Stock cannot go below zero: 12 on hand, change of -13." in text_of(below.text)
    assert await stock(alchemy, "DC-1") == 12
    assert await audit(alchemy, "stock", skus["DC-1"]) == []
    assert await ledger_ok(alchemy)
