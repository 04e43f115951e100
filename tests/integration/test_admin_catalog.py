"""Admin category pages and catalog CSV import/export over HTTP, on both engines (issue 5).

Everything goes through the pages as a browser without JavaScript uses them (form posts answered by 303
redirects, or the page again with the reason) against a real database; the CSV files are read with the
importer's own parser.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
from html import unescape
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from tests.conftest import BASE_URL
from tests.factories import audit_events as audit
from tests.factories import make_user
from tests.shopper import PASSWORD, forged, text_of
from tests.shopper import csrf as token_of
from tests.shopper import post as submit
from webshop.catalog.csv.apply import import_catalog
from webshop.catalog.csv.export import export_columns
from webshop.catalog.csv.parse import COLUMNS, parse_catalog
from webshop.db.engine import write_session
from webshop.db.models import AuditEvent, Category, Product, UserRole, Variant

# --- helpers ----------------------------------------------------------------------------------


async def sign_in(client, email):
    response = await submit(client, "/account/sign-in", {"email": email, "password": PASSWORD, "next": ""})
    assert response.status_code == 303, response.text[:300]


async def category(alchemy, slug):
    async with alchemy.get_session() as session:
        return await session.scalar(select(Category).where(Category.slug == slug))


@pytest.fixture
async def admin(skus, admin):
    """The test client, signed in as an admin (tests/integration/conftest.py), on the seeded catalog."""
    return admin


# --- categories -------------------------------------------------------------------------------


async def test_tree_shows_every_category_with_its_products(admin):
    page = await admin.get("/admin/categories")
    assert page.status_code == 200
    text = text_of(page.text)
    for name in ("Electronics", "Computers", "Photo", "Home & Garden", "Furniture", "Sports & Outdoor", "Footwear"):
        assert name in text
    assert "Photo photo 2 products" in text
    assert 'aria-current="page"' in page.text and 'href="/admin/categories"' in page.text


async def test_create_category_with_the_form(admin, alchemy):
    electronics = await category(alchemy, "electronics")
    response = await submit(
        admin, "/admin/categories", {"name": " Audio ", "slug": "", "parent_id": str(electronics.id)}
    )
    assert response.status_code == 303
    assert response.headers["location"].startswith("/admin/categories#category-")
    page = await admin.get("/admin/categories")
    assert "Created category “Audio”." in text_of(page.text)
    audio = await category(alchemy, "audio")
    assert audio.parent_id == electronics.id and audio.name == "Audio"
    assert [e.action for e in await audit(alchemy, "category", audio.id)] == ["create"]


async def test_create_errors_are_shown_on_the_form(admin, alchemy):
    electronics = str((await category(alchemy, "electronics")).id)
    for form, status, message in (
        ({"name": "", "parent_id": ""}, 422, "Enter a name."),
        ({"name": "computers", "parent_id": electronics}, 422, "There is already a category “Computers” here."),
        ({"name": "New", "slug": "photo", "parent_id": ""}, 422, "already used by another category"),
        ({"name": "New", "slug": "Bad Slug", "parent_id": ""}, 422, "Use lowercase letters"),
        ({"name": "a|b", "parent_id": ""}, 422, "cannot contain “|”"),
        ({"name": "New", "parent_id": "nope"}, 422, "Choose a parent category from the list."),
        ({"name": "New", "parent_id": "²"}, 422, "Choose a parent category from the list."),  # isdigit(), not int()
    ):
        response = await submit(admin, "/admin/categories", form)
        assert response.status_code == status, form
        assert message in text_of(response.text) and 'role="alert"' in response.text, form
        assert text_of(response.text).count(message) == 1, form  # beside its field, not again above (QA)
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Category)) == 8


async def test_rename_and_change_slug(admin, alchemy):
    photo = await category(alchemy, "photo")
    url = f"/admin/categories/{photo.id}"
    response = await submit(admin, f"{url}/rename", {"name": "Camera & Photo", "slug": "photo"})
    assert response.status_code == 303 and response.headers["location"] == url
    page = await admin.get(url)
    text = text_of(page.text)
    assert "Camera & Photo" in text and "Renamed category “Photo” to “Camera & Photo”." in text  # audit trail
    assert (await submit(admin, f"{url}/rename", {"name": "Camera & Photo", "slug": "cameras"})).status_code == 303
    assert (await category(alchemy, "cameras")).id == photo.id
    clash = await submit(admin, f"{url}/rename", {"name": "Computers", "slug": ""})
    assert clash.status_code == 422 and "already a category “Computers”" in text_of(clash.text)


async def test_move_under_another_parent_and_up_and_down(admin, alchemy):
    furniture, sports = await category(alchemy, "furniture"), await category(alchemy, "sports")
    page = await admin.get(f"/admin/categories/{furniture.id}")
    options = re.findall(r'<option value="(\d*)"', page.text.split('id="move-parent_id"')[1].split("</select>")[0])
    assert str(furniture.id) not in options and str(sports.id) in options
    moved = await submit(
        admin, f"/admin/categories/{furniture.id}/move", {"parent_id": str(sports.id), "position": "1"}
    )
    assert moved.status_code == 303
    assert ((await category(alchemy, "furniture")).parent_id, (await category(alchemy, "furniture")).position) == (
        sports.id,
        0,
    )
    assert "Place 1 of 2" in text_of((await admin.get(f"/admin/categories/{furniture.id}")).text)

    down = await submit(admin, f"/admin/categories/{furniture.id}/down")
    assert down.status_code == 303 and down.headers["location"] == f"/admin/categories#category-{furniture.id}"
    tree = text_of((await admin.get("/admin/categories")).text)
    assert tree.index("Footwear") < tree.index("Furniture")
    assert (await submit(admin, f"/admin/categories/{furniture.id}/up")).status_code == 303
    tree = text_of((await admin.get("/admin/categories")).text)
    assert tree.index("Furniture") < tree.index("Footwear")
    actions = [e.action for e in await audit(alchemy, "category", furniture.id)]
    assert actions == ["move", "move", "move"]


async def test_a_category_cannot_move_into_its_own_subtree(admin, alchemy):
    electronics, computers = await category(alchemy, "electronics"), await category(alchemy, "computers")
    for parent in (electronics, computers):
        response = await submit(admin, f"/admin/categories/{electronics.id}/move", {"parent_id": str(parent.id)})
        assert response.status_code == 422
        assert "cannot be moved into itself or one of its subcategories" in text_of(response.text)
    assert (await category(alchemy, "electronics")).parent_id is None


async def test_delete_is_refused_with_the_reason_until_the_category_is_empty(admin, alchemy, skus):
    photo, electronics = await category(alchemy, "photo"), await category(alchemy, "electronics")
    page = text_of((await admin.get(f"/admin/categories/{photo.id}")).text)
    assert "“Photo” still has 2 products" in page  # said before anyone tries
    refused = await submit(admin, f"/admin/categories/{electronics.id}/delete")
    assert refused.status_code == 409
    assert "“Electronics” still has 2 subcategories" in text_of(refused.text)

    # Soft-deleted products still count: they keep their category and can be restored.
    async with write_session(alchemy) as session:
        for product in await session.scalars(select(Product).where(Product.category_id == photo.id)):
            product.deleted_at = func.now()
        await session.commit()
    refused = await submit(admin, f"/admin/categories/{photo.id}/delete")
    assert refused.status_code == 409
    assert "2 products (2 of them deleted, which can be restored)" in text_of(refused.text)

    empty = await submit(admin, "/admin/categories", {"name": "Empty", "parent_id": ""})
    assert empty.status_code == 303
    empty_id = (await category(alchemy, "empty")).id
    deleted = await submit(admin, f"/admin/categories/{empty_id}/delete")
    assert deleted.status_code == 303 and deleted.headers["location"] == "/admin/categories"
    assert await category(alchemy, "empty") is None
    assert "Deleted category “Empty”." in text_of((await admin.get("/admin/categories")).text)
    assert [e.action for e in await audit(alchemy, "category", empty_id)] == ["create", "delete"]


async def test_boosted_form_post_gets_the_redirect_too(admin, alchemy):
    """With JavaScript on, hx-boost posts the same form; htmx follows the 303 itself."""
    photo = await category(alchemy, "photo")
    response = await submit(
        admin,
        f"/admin/categories/{photo.id}/rename",
        {"name": "Photography", "slug": ""},
        headers={"HX-Request": "true", "HX-Boosted": "true"},
    )
    assert response.status_code == 303
    assert (await category(alchemy, "photo")).name == "Photography"


# --- CSV export -------------------------------------------------------------------------------


def rows_of(content: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode("utf-8"))))


async def export(client) -> bytes:
    response = await client.get("/admin/catalog-csv/export")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == "text/csv; charset=utf-8"  # once (RFC 9110 §8.3)
    assert "attachment" in response.headers["content-disposition"]
    return response.content


async def test_export_writes_the_import_format(admin, alchemy, tmp_path):
    content = await export(admin)
    rows = rows_of(content)
    assert tuple(rows[0]) == export_columns() == (*COLUMNS, "weightGrams", "lowStockThreshold")
    laptop = next(row for row in rows if row[1] == "alpha-laptop")
    assert laptop[4].split("|")[:2] == ["category:Electronics", "category:Computers"]
    assert "brand:Apple" in laptop[4] and laptop[5] == "screen size"
    assert (laptop[6], laptop[7], laptop[8], laptop[9], laptop[10]) == ("13 inch", "AL-13", "1299.00", "standard", "5")
    assert (laptop[14], laptop[15]) == ("0", "5")  # weight in grams, low-stock threshold
    following = rows[rows.index(laptop) + 1]
    assert following[0] == "" and (following[6], following[7], following[8]) == ("15 inch", "AL-15", "1499.00")

    (tmp_path / "products.csv").write_bytes(content)
    parsed = parse_catalog(tmp_path / "products.csv")
    assert parsed.errors == []
    assert len(parsed.products) == 6 and sum(len(p.variants) for p in parsed.products) == 8
    page = text_of((await admin.get("/admin/catalog-csv")).text)
    assert "6 products, 8 variants" in page


async def test_weight_and_low_stock_threshold_go_out_and_come_back_through_the_csv(admin, alchemy):
    """The shipping weight and the low-stock threshold are in the export; edited there, the preview names the
    change and the import makes it; an emptied cell leaves the variant's own value (QA: the CSV lost them)."""
    rows = rows_of(await export(admin))
    header = rows[0]
    weight, threshold = header.index("weightGrams"), header.index("lowStockThreshold")
    laptop = next(row for row in rows if row[1] == "alpha-laptop")
    following = rows[rows.index(laptop) + 1]
    laptop[weight], laptop[threshold] = "2100", "2"
    following[weight], following[threshold] = "", ""
    handle = io.StringIO(newline="")
    csv.writer(handle).writerows([header, laptop, following])
    response = await preview(admin, handle.getvalue().encode())
    text = text_of(response.text)
    assert "AL-13: weight 0 g → 2100 g, low-stock threshold 5 → 2" in text
    assert "1 to change" in text

    result = await submit(admin, "/admin/catalog-csv/import", confirm_form(response.text))
    assert "variants: 0 created, 1 updated" in text_of(result.text)
    async with alchemy.get_session() as session:
        stored = dict(
            (sku, (weight_grams, low))
            for sku, weight_grams, low in await session.execute(
                select(Variant.sku, Variant.weight_grams, Variant.low_stock_threshold).where(
                    Variant.sku.in_(["AL-13", "AL-15"])
                )
            )
        )
    assert stored == {"AL-13": (2100, 2), "AL-15": (0, 5)}
    again = rows_of(await export(admin))
    assert next(row for row in again if row[7] == "AL-13")[weight:] == ["2100", "2"]


