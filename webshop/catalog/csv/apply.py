"""Catalog import from Vendure's CSV format (``products.csv`` plus an ``images/`` folder).

Two halves:

* ``parse_catalog`` is pure: it reads the CSV into ``ProductRow``/``VariantRow`` values and a list of
  ``RowError`` (1-based physical line numbers), fixing the known quirks of the demo catalog on the way.
* ``import_catalog`` writes parsed products to the database in batches and stores their images.
  It is idempotent: a second run over the same folder changes nothing and reports everything
  unchanged.

What the importer owns and what it leaves alone:

* Products are matched by slug. Name, description, category, option groups and facets follow the
  CSV (facets not in the CSV are removed). ``is_active``/``deleted_at`` are never touched, and
  nothing is ever deleted: products and variants missing from the CSV stay as they are.
* Variants are matched by SKU. A new variant gets the CSV's stock and an ``import`` stock movement
  in the same transaction. An existing variant gets price, option values, tax category and currency
  from the CSV, and its weight and low-stock threshold where the optional columns give them, but **never
  its stock**: after the first import stock is live shop state (sales,
  cancellations, adjustments, each with its movement), and re-importing must not undo it.
* Images are matched by ``(product, content key)``: new ones are attached, none are removed (an
  admin may have uploaded more).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from webshop.audit.service import AuditService
from webshop.catalog import limits
from webshop.catalog.slugs import free_slug, slugify
from webshop.catalog.summaries import catalog_changed, mark_catalog_changed
from webshop.db.engine import write_session
from webshop.db.models import Category, Product, ProductFacet, ProductImage, User, Variant, WebhookEvent
from webshop.media import ImageRejected, StoredImage, store_image
from webshop.media import _existing as _stored_files  # media's own check that a stored image set is complete
from webshop.stock.service import record_imported_stock
from webshop.webhooks.events import queue_product_events

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.db.engine import ShopAlchemyConfig
from webshop.catalog.csv.parse import (
    _IMAGE_WORKERS,
    _MAX_CATEGORY_SLUG,
    BATCH_SIZE,
    CATEGORY_FACET,
    CSV_FILE,
    IMAGES_DIR,
    ProductRow,
    RowError,
    VariantRow,
    parse_catalog,
)
from webshop.catalog.csv.sellers import EVERY_SHOP, ImportShops, moves_shop, resolve_shops
from webshop.catalog.csv.spelling import respell_batch, respell_facets

# --------------------------------------------------------------------------------------------- import


@dataclass
class ImportCounts:
    """How many rows an import created or changed, by kind: what ``import_catalog`` reports and what
    ``preview_import`` predicts, counted the same way so the two can be compared.

    Attributes:
        products_created / products_updated: Products by outcome (a product counts as updated when a
            field, facet or image of it changed, or one of its variants was added or changed).
        variants_created / variants_updated: Variants by outcome (unchanged ones are not counted).
        images_stored: Images newly attached to products.
        categories_created: New categories.
    """

    products_created: int = 0
    products_updated: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    images_stored: int = 0
    categories_created: int = 0


@dataclass
class ImportReport(ImportCounts):
    """What ``import_catalog`` did.

    Attributes:
        products_unchanged: Products in the file that did not change (the other counters: ``ImportCounts``).
        errors: Rows that were skipped or imported incompletely, in line order.
        notices: Rows imported with a change the operator should know of (a repeated SKU renamed).
    """

    products_unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    notices: list[RowError] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """True when the import wrote anything."""
        return bool(
            self.products_created
            or self.products_updated
            or self.variants_created
            or self.variants_updated
            or self.images_stored
            or self.categories_created
        )

    def summary(self) -> str:
        """One line for people, e.g. ``products: 54 created, 0 updated, 0 unchanged; ...``."""
        return (
            f"products: {self.products_created} created, {self.products_updated} updated, "
            f"{self.products_unchanged} unchanged; variants: {self.variants_created} created, "
            f"{self.variants_updated} updated; images: {self.images_stored} attached; "
            f"categories: {self.categories_created} created; errors: {len(self.errors)}"
        )


async def import_catalog(
    config: ShopAlchemyConfig,
    catalog_dir: Path,
    media_dir: Path,
    *,
    on_progress: Callable[[int, int], None] | None = None,
    currency: str = "USD",
    tax_categories: Collection[str] | None = None,
    batch_size: int = BATCH_SIZE,
    actor: User | None = None,
    shops: ImportShops = EVERY_SHOP,
) -> ImportReport:
    """Import ``catalog_dir/products.csv`` and its ``images/`` into the database and ``media_dir``.

    Idempotent: running it again over the same folder changes nothing. See the module docstring for
    what is updated on a re-import (never stock) and what is never touched. Products are written in
    batches of ``batch_size``, each batch in one transaction with bulk look-ups, so memory stays
    bounded; images are decoded and encoded in worker threads before the batch's transaction starts,
    so the SQLite write lock is not held meanwhile.

    A missing or undecodable image is reported as a ``RowError`` on its product's line and the
    product imports without it; rows the parser rejects are reported and skipped.

    Args:
        config: The app's advanced-alchemy config (``create_alchemy_config``).
        catalog_dir: Folder holding ``products.csv`` and ``images/``.
        media_dir: Where ``store_image`` writes originals and derivatives.
        on_progress: Called after each batch with ``(products done, products in the file)`` (the
            command line draws its progress bar with it).
        currency: ISO 4217 code of the CSV's prices, given to new and updated variants.
        tax_categories: The shop's tax categories (``parse_catalog``); ``None``: any.
        batch_size: Products per transaction.
        actor: Who imports (the admin; ``None`` for the command line), named in the ``product``/
            ``import`` audit event each created or changed product gets in its batch's transaction.
        shops: The shops the importer may write to and where rows without a shop go (a shop member's
            import: ``webshop.catalog.csv.sellers``); every shop by default.

    Returns:
        Counts of what was created, updated and left unchanged, and the row errors.

    Raises:
        FileNotFoundError: ``catalog_dir/products.csv`` does not exist.
        OSError: the media directory cannot be written.
        sqlalchemy.exc.SQLAlchemyError: the database failed; batches committed before stay.
    """
    csv_path = catalog_dir / CSV_FILE
    if not await anyio.Path(csv_path).is_file():
        raise FileNotFoundError(f"{csv_path} not found: a catalog folder holds {CSV_FILE} and {IMAGES_DIR}/")
    parsed = await anyio.to_thread.run_sync(
        functools.partial(parse_catalog, csv_path, currency=currency, tax_categories=tax_categories)
    )
    report = ImportReport(errors=list(parsed.errors), notices=list(parsed.notices))
    async with config.get_session() as session:
        rows, shop_ids = await resolve_shops(session, parsed.products, report.errors, shops)
        written = await respell_facets(session, rows, shop_ids, shops)
    category_ids = await _sync_categories(config, parsed.category_paths, report)
    images = _ImageStore(catalog_dir / IMAGES_DIR, media_dir)
    reference = f"import:{csv_path.name}"
    done = 0
    for batch in _batched(rows, batch_size):
        await images.prepare(batch)
        async with write_session(config) as session:
            await respell_batch(session, batch, written)  # first: the facet writers' lock, then rows
            await _import_batch(
                session, batch, category_ids, images, report, reference, currency, actor, (shop_ids, shops)
            )
            await session.commit()
        done += len(batch)
        if on_progress is not None:
            on_progress(done, len(rows))
    report.errors.sort(key=lambda error: error.line)
    return report


async def _sync_categories(
    config: ShopAlchemyConfig, paths: Sequence[tuple[str, ...]], report: ImportReport
) -> dict[tuple[str, ...], int]:
    """Create missing categories; returns ``{path: category id}``.

    A category is found by (parent, name). A new one gets the slug of its name, or of its whole path
    when that is taken (two subcategories called "Accessories" under different parents).
    """
    if not paths:
        return {}
    ids: dict[tuple[str, ...], int] = {}
    async with write_session(config) as session:
        existing = list(await session.scalars(select(Category)))
        by_parent_and_name = {(category.parent_id, category.name): category for category in existing}
        slugs = {category.slug for category in existing}
        for position, path in enumerate(paths):
            parent_id = ids[path[:-1]] if len(path) > 1 else None
            category = by_parent_and_name.get((parent_id, path[-1]))
            if category is None:
                slug = free_slug(
                    [slugify(path[-1]), slugify(" ".join(path))], slugs, limit=_MAX_CATEGORY_SLUG, fallback="category"
                )
                category = Category(name=path[-1], slug=slug, parent_id=parent_id, position=position)
                session.add(category)
                await session.flush()
                by_parent_and_name[(parent_id, path[-1])] = category
                slugs.add(slug)
                report.categories_created += 1
            ids[path] = category.id
        if report.categories_created:
            mark_catalog_changed(session)
        await session.commit()
    return ids


class _ImageStore:
    """Stores each asset file once per import (many products may share one file) in worker threads."""

    def __init__(self, images_dir: Path, media_dir: Path) -> None:
        self.images_dir = images_dir
        self.media_dir = media_dir
        self.results: dict[str, StoredImage | str] = {}  # asset name -> stored image or error reason
        self.limiter = anyio.CapacityLimiter(_IMAGE_WORKERS)

    async def prepare(self, batch: Iterable[ProductRow]) -> None:
        """Store every asset of ``batch`` not stored yet (concurrently)."""
        names = list(dict.fromkeys(a for product in batch for a in product.assets if a not in self.results))
        failures: list[BaseException] = []

        async def store(name: str) -> None:
            try:
                self.results[name] = await anyio.to_thread.run_sync(self._store, name, limiter=self.limiter)
            except Exception as exc:  # re-raised below, outside the task group's exception group
                failures.append(exc)

        async with anyio.create_task_group() as group:
            for name in names:
                group.start_soon(store, name)
        if failures:
            raise failures[0]

    def _store(self, name: str) -> StoredImage | str:
        try:
            data = (self.images_dir / name).read_bytes()
        except FileNotFoundError:
            # A CSV written by export_catalog names the shop's stored originals: reuse them as they are.
            stored = stored_asset(self.media_dir, name)
            if stored is not None:
                return stored
            return f"image {name!r} not found in {IMAGES_DIR}/; imported without it"
        except OSError as exc:
            return f"image {name!r} cannot be read ({exc.strerror}); imported without it"
        try:
            return store_image(data, self.media_dir)
        except ImageRejected as exc:
            return f"image {name!r} rejected: {exc.reason}; imported without it"

    def for_product(self, product: ProductRow, report: ImportReport) -> list[tuple[str, StoredImage]]:
        """``[(asset name, stored image)]`` of ``product`` in asset order; failures go to ``report``."""
        stored: list[tuple[str, StoredImage]] = []
        keys: set[str] = set()
        for name in product.assets:
            result = self.results[name]
            if isinstance(result, str):
                report.errors.append(RowError(product.line, result))
            elif result.key not in keys:
                keys.add(result.key)
                stored.append((name, result))
        return stored


async def _import_batch(
    session: AsyncSession,
    batch: list[ProductRow],
    category_ids: dict[tuple[str, ...], int],
    images: _ImageStore,
    report: ImportReport,
    reference: str,
    currency: str,
    actor: User | None,
    sellers: tuple[dict[str, int], ImportShops],
) -> None:
    """Create or update the products of ``batch`` and their variants, with a ``product``/``import``
    audit event for each product created or changed (the caller commits). New products go to their
    row's shop (``sellers``: the shop ids by slug and whose import it is, see ``webshop.catalog.csv.sellers``);
    an existing product stays in its own.

    Existing rows are loaded with one query per table and updated through the ORM. New rows are
    written with bulk ``INSERT ... RETURNING`` statements: the ORM's unit of work would insert them one
    at a time, because the models' primary keys come from a sequence default.
    """
    variants = {
        variant.sku: variant
        for variant in await session.scalars(
            select(Variant).where(Variant.sku.in_([v.sku for row in batch for v in row.variants]))
        )
    }
    history: dict[str, str] = {}
    created: set[str] = set()
    product_ids = await _upsert_products(
        session, batch, category_ids, images, report, variants, currency, history, sellers, created
    )
    await _upsert_variants(session, batch, product_ids, variants, report, reference, currency)
    await AuditService(session=session).record_many(
        actor, "product", "import", {product_ids[slug]: summary for slug, summary in history.items()}
    )
    # Summaries, search documents and the catalog version, in the batch's transaction.
    await catalog_changed(session, product_ids.values())
    # Webhooks: one event per product created or changed (nothing is read when no endpoint listens).
    await queue_product_events(session, WebhookEvent.PRODUCT_CREATED, [product_ids[s] for s in history if s in created])
    changed = [product_ids[slug] for slug in history if slug not in created]
    await queue_product_events(session, WebhookEvent.PRODUCT_UPDATED, changed)


async def _upsert_products(
    session: AsyncSession,
    batch: list[ProductRow],
    category_ids: dict[tuple[str, ...], int],
    images: _ImageStore,
    report: ImportReport,
    variants: dict[str, Variant],
    currency: str,
    history: dict[str, str],
    sellers: tuple[dict[str, int], ImportShops],
    created: set[str],
) -> dict[str, int]:
    """Update the batch's existing products, insert the new ones; ``{slug: product id}`` of them all
    (``created`` gets the slugs of the new ones).
    ``history`` gets ``{slug: summary}`` of what each created or changed product's audit event says:
    the preview's own description of the change (``webshop.catalog.csv.plan``), so the event on the
    product's page reads like the dry run the admin confirmed."""
    from webshop.catalog.csv.plan import describe_row

    products = {
        product.slug: product
        for product in await session.scalars(
            select(Product)
            .where(Product.slug.in_([row.slug for row in batch]))
            .options(selectinload(Product.facets), selectinload(Product.images))
        )
    }
    product_ids: dict[str, int] = {}
    new_products: list[tuple[ProductRow, int | None, list[tuple[str, StoredImage]]]] = []
    for row in batch:
        category_id = category_ids.get(tuple(row.categories)) if row.categories else None
        product = products.get(row.slug)
        if product is not None and (moved := moves_shop(row, product, *sellers)) is not None:
            report.errors.append(moved)
            continue
        if product is None and (empty := without_variants(row, variants)) is not None:
            report.errors.append(empty)
            continue
        stored = images.for_product(row, report)
        keys = [image.key for _name, image in stored]
        if changes := describe_row(row, product, category_id, keys, variants, currency):
            verb = "Created" if product is None else "Changed"
            history[row.slug] = f"{verb} by a CSV import (line {row.line}): " + "; ".join(changes)
        if product is None:
            new_products.append((row, category_id, stored))
            continue
        product_ids[row.slug] = product.id
        # Updated when anything of it changes, its variants too: as the preview counts "to change".
        if _update_product(product, row, category_id, stored, report) or changes:
            report.products_updated += 1
        else:
            report.products_unchanged += 1
    if new_products:
        product_ids.update(await _insert_products(session, new_products, sellers[0]))
        created.update(row.slug for row, _category, _stored in new_products)
        report.products_created += len(new_products)
        report.images_stored += sum(len(stored) for _row, _category, stored in new_products)
    return product_ids


