"""Catalog shapes for the JSON API (msgspec Structs). Money is ``{amount, currency}`` in minor units."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from webshop.api.schemas import Money, money
from webshop.media import IMAGE_WIDTHS, image_url

if TYPE_CHECKING:
    from webshop.catalog.service import CategoryNode, ProductCard
    from webshop.db.models import Category, Product, ProductImage, Variant


class ImageOut(msgspec.Struct):
    """A product photo: the original's size and URLs of its WebP derivatives by width (pixels)."""

    id: int
    alt: str
    width: int
    height: int
    urls: dict[str, str]


class CategoryRef(msgspec.Struct):
    """A category named by a product."""

    id: int
    slug: str
    name: str


class CategoryOut(msgspec.Struct):
    """A category with its subcategories (the tree)."""

    id: int
    slug: str
    name: str
    children: list[CategoryOut]


class ProductSummary(msgspec.Struct):
    """A product in a list: lowest and highest variant price, whether any variant is in stock."""

    id: int
    slug: str
    name: str
    price_min: Money
    price_max: Money
    in_stock: bool
    variant_count: int
    image: ImageOut | None


class ProductPage(msgspec.Struct):
    """A page of products; pass ``next_cursor`` as ``cursor`` for the next one (``null`` at the end)."""

    items: list[ProductSummary]
    next_cursor: str | None


class VariantOut(msgspec.Struct):
    """A purchasable variant: SKU, option values by group, price, stock on hand."""

    id: int
    sku: str
    options: dict[str, str]
    price: Money
    tax_category: str
    stock: int
    in_stock: bool


class ProductOut(msgspec.Struct):
    """A product with its variants, photos and facet values (``{"brand": ["Nikon"]}``)."""

    id: int
    slug: str
    name: str
    description: str
    category: CategoryRef | None
    facets: dict[str, list[str]]
    option_groups: list[str]
    variants: list[VariantOut]
    images: list[ImageOut]
    created_at: datetime
    updated_at: datetime


def image_out(image: ProductImage) -> ImageOut:
    """``ImageOut`` from a ``ProductImage`` row."""
    return ImageOut(
        id=image.id,
        alt=image.alt,
        width=image.width,
        height=image.height,
        urls={str(w): image_url(image.key, w) for w in IMAGE_WIDTHS},
    )


def summary_out(card: ProductCard) -> ProductSummary:
    """``ProductSummary`` from a catalog card."""
    return ProductSummary(
        id=card.id,
        slug=card.slug,
        name=card.name,
        price_min=money(card.min_price, card.currency),
        price_max=money(card.max_price, card.currency),
        in_stock=card.in_stock,
        variant_count=card.variant_count,
        image=image_out(card.image) if card.image else None,
    )


def variant_out(variant: Variant, groups: list[str]) -> VariantOut:
    """``VariantOut`` from a ``Variant`` row."""
    return VariantOut(
        id=variant.id,
        sku=variant.sku,
        options={k: str(v) for k, v in variant.options(groups).items()},
        price=money(variant.price, variant.currency),
        tax_category=variant.tax_category,
        stock=variant.stock,
        in_stock=variant.stock > 0,
    )


def category_ref(category: Category | None) -> CategoryRef | None:
    """``CategoryRef`` from a ``Category`` row (or ``None``)."""
    return CategoryRef(category.id, category.slug, category.name) if category else None


def product_out(product: Product) -> ProductOut:
    """``ProductOut`` from a ``Product`` with variants, images and facets loaded."""
    facets: dict[str, list[str]] = {}
    for facet in product.facets:
        facets.setdefault(facet.facet, []).append(facet.value)
    groups = list(product.option_groups or [])
    return ProductOut(
        id=product.id,
        slug=product.slug,
        name=product.name,
        description=product.description,
        category=category_ref(product.category),
        facets=facets,
        option_groups=groups,
        variants=[variant_out(v, groups) for v in product.variants],
        images=[image_out(i) for i in product.images],
        created_at=product.created_at,
        updated_at=product.updated_at,
    )


def tree_out(nodes: list[CategoryNode]) -> list[CategoryOut]:
    """The category tree as ``CategoryOut`` nodes."""
    return [CategoryOut(n.id, n.slug, n.name, tree_out(n.children)) for n in nodes]
