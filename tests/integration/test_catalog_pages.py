"""The catalog as a shopper sees it over HTTP: grid, categories, facets, search, sort, pages, product page."""

from __future__ import annotations

import re


def names(html: str) -> list[str]:
    """Product names in grid order."""
    return re.findall(r'<span class="card-name">([^<]+)</span>', html)


async def test_grid_lists_visible_products_with_price_and_stock(client, skus):
    response = await client.get("/")
    assert response.status_code == 200
    assert names(response.text) == [
        "Alpha Laptop",
        "Beta Camera",
        "Delta Chair",
        "Epsilon Plant",
        "Gamma Camera",
        "Zeta Shoe",
    ]
    assert "$1,299.00 – $1,499.00" in response.text  # price range of a multi-variant product
    assert "$450.00" in response.text
    assert "6 products" in response.text
    # Gamma Camera's only variant has no stock.
    gamma = response.text.split("Gamma Camera")[1].split("</li>")[0]
    assert "Out of stock" in gamma


async def test_category_includes_subcategories_and_shows_tree(client, skus):
    response = await client.get("/?category=electronics")
    assert names(response.text) == ["Alpha Laptop", "Beta Camera", "Gamma Camera"]
    assert 'aria-current="page"' in response.text
    sub = await client.get("/?category=photo")
    assert names(sub.text) == ["Beta Camera", "Gamma Camera"]


async def test_unknown_category_is_a_404_page(client, skus):
    response = await client.get("/?category=no-such-thing")
    assert response.status_code == 404
    assert "There is no category" in response.text


async def test_facets_filter_and_count_disjunctively(client, skus):
    response = await client.get("/?brand=Nikon&brand=Canon")
    assert names(response.text) == ["Beta Camera", "Gamma Camera"]
    # Brand counts ignore the brand selection; colour counts respect it.
    assert re.search(r'value="Apple"\s*>\s*<label[^>]*>Apple <span class="count">\(1\)', response.text)
    assert re.search(r'value="Nikon"\s*checked>', response.text)
    assert re.search(r'>black <span class="count">\(2\)', response.text)
    assert re.search(r'>red <span class="count">\(1\)', response.text)
    both = await client.get("/?brand=Nikon&brand=Canon&color=red")
    assert names(both.text) == ["Gamma Camera"]


async def test_search_matches_name_and_description_case_insensitively(client, skus):
    assert names((await client.get("/?q=CAMERA")).text) == ["Beta Camera", "Gamma Camera"]
    assert names((await client.get("/?q=shade")).text) == ["Epsilon Plant"]
    # LIKE wildcards in the query are taken literally.
    assert names((await client.get("/?q=100%25")).text) == ["Epsilon Plant"]
    assert names((await client.get("/?q=%25")).text) == ["Epsilon Plant"]


async def test_search_with_no_match_shows_empty_state(client, skus):
    response = await client.get("/?q=unicorn")
    assert response.status_code == 200
    assert "No products found" in response.text
    assert "Clear search and filters" in response.text


async def test_sort_by_price_and_name(client, skus):
    assert names((await client.get("/?sort=price")).text)[:2] == ["Epsilon Plant", "Delta Chair"]
    assert names((await client.get("/?sort=-price")).text)[0] == "Alpha Laptop"
    assert names((await client.get("/?sort=-name")).text)[0] == "Zeta Shoe"
    # An unknown sort falls back to the default instead of failing.
    assert (await client.get("/?sort=bogus")).status_code == 200


async def test_pagination_has_shareable_links(client, alchemy, skus, settings):

    page_size = settings.shop.page_size
    assert page_size == 12
    from webshop.db.engine import write_session
    from webshop.db.models import Category, Product, Variant

    async with write_session(alchemy) as session:
        category = await session.get(Category, 1)
        for index in range(20):
            product = Product(name=f"Widget {index:02d}", slug=f"widget-{index:02d}", category=category)
            product.variants.append(Variant(sku=f"W-{index:02d}", price=100 + index, stock=1))
            session.add(product)
        await session.commit()
    first = await client.get("/?sort=price")
    assert "26 products" in first.text
    assert "Page 1 of 3" in first.text
    assert 'href="/?sort=price&amp;page=2"' in first.text
    second = await client.get("/?sort=price&page=2")
    assert names(second.text)[0] == "Widget 12"
    # With JavaScript, a page link fetches the results alone (``HX-Trigger`` names the link) and the focus
    # goes to a line saying which page this is; after a search the focus stays in the search box.
    htmx = {"HX-Request": "true", "HX-Target": "catalog-results"}
    turned = await client.get("/?sort=price&page=2", headers={**htmx, "HX-Trigger": "pages-next"})
    assert '<p class="visually-hidden" id="results-page" tabindex="-1" autofocus>Page 2 of 3</p>' in turned.text
    assert '<nav class="pagination" aria-label="Pages" hx-target="#catalog-results">' in turned.text
    assert 'href="/?sort=price&amp;page=3" id="pages-next"' in turned.text
    searched = await client.get("/?sort=price&page=2", headers={**htmx, "HX-Trigger": "catalog-q"})
    assert names(searched.text) == names(turned.text) == names(second.text)
    assert 'id="results-page"' not in searched.text and 'id="results-page"' not in second.text
    third = await client.get("/?sort=price&page=3")
    assert len(names(third.text)) == 2
    beyond = await client.get("/?sort=price&page=9")
    # A page past the last says so, links the last page, and is a 404 (not an empty page to index).
    assert beyond.status_code == 404
    assert "There is no page 9" in beyond.text
    assert 'href="/?sort=price&amp;page=3" id="pages-last"' in beyond.text and ">Last page (3)</a>" in beyond.text
    assert "Page 9 of 3" not in beyond.text
    fragment = await client.get("/?sort=price&page=9", headers={"HX-Request": "true", "HX-Target": "catalog-results"})
    assert fragment.status_code == 404 and "There is no page 9" in fragment.text