async def _upsert_variants(
    session: AsyncSession,
    batch: list[ProductRow],
    product_ids: dict[str, int],
    variants: dict[str, Variant],
    report: ImportReport,
    reference: str,
    currency: str,
) -> None:
    """Update the batch's existing variants, insert the new ones with their stock in the ledger (a SKU of
    another product is an error row, skipped)."""
    new_variants: list[dict[str, Any]] = []
    for row in batch:
        product_id = product_ids.get(row.slug)
        if product_id is None:  # skipped (it would have moved to another shop, or had no variant of its own)
            continue
        for position, variant_row in enumerate(row.variants):
            variant = variants.get(variant_row.sku)
            if variant is None:
                new_variants.append(
                    {
                        "product_id": product_id,
                        "sku": variant_row.sku,
                        "option_values": list(variant_row.option_values),
                        "price": variant_row.price,
                        "currency": currency,
                        "tax_category": variant_row.tax_category,
                        "stock": variant_row.stock,
                        "position": position,
                        "weight_grams": variant_row.weight_grams or 0,
                        "low_stock_threshold": (
                            limits.LOW_STOCK_THRESHOLD
                            if variant_row.low_stock_threshold is None
                            else variant_row.low_stock_threshold
                        ),
                    }
                )
            elif variant.product_id != product_id:
                report.errors.append(
                    RowError(variant_row.line, f"sku {variant_row.sku!r} belongs to another product; skipped")
                )
            elif _update_variant(variant, variant_row, currency):
                report.variants_updated += 1
    if new_variants:
        result = await session.execute(insert(Variant).returning(Variant.id, Variant.sku), new_variants)
        variant_ids = {sku: variant_id for variant_id, sku in result}
        await record_imported_stock(session, {variant_ids[v["sku"]]: v["stock"] for v in new_variants}, reference)
        report.variants_created += len(new_variants)


