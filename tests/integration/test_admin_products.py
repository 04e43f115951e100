"""Admin product management over HTTP on both engines (issue 5): guards, the product table with inline
price/stock edits, the product form, photos, soft delete and the audit trail.

Data is set up through the ORM (the factories) and, for an order, the way checkout writes one; every
check goes through the pages, the shop and the API a user would use, plus direct reads of the database
for what must not have been written (rows, files, the stock ledger).
"""

from __future__ import annotations

import io
import re
from html import unescape
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from PIL import Image
from sqlalchemy import func, select

from tests.conftest import BASE_URL
from tests.factories import ledger_ok, make_order, make_user
from tests.shopper import csrf as token_of
from tests.shopper import post as submit
from tests.shopper import sign_in, text_of
from webshop.db.engine import write_session
from webshop.db.models import (
    AuditEvent,
    Product,
    ProductImage,
    StockReason,
    Variant,
)
from webshop.media import IMAGE_WIDTHS, MAX_UPLOAD_BYTES
from webshop.stock.service import take_stock

HTMX = {"HX-Request": "true"}


# --- helpers ------------------------------------------------------------------------------------------


async def upload(client, product_id: int, content: bytes, filename: str = "photo.jpg", mime: str = "image/jpeg"):
    token = await token_of(client, f"/admin/products/{product_id}")
    return await client.post(
        f"/admin/products/{product_id}/images",
        data={"_csrf_token": token, "alt": "A photo"},
        files={"image": (filename, content, mime)},
        follow_redirects=False,
    )


def results(html: str) -> str:
    """The text of the product table's results section (not the flash messages above it)."""
    return text_of(html[html.index('<section id="product-results"') :])


async def scalar(alchemy, statement):
    async with alchemy.get_session() as session:
        return await session.scalar(statement)


async def variant(alchemy, sku: str) -> Variant:
    async with alchemy.get_session() as session:
        return await session.scalar(select(Variant).where(Variant.sku == sku))


async def product_by_slug(alchemy, slug: str) -> Product | None:
    async with alchemy.get_session() as session:
        return await session.scalar(select(Product).where(Product.slug == slug))


async def audit_actions(alchemy, entity_type: str, entity_id: int) -> list[str]:
    async with alchemy.get_session() as session:
        rows = await session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.id)
        )
        return list(rows)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def media_files(media_dir: Path) -> list[str]:
    return sorted(p.name for p in media_dir.iterdir()) if media_dir.exists() else []


@pytest.fixture
async def admin(skus, admin):
    """The test client signed in as an admin (tests/integration/conftest.py), over the small seeded catalog."""
    return admin


async def shoe_id(alchemy) -> int:
    return (await product_by_slug(alchemy, "zeta-shoe")).id


# --- guards: every route of the product admin -----------------------------------------------------------

ROUTES = [
    ("GET", "/admin/products", {}),
    ("GET", "/admin/products?q=shoe", {**HTMX, "HX-Target": "product-results"}),
    ("GET", "/admin/products/new", {}),
    ("POST", "/admin/products/new", {}),
    ("GET", "/admin/products/{product_id}", {}),
    ("POST", "/admin/products/{product_id}", {}),
    ("POST", "/admin/products/{product_id}/delete", {}),
    ("POST", "/admin/products/{product_id}/restore", {}),
    ("GET", "/admin/products/{product_id}/variants/{variant_id}/delete", {}),
    ("POST", "/admin/products/{product_id}/variants/{variant_id}/delete", {}),
    ("POST", "/admin/products/{product_id}/images", {}),
    ("POST", "/admin/products/{product_id}/images/{image_id}/move", {}),
    ("POST", "/admin/products/{product_id}/images/{image_id}/delete", {}),
    ("GET", "/admin/products/variants/{variant_id}/price", HTMX),
    ("GET", "/admin/products/variants/{variant_id}/price/edit", HTMX),
    ("GET", "/admin/products/variants/{variant_id}/stock/edit", {}),
    ("POST", "/admin/products/variants/{variant_id}/price", HTMX),
    ("POST", "/admin/products/variants/{variant_id}/stock", {}),
]
FORMS = {
    "/admin/products/new": {"name": "Sneaky", "new_rows": "1", "new-0-sku": "SN-1", "new-0-price": "1"},
    "/price": {"value": "0.01"},
    "/stock": {"value": "0", "expected": "7"},
    "/move": {"direction": "up"},
}


def test_the_guard_list_names_every_product_admin_route(app):
    """The guard test below must not miss a route added later."""
    listed = {re.sub(r"\{\w+\}", "{}", path.split("?")[0]) for _, path, _ in ROUTES}
    registered = {
        re.sub(r"\{\w+:\w+\}", "{}", route.path).replace("/price", "/{}").replace("/stock", "/{}")
        for route in app.routes
        if route.path.startswith("/admin/products")
    }
    listed = {p.replace("/price", "/{}").replace("/stock", "/{}") for p in listed}
    assert registered == listed