async def test_htmx_search_returns_only_the_results_fragment(client, skus):
    response = await client.get("/?q=camera", headers={"HX-Request": "true", "HX-Target": "catalog-results"})
    assert response.status_code == 200
    assert "<html" not in response.text
    assert names(response.text) == ["Beta Camera", "Gamma Camera"]
    assert "HX-Request" in response.headers.get("vary", "")
    # The heading says what is listed: sent out of band with the results, and in the whole page.
    assert '<div id="catalog-heading" hx-swap-oob="innerHTML">Results for “camera”</div>' in response.text
    assert "<title>Search: camera · webshop</title>" in response.text  # htmx puts it in the tab
    full = await client.get("/?q=camera")
    assert "<html" in full.text
    assert '<h1 id="catalog-heading" class="catalog-heading">Results for “camera”</h1>' in full.text


async def test_product_page_shows_variant_picker_and_chosen_variant(client, skus):
    response = await client.get("/products/alpha-laptop")
    assert response.status_code == 200
    assert "<h1>Alpha Laptop</h1>" in response.text
    assert 'id="variant-sku">AL-13<' in response.text  # the in-stock variant is chosen first
    chosen = await client.get("/products/alpha-laptop?opt0=15+inch")
    assert 'id="variant-sku">AL-15<' in chosen.text
    assert "$1,499.00" in chosen.text
    assert "Out of stock" in chosen.text
    fragment = await client.get(
        "/products/alpha-laptop?opt0=15+inch", headers={"HX-Request": "true", "HX-Target": "variant-panel"}
    )
    assert "<html" not in fragment.text
    assert 'id="variant-sku">AL-15<' in fragment.text


async def test_variant_picker_reaches_a_variant_that_combines_with_few_options(client, alchemy, skus):
    from webshop.db.engine import write_session
    from webshop.db.models import Category, Product, Variant

    options = [("13 inch", "8GB"), ("13 inch", "16GB"), ("15 inch", "8GB"), ("15 inch", "16GB"), ("17 inch", "32GB")]
    async with write_session(alchemy) as session:
        product = Product(
            name="Laptop", slug="laptop", category=await session.get(Category, 1), option_groups=["screen", "memory"]
        )
        for position, (screen, memory) in enumerate(options):
            sku = f"LP-{screen[:2]}-{memory}"
            product.variants.append(
                Variant(sku=sku, option_values=[screen, memory], price=1000, stock=3, position=position)
            )
        session.add(product)
        await session.commit()
        ids = {variant.sku: variant.id for variant in product.variants}

    def shown(html: str) -> tuple[str, list[str], str, str]:
        """The SKU shown, the selected options, the picker's ``from`` and the add-to-cart variant id."""
        sku = re.search(r'id="variant-sku">([^<]+)<', html)
        chosen = re.findall(r'<option value="([^"]+)" selected>', html)
        came_from = re.search(r'<input type="hidden" name="from" value="([^"]+)">', html)
        variant_id = re.search(r'name="variant_id" value="(\d+)"', html)
        assert sku and came_from and variant_id
        return sku[1], chosen, came_from[1], variant_id[1]

    seventeen = ("LP-17-32GB", ["17 inch", "32GB"], "LP-17-32GB", str(ids["LP-17-32GB"]))
    # On 13"/8GB the shopper picks 17 inch (or 32GB): 17"/32GB is shown, selects and cart agree.
    for query in ("opt0=17+inch&opt1=8GB&from=LP-13-8GB", "opt0=13+inch&opt1=32GB&from=LP-13-8GB"):
        assert shown((await client.get(f"/products/laptop?{query}")).text) == seventeen
        fragment = await client.get(
            f"/products/laptop?{query}", headers={"HX-Request": "true", "HX-Target": "variant-panel"}
        )
        assert "<html" not in fragment.text
        assert shown(fragment.text) == seventeen
        assert fragment.headers["HX-Push-Url"] == "/products/laptop?opt0=17%20inch&opt1=32GB"
    # Back to 13 inch from 17"/32GB: 13 inch kept, the first such variant.
    back = await client.get("/products/laptop?opt0=13+inch&opt1=32GB&from=LP-17-32GB")
    assert shown(back.text)[:2] == ("LP-13-8GB", ["13 inch", "8GB"])
    # An old link without ``from``: the most matches, then stock, then list order, as before.
    old = await client.get("/products/laptop?opt0=17+inch&opt1=8GB")
    assert shown(old.text) == ("LP-13-8GB", ["13 inch", "8GB"], "LP-13-8GB", str(ids["LP-13-8GB"]))


async def test_low_stock_is_shown(client, skus):
    response = await client.get("/products/beta-camera")
    assert "Only 3 left" in response.text


async def test_unknown_and_deleted_products_are_404(client, alchemy, skus):
    assert (await client.get("/products/nope")).status_code == 404
    from datetime import UTC, datetime

    from sqlalchemy import update

    from webshop.db.engine import write_session
    from webshop.db.models import Product

    async with write_session(alchemy) as session:
        await session.execute(update(Product).where(Product.slug == "delta-chair").values(deleted_at=datetime.now(UTC)))
        await session.commit()
    response = await client.get("/products/delta-chair")
    assert response.status_code == 404
    assert "Delta Chair" not in (await client.get("/")).text
