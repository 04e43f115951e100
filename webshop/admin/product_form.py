"""The admin product form: reading its fields (``ProductForm``), filling it from a product
(``product_form_values``), and the small helpers the product pages share (money as typed text, stock
level names, the category list for the select, safe return paths).

Reading a post goes in two steps. ``read_form`` decodes the posted text into ``ProductFields`` and one
``VariantRowFields`` per row (a control character is refused there, as on every form); small converters
then turn the form's own notations into the service's input Structs, ``ProductWrite``, ``VariantWrite``
and ``VariantUpdate``: prices typed in major units (``price_field``: ``webshop.money.parse_major``, the
one place text becomes minor units), whole numbers, the facets textarea and the ``|``/``,`` lists. Every
other rule is the service's (``webshop.catalog.rules``), whose ``field_errors`` ``take_service_errors``
puts back beside the form's fields.

Field names: see ``webshop.admin.products``.
"""

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar, cast

import msgspec

from webshop.api.schemas import INT_MAX
from webshop.catalog import limits
from webshop.catalog.query import CategoryNode
from webshop.catalog.rules import facet_dict
from webshop.catalog.schemas import TAX_CATEGORY_DEFAULT, ProductWrite, VariantUpdate, VariantWrite
from webshop.db.models import Product, Variant
from webshop.money import exponent, format_money, parse_major
from webshop.stock.service import stock_level_of
from webshop.text import Line, Lines, whole_number_text
from webshop.web.forms import InvalidForm, read_form

CELL_FIELDS = ("price", "stock")
"""Variant fields the product table edits in place."""
PRODUCT_FIELDS = ("name", "slug", "description", "category_id", "facets", "option_groups", "variants")
VARIANT_FIELDS = ("sku", "option_values", "price", "stock", "low_stock_threshold", "weight_grams", "tax_category")
_SERVICE_KEY = re.compile(r"(variants|new_variants)\[(\d+)\]\.(\w+)")
_WHOLE = re.compile(r"[0-9]{1,30}")
_NUMBERS = ("price", "stock", "low_stock_threshold", "weight_grams")
FormT = TypeVar("FormT", bound=msgspec.Struct)


def major_text(amount: int, currency: str) -> str:
    """Minor units as the plain decimal an admin types: ``major_text(1299, "USD") == "12.99"``."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def stock_level(variant: Variant) -> str:
    """The variant's stock level name (``webshop.stock.service.stock_level_of``)."""
    return stock_level_of(variant.stock, variant.low_stock_threshold).value


def safe_next(value: str | None, default: str = "/admin/products") -> str:
    """A return address inside the product admin (never another site: no ``//`` or scheme)."""
    if value and value.startswith("/admin/products") and "//" not in value and "\\" not in value:
        return value
    return default


def flat_categories(nodes: list[CategoryNode], depth: int = 0) -> list[tuple[int, str]]:
    """The category tree as ``[(id, indented name)]`` for a ``<select>``."""
    rows: list[tuple[int, str]] = []
    for node in nodes:
        rows.append((node.id, "\u2003" * depth + node.name))
        rows.extend(flat_categories(node.children, depth + 1))
    return rows


# --- converters: the form's own notations, turned into the service's values ---------------------------


def whole_number(
    text: str,
    key: str,
    errors: dict[str, str],
    *,
    label: str,
    default: int | None = None,
    minimum: int = 0,
    maximum: int = INT_MAX,
) -> int | None:
    """``text`` as a whole number from ``minimum`` to ``maximum`` (by default what an ``integer`` column
    holds, as the API's fields), ``default`` if empty and given; else ``None`` with a message under
    ``errors[key]`` naming the field by ``label``."""
    text = text.strip()
    if not text and default is not None:
        return default
    if not _WHOLE.fullmatch(text) or int(text) < minimum:
        decimal = re.fullmatch(r"[+-]?[0-9]*[.,][0-9]{1,2}", text) is not None  # 12.5, 12,50; not 1,000
        errors[key] = f"{label}: enter a whole number of {minimum} or more{', without decimals' if decimal else ''}."
        return None
    if int(text) > maximum:
        errors[key] = f"{label}: enter a whole number of at most {maximum:,}."
        return None
    return int(text)