@pytest.mark.parametrize(
    ("method", "path", "headers"), ROUTES, ids=[f"{m} {p}{' htmx' if h else ''}" for m, p, h in ROUTES]
)
async def test_signed_out_is_sent_to_sign_in_and_a_customer_gets_403(client, app, alchemy, skus, method, path, headers):
    product_id = await shoe_id(alchemy)
    url = path.format(product_id=product_id, variant_id=skus["ZS-42"], image_id=1)
    data = next((form for suffix, form in FORMS.items() if url.endswith(suffix)), {})

    async def call(who):
        if method == "GET":
            return await who.get(url, headers=headers, follow_redirects=False)
        token = await token_of(who)
        if url.endswith("/images"):
            return await who.post(
                url,
                data={"_csrf_token": token},
                files={"image": ("x.png", encode(Image.new("RGB", (8, 8)), "PNG"), "image/png")},
                headers=headers,
                follow_redirects=False,
            )
        return await who.post(url, data={**data, "_csrf_token": token}, headers=headers, follow_redirects=False)

    response = await call(client)
    if headers:
        assert response.headers.get("hx-redirect", "").startswith("/account/sign-in?next=/admin/products")
    else:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/account/sign-in?next=/admin/products")

    async with AsyncTestClient(app=app, base_url=BASE_URL) as customer:
        await make_user(alchemy, "eve@example.com")
        assert (await sign_in(customer, "eve@example.com")).status_code == 303
        response = await call(customer)
        assert response.status_code == 403, response.text[:300]
        assert "This page is for administrators" in response.text

    # Nothing changed.
    assert await scalar(alchemy, select(func.count()).select_from(Product)) == 6
    assert await scalar(alchemy, select(func.count()).select_from(AuditEvent)) == 0
    shoe = await variant(alchemy, "ZS-42")
    assert (shoe.price, shoe.stock) == (9999, 7)


# --- the product table ---------------------------------------------------------------------------------


async def test_table_searches_filters_sorts_and_pages(admin, alchemy):
    page = await admin.get("/admin/products")
    assert page.status_code == 200
    assert page.text.index("Alpha Laptop") < page.text.index("Zeta Shoe")
    assert "6 products" in text_of(page.text)

    found = await admin.get("/admin/products", params={"q": "zs-4"})  # by SKU
    assert "Zeta Shoe" in found.text and "Alpha Laptop" not in found.text

    electronics = await scalar(alchemy, select(Product.category_id).where(Product.slug == "beta-camera"))
    photo = await admin.get("/admin/products", params={"category": str(electronics)})
    assert "Beta Camera" in photo.text and "Gamma Camera" in photo.text and "Delta Chair" not in photo.text

    # Stock levels against each variant's threshold (5): 0 → out; 1-2 critical; 3-5 low; 6-10 medium; above healthy.
    out = text_of((await admin.get("/admin/products", params={"stock": "out"})).text)
    assert "Alpha Laptop" in out and "Gamma Camera" in out and "Delta Chair" not in out
    critical = text_of((await admin.get("/admin/products", params={"stock": "critical"})).text)
    assert "Zeta Shoe" in critical and "1 product" in critical
    low = text_of((await admin.get("/admin/products", params={"stock": "low"})).text)
    assert "Alpha Laptop" in low and "Beta Camera" in low and "Zeta Shoe" not in low
    healthy = text_of((await admin.get("/admin/products", params={"stock": "healthy"})).text)
    assert "Delta Chair" in healthy and "Epsilon Plant" in healthy and "Zeta Shoe" not in healthy
    medium = text_of((await admin.get("/admin/products", params={"stock": "medium"})).text)
    assert "Zeta Shoe" in medium and "Delta Chair" not in medium  # ZS-42: 7 units

    cheap_first = (await admin.get("/admin/products", params={"sort": "price"})).text
    assert cheap_first.index("Epsilon Plant") < cheap_first.index("Delta Chair") < cheap_first.index("Alpha Laptop")
    by_stock = (await admin.get("/admin/products", params={"sort": "-stock"})).text
    assert by_stock.index("Epsilon Plant") < by_stock.index("Delta Chair") < by_stock.index("Gamma Camera")

    fragment = await admin.get(
        "/admin/products", params={"q": "camera"}, headers={**HTMX, "HX-Target": "product-results"}
    )
    assert fragment.text.lstrip().startswith('<section id="product-results"') and "<html" not in fragment.text
    assert "HX-Request" in fragment.headers["vary"]

    # Pages of 25.
    await seed_catalog_extra(alchemy, 24)
    first = text_of((await admin.get("/admin/products")).text)
    assert "30 products" in first and "Page 1 of 2" in first
    second = await admin.get("/admin/products", params={"page": "2"})
    assert "Zeta Shoe" in second.text and "Page 2 of 2" in text_of(second.text)


async def seed_catalog_extra(alchemy, count: int) -> None:
    async with write_session(alchemy) as session:
        for index in range(count):
            product = Product(name=f"Extra {index:02d}", slug=f"extra-{index:02d}")
            product.variants.append(Variant(sku=f"EX-{index}", price=100, stock=0))
            session.add(product)
        await session.commit()


