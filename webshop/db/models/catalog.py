"""Catalog aggregate: categories (a tree), products, their facet values, images and variants."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from advanced_alchemy.base import AdvancedDeclarativeBase, BigIntAuditBase, CommonTableAttributes
from advanced_alchemy.types import BigIntIdentity, DateTimeUTC
from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String, Text, false, select, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from webshop.catalog import limits
from webshop.db.models.shops import Shop


class Category(BigIntAuditBase):
    """A node of the category tree; ``parent_id`` is ``None`` for top-level categories."""

    __tablename__ = "categories"
    # Ids are never given again on SQLite either (as PostgreSQL's identity columns): promotions and the audit
    # trail name categories by id (migration d2f6a8c1e3b7).
    __table_args__ = {"sqlite_autoincrement": True}

    name: Mapped[str] = mapped_column(String(limits.CATEGORY_NAME))
    slug: Mapped[str] = mapped_column(String(limits.CATEGORY_SLUG), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    parent: Mapped[Category | None] = relationship(remote_side="Category.id", back_populates="children")
    children: Mapped[list[Category]] = relationship(back_populates="parent", order_by="Category.position")


class Product(BigIntAuditBase):
    """A product as the shopper sees it; what is sold is one of its variants.

    ``option_groups`` lists the names of the variant axes in order (``["screen size", "RAM"]``);
    ``deleted_at`` set means soft-deleted: hidden from the shop, kept for past orders.

    ``shop_id`` is the shop that sells it; an insert that names none gets the default shop (a SQL
    default, so the ORM, the importer's bulk inserts and tests all get it). ``shop_active`` copies
    whether that shop trades (kept by ``webshop.shops.service.ShopService``), so the visibility rule
    stays a condition on this table.

    ``min_price``, ``max_price`` (minor units) and ``in_stock`` (some variant has stock) summarise the
    variants, so the catalog sorts and filters on this table alone. They are derived data, kept by
    ``webshop.catalog.browse.refresh_product_summaries`` in the same transaction as every variant,
    price or stock change (``webshop check-stock`` compares them with a fresh computation).
    """

    __tablename__ = "products"
    __table_args__ = (
        Index("ix_products_active_name", "is_active", "name"),
        # The catalog's orders: visible products (is_active = true) by a sort column and the id, so that
        # the API's keyset pages ((column, id) compared as a row value) walk an index from the cursor.
        Index("ix_products_active_name_id", "is_active", "name", "id"),
        Index("ix_products_active_min_price_id", "is_active", "min_price", "id"),
        Index("ix_products_active_max_price_id", "is_active", "max_price", "id"),
        Index("ix_products_active_created_at_id", "is_active", "created_at", "id"),
    )

    slug: Mapped[str] = mapped_column(String(limits.PRODUCT_SLUG), unique=True)
    name: Mapped[str] = mapped_column(String(limits.PRODUCT_NAME), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    shop_id: Mapped[int] = mapped_column(
        ForeignKey("shops.id", ondelete="RESTRICT"),
        index=True,
        default=select(Shop.id).where(Shop.is_default == True).scalar_subquery(),  # noqa: E712
    )
    shop_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    option_groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTimeUTC(timezone=True), default=None)
    min_price: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    max_price: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    in_stock: Mapped[bool] = mapped_column(default=False, server_default=false())

    category: Mapped[Category | None] = relationship(lazy="joined", innerjoin=False)
    # Loaded only where asked for (``joinedload``: the product page and the API's product); read-only,
    # so ``shop_id`` alone decides the shop (and its SQL default applies when it is left out).
    shop: Mapped[Shop] = relationship(lazy="raise", innerjoin=True, viewonly=True)
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
    facet: Mapped[str] = mapped_column(String(limits.FACET_NAME))
    value: Mapped[str] = mapped_column(String(limits.FACET_VALUE))

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
    source_name: Mapped[str] = mapped_column(String(limits.IMAGE_SOURCE_NAME), default="")
    alt: Mapped[str] = mapped_column(String(limits.IMAGE_ALT), default="")
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
        # Ids are never given again on SQLite either: promotions, the audit trail, webhooks and API clients
        # name variants by id (migration d2f6a8c1e3b7).
        {"sqlite_autoincrement": True},
    )

    product_id: Mapped[int] = mapped_column(ForeignKey("products.id", ondelete="CASCADE"))
    sku: Mapped[str] = mapped_column(String(limits.SKU), unique=True)
    option_values: Mapped[list[str]] = mapped_column(JSON, default=list)
    price: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(limits.CURRENCY), default="USD")
    tax_category: Mapped[str] = mapped_column(String(limits.TAX_CATEGORY), default="standard")
    stock: Mapped[int] = mapped_column(Integer, default=0)
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=limits.LOW_STOCK_THRESHOLD)
    weight_grams: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    """Shipping weight of one unit in grams (weight-band shipping rates, ``webshop.pricing.shipping``)."""
    position: Mapped[int] = mapped_column(Integer, default=0)

    product: Mapped[Product] = relationship(back_populates="variants")

    def options(self, groups: list[str]) -> dict[str, Any]:
        """Map each option group name to this variant's value (``{"size": "Size 42"}``)."""
        return dict(zip(groups, self.option_values, strict=False))


class CatalogState(CommonTableAttributes, AdvancedDeclarativeBase):
    """One row (``id`` 1): ``version`` goes up by one in every transaction that changes the catalog.

    Readers key their caches of totals, facet counts and result orders by it (see
    ``webshop.catalog.browse``): every worker reads it once per request, so no worker serves counts
    older than the last committed catalog change.
    """

    __tablename__ = "catalog_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(BigInteger, default=1)


class ProductSearch(CommonTableAttributes, AdvancedDeclarativeBase):
    """The search document of a visible product: normalised, stemmed words per field (space-separated).

    Written only by ``webshop.catalog.search_index.reindex_products``. The engine's full-text index sits on
    it: an FTS5 table kept by triggers on SQLite, a GIN index on its weighted ``tsvector`` on
    PostgreSQL (both created by the migration, see ``webshop.catalog.search``).
    """

    __tablename__ = "product_search"

    product_id: Mapped[int] = mapped_column(
        BigIntIdentity, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    name: Mapped[str] = mapped_column(Text, default="")
    skus: Mapped[str] = mapped_column(Text, default="")
    brand: Mapped[str] = mapped_column(Text, default="")
    categories: Mapped[str] = mapped_column(Text, default="")
    options: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(Text, default="")


class SearchTerm(CommonTableAttributes, AdvancedDeclarativeBase):
    """A word of the search index (stemmed) with how many products use it: typo candidates are
    looked up here, and ``word`` (one unstemmed form) is what "Did you mean ...?" shows."""

    __tablename__ = "search_terms"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    word: Mapped[str] = mapped_column(String(64))
    doc_count: Mapped[int] = mapped_column(Integer, default=0)
