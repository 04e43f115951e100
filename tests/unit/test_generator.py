"""generate_catalog writes a catalog that parse_catalog reads back without errors."""

from __future__ import annotations

from pathlib import Path

from webshop.catalog.csv.parse import parse_catalog
from webshop.catalog.generator import MAX_IMAGE_POOL, generate_catalog


def test_generated_catalog_parses(tmp_path: Path) -> None:
    generate_catalog(tmp_path, 50)
    parsed = parse_catalog(tmp_path / "products.csv")
    assert parsed.errors == []
    assert len(parsed.products) == 50
    subcategories = [path for path in parsed.category_paths if len(path) == 2]
    assert len(subcategories) >= 6
    assert len([path for path in parsed.category_paths if len(path) == 1]) >= 3
    assert any(len(product.variants) > 1 for product in parsed.products)
    assert len({product.slug for product in parsed.products}) == 50
    for product in parsed.products:
        assert len(product.assets) == 1
        assert (tmp_path / "images" / product.assets[0]).is_file()
        assert all(variant.price > 0 for variant in product.variants)


def test_demo_flavour(tmp_path: Path) -> None:
    generate_catalog(tmp_path, 48, demo=True)
    parsed = parse_catalog(tmp_path / "products.csv")
    assert parsed.errors == []
    assert len({product.name for product in parsed.products}) == 48
    assert len([path for path in parsed.category_paths if len(path) == 2]) >= 6
    assert sum(len(product.variants) > 1 for product in parsed.products) >= 12
    assert not any(character.isdigit() for product in parsed.products for character in product.name)


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    generate_catalog(tmp_path / "a", 30, seed=5)
    generate_catalog(tmp_path / "b", 30, seed=5)
    generate_catalog(tmp_path / "c", 30, seed=6)
    text = (tmp_path / "a" / "products.csv").read_text()
    assert text == (tmp_path / "b" / "products.csv").read_text()
    assert text != (tmp_path / "c" / "products.csv").read_text()


def test_large_catalog_shares_an_image_pool(tmp_path: Path) -> None:
    generate_catalog(tmp_path, 1000)
    parsed = parse_catalog(tmp_path / "products.csv")
    assert parsed.errors == []
    assert len(parsed.products) == 1000
    images = list((tmp_path / "images").iterdir())
    assert len(images) <= MAX_IMAGE_POOL
    assert {asset for product in parsed.products for asset in product.assets} <= {path.name for path in images}
    stocks = [variant.stock for product in parsed.products for variant in product.variants]
    assert 0 in stocks
    assert max(stocks) <= 100
    with_variants = sum(len(product.variants) > 1 for product in parsed.products)
    assert 150 <= with_variants <= 350  # about a quarter
