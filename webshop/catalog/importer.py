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
  from the CSV, but **never its stock**: after the first import stock is live shop state (sales,
  cancellations, adjustments, each with its movement), and re-importing must not undo it.
* Images are matched by ``(product, content key)``: new ones are attached, none are removed (an
  admin may have uploaded more).
"""

from __future__ import annotations

import contextlib
import csv
import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import anyio.to_thread
from sqlalchemy import insert, select
from sqlalchemy.orm import selectinload

from webshop.catalog.summaries import catalog_changed, mark_catalog_changed
from webshop.db.engine import write_session
from webshop.db.models import Category, Product, ProductFacet, ProductImage, StockMovement, StockReason, Variant
from webshop.media import ImageRejected, StoredImage, content_key, store_image
from webshop.media import _existing as _stored_files  # media's own check that a stored image set is complete
from webshop.money import exponent, parse_major

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.db.engine import ShopAlchemyConfig

CSV_FILE = "products.csv"
IMAGES_DIR = "images"
COLUMNS = (
    "name",
    "slug",
    "description",
    "assets",
    "facets",
    "optionGroups",
    "optionValues",
    "sku",
    "price",
    "taxCategory",
    "stockOnHand",
    "trackInventory",
    "variantAssets",
    "variantFacets",
)
REQUIRED_COLUMNS = COLUMNS[:11]
CATEGORY_FACET = "category"
# Known misspellings in the source data: (facet, value as written) -> value to store.
FACET_VALUE_CORRECTIONS: dict[tuple[str, str], str] = {("brand", "Nikkon"): "Nikon"}
BATCH_SIZE = 200

SLUG_PATTERN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_STOCK_PATTERN = re.compile(r"[0-9]+")
_MAX_NAME = 200
_MAX_SLUG = 200
_MAX_CATEGORY_SLUG = 130  # Category.slug holds 140; leaves room for a -N suffix
_MAX_SKU = 64
_MAX_FACET = 60
_MAX_FACET_VALUE = 120
_MAX_TAX_CATEGORY = 40
_MAX_STOCK = 2**31 - 1
_IMAGE_WORKERS = 4


def slugify(text: str) -> str:
    """URL slug of ``text``: ASCII, lowercase, words joined by ``-`` ("Home & Garden" -> "home-garden")."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


@dataclass(frozen=True, slots=True)
class RowError:
    """A problem with one CSV row.

    Attributes:
        line: 1-based physical line number where the row starts (the header is line 1).
        reason: What is wrong, for the person who fixes the file.
    """

    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass(slots=True)
class VariantRow:
    """One sellable variant as read from the CSV.

    Attributes:
        line: Line number of the row.
        option_values: One value per option group of the product, in the same order.
        sku: Unique SKU (suffixed when the CSV repeats one within a product, see ``parse_catalog``).
        price: Price in minor units of the import currency (``"1299.00"`` -> ``129900``), net of tax.
        tax_category: Tax category name, ``standard`` when empty.
        stock: Units on hand (0 when the cell is empty).
        facets: The row's ``variantFacets`` as ``(facet, value)`` pairs.
    """

    line: int
    option_values: list[str]
    sku: str
    price: int
    tax_category: str
    stock: int
    facets: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class ProductRow:
    """One product as read from the CSV, with its variants.

    Attributes:
        line: Line number of the product row.
        name: Title.
        slug: Unique URL slug (lowercase words joined by ``-``).
        description: Plain text.
        assets: Image file names inside ``images/``, the main image first.
        facets: ``(facet, value)`` pairs in file order, facet names lowercased, without duplicates;
            the variants' facets are merged in, and ``category`` pairs are included.
        categories: The ``category`` facet values in order: top-level first, then subcategory.
        option_groups: Names of the variant axes (``["screen size", "RAM"]``), empty for one variant.
        variants: At least one; the product row itself is the first.
    """

    line: int
    name: str
    slug: str
    description: str
    assets: list[str]
    facets: list[tuple[str, str]]
    categories: list[str]
    option_groups: list[str]
    variants: list[VariantRow] = field(default_factory=list)


