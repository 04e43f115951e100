"""Reading a catalog folder (Vendure's CSV format, ``products.csv`` plus ``images/``) into rows: pure.

``parse_catalog`` reads the CSV into ``ProductRow``/``VariantRow`` values and a list of ``RowError``
(1-based physical line numbers), fixing the known quirks of the demo catalog on the way.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from webshop.catalog import limits
from webshop.catalog.slugs import slugify
from webshop.catalog.variant_rules import (
    GroupProblem,
    first_seen,
    fits_groups,
    option_groups_problem,
    option_values_problem,
    variant_set_problems,
)
from webshop.money import format_money, parse_major
from webshop.text import CONTROL_BUT_LINE_BREAKS, has_bidi_control, whole_number_text

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
WEIGHT_COLUMN = "weightGrams"
LOW_STOCK_COLUMN = "lowStockThreshold"
VARIANT_EXTRA_COLUMNS = (WEIGHT_COLUMN, LOW_STOCK_COLUMN)
"""Optional variant columns (whole numbers): the shipping weight in grams and the stock level at which the
stock page calls the variant low. Left out or empty, a new variant gets the defaults (0 g, and
``limits.LOW_STOCK_THRESHOLD`` units) and an existing one keeps its own; the export writes both, so an
exported file imports back unchanged."""
SHOP_COLUMN = "shop"
"""An optional column (issue 16): the slug of the shop that sells the product, on its product row.
Left out or empty, a new product goes to the default shop; an existing one stays in its shop."""
CATEGORY_FACET = "category"
# Known misspellings in the source data: (facet, value as written) -> value to store.
FACET_VALUE_CORRECTIONS: dict[tuple[str, str], str] = {("brand", "Nikkon"): "Nikon"}
BATCH_SIZE = 200

SLUG_PATTERN = limits.SLUG
_STOCK_PATTERN = re.compile(r"[0-9]+")
_MAX_NAME = limits.PRODUCT_NAME
_MAX_SLUG = limits.PRODUCT_SLUG
_MAX_CATEGORY_SLUG = limits.CATEGORY_SLUG - 10  # leaves room for a -N suffix
_MAX_SKU = limits.SKU
_MAX_FACET = limits.FACET_NAME
_MAX_FACET_VALUE = limits.FACET_VALUE
_MAX_TAX_CATEGORY = limits.TAX_CATEGORY
_MAX_STOCK = limits.STOCK
_MAX_PRICE = limits.PRICE
_IMAGE_WORKERS = 4


def _shown(value: str, most: int = 40) -> str:
    """A cell's value quoted for an error message, cut to ``most`` characters (``'99999…'``)."""
    return repr(value if len(value) <= most else value[: most - 1] + "…")


