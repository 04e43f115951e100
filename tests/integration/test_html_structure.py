"""The markup of every page a shopper or an admin opens, checked with Python's HTML parser (issue 12).

No ``<form>`` starts inside another one: a browser drops the inner form, so its button submits the outer
form instead (the catalog's first "Add to cart" once submitted the filter form). The catalog's filter
form sends only the filters; every button is named by the words it shows; the search landmarks of a
page have different names; admin tables scroll inside their own box.
"""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from tests.conftest import BASE_URL
from tests.factories import make_order, make_user
from tests.page_tree import Element, form_fields, nested_forms, parse
from tests.shopper import add_to_cart, choose_address_and_shipping, place, register, review, sign_in
from webshop.db.models import Category, Product, ShippingZone, Shop, UserRole

SHOPPER_EMAIL = "ada@example.com"
ADMIN_EMAIL = "owner@example.com"
CATALOG_PAGES = ["/", "/?category=electronics", "/?q=camera", "/?brand=Nikon&sort=price", "/?page=2"]
SIGNED_OUT_PAGES = ["/account/sign-in", "/account/register", "/account/forgot-password", "/cart"]


@pytest.fixture
async def ids(alchemy, skus) -> dict[str, int]:
    """An admin called "Admin" (as `webshop create-admin --name Admin` names one), and another's order."""
    await make_user(alchemy, ADMIN_EMAIL, UserRole.ADMIN, name="Admin")
    customer = await make_user(alchemy, "grace@example.com", name="Grace")
    order_id = await make_order(alchemy, customer, "WS-GRACE001", {"ZS-40": 1, "DC-1": 2})
    async with alchemy.get_session() as session:
        return {
            "order": order_id,
            "customer": customer,
            "product": await session.scalar(select(Product.id).where(Product.slug == "zeta-shoe")),
            "category": await session.scalar(select(Category.id).where(Category.slug == "electronics")),
            "shop": await session.scalar(select(Shop.id).where(Shop.is_default.is_(True))),
            "zone": await session.scalar(select(ShippingZone.id).order_by(ShippingZone.id).limit(1)),
        }


async def shopper_pages(client: AsyncTestClient, skus: dict[str, int]) -> dict[str, str]:
    """Every page of a shopper's visit, signed in with an item in the cart, through checkout to the order."""
    pages: dict[str, str] = {}

    async def visit(path: str, **headers: str) -> None:
        response = await client.get(path, headers=headers)
        expected = 404 if path == "/?page=2" else 200  # the small catalog has one page: "There is no page 2"
        assert response.status_code == expected, f"{path}: {response.status_code}"
        pages[path + (" (htmx)" if headers else "")] = response.text

    await register(client, SHOPPER_EMAIL, "Ada")
    assert (await add_to_cart(client, skus["ZS-40"])).status_code == 303
    for path in [*CATALOG_PAGES, "/products/alpha-laptop", "/products/zeta-shoe", "/cart", "/shops", "/shops/webshop"]:
        await visit(path)
    await visit("/?q=camera", **{"HX-Request": "true", "HX-Target": "catalog-results"})
    await visit("/checkout/address")
    await choose_address_and_shipping(client)
    for path in ("/checkout/shipping", "/checkout/review", "/account", "/account/email", "/account/addresses"):
        await visit(path)
    saved = re.search(r'href="(/account/addresses/\d+)"', pages["/account/addresses"])  # the checkout's address
    assert saved, "the address given at checkout is in the address book"
    await visit(saved.group(1))
    placed = await place(client, await review(client))
    assert placed.status_code == 303, placed.text[:300]
    await visit(placed.headers["location"])  # the confirmation
    number = placed.headers["location"].split("/orders/")[1].split("?")[0]
    for path in ("/orders", f"/orders/{number}"):
        await visit(path)
    return pages


async def admin_pages(client: AsyncTestClient, ids: dict[str, int]) -> dict[str, str]:
    """Every admin page the admin navigation leads to, and one of each kind of detail page."""
    assert (await sign_in(client, ADMIN_EMAIL)).status_code == 303
    paths = [
        "/admin",
        "/admin/products",
        "/admin/products/new",
        f"/admin/products/{ids['product']}",
        "/admin/categories",
        f"/admin/categories/{ids['category']}",
        "/admin/stock",
        "/admin/orders",
        f"/admin/orders/{ids['order']}",
        "/admin/users",
        f"/admin/users/{ids['customer']}",
        "/admin/shops",
        "/admin/shops/new",
        f"/admin/shops/{ids['shop']}",
        "/admin/catalog-csv",
        "/admin/promotions",
        "/admin/promotions/new",
        "/admin/shipping-zones",
        f"/admin/shipping-zones/{ids['zone']}",
        "/admin/tax-rates",
        "/admin/invoices",
        "/admin/webhooks",
    ]
    pages = {}
    for path in paths:
        response = await client.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
        pages[path] = response.text
    return pages