async def test_deleted_state_filter(admin, alchemy):
    product_id = await shoe_id(alchemy)
    assert (
        await submit(admin, f"/admin/products/{product_id}/delete", token_from="/admin/products")
    ).status_code == 303
    active = results((await admin.get("/admin/products")).text)
    assert "Zeta Shoe" not in active and "5 products" in active
    deleted = results((await admin.get("/admin/products", params={"state": "deleted"})).text)
    assert "Zeta Shoe" in deleted and "Deleted" in deleted and "1 product" in deleted
    assert "6 products" in text_of((await admin.get("/admin/products", params={"state": "all"})).text)


# --- inline price and stock edits ----------------------------------------------------------------------


async def test_inline_price_edit_with_htmx(admin, alchemy, skus):
    vid = skus["ZS-42"]
    editor = await admin.get(f"/admin/products/variants/{vid}/price/edit", headers=HTMX)
    assert editor.status_code == 200 and "<html" not in editor.text
    assert 'name="value" value="99.99"' in editor.text

    saved = await submit(
        admin, f"/admin/products/variants/{vid}/price", {"value": "12.99", "next": "/admin/products"}, headers=HTMX
    )
    assert saved.status_code == 200, saved.text
    assert "$12.99" in saved.text and "Saved" in saved.text and "<html" not in saved.text
    assert (await variant(alchemy, "ZS-42")).price == 1299
    assert await audit_actions(alchemy, "variant", vid) == ["update"]
    # The shop shows the new price.
    assert "$12.99" in (await admin.get("/products/zeta-shoe", params={"sku": "ZS-42"})).text


@pytest.mark.parametrize("value", ["abc", "-1", "12.999", "", "1e3"])
async def test_inline_price_edit_invalid_shows_the_error_on_the_cell_and_saves_nothing(admin, alchemy, skus, value):
    vid = skus["ZS-42"]
    response = await submit(admin, f"/admin/products/variants/{vid}/price", {"value": value}, headers=HTMX)
    assert response.status_code == 422
    assert 'role="alert"' in response.text and "Enter a price" in response.text
    assert "<html" not in response.text and f'value="{value}"' in response.text  # the input is kept
    assert (await variant(alchemy, "ZS-42")).price == 9999
    assert await audit_actions(alchemy, "variant", vid) == []


async def test_inline_stock_edit_is_ledgered_and_refuses_a_stale_level(admin, alchemy, skus):
    vid = skus["ZS-42"]
    editor = await admin.get(f"/admin/products/variants/{vid}/stock/edit", headers=HTMX)
    assert 'name="expected" value="7"' in editor.text

    saved = await submit(admin, f"/admin/products/variants/{vid}/stock", {"value": "3", "expected": "7"}, headers=HTMX)
    assert saved.status_code == 200 and ">3</span>" in saved.text and "low" in saved.text
    assert (await variant(alchemy, "ZS-42")).stock == 3
    assert await ledger_ok(alchemy)
    assert await audit_actions(alchemy, "stock", vid) == ["set"]

    # A sale happened meanwhile (the admin saw 7, it is 3 now): refused, nothing written.
    stale = await submit(admin, f"/admin/products/variants/{vid}/stock", {"value": "10", "expected": "7"}, headers=HTMX)
    assert stale.status_code == 409
    assert "The stock changed meanwhile (it is now 3, you saw 7)" in text_of(stale.text)
    assert 'name="expected" value="3"' in stale.text  # saving again applies 10 against the level now
    assert (await variant(alchemy, "ZS-42")).stock == 3

    for bad in ("-2", "lots", "1.5"):
        response = await submit(
            admin, f"/admin/products/variants/{vid}/stock", {"value": bad, "expected": "3"}, headers=HTMX
        )
        assert response.status_code == 422 and "whole number" in response.text
    assert (await variant(alchemy, "ZS-42")).stock == 3
    assert await ledger_ok(alchemy)


async def test_inline_edit_without_javascript(admin, alchemy, skus):
    vid = skus["DC-1"]
    table = await admin.get("/admin/products")
    edit_link = f"/admin/products/variants/{vid}/price/edit?next_url=%2Fadmin%2Fproducts"
    assert f'href="{edit_link}"' in table.text

    page = await admin.get(edit_link)
    assert page.status_code == 200 and "<html" in page.text and "Edit the price of DC-1" in text_of(page.text)
    assert 'action="/admin/products/variants/' in page.text

    bad = await submit(admin, f"/admin/products/variants/{vid}/price", {"value": "nine", "next": "/admin/products"})
    assert bad.status_code == 422 and "<html" in bad.text and "Enter a price" in bad.text
    nul = {"value": "9\x00", "next": "/admin/products"}
    control = await submit(admin, f"/admin/products/variants/{vid}/price", nul)
    assert control.status_code == 422 and "Remove the control characters" in control.text

    good = await submit(
        admin, f"/admin/products/variants/{vid}/price", {"value": "75", "next": "/admin/products?q=chair"}
    )
    assert good.status_code == 303 and good.headers["location"] == "/admin/products?q=chair"
    assert (await variant(alchemy, "DC-1")).price == 7500

    stock = await submit(
        admin, f"/admin/products/variants/{vid}/stock", {"value": "0", "expected": "12", "next": "//evil"}
    )
    assert stock.status_code == 303 and stock.headers["location"] == "/admin/products"  # never off-site
    assert (await variant(alchemy, "DC-1")).stock == 0

    missing = await admin.get("/admin/products/variants/999999/price/edit")
    assert missing.status_code == 404
    assert (await admin.get(f"/admin/products/variants/{vid}/name/edit")).status_code == 404