async def _insert_products(
    session: AsyncSession,
    new: list[tuple[ProductRow, int | None, list[tuple[str, StoredImage]]]],
    shop_ids: dict[str, int],
) -> dict[str, int]:
    """Insert products with their facets and images, each in its row's shop; returns ``{slug: product id}``."""
    result = await session.execute(
        insert(Product).returning(Product.id, Product.slug),
        [
            {
                "slug": row.slug,
                "name": row.name,
                "description": row.description,
                "category_id": category_id,
                "option_groups": list(row.option_groups),
                "shop_id": shop_ids[row.shop],
            }
            for row, category_id, _stored in new
        ],
    )
    ids = {slug: product_id for product_id, slug in result}
    facets = [
        {"product_id": ids[row.slug], "facet": facet, "value": value}
        for row, _category, _stored in new
        for facet, value in _product_facets(row)
    ]
    if facets:
        await session.execute(insert(ProductFacet), facets)
    images = [
        {"product_id": ids[row.slug], **_image_fields(name, image, row.name, position)}
        for row, _category, stored in new
        for position, (name, image) in enumerate(stored)
    ]
    if images:
        await session.execute(insert(ProductImage), images)
    return ids


def without_variants(row: ProductRow, variants: dict[str, Variant]) -> RowError | None:
    """A ``RowError`` on the product row of new product ``row`` when every SKU of it belongs to another
    product (``variants``: the existing variants by SKU): the product would be created without a variant
    to sell, so it is skipped instead. ``None`` when at least one of its SKUs is new."""
    if any(variant.sku not in variants for variant in row.variants):
        return None
    skus = ", ".join(repr(variant.sku) for variant in row.variants)
    return RowError(row.line, f"every sku of {row.slug!r} ({skus}) belongs to another product; product skipped")