_GROUP_PROBLEMS: dict[GroupProblem, str] = {
    "repeated": "optionGroups repeats a name",
    "too_many": f"optionGroups names more than {limits.OPTION_GROUPS} groups",
    "too_long": f"optionGroups: a name is longer than {limits.OPTION_GROUP} characters",
}
"""How the importer words ``variant_rules.option_groups_problem`` (the service's words: ``catalog.rules``)."""


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
        weight_grams: The ``weightGrams`` cell, or ``None`` (no column, or empty: leave the weight as it is).
        low_stock_threshold: The ``lowStockThreshold`` cell, or ``None`` (likewise).
    """

    line: int
    option_values: list[str]
    sku: str
    price: int
    tax_category: str
    stock: int
    facets: list[tuple[str, str]] = field(default_factory=list)
    weight_grams: int | None = None
    low_stock_threshold: int | None = None


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
        shop: The ``shop`` column's shop slug, or ``""`` (the default shop for a new product).
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
    shop: str = ""


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


def parse_catalog(
    csv_path: Path, *, currency: str = "USD", tax_categories: Collection[str] | None = None
) -> ParsedCatalog:
    """Read a Vendure-format ``products.csv`` into products and per-row errors.

    Every cell is stripped (the demo file pads cells, header names included, with spaces). A row with
    a ``name`` starts a product and is also its first variant; a row with an empty ``name`` is one
    more variant of the product above.

    Rules for bad data (each bad row is reported once, as one ``RowError`` naming all its problems):

    * A product row that fails validation (slug, SKU, price, stock, option values, facets, assets,
      column count) is skipped together with its variant rows. When its cells were read (not a wrong
      column count, a missing name or an unreadable row), a variant row with problems of its own is
      reported too (saying that its product is skipped), so one round shows every bad cell.
    * A variant row that fails is skipped; the product imports with its other variants.
    * The variant-set rules are the admin's (``webshop.catalog.variant_rules``): option groups named
      once each (ignoring case), at most ``limits.OPTION_GROUPS``; one option value per group; a
      variant row whose option values repeat an earlier row's of the same product (ignoring case) is
      an error and skipped.
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
        tax_categories: The shop's tax categories (``settings.shop.tax_rates_bp``'s names): a variant
            row naming another is an error, as on the product form (a variant of an unknown category
            would be sold untaxed). ``None``: any name up to the column's length.

    Returns:
        ``ParsedCatalog`` with products in file order and errors in line order.

    Raises:
        OSError: the file cannot be read (``FileNotFoundError`` when it does not exist).
    """
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        return _Parser(currency, tax_categories).parse(handle)


class _Parser:
    def __init__(self, currency: str, tax_categories: Collection[str] | None = None) -> None:
        self.currency = currency
        self.tax_categories = tax_categories
        self.result = ParsedCatalog()
        self.header: list[str] = []
        self.current: ProductRow | None = None
        self.skipping = False  # the product above failed: its variant rows go with it
        # The failed product row's line, so that its variant rows' own problems are
        # reported in the same round (QA: they showed up only once the product row was mended).
        self.skipped: int | None = None
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
                self.skipping, self.skipped = True, None
                continue
            if any(cell.strip() for cell in cells):
                if problem := _cells_problem(cells):  # as every text field of the shop refuses (webshop.text)
                    self._error(line, problem)
                    if not self.header:
                        return
                    self._finish_product()
                    self.skipping, self.skipped = True, None
                    continue
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
                self.skipping, self.skipped = True, None
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
        elif self.skipping and self.skipped is not None:
            try:
                self._variant(line, row, None)
            except _RowProblem as exc:
                self._error(line, f"{exc} (and the product on line {self.skipped} is skipped)")
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
        shop = row.get(SHOP_COLUMN, "")
        if shop and not SLUG_PATTERN.fullmatch(shop):
            problems.append(f"shop {shop!r} must be a shop's slug (lowercase letters and digits joined by '-')")
        assets = _split(row["assets"])
        for asset in assets:
            if Path(asset).name != asset or "\\" in asset or asset.startswith("."):
                problems.append(f"asset {asset!r} must be a plain file name inside images/")
        option_groups = _split(row["optionGroups"])
        if group_problem := option_groups_problem(option_groups):
            problems.append(_GROUP_PROBLEMS[group_problem])
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
            self.current, self.skipping, self.skipped = None, True, line
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
            shop=shop,
        )
        self.skipping, self.skipped = False, None

    def _variant(self, line: int, row: dict[str, str], option_groups: list[str] | None) -> VariantRow:
        """The row's variant; ``option_groups`` ``None``: its product is skipped, so its values are not
        counted against groups that may themselves be wrong (its other cells are checked)."""
        problems: list[str] = []
        option_values = _split(row["optionValues"])
        if option_groups is not None and not fits_groups(option_groups, option_values):
            problems.append(
                f"optionValues has {len(option_values)} value(s) but optionGroups names {len(option_groups)}"
            )
        elif option_values_problem(option_values):  # "too_long": _split leaves no empty value
            problems.append(f"optionValues: a value is longer than {limits.OPTION_VALUE} characters")
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
                problems.append(f"price {_shown(row['price'])} is not an amount of 0 or more, such as 12.99")
            else:
                if price > _MAX_PRICE:
                    problems.append(
                        f"price {_shown(row['price'])} is more than {format_money(_MAX_PRICE, self.currency)}"
                    )
                    price = 0
        stock = _whole_cell(row, "stockOnHand", problems) or 0
        weight_grams = _whole_cell(row, WEIGHT_COLUMN, problems)
        low_stock_threshold = _whole_cell(row, LOW_STOCK_COLUMN, problems)
        tax_category = row["taxCategory"] or "standard"
        if len(tax_category) > _MAX_TAX_CATEGORY:
            problems.append(f"taxCategory is longer than {_MAX_TAX_CATEGORY} characters")
        elif self.tax_categories is not None and tax_category not in self.tax_categories:
            known = ", ".join(sorted(self.tax_categories))
            problems.append(f"taxCategory {_shown(tax_category)} is not one of the shop's tax categories ({known})")
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
            weight_grams=weight_grams,
            low_stock_threshold=low_stock_threshold,
        )

    def _finish_product(self) -> None:
        """Make the product's SKUs unique, check them against earlier products, merge facets."""
        product, self.current = self.current, None
        if product is None:
            return
        product.variants = self._without_repeated_combinations(product)
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

    def _without_repeated_combinations(self, product: ProductRow) -> list[VariantRow]:
        """The product's variants but those whose option values repeat an earlier row's (ignoring case,
        ``variant_rules.variant_set_problems``): each of those is an error on its line, skipped. The
        product row comes first, so it is never the one skipped."""
        variants = product.variants
        pairs = [(variant.sku, variant.option_values) for variant in variants]
        repeats = {
            problem.index: variants[problem.earlier].line
            for problem in variant_set_problems(product.option_groups, pairs)
            if problem.kind == "combination" and problem.earlier is not None
        }
        for index, earlier_line in repeats.items():
            values = " | ".join(variants[index].option_values)
            self._error(variants[index].line, f"optionValues {values!r} repeat those of line {earlier_line}")
        return [variant for index, variant in enumerate(variants) if index not in repeats]

    def _error(self, line: int, reason: str) -> None:
        self.result.errors.append(RowError(line, reason))


