"""The import's dry run (``preview_import``): what an import of a parsed catalog would create, change
and leave alone, product by product, without writing anything.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webshop.db.in_lists import chunks
from webshop.db.models import Category, Product, Variant
from webshop.media import content_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from sqlalchemy.ext.asyncio import AsyncSession

from webshop.catalog.csv.apply import (
    ImportCounts,
    _product_facets,
    stored_asset,
    without_variants,
)
from webshop.catalog.csv.export import (
    format_major,
)
from webshop.catalog.csv.parse import (
    IMAGES_DIR,
    ParsedCatalog,
    ProductRow,
    RowError,
    VariantRow,
)
from webshop.catalog.csv.sellers import EVERY_SHOP, ImportShops, moves_shop, resolve_shops
from webshop.catalog.csv.spelling import respell_facets

# --------------------------------------------------------------------------------------------- dry run


@dataclass
class PlannedProduct:
    """One product an import would create or change.

    Attributes:
        line: Line number of its product row.
        slug: Its slug.
        name: Its name as in the file.
        changes: What would change, in words (``"price of L-13: 1299.00 → 1399.00"``); for a new
            product, what it would be created with.
    """

    line: int
    slug: str
    name: str
    changes: list[str] = field(default_factory=list)


@dataclass
class ImportPreview(ImportCounts):
    """What ``import_catalog`` would do with a parsed file, worked out without writing anything.

    The counters mean the same as ``ImportReport``'s, so a preview can be compared with the report of
    the import that follows it.

    Attributes:
        created: Products that would be created, in file order.
        changed: Existing products that would change (their own fields, facets, photos or variants).
        unchanged: Number of products in the file that would not change.
        rejected: Rows that would be skipped or imported incompletely, in line order.
        notices: Rows that would import with a change worth knowing (a repeated SKU renamed).
        categories: Category paths that would be created (``"Electronics > Audio"``).
    """

    created: list[PlannedProduct] = field(default_factory=list)
    changed: list[PlannedProduct] = field(default_factory=list)
    unchanged: int = 0
    rejected: list[RowError] = field(default_factory=list)
    notices: list[RowError] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        """True when the import would write anything."""
        return bool(self.created or self.changed or self.categories)


async def preview_import(
    session: AsyncSession,
    parsed: ParsedCatalog,
    *,
    media_dir: Path,
    images_dir: Path | None = None,
    currency: str = "USD",
    shops: ImportShops = EVERY_SHOP,
) -> ImportPreview:
    """Work out what ``import_catalog`` would create, change and reject, without writing anything.

    Follows ``import_catalog``'s rules (see the module docstring): products by slug, variants by SKU
    (never their stock), categories by their path of names, photos by content key. Photos are not
    decoded: a file in ``images_dir`` counts as its content key, one named like a stored original
    (``stored_asset``) as that image; a missing one is rejected as the import would report it.

    Args:
        session: A session to read with (nothing is added to it).
        parsed: ``parse_catalog``'s result; its errors and notices are carried over.
        media_dir: The shop's media directory.
        images_dir: The catalog's ``images/`` folder, or ``None`` (a CSV uploaded on its own).
        currency: The currency the import would give variants.
        shops: Whose import it would be (see ``import_catalog``).

    Returns:
        The preview; ``rejected`` holds the parser's errors and the import's own (missing photos,
        SKUs that belong to another product) in line order.
    """
    preview = ImportPreview(rejected=list(parsed.errors), notices=list(parsed.notices))
    rows, shop_ids = await resolve_shops(session, parsed.products, preview.rejected, shops)
    await respell_facets(session, rows, shop_ids, shops)
    category_ids = await _preview_categories(session, parsed.category_paths, preview)
    products, variants = await _stored(session, rows)
    image_keys: dict[str, str | None] = {}

    def key_of(name: str) -> str | None:
        if name not in image_keys:
            image_keys[name] = _preview_image_key(name, images_dir, media_dir)
        return image_keys[name]

    for row in rows:
        existing = products.get(row.slug)
        if existing is not None and (moved := moves_shop(row, existing, shop_ids, shops)) is not None:
            preview.rejected.append(moved)
            continue
        if existing is None and (empty := without_variants(row, variants)) is not None:
            preview.rejected.append(empty)
            continue
        keys: list[str] = []
        for name in row.assets:
            key = key_of(name)
            if key is None:
                where = f"{IMAGES_DIR}/" if images_dir is not None else "the upload (upload photos on the product page)"
                preview.rejected.append(RowError(row.line, f"image {name!r} not found in {where}; imported without it"))
            elif key not in keys:
                keys.append(key)
        category_id = category_ids.get(tuple(row.categories)) if row.categories else None
        if existing is None:
            _preview_new(preview, row, keys, variants)
        else:
            _preview_existing(preview, row, existing, category_id, keys, variants, currency)
    preview.rejected.sort(key=lambda error: error.line)
    return preview


async def _preview_categories(
    session: AsyncSession, paths: Iterable[tuple[str, ...]], preview: ImportPreview
) -> dict[tuple[str, ...], int | None]:
    """The id of each category path (a path of names, parents first) that exists, ``None`` for one the
    import would create, which joins ``preview.categories`` (``Shoes > Running``) and its count."""
    existing = {(c.parent_id, c.name): c.id for c in await session.scalars(select(Category))}
    category_ids: dict[tuple[str, ...], int | None] = {}
    for path in paths:
        parent_id = category_ids.get(path[:-1]) if len(path) > 1 else None
        found = existing.get((parent_id, path[-1])) if (len(path) == 1 or parent_id) else None
        category_ids[path] = found
        if found is None:
            preview.categories.append(" > ".join(path))
    preview.categories_created = len(preview.categories)
    return category_ids


async def _stored(session: AsyncSession, rows: Sequence[ProductRow]) -> tuple[dict[str, Product], dict[str, Variant]]:
    """The stored products the rows name (by slug, with their facets and images) and the stored variants
    of their SKUs (by SKU), read in chunks of ids (``webshop.db.in_lists.chunks``)."""
    products: dict[str, Product] = {}
    variants: dict[str, Variant] = {}
    for chunk in chunks([row.slug for row in rows]):
        for product in await session.scalars(
            select(Product)
            .where(Product.slug.in_(chunk))
            .options(selectinload(Product.facets), selectinload(Product.images))
        ):
            products[product.slug] = product
    for chunk in chunks([variant.sku for row in rows for variant in row.variants]):
        for variant in await session.scalars(select(Variant).where(Variant.sku.in_(chunk))):
            variants[variant.sku] = variant
    return products, variants


def _preview_image_key(name: str, images_dir: Path | None, media_dir: Path) -> str | None:
    """The content key an asset would be stored under, or ``None`` when the import would not find it."""
    if images_dir is not None:
        with contextlib.suppress(OSError):
            return content_key((images_dir / name).read_bytes())
    stored = stored_asset(media_dir, name)
    return stored.key if stored is not None else None


def describe_row(
    row: ProductRow,
    product: Product | None,
    category_id: int | None,
    keys: list[str],
    variants: dict[str, Variant],
    currency: str,
) -> list[str]:
    """What importing ``row`` creates (``product`` None) or changes in ``product``, in the words of the
    preview (``"AL-13: price 1299.00 → 1199.00"``); empty when it changes nothing. The import's audit
    events use it, so they say what the admin confirmed in the dry run."""
    scratch = ImportPreview()
    if product is None:
        _preview_new(scratch, row, keys, variants)
    else:
        _preview_existing(scratch, row, product, category_id, keys, variants, currency)
    planned = scratch.created or scratch.changed
    return planned[0].changes if planned else []


def _preview_new(preview: ImportPreview, row: ProductRow, keys: list[str], variants: dict[str, Variant]) -> None:
    planned = PlannedProduct(row.line, row.slug, row.name)
    kept = []
    for variant in row.variants:
        if variant.sku in variants:
            preview.rejected.append(RowError(variant.line, f"sku {variant.sku!r} belongs to another product; skipped"))
        else:
            kept.append(variant.sku)
    planned.changes.append(f"{len(kept)} variant(s): {', '.join(kept)}" if kept else "no variants")
    if row.categories:
        planned.changes.append("category " + " > ".join(row.categories))
    if keys:
        planned.changes.append(f"{len(keys)} photo(s)")
    preview.created.append(planned)
    preview.products_created += 1
    preview.variants_created += len(kept)
    preview.images_stored += len(keys)


def _preview_existing(
    preview: ImportPreview,
    row: ProductRow,
    product: Product,
    category_id: int | None,
    keys: list[str],
    variants: dict[str, Variant],
    currency: str,
) -> None:
    """Mirror ``_update_product`` and ``_update_variant`` on ``product`` without touching it."""
    planned = PlannedProduct(row.line, row.slug, row.name)
    for label, before, after in (
        ("name", product.name, row.name),
        ("description", product.description, row.description),
        ("option groups", list(product.option_groups or []), list(row.option_groups)),
    ):
        if before != after:
            shown = (
                (f"“{_short(str(before))}” → “{_short(str(after))}”")
                if isinstance(before, str)
                else f"{', '.join(before) or '—'} → {', '.join(after) or '—'}"
            )
            planned.changes.append(f"{label}: {shown}")
    if product.category_id != category_id:
        planned.changes.append("category → " + (" > ".join(row.categories) or "none"))
    have = {(f.facet, f.value) for f in product.facets}
    wanted = set(_product_facets(row))
    if have != wanted:
        added = sorted(wanted - have)
        removed = sorted(have - wanted)
        parts = [f"+{f}:{v}" for f, v in added] + [f"−{f}:{v}" for f, v in removed]
        planned.changes.append("facets " + " ".join(parts))
    new_keys = [key for key in keys if key not in {image.key for image in product.images}]
    if new_keys:
        planned.changes.append(f"{len(new_keys)} photo(s) added")
        preview.images_stored += len(new_keys)
    _preview_variants(preview, planned, row, product, variants, currency)
    if planned.changes:
        preview.products_updated += 1
        preview.changed.append(planned)
    else:
        preview.unchanged += 1


def _preview_variants(
    preview: ImportPreview,
    planned: PlannedProduct,
    row: ProductRow,
    product: Product,
    variants: dict[str, Variant],
    currency: str,
) -> None:
    """Mirror ``_upsert_variants`` for an existing product's rows: new variants, changed ones (never
    stock), and SKUs that belong to another product (rejected)."""
    for variant_row in row.variants:
        variant = variants.get(variant_row.sku)
        if variant is None:
            planned.changes.append(f"new variant {variant_row.sku}")
            preview.variants_created += 1
            continue
        if variant.product_id != product.id:
            preview.rejected.append(
                RowError(variant_row.line, f"sku {variant_row.sku!r} belongs to another product; skipped")
            )
            continue
        if variant_changes := _variant_changes(variant, variant_row, currency):
            planned.changes.append(f"{variant_row.sku}: " + ", ".join(variant_changes))
            preview.variants_updated += 1


def _variant_changes(variant: Variant, row: VariantRow, currency: str) -> list[str]:
    """What importing ``row`` changes in ``variant``, as the preview says it (``"price 10.00 → 12.00"``)."""
    changes = []
    if variant.price != row.price:
        changes.append(f"price {format_major(variant.price, currency)} → {format_major(row.price, currency)}")
    if list(variant.option_values or []) != list(row.option_values):
        changes.append(f"options {' / '.join(variant.option_values or [])} → {' / '.join(row.option_values)}")
    if variant.tax_category != row.tax_category:
        changes.append(f"tax category {variant.tax_category} → {row.tax_category}")
    if variant.currency != currency:
        changes.append(f"currency {variant.currency} → {currency}")
    if row.weight_grams is not None and variant.weight_grams != row.weight_grams:
        changes.append(f"weight {variant.weight_grams} g → {row.weight_grams} g")
    if row.low_stock_threshold is not None and variant.low_stock_threshold != row.low_stock_threshold:
        changes.append(f"low-stock threshold {variant.low_stock_threshold} → {row.low_stock_threshold}")
    return changes


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