def _product_facets(row: ProductRow) -> list[tuple[str, str]]:
    """Facets stored as ``ProductFacet``: all but ``category``, which is the product's category_id."""
    return [(facet, value) for facet, value in row.facets if facet != CATEGORY_FACET]


def _image_fields(name: str, image: StoredImage, alt: str, position: int) -> dict[str, Any]:
    return {
        "key": image.key,
        "ext": image.ext,
        "source_name": name[:255],
        "alt": alt[:255],
        "width": image.width,
        "height": image.height,
        "position": position,
    }


def _update_product(
    product: Product,
    row: ProductRow,
    category_id: int | None,
    stored: list[tuple[str, StoredImage]],
    report: ImportReport,
) -> bool:
    """Bring ``product`` in line with ``row``; returns True when anything changed."""
    changed = False
    for attribute, value in (
        ("name", row.name),
        ("description", row.description),
        ("category_id", category_id),
        ("option_groups", list(row.option_groups)),
    ):
        if getattr(product, attribute) != value:
            setattr(product, attribute, value)
            changed = True

    wanted = _product_facets(row)
    wanted_set = set(wanted)
    for stale in [f for f in product.facets if (f.facet, f.value) not in wanted_set]:
        product.facets.remove(stale)
        changed = True
    have = {(f.facet, f.value) for f in product.facets}
    for name, value in wanted:
        if (name, value) not in have:
            product.facets.append(ProductFacet(facet=name, value=value))
            changed = True

    keys = {image.key for image in product.images}
    for position, (name, image) in enumerate(stored):
        if image.key not in keys:
            product.images.append(ProductImage(**_image_fields(name, image, row.name, position)))
            report.images_stored += 1
            changed = True
    return changed


