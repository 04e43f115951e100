"""Catalog aggregate: categories (a tree), products, their facet values, images and variants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import BigIntAuditBase
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship


class Category(BigIntAuditBase):
    """A node of the category tree; ``parent_id`` is ``None`` for top-level categories."""

    __tablename__ = "categories"

    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    parent: Mapped[Category | None] = relationship(remote_side="Category.id", back_populates="children")
    children: Mapped[list[Category]] = relationship(back_populates="parent", order_by="Category.position")


class Product(BigIntAuditBase):
    """A product as the shopper sees it; what is sold is one of its variants.

    ``option_groups`` lists the names of the variant axes in order (``["screen size", "RAM"]``);
    ``deleted_at`` set means soft-deleted: hidden from the shop, kept for past orders.
    """

    __tablename__ = "products"
    __table_args__ = (Index("ix_products_active_name", "is_active", "name"),)

    slug: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    option_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)

    category: Mapped[Category | None] = relationship(lazy="joined", innerjoin=False)
    variants: Mapped[list[Variant]] = relationship(
        back_populates="product", order_by="Variant.position", cascade="all, delete-orphan"
    )
    images: Mapped[list[ProductImage]] = relationship(
        back_populates="product", order_by="ProductImage.position", cascade="all, delete-orphan"
    )
    facets: Mapped[list[ProductFacet]] = relationship(
        back_populates="product", cascade="all, delete-orphan", order_by="ProductFacet.id"
    )

    def facet_values(self, facet: str) -> list[str]:
        """Return this product's values for ``facet`` (for example ``"brand"``), in import order."""
        return [f.value for f in self.facets if f.facet == facet]


class ProductFacet(BigIntAuditBase):
    """One facet value of a product (``brand=Nikon``, ``color=blue``): what the filters count."""

    __tablename__ = "product_facets"
    __table_args__ = (
        Index("ix_product_facets_facet_value", "facet", "value", "product_id"),
        Index("uq_product_facets_product_facet_value", "product_id", "facet", "value", unique=True),
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    facet: Mapped[str] = mapped_column(String(60))
    value: Mapped[str] = mapped_column(String(120))

    product: Mapped[Product] = relationship(back_populates="facets")


class ProductImage(BigIntAuditBase):
    """A product photo stored in the media directory under ``key``.

    ``key`` is the content hash of the source for imported photos (two products may share one file;
    re-importing finds the same key) and random for uploads. Derivatives are WebP files named
    ``{key}-{width}.webp``; the original, re-encoded without metadata, is ``{key}.{ext}``.
    """

    __tablename__ = "product_images"

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(64), index=True)
    ext: Mapped[str] = mapped_column(String(8))
    source_name: Mapped[str] = mapped_column(String(255), default="")
    alt: Mapped[str] = mapped_column(String(255), default="")
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    position: Mapped[int] = mapped_column(Integer, default=0)

    product: Mapped[Product] = relationship(back_populates="images")


class Variant(BigIntAuditBase):
    """A sellable unit of a product, identified by its SKU.

    ``option_values`` holds one value per product option group, in the same order. ``price`` is in
    minor units of ``currency`` (ISO 4217), net of tax. ``stock`` is on-hand quantity and a CHECK
    keeps it at zero or above: the last line of defence behind the conditional stock update.
    """

    __tablename__ = "variants"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price >= 0", name="price_not_negative"),
        Index("ix_variants_product_price", "product_id", "price"),
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    option_values: Mapped[list[str]] = mapped_column(JSON, default=list)
    price: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    tax_category: Mapped[str] = mapped_column(String(40), default="standard")
    stock: Mapped[int] = mapped_column(Integer, default=0)
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=5)
    position: Mapped[int] = mapped_column(Integer, default=0)

    product: Mapped[Product] = relationship(back_populates="variants")

    def options(self, groups: list[str]) -> dict[str, Any]:
        """Map each option group name to this variant's value (``{"size": "Size 42"}``)."""
        return dict(zip(groups, self.option_values, strict=False))