# --- create and edit -----------------------------------------------------------------------------------


def product_form(**fields: str) -> dict[str, str]:
    base = {
        "name": "Trail Runner",
        "slug": "",
        "description": "Light shoes for rough paths.",
        "category_id": "",
        "facets": "brand: Acme\ncolor: red, blue",
        "option_groups": "size",
        "is_active": "1",
        "new_rows": "2",
        "new-0-sku": "TR-42",
        "new-0-option_values": "42",
        "new-0-price": "89.90",
        "new-0-stock": "4",
        "new-0-low_stock_threshold": "2",
        "new-0-tax_category": "standard",
        "new-1-sku": "TR-43",
        "new-1-option_values": "43",
        "new-1-price": "89.90",
        "new-1-stock": "0",
        "new-1-low_stock_threshold": "5",
        "new-1-tax_category": "reduced",
        "action": "save",
    }
    base.update(fields)
    return base


async def test_create_a_product_with_two_variants(admin, alchemy):
    footwear = await scalar(alchemy, select(Product.category_id).where(Product.slug == "zeta-shoe"))
    form = await admin.get("/admin/products/new")
    assert form.status_code == 200 and 'name="new-1-sku"' in form.text

    response = await submit(
        admin, "/admin/products/new", product_form(category_id=str(footwear)), token_from="/admin/products/new"
    )
    assert response.status_code == 303, text_of(response.text)[:800]
    product = await product_by_slug(alchemy, "trail-runner")
    assert response.headers["location"] == f"/admin/products/{product.id}"

    tr42 = await variant(alchemy, "TR-42")
    assert (tr42.price, tr42.stock, tr42.low_stock_threshold, tr42.option_values) == (8990, 4, 2, ["42"])
    assert (await variant(alchemy, "TR-43")).tax_category == "reduced"
    assert await ledger_ok(alchemy)

    shop = await admin.get("/products/trail-runner")
    assert shop.status_code == 200 and "Trail Runner" in shop.text and "$89.90" in shop.text
    listed = await admin.get("/", params={"brand": "Acme"})
    assert "Trail Runner" in listed.text
    api = (await admin.get(f"/api/products/{product.id}")).json()
    assert api["facets"] == {"brand": ["Acme"], "color": ["red", "blue"]} and api["category"]["slug"] == "footwear"

    page = await admin.get(f"/admin/products/{product.id}")
    history = text_of(page.text)
    assert "Created “Trail Runner” with 2 variant(s)." in history and "boss@example.com" in history
    assert "Added variant TR-42." in history and "TR-42: stock set to 4 (initial stock)" in history

    # The same name again gets a free slug.
    again = await submit(
        admin,
        "/admin/products/new",
        product_form(**{"new-0-sku": "TR2-42", "new-1-sku": "TR2-43"}),
        token_from="/admin/products/new",
    )
    assert again.status_code == 303
    assert await product_by_slug(alchemy, "trail-runner-2") is not None


async def test_create_errors_re_render_the_form_with_the_input_and_write_nothing(admin, alchemy):
    fields = product_form(
        name="",
        slug="Not A Slug",
        category_id="999999",
        **{
            "new-0-sku": "AL-13",  # used by Alpha Laptop
            "new-0-price": "12.999",
            "new-1-option_values": "43 | wide",  # two values, one group
            "new-1-stock": "-3",
        },
    )
    response = await submit(admin, "/admin/products/new", fields, token_from="/admin/products/new")
    assert response.status_code == 422
    page = text_of(response.text)
    assert "The product was not saved" in page
    assert "Enter a price of 0 or more with at most 2 decimals" in page
    assert "Stock: enter a whole number of 0 or more." in page
    assert 'value="Not A Slug"' in response.text and 'value="12.999"' in response.text  # input kept
    assert 'value="43 | wide"' in response.text
    # The service's rules speak in the same round: every problem is shown at once, beside its own field.
    for field, message in {
        "new-0-price": "Enter a price of 0 or more with at most 2 decimals",
        "new-1-stock": "Stock: enter a whole number of 0 or more.",
        "name": "Enter a name.",
        "slug": "Use lowercase letters and digits joined by single hyphens",
        "category_id": "Choose an existing category.",
        "new-0-sku": "SKU AL-13 is already used by another variant.",
        "new-1-option_values": "Give 1 option value(s), one per option group (size).",
    }.items():
        assert f'id="{field}-error">{message}' in response.text, field
    assert "must be 0 or more" not in page  # nothing about the stand-ins for what the form could not read

    # Option groups the form cannot read (a tab) are that field's one problem, not every row's values.
    tabbed = product_form(option_groups="size\tcolor", **{"new-0-sku": "AL-13"})
    response = await submit(admin, "/admin/products/new", tabbed, token_from="/admin/products/new")
    assert response.status_code == 422
    assert 'id="option_groups-error">' in response.text and "Give 0 option value(s)" not in response.text
    assert 'id="new-0-sku-error">SKU AL-13 is already used by another variant.' in response.text

    # With the form's own problems mended, the same rules still speak.
    fields.update({"new-0-price": "12.99", "new-1-stock": "3"})
    response = await submit(admin, "/admin/products/new", fields, token_from="/admin/products/new")
    assert response.status_code == 422
    page = text_of(response.text)
    assert "Enter a price" not in page and "Stock: enter" not in page
    assert "Enter a name." in page
    assert "Use lowercase letters and digits joined by single hyphens" in page
    assert "Choose an existing category." in page
    assert "SKU AL-13 is already used by another variant." in page
    assert "Give 1 option value(s), one per option group (size)." in page
    assert await scalar(alchemy, select(func.count()).select_from(Product)) == 6
    assert await scalar(alchemy, select(func.count()).select_from(AuditEvent)) == 0

    dup = product_form(**{"new-1-sku": "TR-42", "new-1-option_values": "42"})
    text = text_of((await submit(admin, "/admin/products/new", dup, token_from="/admin/products/new")).text)
    assert "SKU TR-42 is used twice in this product." in text
    assert "Another variant already has these option values." in text

    taken = text_of(
        (
            await submit(admin, "/admin/products/new", product_form(slug="zeta-shoe"), token_from="/admin/products/new")
        ).text
    )
    assert "The slug “zeta-shoe” is already used by another product" in taken

    none = product_form(**{f"new-{i}-{f}": "" for i in (0, 1) for f in ("sku", "option_values", "price", "stock")})
    assert "Add at least one variant." in text_of(
        (await submit(admin, "/admin/products/new", none, token_from="/admin/products/new")).text
    )
    assert await scalar(alchemy, select(func.count()).select_from(Variant)) == 8