def _given_extras(row: VariantRow) -> dict[str, int]:
    """The optional ``weightGrams`` and ``lowStockThreshold`` cells the row gives (an empty cell gives none)."""
    extras = {"weight_grams": row.weight_grams, "low_stock_threshold": row.low_stock_threshold}
    return {attribute: value for attribute, value in extras.items() if value is not None}


def _update_variant(variant: Variant, row: VariantRow, currency: str) -> bool:
    """Update price, options, tax category, currency, and the weight and low-stock threshold the row gives
    (never stock); True when anything changed."""
    changed = False
    for attribute, value in (
        ("price", row.price),
        ("option_values", list(row.option_values)),
        ("tax_category", row.tax_category),
        ("currency", currency),
        *_given_extras(row).items(),
    ):
        if getattr(variant, attribute) != value:
            setattr(variant, attribute, value)
            changed = True
    return changed


def _batched(items: list[ProductRow], size: int) -> Iterator[list[ProductRow]]:
    iterator = iter(items)
    while batch := list(islice(iterator, max(1, size))):
        yield batch


# --------------------------------------------------------------------------------------------- stored assets

_STORED_ASSET = re.compile(r"([A-Za-z0-9_-]{1,64})\.(jpg|png|webp)")


def stored_asset(media_dir: Path, name: str) -> StoredImage | None:
    """The image already in ``media_dir`` that an asset name like ``{key}.jpg`` names, else ``None``.

    ``export_catalog`` writes each photo as the file name of its stored original (``{key}.{ext}``),
    so an exported CSV imported into the same shop (or one sharing its media) finds its photos without
    an ``images/`` folder: the stored files are reused as they are, not decoded and stored again.
    """
    match = _STORED_ASSET.fullmatch(name)
    if match is None:
        return None
    stored = _stored_files(media_dir, match.group(1))
    return stored if stored is not None and stored.ext == match.group(2) else None