async def test_export_leaves_out_deleted_products_and_says_what_it_cannot_write(admin, alchemy):
    async with write_session(alchemy) as session:
        chair = await session.scalar(select(Product).where(Product.slug == "delta-chair"))
        chair.deleted_at = func.now()
        await session.commit()
        plant = await session.scalar(select(Product).where(Product.slug == "epsilon-plant"))
        session.add(plant)
        variant = await session.scalar(select(Variant).where(Variant.sku == "EP-1"))
        variant.option_values = ["a|b"]
        plant.option_groups = ["kind"]
        await session.commit()
    rows = rows_of(await export(admin))
    slugs = [row[1] for row in rows[1:] if row[1]]
    assert "delta-chair" not in slugs and "epsilon-plant" not in slugs and len(slugs) == 4
    page = text_of((await admin.get("/admin/catalog-csv")).text)
    assert "epsilon-plant : a category, facet value or option contains “|”" in page


# --- CSV import: dry run, confirm, round trip ---------------------------------------------------


async def preview(client, content: bytes, name="products.csv"):
    token = await token_of(client, "/admin/catalog-csv")
    return await client.post(
        "/admin/catalog-csv/preview",
        files={"file": (name, content, "text/csv")},
        data={"_csrf_token": token},
        follow_redirects=False,
    )


