"""Admin product rules: the cleaning of product and variant input, the variant-set rules worded as
field errors, snapshots.

Functions used by ``ProductService``'s writes (``webshop.catalog.products``) and its mixins. The rules
across a product's variants and option groups are ``webshop.catalog.variant_rules`` (shared with the CSV
importer); this module words their problems for the admin pages and the API.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Any

from sqlalchemy.exc import IntegrityError

from webshop.catalog import limits
from webshop.catalog.variant_rules import (
    GroupProblem,
    ValueProblem,
    option_groups_problem,
    option_values_problem,
    variant_set_problems,
)
from webshop.db.models import Product, ProductFacet, Variant
from webshop.errors import ValidationFailed

# --- admin product rules (ProductService's writes) --------------------------------------------------------

ADMIN_STATES = {"active": "Not deleted", "deleted": "Deleted", "all": "All"}
"""The admin product table's state filter (``admin_search(state=...)``)."""
ADMIN_STOCK_LEVELS = {
    "out": "Out of stock",
    "critical": "Critical",
    "low": "Low",
    "medium": "Medium",
    "healthy": "Healthy",
}
"""The admin product table's stock filter: a product with any variant at that level."""
ADMIN_SORTS = {
    "name": "Name: A to Z",
    "-name": "Name: Z to A",
    "newest": "Newest",
    "updated": "Recently changed",
    "price": "Price: low to high",
    "-price": "Price: high to low",
    "stock": "Stock: least first",
    "-stock": "Stock: most first",
}
"""Sorts of the admin product table (``admin_search(sort=...)``)."""

_ADMIN_SLUG = limits.SLUG
_CURRENCY = re.compile(r"[A-Z]{3}")
_TAX_CATEGORY = re.compile(rf"[a-z0-9_-]{{1,{limits.TAX_CATEGORY}}}")
_MAX_INT = limits.STOCK
_MAX_DESCRIPTION = limits.DESCRIPTION
_GROUP_MESSAGES: dict[GroupProblem, str] = {
    "repeated": "Each option group can appear only once.",
    "too_many": f"Use at most {limits.OPTION_GROUPS} option groups.",
    "too_long": f"Option group names can be at most {limits.OPTION_GROUP} characters.",
}
"""How the admin pages and the API word ``option_groups_problem``."""
_VALUE_MESSAGES: dict[ValueProblem, str] = {
    "empty": "Enter a value for each option group.",
    "too_long": f"Option values can be at most {limits.OPTION_VALUE} characters.",
}
"""How the admin pages and the API word ``option_values_problem``."""


def _clean_text(value: Any) -> str:
    """``value`` as a trimmed string (``None`` → ``""``)."""
    return "" if value is None else str(value).strip()


def _text_field(value: Any, key: str, errors: dict[str, str], *, label: str, limit: int, required: bool = True) -> str:
    text = _clean_text(value)
    if "\x00" in text:
        errors[key] = f"{label} must not contain NUL characters."
    elif required and not text:
        errors[key] = f"Enter {label.lower()}."
    elif len(text) > limit:
        errors[key] = f"{label} can be at most {limit} characters."
    return text


