"""``webshop import-catalog`` through the real command line, on SQLite and PostgreSQL.

The real demo catalog (``/work/shared/catalog``: 54 products, 88 variants, 54 photos) is imported
into a fresh database: what the operator reads, what lands in the database and the media folder,
and that a second run changes nothing. A small broken catalog shows how bad rows are reported, and
a wrong path gives a one-line error instead of a traceback.
"""

from __future__ import annotations

import csv
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from tests.conftest import SHARED_CATALOG
from tests.live import run_cli, shop_env
from webshop.catalog.csv.parse import COLUMNS
from webshop.db.engine import ShopAlchemyConfig
from webshop.db.models import Category, Product, ProductFacet, ProductImage, StockMovement, Variant
from webshop.media import IMAGE_WIDTHS
from webshop.stock.service import find_ledger_mismatches

needs_real_catalog = pytest.mark.usefixtures("shared_catalog")
ROW_ERROR = re.compile(r"^line (\d+): (.+)$", re.MULTILINE)
SUMMARY = re.compile(r"^products: .*; errors: \d+$", re.MULTILINE)


def import_catalog(db_url: str, workdir: Path, path: Path | str, *options: str) -> subprocess.CompletedProcess[str]:
    """Run ``webshop import-catalog [OPTIONS] PATH`` and print how long it took (see ``pytest -s``)."""
    started = time.monotonic()
    result = run_cli(["import-catalog", *options, str(path)], shop_env(db_url, workdir), workdir)
    print(f"import-catalog {path} on {db_url.split('+')[0]}: {time.monotonic() - started:.2f}s")
    assert "Traceback" not in result.stderr, result.stderr
    return result


def summary(result: subprocess.CompletedProcess[str]) -> str:
    """The one summary line the import prints on stdout."""
    lines = SUMMARY.findall(result.stdout)
    assert len(lines) == 1, result.stdout
    return lines[0]


def reported_rows(result: subprocess.CompletedProcess[str]) -> list[tuple[int, str]]:
    """``[(line number, reason)]`` of the rejected rows the import printed on stderr."""
    return [(int(line), reason) for line, reason in ROW_ERROR.findall(result.stderr)]


async def database_state(alchemy: ShopAlchemyConfig) -> dict[str, list[Any]]:
    """Every imported row with its update time, in a form that compares with ==."""
    queries = {
        "categories": select(Category.slug, Category.parent_id, Category.updated_at).order_by(Category.id),
        "products": select(Product.slug, Product.name, Product.category_id, Product.updated_at).order_by(Product.id),
        "variants": select(Variant.sku, Variant.price, Variant.stock, Variant.updated_at).order_by(Variant.id),
        "facets": select(ProductFacet.product_id, ProductFacet.facet, ProductFacet.value).order_by(ProductFacet.id),
        "images": select(ProductImage.product_id, ProductImage.key, ProductImage.updated_at).order_by(ProductImage.id),
        "movements": select(StockMovement.variant_id, StockMovement.delta).order_by(StockMovement.id),
    }
    async with alchemy.get_session() as session:
        return {name: [tuple(row) for row in await session.execute(query)] for name, query in queries.items()}


def media_files(media_dir: Path) -> dict[str, int]:
    """``{file name: modification time}`` of the media folder."""
    return {path.name: path.stat().st_mtime_ns for path in sorted(media_dir.iterdir())}


async def assert_ledger_consistent(alchemy: ShopAlchemyConfig) -> None:
    async with alchemy.get_session() as session:
        assert await find_ledger_mismatches(session) == []