async def test_no_form_is_nested_in_another_on_any_page(client, app, skus, ids):
    pages = await shopper_pages(client, skus)
    pages.update(await admin_pages(client, ids))
    async with AsyncTestClient(app=app, base_url=BASE_URL) as guest:
        for path in SIGNED_OUT_PAGES:
            pages[f"{path} (signed out)"] = (await guest.get(path)).text
    assert len(pages) == 47
    nested = {path: found for path, html in pages.items() if (found := nested_forms(html))}
    assert nested == {}, f"a <form> inside a <form> (the browser drops the inner one): {nested}"


async def test_ids_are_unique_and_every_label_names_a_field_on_every_page(client, app, skus, ids):
    """Two elements with one id leave a label (and ``aria-describedby``) naming the first only: the
    shipping zone page once gave its zone name field and its new method's name field the same id, so
    "Zone name" labelled the method's field."""
    pages = await shopper_pages(client, skus)
    pages.update(await admin_pages(client, ids))
    problems = {}
    for path, html in pages.items():
        document = parse(html)
        seen: dict[str, int] = {}
        for element in document.iter():
            if element_id := element.attrs.get("id"):
                seen[element_id] = seen.get(element_id, 0) + 1
        repeated = sorted(i for i, n in seen.items() if n > 1)
        unlabelled = sorted(
            f for label in document.find_all("label") if (f := label.attrs.get("for")) and f not in seen
        )
        if repeated or unlabelled:
            problems[path] = {"repeated ids": repeated, "labels for no element": unlabelled}
    assert problems == {}


def _card_add_forms(document: Element) -> list[Element]:
    return document.find_all("form", class_="card-add")


async def test_the_filter_form_sends_only_filters_and_every_card_has_its_own_form(client, skus):
    response = await client.get("/?category=electronics&brand=Nikon")
    document = parse(response.text)
    names = {field.attrs.get("name") for field in form_fields(document, "catalog-form")} - {None}
    assert {"category", "q", "brand", "color", "sort"} <= names
    assert not names & {"_csrf_token", "variant_id", "quantity"}, names
    # Each in-stock single-variant card posts its own variant to the cart, outside the filter form.
    cards = document.find("ul", class_="product-grid").find_all("li", class_="product-card")
    assert [card.find("span", class_="card-name").text() for card in cards] == ["Beta Camera"]
    form = cards[0].find("form", class_="card-add")
    assert form.attrs["action"] == "/cart/items"
    assert {f.attrs["name"]: f.attrs.get("value") for f in form.find_all("input")} == {
        "_csrf_token": form.find("input", name="_csrf_token").attrs["value"],
        "variant_id": str(skus["BC-1"]),
        "quantity": "1",
    }
    assert not any(a.tag == "form" for a in form.ancestors())


async def test_htmx_results_bring_their_facets_out_of_band(client, skus):
    fragment = await client.get("/?q=camera", headers={"HX-Request": "true", "HX-Target": "catalog-results"})
    document = parse(fragment.text)
    assert "<html" not in fragment.text
    filters = document.find("div", id="catalog-filters")
    assert filters.attrs["hx-swap-oob"] == "true"
    brands = [field.attrs["value"] for field in filters.find_all("input", name="brand")]
    assert brands == ["Canon", "Nikon"]  # the facets follow the search
    assert all(field.attrs["form"] == "catalog-form" for field in filters.find_all("input"))
    # The category links follow the search too: each keeps the text typed in place.
    categories = document.find("nav", id="category-nav")
    assert categories.attrs["hx-swap-oob"] == "true"
    links = [a.attrs["href"] for a in categories.find_all("a")]
    assert links[0] == "/?q=camera" and "/?q=camera&category=electronics" in links, links
    # The full page has them once, in place, not out of band.
    page = parse((await client.get("/?q=camera")).text)
    for block in ("catalog-filters", "category-nav"):
        assert len(page.find_all(id=block)) == 1
        assert "hx-swap-oob" not in page.find(id=block).attrs


