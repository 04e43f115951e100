"""Download links download, with JavaScript on: htmx's boost must not fetch the file into the page.

``hx-boost`` on ``<body>`` turns every link into an htmx request that swaps the answer into the page;
a CSV answer used to replace the admin page with raw text. Download links opt out (``hx-boost="false"``)
and carry ``download``.
"""

from __future__ import annotations

from playwright.sync_api import Page, expect


def test_every_download_link_opts_out_of_boost(admin_page: Page) -> None:
    page = admin_page
    page.goto("/admin/catalog-csv")
    links = page.locator("a[download]")
    expect(links).not_to_have_count(0)
    for index in range(links.count()):
        expect(links.nth(index)).to_have_attribute("hx-boost", "false")


def test_download_products_csv_downloads_and_keeps_the_page(admin_page: Page) -> None:
    page = admin_page
    page.goto("/admin")
    page.get_by_role("link", name="Import/export").first.click()
    heading = page.get_by_role("heading", name="Catalog import and export", level=1)
    expect(heading).to_be_visible()
    page.evaluate("window.__marker = 1")
    url = page.url

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download products.csv").click()
    download = download_info.value
    assert download.suggested_filename == "products.csv"
    path = download.path()
    text = path.read_text(encoding="utf-8-sig")
    assert text.splitlines()[0].replace(" ", "").startswith("name,slug,"), text[:200]
    assert "ultraboost-running-shoe" in text

    # The admin page is still there: not replaced by the CSV text, not reloaded.
    expect(heading).to_be_visible()
    assert page.url == url
    assert page.evaluate("window.__marker") == 1
    expect(page.locator("body")).not_to_contain_text("name,slug,")