async def test_a_control_character_is_refused_beside_its_field_and_the_input_kept(admin, alchemy):
    """The form decodes into its Structs with ``read_form``: a control character in a product field or a
    variant row is the form again (422) with the message beside that field; nothing is saved."""
    fields = product_form(name="Trail\x1bRunner", **{"new-1-sku": "TR\x00-43", "new-0-price": "89.90"})
    response = await submit(admin, "/admin/products/new", fields, token_from="/admin/products/new")
    assert response.status_code == 422
    assert re.search(r'id="name-error">[^<]*control characters', response.text)
    assert re.search(r'id="new-1-sku-error">[^<]*control characters', response.text)
    assert 'value="TR-42"' in response.text and 'value="89.90"' in response.text
    assert await product_by_slug(alchemy, "trail-runner") is None


async def test_more_rows_button_adds_a_blank_row_without_saving(admin, alchemy):
    response = await submit(admin, "/admin/products/new", product_form(action="more"), token_from="/admin/products/new")
    assert response.status_code == 200
    assert 'name="new-2-sku"' in response.text and 'value="TR-43"' in response.text
    assert await product_by_slug(alchemy, "trail-runner") is None


def edit_form(page_html: str) -> dict[str, str]:
    """The edit form's fields as the page filled them in (inputs, textareas, selected options, checkbox)."""
    form_html = page_html[page_html.index('<form class="product-form"') :]
    form_html = form_html[: form_html.index("</form>")]
    fields: dict[str, str] = {}
    for tag in re.findall(r"<input[^>]*>", form_html):
        name = re.search(r'name="([^"]+)"', tag)
        if not name or 'type="submit"' in tag:
            continue
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        value = re.search(r'value="([^"]*)"', tag)
        fields[name.group(1)] = unescape(value.group(1)) if value else ""
    for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form_html, re.S):
        fields[name] = unescape(value)
    for name, body in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form_html, re.S):
        selected = re.search(r'<option value="([^"]*)" selected', body)
        fields[name] = selected.group(1) if selected else ""
    fields.pop("_csrf_token", None)
    return fields


async def test_edit_a_product_and_its_variants(admin, alchemy, skus):
    product_id = await shoe_id(alchemy)
    page = await admin.get(f"/admin/products/{product_id}")
    fields = edit_form(page.text)
    assert fields["variants-0-sku"] == "ZS-40" and fields["variants-1-price"] == "99.99"
    assert fields["facets"] == "brand: Nike\ncolor: white"

    fields.update(
        {
            "name": "Zeta Shoe Pro",
            "option_groups": "size, width",
            "variants-0-option_values": "Size 40 | regular",
            "variants-1-option_values": "Size 42 | regular",
            "variants-1-price": "109.50",
            "variants-1-stock": "9",
            "new-0-sku": "ZS-44",
            "new-0-option_values": "Size 44 | wide",
            "new-0-price": "119",
            "new-0-stock": "1",
            "facets": "brand: Nike\ncolor: white, black",
            "action": "save",
        }
    )
    response = await submit(admin, f"/admin/products/{product_id}", fields, token_from=f"/admin/products/{product_id}")
    assert response.status_code == 303, text_of(response.text)[:1000]

    shop = await admin.get("/products/zeta-shoe", params={"sku": "ZS-42"})
    assert "Zeta Shoe Pro" in shop.text and "$109.50" in shop.text
    zs42 = await variant(alchemy, "ZS-42")
    assert (zs42.stock, zs42.option_values) == (9, ["Size 42", "regular"])
    assert (await variant(alchemy, "ZS-44")).stock == 1
    assert await ledger_ok(alchemy)

    history = text_of((await admin.get(f"/admin/products/{product_id}")).text)
    assert "Edited the product." in history and "name : Zeta Shoe → Zeta Shoe Pro" in history
    assert "Edited variant ZS-42: option_values, price" in history and "price : $99.99 → $109.50" in history
    assert "ZS-42: stock set to 9" in history and "Added variant ZS-44." in history

    # Changing the groups without the values: refused, with the reason, nothing written.
    fields = edit_form((await admin.get(f"/admin/products/{product_id}")).text)
    fields.update({"option_groups": "size", "name": "Renamed"})
    response = await submit(admin, f"/admin/products/{product_id}", fields, token_from=f"/admin/products/{product_id}")
    assert response.status_code == 422
    assert "Give 1 option value(s), one per option group (size)." in text_of(response.text)
    assert (await product_by_slug(alchemy, "zeta-shoe")).name == "Zeta Shoe Pro"


