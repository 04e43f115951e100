"""The admin product form: reading its fields (``ProductForm``), filling it from a product
(``product_form_values``), and the small helpers the product pages share (money as typed text, stock
level names, the category list for the select, safe return paths).

Field names: see ``webshop.admin.products``. Prices are typed in major units and parsed with
``webshop.money.parse_major`` (the one place text becomes minor units).
"""

import re
from decimal import Decimal
from typing import Any

import msgspec
from litestar.datastructures import FormMultiDict

from webshop.catalog.query import CategoryNode
from webshop.catalog.schemas import ProductWrite, VariantUpdate, VariantWrite
from webshop.db.models import Product, Variant
from webshop.errors import DomainError
from webshop.money import exponent, parse_major

CELL_FIELDS = ("price", "stock")
"""Variant fields the product table edits in place."""
PRODUCT_FIELDS = ("name", "slug", "description", "category_id", "facets", "option_groups", "variants")
VARIANT_FIELDS = ("sku", "option_values", "price", "stock", "low_stock_threshold", "tax_category")
_SERVICE_KEY = re.compile(r"(variants|new_variants)\[(\d+)\]\.(\w+)")
_WHOLE = re.compile(r"[0-9]{1,10}")
_DECIMAL = re.compile(r"[0-9]{1,12}(?:\.[0-9]*)?|\.[0-9]+")


def major_text(amount: int, currency: str) -> str:
    """Minor units as the plain decimal an admin types: ``major_text(1299, "USD") == "12.99"``."""
    places = exponent(currency)
    return f"{Decimal(amount).scaleb(-places):.{places}f}"


def stock_level(variant: Variant) -> str:
    """The variant's stock level name (same rule as ``webshop.stock.service.stock_level_expression``)."""
    if variant.stock <= 0:
        return "out"
    if variant.stock * 2 <= variant.low_stock_threshold:
        return "critical"
    if variant.stock <= variant.low_stock_threshold:
        return "low"
    return "healthy"


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


def whole_number(text: str, key: str, errors: dict[str, str], *, label: str, default: int | None = None) -> int | None:
    """``text`` as a whole number of 0 or more (up to 10 digits), ``default`` if empty and given;
    else ``None`` with a message under ``errors[key]`` naming the field by ``label``."""
    text = text.strip()
    if not text and default is not None:
        return default
    if not _WHOLE.fullmatch(text):
        errors[key] = f"{label}: enter a whole number of 0 or more."
        return None
    return int(text)


def price_field(text: str, key: str, currency: str, errors: dict[str, str]) -> int | None:
    """A price typed in major units (``12.99``) as minor units of ``currency``
    (``webshop.money.parse_major``); ``None`` with a message under ``errors[key]`` if it is not one."""
    text = text.strip()
    if not text:
        errors[key] = "Enter a price, such as 12.99."
        return None
    try:
        if not _DECIMAL.fullmatch(text):  # plain decimals only: no "1e3", "NaN" or "+5"
            raise ValueError(text)
        return parse_major(text, currency)
    except ValueError:
        errors[key] = f"Enter a price of 0 or more with at most {exponent(currency)} decimals, such as 12.99."
        return None


def _split(text: str, separator: str) -> list[str]:
    return [part.strip() for part in text.split(separator) if part.strip()]


