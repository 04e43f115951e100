"""How cart, checkout and order lines, order e-mails and the admin category tree read (issue 12).

Lines show the product's photo and link to its page (the current page: an order keeps the name it was
bought under, but follows a renamed slug and stops linking to a product taken out of the shop); a
line's options read "Zeta Shoe (Size 40)"; an admin's parent category counts its subcategories'
products, as the shop lists them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from tests.factories import make_user, seed_catalog
from tests.page_tree import Element, parse
from tests.shopper import add_to_cart, choose_address_and_shipping, place, register, review, sign_in, text_of
from webshop.db.engine import write_session
from webshop.db.models import Category, OutboundEmail, Product, ProductImage, UserRole

SHOE_KEY = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def skus(alchemy) -> dict[str, int]:
    """The small catalog; Zeta Shoe has two photos (the first by position is its thumbnail), Delta Chair none."""
    variant_ids = await seed_catalog(alchemy)
    async with write_session(alchemy) as session:
        shoe = await session.scalar(select(Product).where(Product.slug == "zeta-shoe"))
        for position, key in ((1, "f" * 32), (0, SHOE_KEY)):
            session.add(ProductImage(product_id=shoe.id, key=key, ext="jpg", width=800, height=800, position=position))
        await session.commit()
    return variant_ids


def line(html: str, sku: str) -> Element:
    """The table row of ``sku``'s line."""
    return parse(html).find("tr", data_sku=sku)


def product_link(row: Element) -> tuple[str | None, str | None, str]:
    """``(href, thumbnail src, name)`` of a line's product (href ``None``: not a link)."""
    product = row.find(class_="line-product")
    image = product.find_all("img")
    return (
        product.attrs.get("href") if product.tag == "a" else None,
        image[0].attrs["src"] if image else None,
        product.find("span", class_="line-name").text(),
    )


async def test_cart_and_review_lines_show_the_photo_and_link_to_the_product(client, skus):
    await register(client, "ada@example.com")
    await add_to_cart(client, skus["ZS-40"])
    await add_to_cart(client, skus["DC-1"])
    cart = (await client.get("/cart")).text
    assert product_link(line(cart, "ZS-40")) == ("/products/zeta-shoe", f"/media/{SHOE_KEY}-320.webp", "Zeta Shoe")
    assert product_link(line(cart, "DC-1")) == ("/products/delta-chair", None, "Delta Chair")
    assert line(cart, "ZS-40").find("img").attrs["alt"] == ""  # the name next to it says what it shows
    await choose_address_and_shipping(client)
    page = (await client.get("/checkout/review")).text
    assert product_link(line(page, "ZS-40")) == ("/products/zeta-shoe", f"/media/{SHOE_KEY}-320.webp", "Zeta Shoe")
    assert product_link(line(page, "DC-1")) == ("/products/delta-chair", None, "Delta Chair")
    assert "Zeta Shoe (Size 40)" in line(page, "ZS-40").text()


async def test_confirmation_and_order_pages_show_photos_and_current_links(client, alchemy, skus):
    await register(client, "ada@example.com")
    await add_to_cart(client, skus["ZS-40"])
    await add_to_cart(client, skus["DC-1"])
    await choose_address_and_shipping(client)
    placed = await place(client, await review(client))
    confirmation = (await client.get(placed.headers["location"])).text
    assert "is placed and paid" in confirmation
    assert product_link(line(confirmation, "ZS-40")) == (
        "/products/zeta-shoe",
        f"/media/{SHOE_KEY}-320.webp",
        "Zeta Shoe",
    )
    assert product_link(line(confirmation, "DC-1")) == ("/products/delta-chair", None, "Delta Chair")
    order_url = placed.headers["location"].split("?")[0]

    history = parse((await client.get("/orders")).text).find("tbody")
    image = history.find("img", class_="thumb")
    assert (image.attrs["src"], image.attrs["alt"]) == (f"/media/{SHOE_KEY}-320.webp", "Zeta Shoe")
    assert image.parent.tag == "a" and image.parent.attrs["href"] == "/products/zeta-shoe"
    assert history.find("a", href="/products/delta-chair").text() == "Delta Chair"  # no photo: its name

    # The shoe's page moves, the chair leaves the shop: the order keeps its names, links follow.
    async with write_session(alchemy) as session:
        await session.execute(update(Product).where(Product.slug == "zeta-shoe").values(slug="zeta-running-shoe"))
        await session.execute(update(Product).where(Product.slug == "delta-chair").values(is_active=False))
        await session.commit()
    page = (await client.get(order_url)).text
    assert product_link(line(page, "ZS-40")) == (
        "/products/zeta-running-shoe",
        f"/media/{SHOE_KEY}-320.webp",
        "Zeta Shoe",
    )
    assert product_link(line(page, "DC-1")) == (None, None, "Delta Chair")
    assert (await client.get("/products/zeta-running-shoe")).status_code == 200


async def test_a_line_reads_name_then_options_in_brackets(client, alchemy, skus):
    await register(client, "ada@example.com")
    await add_to_cart(client, skus["ZS-40"])
    await choose_address_and_shipping(client)
    placed = await place(client, await review(client))
    order_page = (await client.get(placed.headers["location"].split("?")[0])).text
    assert "Zeta Shoe (Size 40) SKU ZS-40" in line(order_page, "ZS-40").text()
    assert "Zeta Shoe(" not in parse(order_page).find("main").text()
    async with alchemy.get_session() as session:
        mail = await session.scalar(select(OutboundEmail).where(OutboundEmail.kind == "order_confirmation"))
    assert "1 × Zeta Shoe (Size 40), SKU ZS-40: $99.99" in mail.text_body
    assert "Zeta Shoe (Size 40)" in text_of(mail.html_body)


async def test_admin_category_counts_include_subcategories(client, alchemy, skus):
    await make_user(alchemy, "owner@example.com", UserRole.ADMIN, name="Owner")
    await sign_in(client, "owner@example.com")
    async with write_session(alchemy) as session:  # a deleted camera still counts, as "deleted"
        await session.execute(
            update(Product).where(Product.slug == "gamma-camera").values(deleted_at=datetime.now(UTC))
        )
        await session.commit()
    page = await client.get("/admin/categories")
    rows = {
        row.find("strong").text(): row.find("span", class_="muted").text()
        for row in parse(page.text).find_all("div", class_="category-row")
    }
    assert rows == {
        "Electronics": "3 products (1 deleted)",
        "Computers": "1 product",
        "Photo": "2 products (1 deleted)",
        "Home & Garden": "2 products",
        "Furniture": "1 product",
        "Plants": "1 product",
        "Sports & Outdoor": "1 product",
        "Footwear": "1 product",
    }
    # The shop lists the same products under the parent (the deleted one left out).
    assert "2 products" in text_of((await client.get("/?category=electronics")).text)
    async with alchemy.get_session() as session:
        category = {c.slug: c.id for c in await session.scalars(select(Category))}
    leaf = text_of((await client.get(f"/admin/categories/{category['computers']}")).text)
    assert "Products 1 Rename" in leaf
    parent = text_of((await client.get(f"/admin/categories/{category['electronics']}")).text)
    assert "Products 3 (1 of them deleted), with its subcategories; 0 directly in it" in parent