def confirm_form(html: str) -> dict[str, str]:
    fields = dict(re.findall(r'<input type="hidden" name="(token|payload)" value="([^"]*)"', html))
    assert set(fields) == {"token", "payload"}, "no confirm form"
    return {k: unescape(v) for k, v in fields.items()}


async def snapshot(alchemy):
    """Everything an import may change, to compare before and after."""
    async with alchemy.get_session() as session:
        products = [
            (p.slug, p.name, p.description, p.category_id, tuple(p.option_groups or []))
            for p in await session.scalars(select(Product).order_by(Product.slug))
        ]
        variants = [
            (v.sku, v.price, tuple(v.option_values or []), v.tax_category, v.stock)
            for v in await session.scalars(select(Variant).order_by(Variant.sku))
        ]
        categories = [
            (c.name, c.slug, c.parent_id) for c in await session.scalars(select(Category).order_by(Category.id))
        ]
        events = await session.scalar(select(func.count()).select_from(AuditEvent))
    return products, variants, categories, events


async def test_round_trip_through_the_pages_changes_nothing(admin, alchemy):
    before = await snapshot(alchemy)
    response = await preview(admin, await export(admin))
    assert response.status_code == 200, response.text[:500]
    text = text_of(response.text)
    assert "0 products to create, 0 to change, 6 unchanged, 0 rows rejected" in text
    assert "This file would change nothing" in text and 'name="payload"' not in response.text
    assert await snapshot(alchemy) == before