def _clean_product(raw: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Validate and normalise the product fields present in ``raw``; adds to ``errors``."""
    values: dict[str, Any] = {}
    if "name" in raw:
        values["name"] = _text_field(raw["name"], "name", errors, label="A name", limit=limits.PRODUCT_NAME)
    if "slug" in raw:
        slug = _clean_text(raw["slug"] or "").lower()
        if slug and (len(slug) > limits.PRODUCT_SLUG or not _ADMIN_SLUG.fullmatch(slug)):
            most = limits.PRODUCT_SLUG
            errors["slug"] = (
                f"Use lowercase letters and digits joined by single hyphens (at most {most}), e.g. trail-shoe."
            )
        values["slug"] = slug
    if "description" in raw:
        values["description"] = _text_field(
            raw["description"], "description", errors, label="The description", limit=_MAX_DESCRIPTION, required=False
        )
    if "category_id" in raw:
        category_id = raw["category_id"]
        if category_id is not None and (not isinstance(category_id, int) or not 0 < category_id <= 2**63 - 1):
            errors["category_id"] = "Choose an existing category."
        values["category_id"] = category_id
    if "is_active" in raw:
        values["is_active"] = bool(raw["is_active"])
    if "facets" in raw:
        facets: dict[str, list[str]] = {}
        for name, items in (raw["facets"] or {}).items():
            facet = _clean_text(name).lower()
            cleaned = list(dict.fromkeys(_clean_text(v) for v in items or [] if _clean_text(v)))
            if not cleaned:
                continue
            if not facet or len(facet) > limits.FACET_NAME or "\x00" in facet:
                errors["facets"] = f"Facet names must be 1-{limits.FACET_NAME} characters ({facet[:20] or 'empty'})."
            elif facet == "category":
                errors["facets"] = "The category is chosen above, not as a facet."
            elif any(len(v) > limits.FACET_VALUE or "\x00" in v for v in cleaned):
                errors["facets"] = f"Values of {facet} can be at most {limits.FACET_VALUE} characters."
            facets.setdefault(facet, [])
            facets[facet] += [v for v in cleaned if v not in facets[facet]]
        values["facets"] = facets
    if "option_groups" in raw:
        groups = [_clean_text(g) for g in raw["option_groups"] or []]
        groups = [g for g in groups if g]
        if problem := option_groups_problem(groups):
            errors["option_groups"] = _GROUP_MESSAGES[problem]
        values["option_groups"] = groups
    return values


def _clean_variant(
    raw: dict[str, Any],
    errors: dict[str, str],
    prefix: str,
    tax_categories: Collection[str] | None,
    *,
    partial: bool = False,
) -> dict[str, Any]:
    """Validate and normalise the variant fields in ``raw`` (all of ``VariantWrite``'s unless ``partial``)."""
    values: dict[str, Any] = {}
    if "sku" in raw:
        values["sku"] = _text_field(raw["sku"], prefix + "sku", errors, label="A SKU", limit=limits.SKU)
    if "option_values" in raw:
        options = [_clean_text(v) for v in raw["option_values"] or []]
        if problem := option_values_problem(options):
            errors[prefix + "option_values"] = _VALUE_MESSAGES[problem]
        values["option_values"] = options
    numbers = (
        ("price", "The price"),
        ("stock", "Stock"),
        ("low_stock_threshold", "The low-stock threshold"),
        ("weight_grams", "The weight"),
    )
    for key, label in numbers:
        if key in raw:
            number = raw[key]
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                errors[prefix + key] = f"{label} must be 0 or more."
            elif number > _MAX_INT:
                errors[prefix + key] = f"{label} is too large."
            values[key] = number
    if "currency" in raw:
        currency = _clean_text(raw["currency"]).upper()
        if not _CURRENCY.fullmatch(currency):
            errors[prefix + "currency"] = "Use a three-letter ISO 4217 currency code, such as USD."
        values["currency"] = currency
    if "tax_category" in raw:
        tax = _clean_text(raw["tax_category"])
        if not _TAX_CATEGORY.fullmatch(tax) or (tax_categories is not None and tax not in tax_categories):
            known = ", ".join(sorted(tax_categories)) if tax_categories is not None else "standard"
            errors[prefix + "tax_category"] = f"Choose a tax category ({known})."
        values["tax_category"] = tax
    if not partial:
        for key in ("sku", "price"):
            if key not in raw:
                errors[prefix + key] = "This field is required."
    return values


def _check_variant_set(
    groups: list[str],
    variants: list[dict[str, Any]],
    errors: dict[str, str],
    prefixes: list[str],
    *,
    group_key: str = "option_values",
) -> None:
    """Words ``webshop.catalog.variant_rules.variant_set_problems`` as field errors: one option value per
    group, no repeated SKU or combination.

    ``prefixes[i]`` names where variant ``i`` came from: ``variants[i].`` (a row of the form or body),
    ``""`` (the one variant of an add or update), or ``sku …: `` for a stored variant the caller did
    not send. A sent variant's problems go on its own fields (``<prefix>sku``, ``<prefix>option_values``),
    also when the variant it repeats comes after it in the list; a stored one's only when its values no
    longer fit the groups, on ``group_key`` naming the SKU. A
    field that already has an error keeps it (a repeated SKU replaces the field's error).
    """
    pairs = [(variant.get("sku"), variant.get("option_values", [])) for variant in variants]
    for problem in variant_set_problems(groups, pairs):
        index = problem.index
        if (
            problem.earlier is not None
            and prefixes[index].startswith("sku ")
            and not prefixes[problem.earlier].startswith("sku ")
        ):
            index = problem.earlier  # a sent variant that takes a stored one's SKU or values, stored after it
        prefix = prefixes[index]
        inline = not prefix.startswith("sku ")
        sku, options = pairs[index]
        field = prefix + "option_values"
        if problem.kind == "value_count" and field not in errors:
            if inline:
                named = ", ".join(groups) or "none"
                errors[field] = f"Give {len(groups)} option value(s), one per option group ({named})."
            else:
                message = f"Variant {sku} has {len(options)} option value(s): change its values too."
                errors.setdefault(group_key, message)
        elif problem.kind == "sku" and inline:
            errors[prefix + "sku"] = f"SKU {sku} is used twice in this product."
        elif problem.kind == "combination" and inline and field not in errors:
            errors[field] = "Another variant already has these option values."


def facet_dict(product: Product) -> dict[str, list[str]]:
    """The product's facets as ``{name: [values]}`` (for its snapshot and the admin form)."""
    facets: dict[str, list[str]] = {}
    for facet in product.facets:
        facets.setdefault(facet.facet, []).append(facet.value)
    return facets


def _replace_facets(product: Product, facets: dict[str, list[str]]) -> None:
    wanted = {(f, v) for f, values in facets.items() for v in values}
    for facet in [f for f in product.facets if (f.facet, f.value) not in wanted]:
        product.facets.remove(facet)
    have = {(f.facet, f.value) for f in product.facets}
    for name, values in facets.items():
        for value in values:
            if (name, value) not in have:
                product.facets.append(ProductFacet(facet=name, value=value))


def _product_snapshot(product: Product, facets: dict[str, list[str]]) -> dict[str, Any]:
    """The audited fields of a product (JSON values)."""
    return {
        "name": product.name,
        "slug": product.slug,
        "description": product.description,
        "category_id": product.category_id,
        "facets": facets,
        "option_groups": list(product.option_groups or []),
        "is_active": product.is_active,
    }


def _variant_snapshot(variant: Variant) -> dict[str, Any]:
    """The audited fields of a variant (JSON values; stock is audited separately)."""
    return {
        "sku": variant.sku,
        "option_values": list(variant.option_values or []),
        "price": variant.price,
        "currency": variant.currency,
        "tax_category": variant.tax_category,
        "low_stock_threshold": variant.low_stock_threshold,
        "weight_grams": variant.weight_grams,
    }


def _conflict(exc: IntegrityError) -> ValidationFailed:
    """A unique constraint hit by a concurrent write (the checks above passed): say which field."""
    text = str(exc.orig).lower()
    if "sku" in text:
        field_errors = {"sku": "This SKU was just taken by another variant."}
    elif "slug" in text:
        field_errors = {"slug": "This slug was just taken by another product."}
    else:
        field_errors = {}
    message = "The change conflicts with one made at the same time; please try again."
    return ValidationFailed(message, field_errors=field_errors)