async def test_an_edit_shows_the_forms_and_the_rules_problems_in_one_round(admin, alchemy, skus):
    """Prices the form cannot read and SKUs the service refuses are all marked after one save."""
    product_id = await shoe_id(alchemy)
    fields = edit_form((await admin.get(f"/admin/products/{product_id}")).text)
    fields.update(
        {
            "name": "Renamed",
            "variants-0-price": "abc",
            "variants-1-sku": "AL-13",  # Alpha Laptop's
            "new-0-sku": "ZS-40",  # the first row's
            "new-0-option_values": "Size 44",
            "new-0-price": "1,5",
            "action": "save",
        }
    )
    response = await submit(admin, f"/admin/products/{product_id}", fields, token_from=f"/admin/products/{product_id}")
    assert response.status_code == 422
    page = text_of(response.text)
    assert page.count("Enter a price of 0 or more with at most 2 decimals") == 2
    assert 'id="variants-0-price-error">Enter a price' in response.text
    assert 'id="new-0-price-error">Enter a price' in response.text
    assert 'id="variants-1-sku-error">SKU AL-13 is already used by another variant.' in response.text
    assert 'id="new-0-sku-error">SKU ZS-40 is used twice in this product.' in response.text
    assert 'value="abc"' in response.text and 'value="AL-13"' in response.text  # the input is kept
    assert (await product_by_slug(alchemy, "zeta-shoe")).name == "Zeta Shoe"
    assert (await variant(alchemy, "ZS-42")).sku == "ZS-42"


async def test_a_tax_category_the_shop_no_longer_has_is_shown_and_never_changed_silently(admin, alchemy, skus):
    """A variant whose category left WEBSHOP_TAX_RATES keeps it on the form; saving asks for another."""
    product_id = await shoe_id(alchemy)
    async with write_session(alchemy) as session:
        zs40 = await session.scalar(select(Variant).where(Variant.sku == "ZS-40"))
        zs40.tax_category = "luxury"
        await session.commit()
    page = await admin.get(f"/admin/products/{product_id}")
    assert '<option value="luxury" selected>luxury (not one of the shop\'s)</option>' in unescape(page.text)
    fields = edit_form(page.text)
    assert fields["variants-0-tax_category"] == "luxury"
    fields.update({"description": "Edited.", "action": "save"})
    response = await submit(admin, f"/admin/products/{product_id}", fields, token_from=f"/admin/products/{product_id}")
    assert response.status_code == 422
    assert 'id="variants-0-tax_category-error">Choose a tax category (reduced, standard, zero).' in response.text
    assert (await variant(alchemy, "ZS-40")).tax_category == "luxury"


async def test_edit_with_a_stale_stock_level_saves_nothing(admin, alchemy, skus):
    product_id = await shoe_id(alchemy)
    fields = edit_form((await admin.get(f"/admin/products/{product_id}")).text)
    # A shopper buys one ZS-42 while the admin edits.
    async with write_session(alchemy) as session:
        assert await take_stock(session, skus["ZS-42"], 1, reason=StockReason.SALE, reference="W-9")
        await session.commit()
    fields.update({"name": "Changed", "variants-1-stock": "20", "action": "save"})
    response = await submit(admin, f"/admin/products/{product_id}", fields, token_from=f"/admin/products/{product_id}")
    assert response.status_code == 409
    assert "The stock changed meanwhile (it is now 6, you saw 7); nothing was saved." in text_of(response.text)
    assert 'value="Changed"' in response.text
    assert (await product_by_slug(alchemy, "zeta-shoe")).name == "Zeta Shoe"
    assert (await variant(alchemy, "ZS-42")).stock == 6
    assert await ledger_ok(alchemy)
    assert await audit_actions(alchemy, "product", product_id) == []


async def test_a_sale_while_editing_does_not_block_saving_other_fields(admin, alchemy, skus):
    product_id = await shoe_id(alchemy)
    fields = edit_form((await admin.get(f"/admin/products/{product_id}")).text)
    async with write_session(alchemy) as session:
        assert await take_stock(session, skus["ZS-42"], 2, reason=StockReason.SALE, reference="W-9")
        await session.commit()
    fields.update({"name": "Zeta Shoe 2", "action": "save"})  # the stock field still says 7
    response = await submit(admin, f"/admin/products/{product_id}", fields, token_from=f"/admin/products/{product_id}")
    assert response.status_code == 303, text_of(response.text)[:500]
    assert (await product_by_slug(alchemy, "zeta-shoe")).name == "Zeta Shoe 2"
    assert (await variant(alchemy, "ZS-42")).stock == 5
    assert await ledger_ok(alchemy)