class ProductForm:
    """The product form as submitted: raw strings (re-rendered on error) and what they parse to."""

    def __init__(self, form: FormMultiDict, currency: str) -> None:
        self.values: dict[str, str] = {key: str(form.get(key) or "") for key in form if key != "_csrf_token"}
        self.is_active = "is_active" in form
        self.currency = currency
        self.errors: dict[str, str] = {}
        self.existing = []
        index = 0
        while f"variants-{index}-id" in form:
            self.existing.append(f"variants-{index}")
            index += 1
        try:
            count = max(0, min(int(self.values.get("new_rows") or 0), 50))
        except ValueError:
            count = 0
        self.new = [f"new-{k}" for k in range(count)]

    def product(self) -> ProductWrite | None:
        """The product fields as a ``ProductWrite`` (``None`` when a field cannot even be parsed)."""
        values, errors = self.values, self.errors
        category_id: int | None = None
        raw_category = values.get("category_id", "").strip()
        if raw_category:
            if raw_category.isdigit() and len(raw_category) < 18:
                category_id = int(raw_category)
            else:
                errors["category_id"] = "Choose an existing category."
        facets: dict[str, list[str]] = {}
        for line in values.get("facets", "").splitlines():
            if not line.strip():
                continue
            name, separator, rest = line.partition(":")
            if not separator or not name.strip() or not rest.strip():
                errors["facets"] = f"Write each facet as “name: value, value” (not “{line.strip()[:40]}”)."
                break
            facets.setdefault(name.strip().lower(), []).extend(_split(rest, ","))
        if "category_id" in errors or "facets" in errors:
            return None
        return ProductWrite(
            name=values.get("name", ""),
            slug=values.get("slug", ""),
            description=values.get("description", "").replace("\r\n", "\n"),
            category_id=category_id,
            facets=facets,
            option_groups=_split(values.get("option_groups", ""), ","),
            is_active=self.is_active,
        )

    def _row(self, prefix: str, *, new: bool) -> dict[str, Any] | None:
        values, errors = self.values, self.errors
        raw = {field: values.get(f"{prefix}-{field}", "") for field in VARIANT_FIELDS}
        if new and not any(raw[f].strip() for f in ("sku", "option_values", "price", "stock")):
            return None  # a blank new row is ignored
        row: dict[str, Any] = {
            "sku": raw["sku"],
            "option_values": _split(raw["option_values"], "|"),
            "tax_category": raw["tax_category"] or "standard",
        }
        row["price"] = price_field(raw["price"], f"{prefix}-price", self.currency, errors)
        row["stock"] = whole_number(raw["stock"], f"{prefix}-stock", errors, label="Stock", default=0)
        row["low_stock_threshold"] = whole_number(
            raw["low_stock_threshold"], f"{prefix}-low_stock_threshold", errors, label="Threshold", default=5
        )
        return row

    def new_variants(self) -> tuple[list[VariantWrite], list[str]]:
        """The filled-in new rows as ``VariantWrite`` and the form prefix of each."""
        writes, prefixes = [], []
        for prefix in self.new:
            row = self._row(prefix, new=True)
            if row is None or any(row[k] is None for k in ("price", "stock", "low_stock_threshold")):
                continue
            writes.append(VariantWrite(currency=self.currency, **row))
            prefixes.append(prefix)
        return writes, prefixes

    def variant_updates(self, product: Product) -> list[VariantUpdate]:
        """The existing rows as ``VariantUpdate`` (in row order, as ``variants[i]`` in service errors)."""
        ids = {v.id for v in product.variants}
        updates = []
        for prefix in self.existing:
            raw_id = self.values.get(f"{prefix}-id", "")
            row = self._row(prefix, new=False)
            if not raw_id.isdigit() or int(raw_id) not in ids or row is None:
                self.errors[f"{prefix}-sku"] = "This variant no longer exists; reload the page."
                continue
            if any(row[k] is None for k in ("price", "stock", "low_stock_threshold")):
                continue
            seen = whole_number(
                self.values.get(f"{prefix}-stock_seen", ""), f"{prefix}-stock", self.errors, label="Stock"
            )
            updates.append(
                VariantUpdate(
                    id=int(raw_id),
                    sku=row["sku"],
                    price=row["price"],
                    option_values=row["option_values"],
                    tax_category=row["tax_category"],
                    low_stock_threshold=row["low_stock_threshold"],
                    stock=row["stock"],
                    stock_seen=seen if seen is not None else msgspec.UNSET,
                )
            )
        return updates

    def take_service_errors(self, exc: DomainError, new_prefixes: list[str], *, create: bool) -> None:
        """Map the service's ``field_errors`` keys (``variants[1].sku``) to this form's field names."""
        for key, message in exc.field_errors.items():
            match = _SERVICE_KEY.fullmatch(key)
            if match:
                group, index, field = match.group(1), int(match.group(2)), match.group(3)
                prefixes = new_prefixes if (create or group == "new_variants") else self.existing
                if index < len(prefixes):
                    self.errors[f"{prefixes[index]}-{field if field in VARIANT_FIELDS else 'sku'}"] = message
                    continue
            if key in PRODUCT_FIELDS:
                self.errors[key] = message
            else:
                self.errors["form"] = f"{self.errors['form']} {message}" if "form" in self.errors else message


def product_form_values(product: Product) -> dict[str, str]:
    """The edit form's initial values from a product."""
    facets: dict[str, list[str]] = {}
    for facet in product.facets:
        facets.setdefault(facet.facet, []).append(facet.value)
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
                f"{prefix}-tax_category": variant.tax_category,
            }
        )
    return values