EDITED = (
    # line 2: Alpha Laptop's first variant gets a new price; line 4 is a new product; 5 and 6 are bad rows.
    "{header}\n"
    "Alpha Laptop,alpha-laptop,A fine product.,,category:Electronics|category:Computers|brand:Apple|color:silver,"
    "screen size,13 inch,AL-13,1199.00,standard,5,,,\n"
    ",,,,,,15 inch,AL-15,1499.00,standard,0,,,\n"
    "Omega Lamp,omega-lamp,Bright.,,category:Home & Garden|category:Lighting,,,OL-1,25.00,standard,7,,,\n"
    "Broken Price,broken-price,Oops.,,,,,BP-1,twelve,standard,1,,,\n"
    "No Slug,,Oops.,,,,,NS-1,1.00,standard,1,,,\n"
)


async def test_dry_run_lists_what_would_change_and_writes_nothing_until_confirmed(admin, alchemy):
    content = EDITED.format(header=",".join(COLUMNS)).encode()
    before = await snapshot(alchemy)
    response = await preview(admin, content, "edited.csv")
    assert response.status_code == 200, response.text[:500]
    text = text_of(response.text)
    assert "Dry run: nothing has been written yet." in text
    assert "1 product to create, 1 to change, 0 unchanged, 2 rows rejected, 1 new category" in text
    assert "4 omega-lamp Omega Lamp 1 variant(s): OL-1" in text
    assert "2 alpha-laptop Alpha Laptop AL-13: price 1299.00 → 1199.00" in text
    assert "5 price 'twelve' is not an amount" in text
    assert "6 slug is missing" in text
    assert "Home & Garden > Lighting" in text
    assert await snapshot(alchemy) == before  # the preview wrote nothing

    result = await submit(admin, "/admin/catalog-csv/import", confirm_form(response.text))
    assert result.status_code == 200, result.text[:500]
    text = text_of(result.text)
    # As the preview said: 1 to create, 1 to change (its variant's price), 0 unchanged (QA: "1 unchanged").
    assert "products: 1 created, 1 updated, 0 unchanged; variants: 1 created, 1 updated" in text
    assert "5 price 'twelve' is not an amount" in text  # the import's own report, with lines
    async with alchemy.get_session() as session:
        assert await session.scalar(select(Variant.price).where(Variant.sku == "AL-13")) == 119900
        lamp = await session.scalar(select(Product).where(Product.slug == "omega-lamp"))
        laptop_id = await session.scalar(select(Product.id).where(Product.slug == "alpha-laptop"))
    assert lamp.name == "Omega Lamp"
    assert (await category(alchemy, "lighting")).parent_id == (await category(alchemy, "home-garden")).id
    events = await audit(alchemy, "product", laptop_id)
    assert [e.action for e in events] == ["import"] and "price 1299.00 → 1199.00" in events[0].summary
    assert events[0].actor_email == "boss@example.com"