def price_field(text: str, key: str, currency: str, errors: dict[str, str], *, maximum: int = INT_MAX) -> int | None:
    """A price typed in major units (``12.99``) as minor units of ``currency`` (``webshop.money.parse_major``),
    at most ``maximum`` minor units (by default what an ``integer`` column holds, as the API's fields);
    ``None`` with a message under ``errors[key]`` if it is not one."""
    text = text.strip()
    if not text:
        errors[key] = "Enter a price, such as 12.99."
        return None
    try:
        price = parse_major(text, currency)
    except ValueError:
        errors[key] = f"Enter a price of 0 or more with at most {exponent(currency)} decimals, such as 12.99."
        return None
    if price > maximum:
        errors[key] = f"Enter a price of at most {format_money(maximum, currency)}."
        return None
    return price


def category_field(text: str, errors: dict[str, str]) -> int | None:
    """The category ``<select>``'s value as a category id (``""``: none); a message under
    ``errors["category_id"]`` and ``None`` when it is not an id (whether it exists is the service's rule)."""
    text = text.strip()
    if not text:
        return None
    if (category_id := whole_number_text(text, max_digits=17)) is not None:
        return category_id
    errors["category_id"] = "Choose an existing category."
    return None


def facets_field(text: str, errors: dict[str, str]) -> dict[str, list[str]]:
    """The facets textarea, one facet a line as ``name: value, value``, as ``{name: [values]}`` (names
    lowercased; the service cleans and checks the rest). A line that is not ``name: value`` puts a
    message under ``errors["facets"]``: ``"brand: Acme\\ncolor: red, blue"`` → ``{"brand": ["Acme"],
    "color": ["red", "blue"]}``."""
    facets: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        name, separator, rest = line.partition(":")
        if not separator or not name.strip() or not rest.strip():
            errors["facets"] = f"Write each facet as “name: value, value” (not “{line.strip()[:40]}”)."
            break
        facets.setdefault(name.strip().lower(), []).extend(split_list(rest, ","))
    return facets


def split_list(text: str, separator: str) -> list[str]:
    """``"a, b,,"`` → ``["a", "b"]``: the option groups (``,``) and a row's option values (``|``)."""
    return [part.strip() for part in text.split(separator) if part.strip()]


# --- the form ---------------------------------------------------------------------------------------------


class ProductFields(msgspec.Struct, kw_only=True):
    """The product form's own fields as posted, decoded by ``read_form`` (a control character is refused
    there, beside its field). The converters above turn them into a ``ProductWrite``."""

    name: Line = ""
    slug: Line = ""
    description: Lines = ""
    category_id: Line = ""
    facets: Lines = ""
    option_groups: Line = ""
    is_active: Line | None = None
    """A checkbox: present (any value) when ticked."""
    new_rows: Line = ""
    """How many blank ``new-{k}-*`` rows the page shows (at most 50)."""
    action: Line = ""
    """``more`` for the no-JS "Add a variant row" button, else ``save``."""
    shop_id: Line = ""
    """A new product's shop (the select a member of several shops sees); empty for the user's one shop."""


class VariantRowFields(msgspec.Struct, kw_only=True):
    """One variant row of the form, ``variants-{i}-{field}`` (a stored variant, with its ``id`` and the
    ``stock_seen`` level the page showed) or ``new-{k}-{field}``, with the prefix taken off; decoded by
    ``read_form``, then turned into a ``VariantWrite`` or ``VariantUpdate``."""

    id: Line = ""
    sku: Line = ""
    option_values: Line = ""
    price: Line = ""
    stock: Line = ""
    stock_seen: Line = ""
    low_stock_threshold: Line = ""
    weight_grams: Line = ""
    tax_category: Line = ""