@dataclass(slots=True)
class ParsedCatalog:
    """Result of ``parse_catalog``: the products that are fit to import and the rows that are not."""

    products: list[ProductRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    notices: list[RowError] = field(default_factory=list)

    @property
    def category_paths(self) -> list[tuple[str, ...]]:
        """Every category path in order of first use, parents before children.

        For example ``[("Electronics",), ("Electronics", "Computers"), ...]``.
        """
        paths: dict[tuple[str, ...], None] = {}
        for product in self.products:
            for depth in range(1, len(product.categories) + 1):
                paths.setdefault(tuple(product.categories[:depth]), None)
        return list(paths)


class _RowProblem(ValueError):
    """Internal: a cell is malformed; the message names the column."""


def parse_catalog(csv_path: Path, *, currency: str = "USD") -> ParsedCatalog:
    """Read a Vendure-format ``products.csv`` into products and per-row errors.

    Every cell is stripped (the demo file pads cells, header names included, with spaces). A row with
    a ``name`` starts a product and is also its first variant; a row with an empty ``name`` is one
    more variant of the product above.

    Rules for bad data (each bad row is reported once, as one ``RowError`` naming all its problems):

    * A product row that fails validation (slug, SKU, price, stock, option values, facets, assets,
      column count) is skipped together with its variant rows; only the product row is reported.
    * A variant row that fails is skipped; the product imports with its other variants.
    * A variant row before any product row is an error.
    * A SKU repeated **within** one product (the Modern Cafe Chair's ``404.038.96`` three times) is
      made unique by suffixing **every** occurrence, the first included, with the slug of its option
      values (``404.038.96-mustard``, ``404.038.96-mint``, ``404.038.96-pearl``), so the SKUs do not
      depend on row order; ``-2``, ``-3``... are added if that is still not unique.
    * A SKU repeated **across** products is an error on the later row (and skips the later product
      when it is that product's first row). A repeated product slug is an error on the later product.
    * Facet values in ``FACET_VALUE_CORRECTIONS`` are corrected (brand "Nikkon" -> "Nikon").

    Args:
        csv_path: The CSV file (UTF-8, with or without a byte-order mark).
        currency: ISO 4217 code the prices are in; decides how many decimals a price may have.

    Returns:
        ``ParsedCatalog`` with products in file order and errors in line order.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
    """
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        return _Parser(currency).parse(handle)


class _Parser:
    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.result = ParsedCatalog()
        self.header: list[str] = []
        self.current: ProductRow | None = None
        self.skipping = False  # the product above failed: its variant rows go with it
        self.slug_lines: dict[str, int] = {}
        self.sku_lines: dict[str, int] = {}

    def parse(self, handle: TextIO) -> ParsedCatalog:
        reader = csv.reader(handle, skipinitialspace=True)
        for line, cells in self._records(reader):
            if not self.header:
                if not self._read_header(line, cells):
                    return self.result
                continue
            self._row(line, cells)
        self._finish_product()
        if not self.header:
            self._error(1, "the file is empty: expected a header row")
        self.result.errors.sort(key=lambda error: error.line)
        return self.result

    def _records(self, reader: Any) -> Iterator[tuple[int, list[str]]]:
        """Yield ``(first physical line, cells)``; quoted cells may span lines, so count them."""
        while True:
            line = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self._error(line, f"unreadable CSV row: {exc}")
                if not self.header:
                    return
                # Whatever product the row belonged to is incomplete: skip it and its variant rows.
                self._finish_product()
                self.skipping = True
                continue
            if any(cell.strip() for cell in cells):
                yield line, [unprotect_cell(cell.strip()) for cell in cells]

    def _read_header(self, line: int, cells: list[str]) -> bool:
        duplicates = sorted(name for name, count in Counter(cells).items() if count > 1)
        missing = [name for name in REQUIRED_COLUMNS if name not in cells]
        if duplicates or missing:
            problems = []
            if missing:
                problems.append(f"missing column(s): {', '.join(missing)}")
            if duplicates:
                problems.append(f"repeated column(s): {', '.join(duplicates)}")
            self._error(line, "bad header: " + "; ".join(problems))
            return False
        self.header = cells
        return True

    def _row(self, line: int, cells: list[str]) -> None:
        row = dict(zip(self.header, cells, strict=False))
        # A slug without a name is a product row that lost its name, not a variant of the one above.
        is_product = bool(row.get("name") or row.get("slug"))
        problem = None
        if len(cells) != len(self.header):
            problem = f"expected {len(self.header)} columns, found {len(cells)}"
        elif not row["name"] and row["slug"]:
            problem = "name is missing (a row with a slug starts a product)"
        if problem is not None:
            self._error(line, problem)
            if is_product:
                self._finish_product()
                self.skipping = True
            return
        if is_product:
            self._finish_product()
            self._start_product(line, row)
        elif self.current is not None:
            groups = self.current.option_groups
            try:
                variant = self._variant(line, row, groups)
            except _RowProblem as exc:
                self._error(line, str(exc))
                return
            self.current.variants.append(variant)
        elif not self.skipping:
            self._error(line, "variant row before any product row (its name column is empty)")

    def _start_product(self, line: int, row: dict[str, str]) -> None:
        problems: list[str] = []
        name, slug = row["name"], row["slug"]
        if len(name) > _MAX_NAME:
            problems.append(f"name is longer than {_MAX_NAME} characters")
        if not slug:
            problems.append("slug is missing")
        elif len(slug) > _MAX_SLUG or not SLUG_PATTERN.fullmatch(slug):
            problems.append(f"slug {slug!r} must be lowercase letters and digits joined by '-'")
        elif slug in self.slug_lines:
            problems.append(f"slug {slug!r} is already used on line {self.slug_lines[slug]}")
        assets = _split(row["assets"])
        for asset in assets:
            if Path(asset).name != asset or "\\" in asset or asset.startswith("."):
                problems.append(f"asset {asset!r} must be a plain file name inside images/")
        option_groups = _split(row["optionGroups"])
        if len(set(option_groups)) != len(option_groups):
            problems.append("optionGroups repeats a name")
        facets: list[tuple[str, str]] = []
        try:
            facets = _facets(row["facets"], "facets")
        except _RowProblem as exc:
            problems.append(str(exc))
        variant: VariantRow | None = None
        try:
            variant = self._variant(line, row, option_groups)
        except _RowProblem as exc:
            problems.append(str(exc))
        if problems or variant is None:
            self._error(line, "; ".join(problems))
            self.current, self.skipping = None, True
            return
        self.current = ProductRow(
            line=line,
            name=name,
            slug=slug,
            description=row["description"],
            assets=list(dict.fromkeys(assets)),
            facets=facets,
            categories=[value for facet, value in facets if facet == CATEGORY_FACET],
            option_groups=option_groups,
            variants=[variant],
        )
        self.skipping = False

    def _variant(self, line: int, row: dict[str, str], option_groups: list[str]) -> VariantRow:
        problems: list[str] = []
        option_values = _split(row["optionValues"])
        if len(option_values) != len(option_groups):
            problems.append(
                f"optionValues has {len(option_values)} value(s) but optionGroups names {len(option_groups)}"
            )
        sku = row["sku"]
        if not sku:
            problems.append("sku is missing")
        elif len(sku) > _MAX_SKU:
            problems.append(f"sku is longer than {_MAX_SKU} characters")
        price = 0
        if not row["price"]:
            problems.append("price is missing")
        else:
            try:
                price = parse_major(row["price"], self.currency)
            except ValueError:
                problems.append(f"price {row['price']!r} is not an amount of 0 or more, such as 12.99")
        stock_text = row["stockOnHand"]
        stock = int(stock_text) if _STOCK_PATTERN.fullmatch(stock_text) else 0
        if stock_text and (not _STOCK_PATTERN.fullmatch(stock_text) or stock > _MAX_STOCK):
            problems.append(f"stockOnHand {stock_text!r} is not a whole number of 0 or more")
        tax_category = row["taxCategory"] or "standard"
        if len(tax_category) > _MAX_TAX_CATEGORY:
            problems.append(f"taxCategory is longer than {_MAX_TAX_CATEGORY} characters")
        facets: list[tuple[str, str]] = []
        try:
            facets = _facets(row.get("variantFacets", ""), "variantFacets")
        except _RowProblem as exc:
            problems.append(str(exc))
        if problems:
            raise _RowProblem("; ".join(problems))
        return VariantRow(
            line=line,
            option_values=option_values,
            sku=sku,
            price=price,
            tax_category=tax_category,
            stock=stock,
            facets=facets,
        )

    def _finish_product(self) -> None:
        """Make the product's SKUs unique, check them against earlier products, merge facets."""
        product, self.current = self.current, None
        if product is None:
            return
        for line, old, new in _suffix_repeated_skus(product.variants):
            self.result.notices.append(RowError(line, f"sku {old!r} repeats within the product; stored as {new!r}"))
        kept: list[VariantRow] = []
        for variant in product.variants:
            earlier = self.sku_lines.get(variant.sku)
            if len(variant.sku) > _MAX_SKU:
                problem = f"sku {variant.sku!r} is longer than {_MAX_SKU} characters"
            elif earlier is not None:
                problem = f"sku {variant.sku!r} is already used on line {earlier}"
            else:
                kept.append(variant)
                continue
            self._error(variant.line, problem)
            if variant.line == product.line:
                return  # the product row itself failed: skip the product with all its variants
        product.variants = kept
        for variant in kept:
            self.sku_lines[variant.sku] = variant.line
            for pair in variant.facets:
                if pair not in product.facets:
                    product.facets.append(pair)
        self.slug_lines[product.slug] = product.line
        self.result.products.append(product)

    def _error(self, line: int, reason: str) -> None:
        self.result.errors.append(RowError(line, reason))


def _split(cell: str) -> list[str]:
    """``"a | b|"`` -> ``["a", "b"]``."""
    return [part.strip() for part in cell.split("|") if part.strip()]


def _facets(cell: str, column: str) -> list[tuple[str, str]]:
    """Parse ``facet:value|facet:value`` into unique pairs (facet lowercased, known typos fixed)."""
    pairs: list[tuple[str, str]] = []
    for item in _split(cell):
        facet, separator, value = item.partition(":")
        facet, value = facet.strip().lower(), value.strip()
        if not separator or not facet or not value:
            raise _RowProblem(f"{column}: {item!r} is not facet:value")
        if len(facet) > _MAX_FACET or len(value) > _MAX_FACET_VALUE:
            raise _RowProblem(f"{column}: {item!r} is too long")
        value = FACET_VALUE_CORRECTIONS.get((facet, value), value)
        if (facet, value) not in pairs:
            pairs.append((facet, value))
    return pairs


def _suffix_repeated_skus(variants: list[VariantRow]) -> list[tuple[int, str, str]]:
    """Give every variant whose SKU repeats within the product a suffix from its option values.

    The shared catalog's README suggests this for its repeated SKU. Returns ``[(line, old, new)]``
    for each renamed variant, so the operator is told.
    """
    renamed: list[tuple[int, str, str]] = []
    counts = Counter(variant.sku for variant in variants)
    taken = {sku for sku, count in counts.items() if count == 1}
    for variant in variants:
        if counts[variant.sku] == 1:
            continue
        base = f"{variant.sku}-{slugify(' '.join(variant.option_values)) or 'variant'}"
        candidate, number = base, 2
        while candidate in taken:
            candidate, number = f"{base}-{number}", number + 1
        taken.add(candidate)
        renamed.append((variant.line, variant.sku, candidate))
        variant.sku = candidate
    return renamed


# --------------------------------------------------------------------------------------------- import


@dataclass
class ImportReport:
    """What ``import_catalog`` did.

    Attributes:
        products_created / products_updated / products_unchanged: Products by outcome (a product
            counts as updated when a product-level field, facet or image changed).
        variants_created / variants_updated: Variants by outcome (unchanged ones are not counted).
        images_stored: Images newly attached to products.
        categories_created: New categories.
        errors: Rows that were skipped or imported incompletely, in line order.
        notices: Rows imported with a change the operator should know of (a repeated SKU renamed).
    """

    products_created: int = 0
    products_updated: int = 0
    products_unchanged: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    images_stored: int = 0
    categories_created: int = 0
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
    progress: bool = False,
    currency: str = "USD",
    batch_size: int = BATCH_SIZE,
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
        progress: Show a progress bar over products on stderr.
        currency: ISO 4217 code of the CSV's prices, given to new and updated variants.
        batch_size: Products per transaction.

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
    parsed = await anyio.to_thread.run_sync(functools.partial(parse_catalog, csv_path, currency=currency))
    report = ImportReport(errors=list(parsed.errors), notices=list(parsed.notices))
    category_ids = await _sync_categories(config, parsed.category_paths, report)
    images = _ImageStore(catalog_dir / IMAGES_DIR, media_dir)
    reference = f"import:{csv_path.name}"
    with _progress_bar(progress, len(parsed.products)) as advance:
        for batch in _batched(parsed.products, batch_size):
            await images.prepare(batch)
            async with write_session(config) as session:
                await _import_batch(session, batch, category_ids, images, report, reference, currency)
                await session.commit()
            advance(len(batch))
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
                slug = _free_slug([slugify(path[-1]), slugify(" ".join(path))], slugs)
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


def _free_slug(candidates: list[str], taken: set[str]) -> str:
    """The first candidate not in ``taken`` (cut to fit ``Category.slug``), else the last one numbered."""
    candidates = [candidate[:_MAX_CATEGORY_SLUG].strip("-") for candidate in candidates if candidate]
    candidates = [candidate for candidate in candidates if candidate] or ["category"]
    for candidate in candidates:
        if candidate not in taken:
            return candidate
    number = 2
    while f"{candidates[-1]}-{number}" in taken:
        number += 1
    return f"{candidates[-1]}-{number}"


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
) -> None:
    """Create or update the products of ``batch`` and their variants (the caller commits).

    Existing rows are loaded with one query per table and updated through the ORM. New rows are
    written with bulk ``INSERT ... RETURNING`` statements: the ORM's unit of work would insert them one
    at a time, because the models' primary keys come from a sequence default.
    """
    products = {
        product.slug: product
        for product in await session.scalars(
            select(Product)
            .where(Product.slug.in_([row.slug for row in batch]))
            .options(selectinload(Product.facets), selectinload(Product.images))
        )
    }
    variants = {
        variant.sku: variant
        for variant in await session.scalars(
            select(Variant).where(Variant.sku.in_([v.sku for row in batch for v in row.variants]))
        )
    }

    product_ids: dict[str, int] = {}
    new_products: list[tuple[ProductRow, int | None, list[tuple[str, StoredImage]]]] = []
    for row in batch:
        category_id = category_ids.get(tuple(row.categories)) if row.categories else None
        stored = images.for_product(row, report)
        product = products.get(row.slug)
        if product is None:
            new_products.append((row, category_id, stored))
            continue
        product_ids[row.slug] = product.id
        if _update_product(product, row, category_id, stored, report):
            report.products_updated += 1
        else:
            report.products_unchanged += 1
    if new_products:
        product_ids.update(await _insert_products(session, new_products))
        report.products_created += len(new_products)
        report.images_stored += sum(len(stored) for _row, _category, stored in new_products)

    new_variants: list[dict[str, Any]] = []
    for row in batch:
        product_id = product_ids[row.slug]
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
        movements = [
            {
                "variant_id": variant_ids[v["sku"]],
                "delta": v["stock"],
                "reason": StockReason.IMPORT.value,
                "reference": reference,
            }
            for v in new_variants
            if v["stock"]  # a movement is a change: a variant created with nothing in stock needs none
        ]
        if movements:
            await session.execute(insert(StockMovement), movements)
        report.variants_created += len(new_variants)
    # Summaries, search documents and the catalog version, in the batch's transaction.
    await catalog_changed(session, product_ids.values())