async def test_the_preview_and_report_addresses_lead_back_to_the_form(admin):
    """The address bar keeps ``/preview`` (and, with htmx, the report's too); a reload, Back or the
    history asks for it with GET, which leads to the import form instead of a 405 page."""
    for path in ("/admin/catalog-csv/preview", "/admin/catalog-csv/import"):
        response = await admin.get(path, follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/admin/catalog-csv")
        page = await admin.get(path)
        assert page.status_code == 200 and "Import and export" in page.text


async def test_confirm_applies_exactly_the_previewed_file(admin, alchemy):
    content = EDITED.format(header=",".join(COLUMNS)).encode()
    form = confirm_form((await preview(admin, content)).text)
    before = await snapshot(alchemy)
    other = EDITED.replace("1199.00", "1.00").format(header=",".join(COLUMNS)).encode()
    from webshop.admin.catalog_csv import _pack

    for tampered in (
        {**form, "payload": _pack(other)},  # another file under the previewed file's signature
        {**form, "token": forged(form["token"])},  # a forged signature
        {**form, "payload": "not base64 !"},
    ):
        response = await submit(admin, "/admin/catalog-csv/import", tampered)
        assert response.status_code == 400
        assert "Upload" in text_of(response.text)
    assert await snapshot(alchemy) == before

    # Another admin cannot confirm this admin's preview.
    async with AsyncTestClient(app=admin.app, base_url=BASE_URL) as second:
        await make_user(alchemy, "deputy@example.com", UserRole.ADMIN)
        await sign_in(second, "deputy@example.com")
        response = await submit(second, "/admin/catalog-csv/import", form)
        assert response.status_code == 400 and "another admin" in text_of(response.text)
    assert await snapshot(alchemy) == before


async def test_unusable_uploads_are_refused_with_a_reason(admin):
    for content, status, message in (
        (b"", 422, "This is not a catalog CSV: line 1: the file is empty"),
        (b"just,some,columns\n1,2,3\n", 422, "missing column(s): name, slug"),
        ("name,slug\n\xe9".encode("latin-1"), 422, "not UTF-8"),
    ):
        response = await preview(admin, content)
        assert response.status_code == status, content
        assert message in text_of(response.text), content


def sample_catalog(shared: Path, folder: Path, every: int = 5) -> int:
    """A catalog folder with every ``every``-th product of the shared catalog (and its photos, linked)."""
    rows = list(csv.reader(io.StringIO((shared / "products.csv").read_text(encoding="utf-8"))))
    products: list[list[list[str]]] = []
    for row in rows[1:]:
        if row[0].strip():
            products.append([])
        products[-1].append(row)
    chosen = [product for index, product in enumerate(products) if index % every == 0]
    folder.mkdir()
    with (folder / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([rows[0], *[row for product in chosen for row in product]])
    (folder / "images").symlink_to(shared / "images")
    return len(chosen)


async def test_real_catalog_round_trip_with_photos(client, app, alchemy, settings, shared_catalog, tmp_path):
    """Real products and photos imported by the command-line importer, exported and imported again: no change."""
    count = sample_catalog(shared_catalog, tmp_path / "sample")
    first = await import_catalog(alchemy, tmp_path / "sample", settings.shop.media_dir)
    assert first.products_created == count == 11 and first.images_stored == count and first.errors == []
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    await sign_in(client, "boss@example.com")
    content = await export(client)
    assert len(parse_catalog_bytes(content).products) == count
    before = await snapshot(alchemy)

    response = await preview(client, content)
    text = text_of(response.text)
    assert f"0 products to create, 0 to change, {count} unchanged, 0 rows rejected" in text, text[:800]

    # The command-line import of the exported file (photos found among the stored originals) changes nothing.
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "products.csv").write_bytes(content)
    again = await import_catalog(alchemy, folder, settings.shop.media_dir)
    assert not again.changed and again.errors == [] and again.products_unchanged == count, again.summary()
    assert await snapshot(alchemy) == before
    assert rows_of(await export(client)) == rows_of(content)


def parse_catalog_bytes(content: bytes):
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "products.csv"
        path.write_bytes(content)
        return parse_catalog(path)


# --- guards -----------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/admin/categories"),
    ("POST", "/admin/categories"),
    ("GET", "/admin/categories/{id}"),
    ("POST", "/admin/categories/{id}/rename"),
    ("POST", "/admin/categories/{id}/move"),
    ("POST", "/admin/categories/{id}/up"),
    ("POST", "/admin/categories/{id}/down"),
    ("POST", "/admin/categories/{id}/delete"),
    ("GET", "/admin/catalog-csv"),
    ("GET", "/admin/catalog-csv/export"),
    ("POST", "/admin/catalog-csv/preview"),
    ("POST", "/admin/catalog-csv/import"),
    ("GET", "/admin/catalog-csv/preview"),
    ("GET", "/admin/catalog-csv/import"),
]
FORMS = {
    "/admin/categories": {"name": "Sneaky", "parent_id": ""},
    "/rename": {"name": "Sneaky", "slug": ""},
    "/move": {"parent_id": "", "position": ""},
    "/import": {"payload": "x", "token": "y"},
}