def _split(cell: str) -> list[str]:
    """``"a | b|"`` -> ``["a", "b"]``."""
    return [part.strip() for part in cell.split("|") if part.strip()]


def _whole_cell(row: dict[str, str], column: str, problems: list[str]) -> int | None:
    """The whole number of 0 or more in ``row[column]`` (ASCII digits, at most ``limits.STOCK``), or ``None``
    when the column is missing or the cell empty; a malformed cell adds its problem to ``problems``."""
    text = row.get(column, "")
    if not text:
        return None
    if not _STOCK_PATTERN.fullmatch(text):
        problems.append(f"{column} {_shown(text)} is not a whole number of 0 or more")
    elif (number := whole_number_text(text.lstrip("0") or "0", max_digits=10)) is None or number > _MAX_STOCK:
        problems.append(f"{column} {_shown(text)} is more than {_MAX_STOCK:,}")
    else:
        return number
    return None


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
    # variant_set_problems' "sku" rule, which the service refuses and the importer mends.
    repeated = {variants[index].sku for index in first_seen(variant.sku for variant in variants)}
    taken = {variant.sku for variant in variants if variant.sku not in repeated}
    for variant in variants:
        if variant.sku not in repeated:
            continue
        base = f"{variant.sku}-{slugify(' '.join(variant.option_values)) or 'variant'}"
        candidate, number = base, 2
        while candidate in taken:
            candidate, number = f"{base}-{number}", number + 1
        taken.add(candidate)
        renamed.append((variant.line, variant.sku, candidate))
        variant.sku = candidate
    return renamed


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


def _cells_problem(cells: list[str]) -> str | None:
    """Why a row's cells hold what no text of the shop may (``webshop.text``): control characters other
    than tab and line breaks, or text direction controls; ``None`` when they hold neither."""
    if any(re.search(f"[{CONTROL_BUT_LINE_BREAKS}]", cell) for cell in cells):
        bidi = any(has_bidi_control(cell) for cell in cells)
        what = "text direction controls (such as RIGHT-TO-LEFT OVERRIDE)" if bidi else "control characters"
        return f"the row holds {what}; remove them"
    return None