def row_prefixes(values: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The form's variant rows: ``(["variants-0", ...], ["new-0", ...])``, the stored variants' rows
    (as many as there are ``variants-{i}-id`` fields) and ``new_rows`` blank ones (0 to 50)."""
    existing: list[str] = []
    while f"variants-{len(existing)}-id" in values:
        existing.append(f"variants-{len(existing)}")
    count = values.get("new_rows")
    rows = (whole_number_text(count, max_digits=3) if isinstance(count, str) else None) or 0
    return existing, [f"new-{k}" for k in range(min(rows, 50))]


def _text(value: Any) -> str:
    """A posted value as the text to show again (a repeated field: its first value)."""
    if isinstance(value, list):
        return _text(value[0]) if value else ""
    return "" if value is None else str(value)


def posted_text(fields: Mapping[str, Any], key: str) -> str:
    """The posted field ``key`` as the text to show again (``""`` when absent, a repeated one's first value)."""
    return _text(fields.get(key))


class CellFields(msgspec.Struct, kw_only=True):
    """The inline price or stock editor's post (``read_form``); ``value`` is converted by ``price_field``
    or ``whole_number``."""

    value: Line = ""
    """The price as typed (``12.99``) or the stock level."""
    expected: Line = ""
    """The stock level the editor showed (a stock edit applies only if it still is)."""
    next: Line = ""
    """The table page to go back to (``safe_next``)."""


class ProductForm:
    """The product form as posted: the raw text (``values``, shown again on error), the fields decoded
    into ``ProductFields`` and ``VariantRowFields``, and ``errors`` keyed by form field name."""

    def __init__(self, fields: Mapping[str, Any], currency: str) -> None:
        self.values: dict[str, str] = {key: _text(value) for key, value in fields.items() if key != "_csrf_token"}
        self.is_active = "is_active" in fields
        self.currency = currency
        self.errors: dict[str, str] = {}
        self.fields = self._read(ProductFields, fields, "")
        self.existing, self.new = row_prefixes(self.values)
        self.update_prefixes: list[str] = list(self.existing)
        self.rows = {
            prefix: self._read(
                VariantRowFields,
                {
                    key.removeprefix(f"{prefix}-"): value
                    for key, value in fields.items()
                    if key.startswith(f"{prefix}-")
                },
                f"{prefix}-",
            )
            for prefix in self.existing + self.new
        }

    def _read(self, form_type: type[FormT], fields: Mapping[str, Any], prefix: str) -> FormT:
        """``read_form``; the fields it refuses go to ``errors`` under ``prefix`` + name, at their defaults."""
        try:
            return read_form(form_type, fields)
        except InvalidForm as exc:
            self.errors.update({prefix + key: message for key, message in exc.field_errors.items()})
            return cast("FormT", exc.form)

    def product(self) -> ProductWrite | None:
        """The product fields as a ``ProductWrite`` (``None`` when a field cannot even be parsed)."""
        data = self.product_as_read()
        return None if any(key in self.errors for key in ("category_id", "facets", "shop_id")) else data

    def product_as_read(self) -> ProductWrite:
        """The product fields as a ``ProductWrite``, a field that cannot be parsed left empty (its message
        in ``errors``): what ``ProductService.check_new_product`` checks the rest of."""
        fields, errors = self.fields, self.errors
        category_id = category_field(fields.category_id, errors)
        facets = facets_field(fields.facets, errors)
        shop_id = fields.shop_id.strip()
        if shop_id and whole_number_text(shop_id, max_digits=17) is None:
            errors["shop_id"] = "Choose one of your shops."
            shop_id = ""
        return ProductWrite(
            name=fields.name,
            slug=fields.slug,
            description=fields.description.replace("\r\n", "\n"),
            category_id=category_id,
            facets={} if "facets" in errors else facets,
            option_groups=split_list(fields.option_groups, ","),
            is_active=self.is_active,
            shop_id=int(shop_id) if shop_id else None,
        )

    def _row(self, prefix: str, *, new: bool) -> dict[str, Any] | None:
        """A row's ``VariantWrite`` fields; ``None`` for a blank new row (ignored); a number or price that
        cannot be read is ``None`` with its message in ``errors``."""
        raw, errors = self.rows[prefix], self.errors
        if new and not any(text.strip() for text in (raw.sku, raw.option_values, raw.price, raw.stock)):
            return None
        return {
            "sku": raw.sku,
            "option_values": split_list(raw.option_values, "|"),
            "tax_category": raw.tax_category or TAX_CATEGORY_DEFAULT,
            "price": price_field(raw.price, f"{prefix}-price", self.currency, errors),
            "stock": whole_number(raw.stock, f"{prefix}-stock", errors, label="Stock", default=0),
            "low_stock_threshold": whole_number(
                raw.low_stock_threshold,
                f"{prefix}-low_stock_threshold",
                errors,
                label="Threshold",
                default=limits.LOW_STOCK_THRESHOLD,
            ),
            "weight_grams": whole_number(
                raw.weight_grams, f"{prefix}-weight_grams", errors, label="The weight", default=0
            ),
        }

    def new_variants(self, *, lenient: bool = False) -> tuple[list[VariantWrite], list[str]]:
        """The filled-in new rows as ``VariantWrite`` and the form prefix of each. A row with a number
        that cannot be read is left out, or with ``lenient`` kept with that number at 0 (its own
        message already stands), so that the service can still check the row's SKU and values."""
        writes, prefixes = [], []
        for prefix in self.new:
            row = self._row(prefix, new=True)
            if row is None or (not lenient and any(row[k] is None for k in _NUMBERS)):
                continue
            row.update({key: 0 for key in _NUMBERS if row[key] is None})
            writes.append(VariantWrite(currency=self.currency, **row))
            prefixes.append(prefix)
        return writes, prefixes

    def variant_updates(self, product: Product, *, lenient: bool = False) -> list[VariantUpdate]:
        """The existing rows as ``VariantUpdate`` (in row order, as ``variants[i]`` in service errors;
        ``update_prefixes`` names each one's row). A row with a number that cannot be read is left out,
        or with ``lenient`` kept without that number (as ``new_variants``)."""
        ids = {v.id for v in product.variants}
        updates, self.update_prefixes = [], []
        for prefix in self.existing:
            variant_id = whole_number_text(self.rows[prefix].id)
            row = self._row(prefix, new=False)
            if variant_id is None or variant_id not in ids or row is None:
                self.errors[f"{prefix}-sku"] = "This variant no longer exists; reload the page."
                continue
            if any(row[k] is None for k in _NUMBERS):
                if not lenient:
                    continue
                row = {key: value for key, value in row.items() if value is not None}
            seen = whole_number(self.rows[prefix].stock_seen, f"{prefix}-stock", self.errors, label="Stock")
            update = VariantUpdate(id=variant_id, stock_seen=msgspec.UNSET if seen is None else seen, **row)
            updates.append(update)
            self.update_prefixes.append(prefix)
        return updates

    def take_service_errors(self, field_errors: Mapping[str, str], new_prefixes: list[str], *, create: bool) -> None:
        """Map the service's ``field_errors`` keys (``variants[1].sku``) to this form's field names. A
        field the form itself could not read keeps its own message (the service saw a stand-in value)."""
        for key, message in field_errors.items():
            match = _SERVICE_KEY.fullmatch(key)
            if match:
                group, index, field = match.group(1), int(match.group(2)), match.group(3)
                prefixes = new_prefixes if (create or group == "new_variants") else self.update_prefixes
                if index < len(prefixes):
                    self.errors.setdefault(f"{prefixes[index]}-{field if field in VARIANT_FIELDS else 'sku'}", message)
                    continue
            if key in PRODUCT_FIELDS:
                self.errors.setdefault(key, message)
            else:
                self.errors["form"] = f"{self.errors['form']} {message}" if "form" in self.errors else message


def product_form_values(product: Product) -> dict[str, str]:
    """The edit form's initial values from a product."""
    facets = facet_dict(product)
    values = {
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "category_id": str(product.category_id or ""),
        "facets": "\n".join(f"{name}: {', '.join(items)}" for name, items in facets.items()),
        "option_groups": ", ".join(product.option_groups or []),
        "new_rows": "1",
    }
    for index, variant in enumerate(product.variants):
        prefix = f"variants-{index}"
        values.update(
            {
                f"{prefix}-id": str(variant.id),
                f"{prefix}-sku": variant.sku,
                f"{prefix}-option_values": " | ".join(variant.option_values or []),
                f"{prefix}-price": major_text(variant.price, variant.currency),
                f"{prefix}-stock": str(variant.stock),
                f"{prefix}-stock_seen": str(variant.stock),
                f"{prefix}-low_stock_threshold": str(variant.low_stock_threshold),
                f"{prefix}-weight_grams": str(variant.weight_grams),
                f"{prefix}-tax_category": variant.tax_category,
            }
        )
    return values