async def test_remove_a_variant_but_not_the_last(admin, alchemy, skus):
    product_id = await shoe_id(alchemy)
    path = f"/admin/products/{product_id}"
    # The product form's "Remove ZS-40…" asks first, on a page of its own, saying what goes with it (QA:
    # the button removed it at once, dropping the form's unsaved edits).
    confirm = f"{path}/variants/{skus['ZS-40']}/delete"
    assert f'href="{confirm}"' in (await admin.get(path)).text
    question = text_of((await admin.get(confirm)).text)
    assert (
        "Remove ZS-40?" in question and "Its 2 units in stock and its stock history (1 change) go with it" in question
    )
    assert await variant(alchemy, "ZS-40") is not None  # asking removes nothing
    fields = edit_form((await admin.get(path)).text)
    fields.update({"variants-0-price": "80.00", "action": "save"})
    assert (await submit(admin, path, fields, token_from=path)).status_code == 303
    response = await submit(admin, f"{path}/variants/{skus['ZS-40']}/delete", {"name": "ignored"}, token_from=path)
    assert response.status_code == 303
    assert await variant(alchemy, "ZS-40") is None
    page = text_of((await admin.get(path)).text)
    assert "Removed variant ZS-40." in page
    # Its earlier events stay in the product's trail (QA: removing a variant cut them out of it).
    assert "Edited variant ZS-40: price" in page
    response = await submit(admin, f"{path}/variants/{skus['ZS-42']}/delete", token_from=path)
    assert response.status_code == 303
    assert "A product needs at least one variant: delete the product instead." in text_of((await admin.get(path)).text)
    assert await variant(alchemy, "ZS-42") is not None
    last = text_of((await admin.get(f"{path}/variants/{skus['ZS-42']}/delete")).text)
    assert "ZS-42 cannot be removed" in last and "Yes, remove" not in last
    assert (await admin.get(f"{path}/variants/{skus['DC-1']}/delete")).status_code == 404
    # A variant of another product is not this product's.
    assert (await submit(admin, f"{path}/variants/{skus['DC-1']}/delete", token_from=path)).status_code == 404


# --- soft delete and restore -----------------------------------------------------------------------------


async def test_soft_deleted_product_leaves_shop_and_api_but_old_orders_keep_their_lines(admin, app, alchemy, skus):
    product_id = await shoe_id(alchemy)
    ada = await make_user(alchemy, "ada@example.com")
    order_id = await make_order(alchemy, ada, "W-1", {"ZS-42": 1})

    response = await submit(admin, f"/admin/products/{product_id}/delete", token_from=f"/admin/products/{product_id}")
    assert response.status_code == 303
    page = text_of((await admin.get(f"/admin/products/{product_id}")).text)
    assert "Deleted" in page and "Restore" in page and "Deleted “Zeta Shoe” (hidden from the shop)." in page

    assert (await admin.get("/products/zeta-shoe")).status_code == 404
    assert "Zeta Shoe" not in (await admin.get("/", params={"q": "zeta"})).text
    assert (await admin.get(f"/api/products/{product_id}")).status_code == 404
    assert all(item["id"] != product_id for item in (await admin.get("/api/products?limit=100")).json()["items"])

    # The admin still sees the order line; so does the customer on their order page.
    admin_order = await admin.get(f"/admin/orders/{order_id}")
    assert admin_order.status_code == 200 and "ZS-42" in admin_order.text and "Zeta Shoe" in admin_order.text
    async with AsyncTestClient(app=app, base_url=BASE_URL) as customer:
        assert (await sign_in(customer, "ada@example.com")).status_code == 303
        mine = await customer.get("/orders/W-1")
        assert mine.status_code == 200 and "Zeta Shoe" in mine.text and "ZS-42" in mine.text

    response = await submit(admin, f"/admin/products/{product_id}/restore", token_from=f"/admin/products/{product_id}")
    assert response.status_code == 303
    assert (await admin.get("/products/zeta-shoe")).status_code == 200
    assert (await admin.get(f"/api/products/{product_id}")).status_code == 200
    assert await audit_actions(alchemy, "product", product_id) == ["delete", "restore"]


# --- photos ----------------------------------------------------------------------------------------------