@needs_real_catalog
async def test_real_catalog_imports_completely_and_a_second_run_changes_nothing(
    db_url: str, alchemy: ShopAlchemyConfig, tmp_path: Path
) -> None:
    media_dir = tmp_path / "media"

    first = import_catalog(db_url, tmp_path, SHARED_CATALOG)
    assert first.returncode == 0, first.stderr
    assert summary(first) == (
        "products: 54 created, 0 updated, 0 unchanged; variants: 88 created, 0 updated; "
        "images: 54 attached; categories: 9 created; errors: 0"
    )
    assert reported_rows(first) == []

    async with alchemy.get_session() as session:
        categories = list(await session.scalars(select(Category)))
        products = list(await session.scalars(select(Product)))
        variants = list(await session.scalars(select(Variant)))
        images = list(await session.scalars(select(ProductImage)))
        movements = await session.scalar(select(func.count()).select_from(StockMovement))
        chair_skus = set(
            await session.scalars(select(Variant.sku).join(Product).where(Product.slug == "modern-cafe-chair"))
        )
        brands = set(await session.scalars(select(ProductFacet.value).where(ProductFacet.facet == "brand")))
    assert (len(products), len(variants)) == (54, 88)

    # Two-level tree: 3 top-level categories, 6 subcategories; every product sits in a subcategory.
    by_id = {category.id: category for category in categories}
    tree: dict[str, set[str]] = {c.name: set() for c in categories if c.parent_id is None}
    for category in categories:
        if category.parent_id is not None:
            assert by_id[category.parent_id].parent_id is None, f"{category.name} is deeper than two levels"
            tree[by_id[category.parent_id].name].add(category.name)
    assert tree == {
        "Electronics": {"Computers", "Photo"},
        "Home & Garden": {"Furniture", "Plants"},
        "Sports & Outdoor": {"Equipment", "Footwear"},
    }
    per_subcategory: dict[str, int] = {}
    for product in products:
        assert product.category_id is not None, product.slug
        per_subcategory[by_id[product.category_id].name] = per_subcategory.get(by_id[product.category_id].name, 0) + 1
    assert per_subcategory == {"Computers": 11, "Photo": 9, "Furniture": 11, "Plants": 9, "Equipment": 8, "Footwear": 6}

    # Quirks: the chair's repeated SKU made unique per colour, the misspelt brand corrected.
    assert chair_skus == {"404.038.96-mustard", "404.038.96-mint", "404.038.96-pearl"}
    assert "Nikon" in brands
    assert "Nikkon" not in brands

    # Stock: 100 each, one import movement each, ledger consistent (also as the operator checks it).
    assert {variant.stock for variant in variants} == {100}
    assert movements == 88
    await assert_ledger_consistent(alchemy)
    check = run_cli(["check-stock"], shop_env(db_url, tmp_path), tmp_path)
    assert check.returncode == 0, check.stderr
    assert "stock ledger consistent" in check.stdout

    # Images: one per product, the original and a WebP derivative per width in the media folder.
    assert sorted(image.product_id for image in images) == sorted(product.id for product in products)
    for image in images:
        assert (media_dir / f"{image.key}.{image.ext}").is_file()
        for width in IMAGE_WIDTHS:
            with Image.open(media_dir / f"{image.key}-{width}.webp") as derivative:
                assert derivative.format == "WEBP"
                assert derivative.width == min(width, image.width)
    assert len(list(media_dir.iterdir())) == 54 * (1 + len(IMAGE_WIDTHS))

    before, files_before = await database_state(alchemy), media_files(media_dir)
    second = import_catalog(db_url, tmp_path, SHARED_CATALOG)
    assert second.returncode == 0, second.stderr
    assert summary(second) == (
        "products: 0 created, 0 updated, 54 unchanged; variants: 0 created, 0 updated; "
        "images: 0 attached; categories: 0 created; errors: 0"
    )
    assert await database_state(alchemy) == before
    assert media_files(media_dir) == files_before