async def test_filters_and_categories_sit_behind_one_filters_control(client, skus):
    document = parse((await client.get("/?category=photo")).text)
    details = document.find("details", class_="catalog-sidebar")
    assert details.find("summary").text() == "Filters"
    assert details.find("nav").attrs["aria-label"] == "Categories"
    assert details.find(id="catalog-filters").find_all("input", name="brand")
    # The results (with the cards' forms) are not inside it.
    assert not any(e.tag == "details" for e in document.find(id="catalog-results").ancestors())


async def test_card_buttons_are_named_by_the_words_they_show(client, skus):
    document = parse((await client.get("/")).text)
    cards = {
        card.find("span", class_="card-name").text(): card for card in document.find_all("li", class_="product-card")
    }
    button = cards["Delta Chair"].find("button")
    assert "aria-label" not in button.attrs
    assert button.text() == "Add to cart – Delta Chair"  # "Add to cart" shown, the name for screen readers
    assert button.find("span", class_="visually-hidden").text() == "– Delta Chair"
    options = cards["Alpha Laptop"].find("a", class_="button")
    assert "aria-label" not in options.attrs
    assert options.text() == "Choose options for Alpha Laptop"
    # Any other label contains the words the control shows (compared as axe's label-content-name-mismatch
    # does: case and punctuation aside).
    for element in document.iter():
        label = element.attrs.get("aria-label")
        if element.tag in {"button", "a"} and label:
            assert _words(element.text()) in _words(label), (label, element.text())


def _words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text).lower().split())


def _search_landmarks(html: str) -> list[str | None]:
    document = parse(html)
    return [e.attrs.get("aria-label") for e in document.iter() if e.attrs.get("role") == "search" or e.tag == "search"]


async def test_search_landmarks_have_different_names(client, skus, ids):
    assert _search_landmarks((await client.get("/")).text) == ["Shop", "Products"]
    assert (await sign_in(client, ADMIN_EMAIL)).status_code == 303
    for path, name in (
        ("/admin/products", "Filter products"),
        ("/admin/orders", "Filter orders"),
        ("/admin/users", "Filter users"),
        ("/admin/shops", "Filter shops"),
    ):
        assert _search_landmarks((await client.get(path)).text) == ["Shop", name], path


async def test_admin_pages_show_admin_once_in_the_top_bar(client, skus, ids):
    assert (await sign_in(client, ADMIN_EMAIL)).status_code == 303
    for path in ("/admin", "/admin/products", "/admin/orders"):
        header = parse((await client.get(path)).text).find("header", class_="site-header")
        assert re.findall(r"\bAdmin\b", header.text()) == ["Admin"], (path, header.text())  # the account's name
        assert not header.find_all("a", href="/admin")
    # In the shop the header links to the admin pages.
    header = parse((await client.get("/")).text).find("header", class_="site-header")
    assert header.find("a", href="/admin").text() == "Admin"


async def test_admin_tables_scroll_inside_their_own_box(client, skus, ids):
    pages = await admin_pages(client, ids)
    tables = 0
    for path, html in pages.items():
        for table in parse(html).find_all("table"):
            tables += 1
            assert any(a.has("class_", "table-scroll") for a in table.ancestors()), f"{path}: line {table.line}"
    assert tables >= 8


def _labelled_cells(row: Element) -> list[tuple[str | None, str]]:
    """``(data-label, text)`` of a row's cells: a phone shows each label before its number (site.css)."""
    return [(cell.attrs.get("data-label"), cell.text()) for cell in row.find_all("td")]


async def test_checkout_and_order_lines_label_each_number(client, skus):
    await register(client, SHOPPER_EMAIL, "Ada")
    await add_to_cart(client, skus["ZS-40"], 2)
    cart = _labelled_cells(parse((await client.get("/cart")).text).find("tr", data_sku="ZS-40"))
    assert (cart[1], cart[2][0], cart[3]) == (("Price", "$99.99"), "Quantity", ("Total", "$199.98"))
    await choose_address_and_shipping(client)
    form = await review(client)
    row = parse((await client.get("/checkout/review")).text).find("tr", data_sku="ZS-40")
    assert _labelled_cells(row)[1:] == [("Price", "$99.99"), ("Qty", "2"), ("Total", "$199.98")]
    placed = await place(client, form)
    for path in (placed.headers["location"], placed.headers["location"].split("?")[0]):
        row = parse((await client.get(path)).text).find("tr", data_sku="ZS-40")
        assert _labelled_cells(row)[1:] == [("Price", "$99.99"), ("Qty", "2"), ("Total", "$199.98")]
    history = _labelled_cells(parse((await client.get("/orders")).text).find("tbody").find("tr"))
    assert [label for label, _ in history][2:] == ["Placed", "Status", "Total"]
    assert history[3] == ("Status", "Paid")