async def test_upload_a_real_photo_reorder_and_remove(admin, alchemy, settings, shared_catalog):
    product_id = await shoe_id(alchemy)
    source = shared_catalog / "images" / "ben-hershey-574483-unsplash.jpg"
    if not source.is_file():
        source = sorted((shared_catalog / "images").glob("*.jpg"))[0]
    response = await upload(admin, product_id, source.read_bytes(), source.name)
    assert response.status_code == 303, text_of(response.text)[:500]
    second = await upload(admin, product_id, encode(Image.new("RGB", (900, 600), "teal"), "PNG"), "b.png", "image/png")
    assert second.status_code == 303

    async with alchemy.get_session() as session:
        images = list(
            await session.scalars(
                select(ProductImage).where(ProductImage.product_id == product_id).order_by(ProductImage.position)
            )
        )
    first, other = images
    assert first.source_name == source.name and first.ext == "jpg" and other.ext == "png"
    assert re.fullmatch(r"[0-9a-f]{32}", first.key) and source.stem not in first.key
    files = media_files(settings.shop.media_dir)
    for image in images:
        assert f"{image.key}.{image.ext}" in files
        assert all(f"{image.key}-{w}.webp" in files for w in IMAGE_WIDTHS)
    # The shop shows the first photo.
    shop = await admin.get("/products/zeta-shoe")
    assert f"/media/{first.key}-640.webp" in shop.text
    assert (await admin.get(f"/media/{first.key}-320.webp")).status_code == 200

    path = f"/admin/products/{product_id}"
    assert (
        await submit(admin, f"{path}/images/{other.id}/move", {"direction": "up"}, token_from=path)
    ).status_code == 303
    page = await admin.get(path)
    assert page.text.index(f'data-image="{other.id}"') < page.text.index(f'data-image="{first.id}"')
    assert f"/media/{other.key}-640.webp" in (await admin.get("/products/zeta-shoe")).text

    assert (await submit(admin, f"{path}/images/{first.id}/delete", token_from=path)).status_code == 303
    files = media_files(settings.shop.media_dir)
    assert not any(name.startswith(first.key) for name in files)
    assert f"{other.key}.png" in files
    history = text_of((await admin.get(path)).text)
    assert "Added photo " + source.name in history and "Reordered photos." in history and "Removed photo" in history


async def test_exif_is_stripped_from_an_uploaded_jpeg(admin, alchemy, settings):
    product_id = await shoe_id(alchemy)
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x0131] = "Secret Software"  # Software
    exif[0x8825] = {2: (51.0, 30.0, 0.0), 1: "N"}  # GPS position
    content = encode(Image.new("RGB", (640, 480), "orange"), "JPEG", exif=exif.tobytes())
    assert b"SpyCam" in content
    assert (await upload(admin, product_id, content)).status_code == 303
    image = await scalar(alchemy, select(ProductImage).where(ProductImage.product_id == product_id))
    stored = (settings.shop.media_dir / f"{image.key}.jpg").read_bytes()
    assert b"SpyCam" not in stored and b"Exif" not in stored
    with Image.open(io.BytesIO(stored)) as opened:
        assert dict(opened.getexif()) == {}


def bomb_png() -> bytes:
    """A PNG of 20,000 x 20,000 pixels (400 megapixels) that compresses to a few hundred kilobytes."""
    return encode(Image.new("1", (20_000, 20_000)), "PNG", optimize=True)


BAD_UPLOADS = {
    "text file": (b"name,price\nshoe,12\n" * 20, "prices.txt", "text/plain", 422, "not an image"),
    "gif": (encode(Image.new("RGB", (20, 20), "red"), "GIF"), "a.gif", "image/gif", 422, "only JPEG, PNG or WebP"),
    "truncated jpeg": (
        encode(Image.linear_gradient("L").resize((600, 400)).convert("RGB"), "JPEG")[:4000],
        "cut.jpg",
        "image/jpeg",
        422,
        "image is truncated",
    ),
    "decompression bomb": (None, "bomb.png", "image/png", 422, "too many pixels"),
    "just over 5 MB": (b"\xff\xd8\xff" + b"0" * MAX_UPLOAD_BYTES, "big.jpg", "image/jpeg", 413, "at most 5 MB"),
    "far over 5 MB": (
        b"\xff\xd8\xff" + b"0" * (MAX_UPLOAD_BYTES + 200_000),
        "huge.jpg",
        "image/jpeg",
        413,
        "at most 5 MB",
    ),
}


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
async def test_bad_uploads_are_refused_with_a_clear_message_and_leave_nothing(admin, alchemy, settings, case):
    content, filename, mime, status, message = BAD_UPLOADS[case]
    if content is None:
        content = bomb_png()
        assert len(content) < MAX_UPLOAD_BYTES
    product_id = await shoe_id(alchemy)
    before = media_files(settings.shop.media_dir)
    response = await upload(admin, product_id, content, filename, mime)
    assert response.status_code == status, text_of(response.text)[:300]
    assert message in text_of(response.text)
    assert "<html" in response.text  # a page for the browser, not a bare error
    assert media_files(settings.shop.media_dir) == before == []
    assert await scalar(alchemy, select(func.count()).select_from(ProductImage)) == 0
    assert await audit_actions(alchemy, "product", product_id) == []


async def test_upload_without_a_file_says_so(admin, alchemy):
    product_id = await shoe_id(alchemy)
    token = await token_of(admin, f"/admin/products/{product_id}")
    response = await admin.post(
        f"/admin/products/{product_id}/images",
        data={"_csrf_token": token, "alt": "Side view, laces undone"},
        files={"image": ("", b"", "application/octet-stream")},
        follow_redirects=False,
    )
    assert response.status_code == 422 and "Choose a photo to upload." in response.text
    assert 'name="alt" maxlength="255" value="Side view, laces undone"' in response.text  # kept (browser QA)