def write_catalog(catalog: Path, rows: list[list[str]]) -> Path:
    """Write ``catalog/products.csv`` (header on line 1, then ``rows`` from line 2) and ``catalog/images/``."""
    (catalog / "images").mkdir(parents=True, exist_ok=True)
    with (catalog / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return catalog


def row(
    name: str = "",
    slug: str = "",
    *,
    description: str = "",
    assets: str = "",
    facets: str = "",
    groups: str = "",
    values: str = "",
    sku: str,
    price: str,
    stock: str = "10",
    variant_facets: str = "",
) -> list[str]:
    """One CSV row in the import format's 14 columns."""
    return [
        name,
        slug,
        description,
        assets,
        facets,
        groups,
        values,
        sku,
        price,
        "standard",
        stock,
        "",
        "",
        variant_facets,
    ]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_sku_repeated_within_a_product_is_reported_with_its_lines(db_url: str, tmp_path: Path) -> None:
    chair = "category:Home|category:Furniture"
    catalog = write_catalog(
        tmp_path / "catalog",
        [
            row(
                "Modern Cafe Chair",
                "modern-cafe-chair",
                facets=chair,
                groups="color",
                values="mustard",
                sku="404.038.96",
                price="120.00",
                variant_facets="color:yellow",
            ),
            row(values="mint", sku="404.038.96", price="120.00", variant_facets="color:green"),
            row(values="pearl", sku="404.038.96", price="120.00", variant_facets="color:white"),
        ],
    )

    result = import_catalog(db_url, tmp_path, catalog, "--no-progress")

    output = result.stdout + result.stderr
    for line in (3, 4):
        assert re.search(rf"line {line}\b.*404\.038\.96", output), output


def _write_image(path: Path, image_format: str, color: str) -> None:
    Image.new("RGB", (480, 360), color).save(path, image_format)


def broken_catalog(root: Path) -> Path:
    """A catalog with three good products and four bad rows (lines 4 to 7)."""
    home = "category:Home|category:Decor"
    catalog = write_catalog(
        root / "broken-catalog",
        [
            row(
                "Good Lamp",
                "good-lamp",
                description="Warm, bright.",
                assets="lamp.jpg",
                facets="category:Home|category:Lighting",
                groups="color",
                values="red",
                sku="GL-RED",
                price="19.99",
                stock="5",
            ),
            row(values="blue", sku="GL-BLUE", price="19.99", stock="3"),
            row(values="green", sku="GL-GREEN", price="abc", stock="4"),  # 4: bad price on a variant row
            row(
                "Bad Price Vase",
                "bad-price-vase",
                facets="category:Garden|category:Pots",
                sku="BPV-1",
                price="12.9.9",
                stock="2",
            ),  # 5: bad price on a product row
            row("", "nameless-chair", facets=home, sku="NC-1", price="45.00", stock="1"),  # 6: no name
            row(
                "Broken Photo Frame",
                "broken-photo-frame",
                assets="not-an-image.jpg",
                facets=home,
                sku="BPF-1",
                price="9.50",
                stock="7",
            ),  # 7: its image is a text file
            row("Plain Mug", "plain-mug", assets="mug.png", sku="PM-1", price="4.99", stock="0"),
        ],
    )
    _write_image(catalog / "images" / "lamp.jpg", "JPEG", "orange")
    _write_image(catalog / "images" / "mug.png", "PNG", "teal")
    (catalog / "images" / "not-an-image.jpg").write_text("this is a text file, not a photo\n")
    return catalog


async def test_broken_catalog_imports_the_good_rows_and_reports_each_bad_one(
    db_url: str, alchemy: ShopAlchemyConfig, tmp_path: Path
) -> None:
    catalog = broken_catalog(tmp_path)

    result = import_catalog(db_url, tmp_path, catalog, "--no-progress")

    assert result.returncode == 1, "the CLI exits 1 when any row was reported"
    assert summary(result) == (
        "products: 3 created, 0 updated, 0 unchanged; variants: 4 created, 0 updated; "
        "images: 2 attached; categories: 3 created; errors: 4"
    )
    rows = reported_rows(result)
    assert [line for line, _reason in rows] == [4, 5, 6, 7]
    reasons = dict(rows)
    assert reasons[4].startswith("price 'abc' is not an amount")
    assert reasons[5].startswith("price '12.9.9' is not an amount")
    assert reasons[6].startswith("name is missing")
    assert reasons[7] == "image 'not-an-image.jpg' rejected: not an image; imported without it"

    async with alchemy.get_session() as session:
        products = {p.slug: p for p in await session.scalars(select(Product))}
        skus = {sku: stock for sku, stock in await session.execute(select(Variant.sku, Variant.stock))}
        category_names = set(await session.scalars(select(Category.name)))
        counts = await session.execute(select(ProductImage.product_id, func.count()).group_by(ProductImage.product_id))
        image_counts = {product_id: count for product_id, count in counts}
    assert set(products) == {"good-lamp", "broken-photo-frame", "plain-mug"}
    assert skus == {"GL-RED": 5, "GL-BLUE": 3, "BPF-1": 7, "PM-1": 0}
    assert category_names == {"Home", "Lighting", "Decor"}
    assert image_counts == {products["good-lamp"].id: 1, products["plain-mug"].id: 1}
    assert len(list((tmp_path / "media").glob("*.webp"))) == 2 * len(IMAGE_WIDTHS)
    await assert_ledger_consistent(alchemy)

    again = import_catalog(db_url, tmp_path, catalog, "--no-progress")
    assert again.returncode == 1
    assert summary(again) == (
        "products: 0 created, 0 updated, 3 unchanged; variants: 0 created, 0 updated; "
        "images: 0 attached; categories: 0 created; errors: 4"
    )
    assert [line for line, _reason in reported_rows(again)] == [4, 5, 6, 7]


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_missing_catalog_folder_is_a_one_line_error(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"

    result = import_catalog(db_url, tmp_path, "/nonexistent")

    assert result.returncode != 0
    assert _last_line(result.stderr) == "Error: Invalid value for 'PATH': Directory '/nonexistent' does not exist."


def test_folder_without_products_csv_is_a_one_line_error(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shop.db'}"
    folder = tmp_path / "not-a-catalog"
    folder.mkdir()

    result = import_catalog(db_url, tmp_path, folder)

    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"Error: {folder / 'products.csv'} not found: a catalog folder holds products.csv and images/"
    )