def test_every_route_of_these_pages_is_in_the_guard_list(app):
    """The guard test below must not miss a route added later."""
    registered = {
        (method, re.sub(r"\{\w+:int\}", "{id}", route.path))
        for route in app.routes
        if route.path.startswith(("/admin/categories", "/admin/catalog-csv"))
        for method in route.methods
        if method != "OPTIONS"
    }
    assert registered == set(ROUTES)


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
async def test_signed_out_goes_to_sign_in_and_customer_gets_403(client, app, alchemy, skus, method, path):
    url = path.format(id=(await category(alchemy, "photo")).id)
    form = next((data for suffix, data in FORMS.items() if url.endswith(suffix)), {})

    async def call(who, headers):
        if method == "GET":
            return await who.get(url, headers=headers, follow_redirects=False)
        token = await token_of(who)
        files = {"file": ("products.csv", b"name,slug\n", "text/csv")} if url.endswith("/preview") else None
        return await who.post(
            url, data={**form, "_csrf_token": token}, files=files, headers=headers, follow_redirects=False
        )

    # Signed out: sent to sign in (htmx: told to go there), and back here afterwards.
    plain = await call(client, {})
    assert plain.status_code == 303 and plain.headers["location"].startswith("/account/sign-in?next=/admin")
    htmx = await call(client, {"HX-Request": "true"})
    assert htmx.headers.get("hx-redirect", "").startswith("/account/sign-in?next=/admin"), htmx.headers

    # A customer: the 403 page, plain or htmx, and nothing changes.
    before = await snapshot(alchemy)
    async with AsyncTestClient(app=app, base_url=BASE_URL) as customer:
        await make_user(alchemy, "eve@example.com")
        await sign_in(customer, "eve@example.com")
        for headers in ({}, {"HX-Request": "true"}):
            response = await call(customer, headers)
            assert response.status_code == 403, response.text[:300]
            assert "This page is for administrators" in response.text
            assert "products.csv" not in response.headers.get("content-disposition", "")
    assert await snapshot(alchemy) == before


async def test_a_move_refused_for_a_name_taken_there_says_so_beside_the_new_parent(admin, alchemy):
    made = await submit(admin, "/admin/categories", {"name": "Computers", "slug": "computers-top", "parent_id": ""})
    assert made.status_code == 303
    computers = await category(alchemy, "computers")  # the one under Electronics
    refused = await submit(admin, f"/admin/categories/{computers.id}/move", {"parent_id": ""})
    assert refused.status_code == 422
    message = "There is already a category “Computers” here."
    assert f'<p class="field-error" id="move-parent_id-error">{message}</p>' in refused.text  # not the rename form's
    assert 'id="rename-name-error"' not in refused.text and text_of(refused.text).count(message) == 1
