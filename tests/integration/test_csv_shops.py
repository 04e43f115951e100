"""Issue 16: the catalog CSV's optional ``shop`` column (both engines).

Without the column every new product goes to the default shop (the format is unchanged for a
single-seller shop). With it, each product row names its shop by slug; an unknown shop rejects the
row, and a row cannot move an existing product to another shop. The dry run rejects the same rows.
With more than one shop the export writes the column, so an export imports back unchanged.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from tests.factories import make_user
from webshop.catalog.csv.apply import import_catalog
from webshop.catalog.csv.export import export_catalog, export_columns
from webshop.catalog.csv.parse import COLUMNS, SHOP_COLUMN, parse_catalog
from webshop.catalog.csv.plan import preview_import
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Product, Shop, User, UserRole, Variant
from webshop.shops.schemas import ShopWrite
from webshop.shops.service import ShopService


def _row(name: str, slug: str, sku: str, shop: str | None) -> list[str]:
    cells = [name, slug, "", "", "", "", "", sku, "9.99", "standard", "3", "", "", ""]
    return cells if shop is None else [*cells, shop]


def _write(folder: Path, rows: list[list[str]], *, with_shop: bool) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "images").mkdir(exist_ok=True)
    with (folder / "products.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*COLUMNS, SHOP_COLUMN] if with_shop else COLUMNS)
        writer.writerows(rows)
    return folder


async def _shops_of_products(alchemy: ShopAlchemyConfig) -> dict[str, str]:
    async with alchemy.get_session() as session:
        rows = await session.execute(select(Product.slug, Shop.slug).join(Shop, Shop.id == Product.shop_id))
        return dict(rows.all())


async def test_the_shop_column_places_products_and_refuses_unknown_shops_and_moves(
    alchemy: ShopAlchemyConfig, settings: Settings, tmp_path: Path
) -> None:
    admin_id = await make_user(alchemy, "admin@example.com", UserRole.ADMIN)
    async with write_session(alchemy) as session:
        await ShopService(session=session).create_shop(await session.get(User, admin_id), ShopWrite(name="Shop A"))
    media = settings.shop.media_dir

    plain = _write(tmp_path / "plain", [_row("Kettle", "kettle", "K-1", None)], with_shop=False)
    assert (await import_catalog(alchemy, plain, media)).products_created == 1
    rows = [
        _row("Knife", "knife", "A-1", "shop-a"),
        _row("Spoon", "spoon", "S-1", ""),
        _row("Ghost", "ghost", "G-1", "nowhere"),
        _row("Kettle", "kettle", "K-1", "shop-a"),  # would move the default shop's kettle
    ]
    folder = _write(tmp_path / "shops", rows, with_shop=True)
    async with alchemy.get_session() as session:
        preview = await preview_import(session, parse_catalog(folder / "products.csv"), media_dir=media)
    assert [(e.line, e.reason) for e in preview.rejected] == [
        (4, "shop 'nowhere' does not exist; product skipped"),
        (5, "product 'kettle' belongs to another shop; a product stays in its shop; skipped"),
    ]
    assert preview.products_created == 2

    report = await import_catalog(alchemy, folder, media)
    assert [str(e) for e in report.errors] == [str(e) for e in preview.rejected]
    assert await _shops_of_products(alchemy) == {"kettle": "webshop", "knife": "shop-a", "spoon": "webshop"}

    # With two shops the export names each product's shop, and imports back unchanged.
    async with alchemy.get_session() as session:
        handle = io.StringIO(newline="")
        await export_catalog(session, handle)
    exported = handle.getvalue()
    header, *lines = list(csv.reader(io.StringIO(exported)))
    assert header[-1] == SHOP_COLUMN
    assert {line[1]: line[-1] for line in lines} == {"kettle": "webshop", "knife": "shop-a", "spoon": "webshop"}
    again_folder = tmp_path / "again"
    again_folder.mkdir()
    (again_folder / "products.csv").write_text(exported, encoding="utf-8")
    again = await import_catalog(alchemy, again_folder, media)
    assert not again.changed and again.errors == [], again.summary()


async def test_a_new_product_whose_every_sku_is_another_products_is_skipped_not_left_empty(
    alchemy: ShopAlchemyConfig, settings: Settings, tmp_path: Path
) -> None:
    """A product is never created without a variant: when each SKU of a new product's rows belongs to
    another product, the product is skipped and its row says why, in the dry run and the import alike."""
    media = settings.shop.media_dir
    first_rows = [_row("Kettle", "kettle", "K-1", None), _row("Pan", "pan", "P-1", None)]
    first = _write(tmp_path / "first", first_rows, with_shop=False)
    assert (await import_catalog(alchemy, first, media)).products_created == 2
    rows = [
        _row("Teapot", "teapot", "K-1", None),  # the kettle's SKU: nothing of its own to sell
        ["Mug", "mug", "", "", "", "size", "small", "M-1", "9.99", "standard", "3", "", "", ""],
        ["", "", "", "", "", "", "large", "P-1", "9.99", "standard", "3", "", "", ""],  # a taken SKU of two
    ]
    folder = _write(tmp_path / "second", rows, with_shop=False)
    async with alchemy.get_session() as session:
        preview = await preview_import(session, parse_catalog(folder / "products.csv"), media_dir=media)
    expected = [
        (2, "every sku of 'teapot' ('K-1') belongs to another product; product skipped"),
        (4, "sku 'P-1' belongs to another product; skipped"),
    ]
    assert [(e.line, e.reason) for e in preview.rejected] == expected
    assert (preview.products_created, preview.variants_created) == (1, 1)

    report = await import_catalog(alchemy, folder, media)
    assert [(e.line, e.reason) for e in report.errors] == expected
    assert (report.products_created, report.variants_created) == (1, 1)
    async with alchemy.get_session() as session:
        rows_now = await session.execute(
            select(Product.slug, func.count(Variant.id)).join(Variant).group_by(Product.slug)
        )
        assert dict(rows_now.all()) == {"kettle": 1, "pan": 1, "mug": 1}
        assert await session.scalar(select(Product.id).where(Product.slug == "teapot")) is None


async def test_with_one_shop_the_export_has_no_shop_column(alchemy: ShopAlchemyConfig, skus: Any) -> None:
    async with alchemy.get_session() as session:
        handle = io.StringIO(newline="")
        await export_catalog(session, handle)
    assert tuple(next(csv.reader(io.StringIO(handle.getvalue())))) == export_columns()
    assert SHOP_COLUMN not in export_columns()