async def _insert_products(
    session: AsyncSession, new: list[tuple[ProductRow, int | None, list[tuple[str, StoredImage]]]]
) -> dict[str, int]:
    """Insert products with their facets and images; returns ``{slug: product id}``."""
    result = await session.execute(
        insert(Product).returning(Product.id, Product.slug),
        [
            {
                "slug": row.slug,
                "name": row.name,
                "description": row.description,
                "category_id": category_id,
                "option_groups": list(row.option_groups),
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
    for facet in [f for f in product.facets if (f.facet, f.value) not in wanted_set]:
        product.facets.remove(facet)
        changed = True
    have = {(f.facet, f.value) for f in product.facets}
    for facet, value in wanted:
        if (facet, value) not in have:
            product.facets.append(ProductFacet(facet=facet, value=value))
            changed = True

    keys = {image.key for image in product.images}
    for position, (name, image) in enumerate(stored):
        if image.key not in keys:
            product.images.append(ProductImage(**_image_fields(name, image, row.name, position)))
            report.images_stored += 1
            changed = True
    return changed


def _update_variant(variant: Variant, row: VariantRow, currency: str) -> bool:
    """Update price, options, tax category and currency (never stock); True when anything changed."""
    changed = False
    for attribute, value in (
        ("price", row.price),
        ("option_values", list(row.option_values)),
        ("tax_category", row.tax_category),
        ("currency", currency),
    ):
        if getattr(variant, attribute) != value:
            setattr(variant, attribute, value)
            changed = True
    return changed


def _batched(items: list[ProductRow], size: int) -> Iterator[list[ProductRow]]:
    iterator = iter(items)
    while batch := list(islice(iterator, max(1, size))):
        yield batch


@contextlib.contextmanager
def _progress_bar(show: bool, total: int) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``: a rich progress bar on stderr when ``show``, else a no-op."""
    if not show:
        yield lambda _count: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("importing products"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as bar:
        task = bar.add_task("import", total=total)
        yield lambda count: bar.advance(task, count)


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


# --------------------------------------------------------------------------------------------- export


@dataclass
class ExportReport:
    """What ``export_catalog`` wrote: product and variant rows, and the products it had to leave out.

    Attributes:
        products: Products written.
        variants: Variant rows written (a product's first variant shares its product row).
        skipped: ``(slug, reason)`` for each product the CSV format cannot carry faithfully.
    """

    products: int = 0
    variants: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


async def export_catalog(session: AsyncSession, handle: TextIO, *, currency: str = "USD") -> ExportReport:
    """Write the shop's catalog to ``handle`` as a ``products.csv`` that ``import_catalog`` reads back unchanged.

    Every product that is not soft-deleted is written in id order: its first variant on the product
    row, the others on variant rows; its category as ``category:`` facet values from the top-level
    category down, its other facets after them; its photos (in order) as the file names of their stored
    originals (``{key}.{ext}``, see ``stored_asset``); stock as ``stockOnHand`` (which an import only uses
    for new variants). Importing the file into the same shop changes nothing.

    A product the format cannot carry faithfully is left out and listed in ``ExportReport.skipped``:
    no variants; a ``|`` in a facet value, option or category name (the format's separator); a ``:`` in a
    facet name; a variant priced in a currency other than ``currency``.

    Text cells a spreadsheet would run as a formula get a ``'`` in front (``protect_cell``, OWASP "CSV
    Injection"); the parser takes it off again (``unprotect_cell``), so the file still reads back exactly.
    Prices and stock are written as plain non-negative numbers, which no spreadsheet runs as a formula.

    Args:
        session: A session to read with.
        handle: A text stream opened with ``newline=""`` (the ``csv`` module writes ``\\r\\n`` line ends).
        currency: The shop's currency (``WEBSHOP_CURRENCY``); prices are written in its major units.

    Returns:
        Counts of rows written and the products left out.
    """
    categories = {category.id: category for category in await session.scalars(select(Category))}
    products = await session.scalars(
        select(Product)
        .where(Product.deleted_at.is_(None))
        .order_by(Product.id)
        .options(selectinload(Product.variants), selectinload(Product.images), selectinload(Product.facets))
        .execution_options(populate_existing=True)
    )
    writer = csv.writer(handle)
    writer.writerow(COLUMNS)
    report = ExportReport()
    for product in products:
        path = _category_path(categories, product.category_id)
        problem = _unexportable(product, path, currency)
        if problem:
            report.skipped.append((product.slug, problem))
            continue
        facets = [f"{CATEGORY_FACET}:{name}" for name in path]
        facets += [f"{facet.facet}:{facet.value}" for facet in product.facets]
        for index, variant in enumerate(product.variants):
            product_cells = (
                [
                    product.name,
                    product.slug,
                    product.description,
                    "|".join(f"{image.key}.{image.ext}" for image in product.images),
                    "|".join(facets),
                    "|".join(product.option_groups or []),
                ]
                if index == 0
                else [""] * 6
            )
            writer.writerow(
                [
                    *(protect_cell(cell) for cell in product_cells),
                    protect_cell("|".join(variant.option_values or [])),
                    protect_cell(variant.sku),
                    format_major(variant.price, currency),
                    protect_cell(variant.tax_category),
                    str(variant.stock),
                    "",
                    "",
                    "",
                ]
            )
            report.variants += 1
        report.products += 1
    return report


FORMULA_CELL = re.compile(r"'*[=+\-@\t\r]")
"""A cell a spreadsheet would run as a formula: it starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return (OWASP "CSV Injection"), possibly after quotes (see ``protect_cell``)."""


def protect_cell(cell: str) -> str:
    """``cell`` with a ``'`` in front if a spreadsheet would run it as a formula (OWASP "CSV Injection").

    A cell that already starts with quotes before such a character gets one more, so that
    ``unprotect_cell`` can always take exactly one off: ``"=1"`` -> ``"'=1"``, ``"'=1"`` -> ``"''=1"``.
    """
    return "'" + cell if FORMULA_CELL.match(cell) else cell


def unprotect_cell(cell: str) -> str:
    """Undo ``protect_cell``: one ``'`` off a cell that is a quote-protected formula; others unchanged."""
    return cell[1:] if cell.startswith("'") and FORMULA_CELL.match(cell) else cell


def format_major(amount: int, currency: str = "USD") -> str:
    """Minor units as the CSV's decimal in major units: ``format_major(129900) == "1299.00"``."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def _category_path(categories: dict[int, Category], category_id: int | None) -> list[str]:
    """Names from the top-level category down to ``category_id`` (empty for none)."""
    path: list[str] = []
    seen: set[int] = set()
    while category_id is not None and category_id in categories and category_id not in seen:
        seen.add(category_id)
        category = categories[category_id]
        path.insert(0, category.name)
        category_id = category.parent_id
    return path


def _unexportable(product: Product, path: list[str], currency: str) -> str | None:
    """Why ``product`` cannot be written faithfully, or ``None``."""
    if not product.variants:
        return "it has no variants"
    texts = [*path, *(product.option_groups or [])]
    texts += [value for variant in product.variants for value in variant.option_values or []]
    texts += [facet.value for facet in product.facets]
    if any("|" in text for text in texts):
        return "a category, facet value or option contains “|”, the format's separator"
    if any(":" in facet.facet or "|" in facet.facet for facet in product.facets):
        return "a facet name contains “:” or “|”"
    if any(variant.currency != currency for variant in product.variants):
        return f"a variant is priced in another currency than {currency}"
    if any(len(variant.option_values or []) != len(product.option_groups or []) for variant in product.variants):
        return "a variant does not have one option value per option group"
    return None


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
class ImportPreview:
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
    products_created: int = 0
    products_updated: int = 0
    variants_created: int = 0
    variants_updated: int = 0
    images_stored: int = 0
    categories_created: int = 0

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

    Returns:
        The preview; ``rejected`` holds the parser's errors and the import's own (missing photos,
        SKUs that belong to another product) in line order.
    """
    preview = ImportPreview(rejected=list(parsed.errors), notices=list(parsed.notices))
    existing_categories = list(await session.scalars(select(Category)))
    by_parent_and_name = {(c.parent_id, c.name): c.id for c in existing_categories}
    category_ids: dict[tuple[str, ...], int | None] = {}
    for path in parsed.category_paths:
        parent_id = category_ids.get(path[:-1]) if len(path) > 1 else None
        found = by_parent_and_name.get((parent_id, path[-1])) if (len(path) == 1 or parent_id) else None
        category_ids[path] = found
        if found is None:
            preview.categories.append(" > ".join(path))
    preview.categories_created = len(preview.categories)

    slugs = [row.slug for row in parsed.products]
    skus = [variant.sku for row in parsed.products for variant in row.variants]
    products: dict[str, Product] = {}
    variants: dict[str, Variant] = {}
    for chunk in _chunks(slugs, 500):
        for product in await session.scalars(
            select(Product)
            .where(Product.slug.in_(chunk))
            .options(selectinload(Product.facets), selectinload(Product.images))
        ):
            products[product.slug] = product
    for chunk in _chunks(skus, 500):
        for variant in await session.scalars(select(Variant).where(Variant.sku.in_(chunk))):
            variants[variant.sku] = variant

    image_keys: dict[str, str | None] = {}

    def key_of(name: str) -> str | None:
        if name not in image_keys:
            image_keys[name] = _preview_image_key(name, images_dir, media_dir)
        return image_keys[name]

    for row in parsed.products:
        keys: list[str] = []
        for name in row.assets:
            key = key_of(name)
            if key is None:
                where = f"{IMAGES_DIR}/" if images_dir is not None else "the upload (upload photos on the product page)"
                preview.rejected.append(RowError(row.line, f"image {name!r} not found in {where}; imported without it"))
            elif key not in keys:
                keys.append(key)
        category_id = category_ids.get(tuple(row.categories)) if row.categories else None
        product = products.get(row.slug)
        if product is None:
            _preview_new(preview, row, keys, variants)
        else:
            _preview_existing(preview, row, product, category_id, keys, variants, currency)
    preview.rejected.sort(key=lambda error: error.line)
    return preview


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _preview_image_key(name: str, images_dir: Path | None, media_dir: Path) -> str | None:
    """The content key an asset would be stored under, or ``None`` when the import would not find it."""
    if images_dir is not None:
        with contextlib.suppress(OSError):
            return content_key((images_dir / name).read_bytes())
    stored = stored_asset(media_dir, name)
    return stored.key if stored is not None else None


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
    product_changed = False
    for label, before, after in (
        ("name", product.name, row.name),
        ("description", product.description, row.description),
        ("option groups", list(product.option_groups or []), list(row.option_groups)),
    ):
        if before != after:
            shown = (
                (f"“{_short(before)}” → “{_short(after)}”")
                if isinstance(before, str)
                else f"{', '.join(before) or '—'} → {', '.join(after) or '—'}"
            )
            planned.changes.append(f"{label}: {shown}")
            product_changed = True
    if product.category_id != category_id:
        planned.changes.append("category → " + (" > ".join(row.categories) or "none"))
        product_changed = True
    have = {(f.facet, f.value) for f in product.facets}
    wanted = set(_product_facets(row))
    if have != wanted:
        added = sorted(wanted - have)
        removed = sorted(have - wanted)
        parts = [f"+{f}:{v}" for f, v in added] + [f"−{f}:{v}" for f, v in removed]
        planned.changes.append("facets " + " ".join(parts))
        product_changed = True
    new_keys = [key for key in keys if key not in {image.key for image in product.images}]
    if new_keys:
        planned.changes.append(f"{len(new_keys)} photo(s) added")
        preview.images_stored += len(new_keys)
        product_changed = True
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
        variant_changes = []
        if variant.price != variant_row.price:
            variant_changes.append(
                f"price {format_major(variant.price, currency)} → {format_major(variant_row.price, currency)}"
            )
        if list(variant.option_values or []) != list(variant_row.option_values):
            variant_changes.append(
                f"options {' / '.join(variant.option_values or [])} → {' / '.join(variant_row.option_values)}"
            )
        if variant.tax_category != variant_row.tax_category:
            variant_changes.append(f"tax category {variant.tax_category} → {variant_row.tax_category}")
        if variant.currency != currency:
            variant_changes.append(f"currency {variant.currency} → {currency}")
        if variant_changes:
            planned.changes.append(f"{variant_row.sku}: " + ", ".join(variant_changes))
            preview.variants_updated += 1
    if product_changed:
        preview.products_updated += 1
    if planned.changes:
        preview.changed.append(planned)
    else:
        preview.unchanged += 1


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
