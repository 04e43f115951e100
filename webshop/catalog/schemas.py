"""Catalog shapes for the JSON API (msgspec Structs). Money is ``{amount, currency}`` in minor units."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import msgspec
from litestar.datastructures import UploadFile

from webshop.api.schemas import BIGINT_MAX, INT_MAX, Money, money
from webshop.catalog import limits
from webshop.media import IMAGE_WIDTHS, image_url
from webshop.text import CONTROL, INVISIBLE, PATTERN_MESSAGES, SPACE, Line, Lines, VisibleLine

if TYPE_CHECKING:
    from webshop.catalog.query import CardImage, CategoryNode, FacetValue, ProductCard
    from webshop.db.models import Category, Product, ProductImage, Variant


# --- Admin writes (issue 5 pages and issue 4 admin API); ProductService validates every rule. ---

TAX_CATEGORY_DEFAULT = "standard"


class ProductWrite(msgspec.Struct, forbid_unknown_fields=True):
    """A product's own fields as ``ProductService`` takes them (variants come separately): from the admin
    form, the CSV importer and, as the first fields of ``ProductCreate``, the admin API, which decodes
    them with these constraints (the service checks them again for the other callers).

    Attributes:
        name: Shown in the shop (1-200 characters, trimmed).
        slug: URL slug (lowercase letters and digits joined by ``-``); ``None`` or empty: derived from
            ``name``. Must be unique (also among soft-deleted products).
        description: Plain text.
        category_id: An existing category, or ``None``.
        facets: ``{"brand": ["Nikon"], "color": ["black", "red"]}`` (facet names lowercased).
        option_groups: Names of the variant axes in order (``["size", "colour"]``); every variant has
            exactly one value per group.
        is_active: ``False`` hides the product from the shop without deleting it.
        shop_id: The shop that sells it, on creation only (``ShopService.shop_for_new_product``: a
            member of one shop may leave it out, a member of several must give it, an admin gets
            the default shop without one); ignored by updates (a product stays in its shop).
    """

    name: ProductName
    slug: ProductSlug | None = None
    description: Description = ""
    category_id: RowId | None = None
    facets: Facets = msgspec.field(default_factory=dict)
    option_groups: OptionGroups = msgspec.field(default_factory=list)
    is_active: bool = True
    shop_id: RowId | None = None


class VariantUpdate(msgspec.Struct, forbid_unknown_fields=True):
    """Changes to one existing variant inside a product update (the admin edit form saves all at once).

    Like ``VariantPatch`` plus ``stock``: the new level, applied only if the stock still is
    ``stock_seen`` (the level the admin saw; unset: the level read when saving).
    """

    id: int
    sku: str | msgspec.UnsetType = msgspec.UNSET
    price: int | msgspec.UnsetType = msgspec.UNSET
    option_values: list[str] | msgspec.UnsetType = msgspec.UNSET
    tax_category: str | msgspec.UnsetType = msgspec.UNSET
    low_stock_threshold: int | msgspec.UnsetType = msgspec.UNSET
    weight_grams: int | msgspec.UnsetType = msgspec.UNSET
    stock: int | msgspec.UnsetType = msgspec.UNSET
    stock_seen: int | msgspec.UnsetType = msgspec.UNSET


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


class ShopRef(msgspec.Struct):
    """The shop that sells a product (issue 16): ``GET /api/shops/{id}`` has the rest of it."""

    id: int
    name: str
    slug: str


class ProductSummary(msgspec.Struct):
    """A product in a list: lowest and highest variant price, whether any variant is in stock, its shop."""

    id: int
    slug: str
    name: str
    price_min: Money
    price_max: Money
    in_stock: bool
    variant_count: int
    image: ImageOut | None
    shop_id: int
    shop: ShopRef


class ProductPage(msgspec.Struct):
    """A page of products; pass ``next_cursor`` as ``cursor`` for the next one (``null`` at the end)."""

    items: list[ProductSummary]
    next_cursor: str | None


class FacetCount(msgspec.Struct):
    """A facet value, how many products matching the other filters have it, and whether it is selected;
    ``label`` is what to show (the shop facet's values are slugs, labelled with the shops' names)."""

    value: str
    count: int
    selected: bool
    label: str


class ProductFacets(msgspec.Struct):
    """How many products match the filters (``total``) and the counts of each facet's values
    (``{"brand": [...], "color": [...]}``, and ``"shop"`` when several shops trade); a facet's counts
    ignore that facet's own selection."""

    total: int
    facets: dict[str, list[FacetCount]]


def facets_out(total: int, facets: dict[str, list[FacetValue]]) -> ProductFacets:
    """``ProductFacets`` from ``ProductService.facets``' answer."""
    return ProductFacets(
        total=total,
        facets={
            name: [FacetCount(f.value, f.count, f.selected, f.label) for f in values] for name, values in facets.items()
        },
    )


class VariantOut(msgspec.Struct):
    """A purchasable variant: SKU, option values by group, price, stock on hand."""

    id: int
    sku: str
    options: dict[str, str]
    price: Money
    tax_category: str
    stock: int
    in_stock: bool
    weight_grams: int = 0


class ProductOut(msgspec.Struct):
    """A product with its variants, photos and facet values (``{"brand": ["Nikon"]}``), and the shop that sells it."""

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
    shop_id: int
    shop: ShopRef


def image_out(image: ProductImage | CardImage) -> ImageOut:
    """``ImageOut`` from a ``ProductImage`` row (or a catalog card's first photo)."""
    return ImageOut(
        id=image.id,
        alt=image.alt,
        width=image.width,
        height=image.height,
        urls={str(w): image_url(image.key, w) for w in IMAGE_WIDTHS},
    )


@functools.lru_cache(maxsize=4096)
def summary_out(card: ProductCard) -> ProductSummary:
    """``ProductSummary`` from a catalog card (memoised by identity: a card is immutable, and the cards of a cached
    page come back as the same objects, so a list of 100 is converted once, not per request)."""
    return ProductSummary(
        id=card.id,
        slug=card.slug,
        name=card.name,
        price_min=money(card.min_price, card.currency),
        price_max=money(card.max_price, card.currency),
        in_stock=card.in_stock,
        variant_count=card.variant_count,
        image=image_out(card.image) if card.image else None,
        shop_id=card.shop_id,
        shop=ShopRef(card.shop_id, card.shop_name, card.shop_slug),
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
        weight_grams=variant.weight_grams,
    )


def category_ref(category: Category | None) -> CategoryRef | None:
    """``CategoryRef`` from a ``Category`` row (or ``None``)."""
    return CategoryRef(category.id, category.slug, category.name) if category else None


def product_out(product: Product) -> ProductOut:
    """``ProductOut`` from a ``Product`` with variants, images, facets and its shop loaded."""
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
        shop_id=product.shop_id,
        shop=ShopRef(product.shop.id, product.shop.name, product.shop.slug),
    )


class ProductAdminOut(ProductOut):
    """A product as its shop's staff and the admins manage it: ``ProductOut``, whether it is on sale
    (``is_active``) and when it was soft-deleted (``deleted_at``, ``null`` while it is not)."""

    is_active: bool
    deleted_at: datetime | None


def product_admin_out(product: Product) -> ProductAdminOut:
    """``ProductAdminOut`` from a ``Product`` loaded as for ``product_out``."""
    return ProductAdminOut(
        **msgspec.structs.asdict(product_out(product)), is_active=product.is_active, deleted_at=product.deleted_at
    )


class ProductAdminPage(msgspec.Struct):
    """A page of the products the caller manages: ``items``, and ``total`` products matching the filters
    (``page`` of ``pages``)."""

    items: list[ProductAdminOut]
    total: int
    page: int
    pages: int


def tree_out(nodes: list[CategoryNode]) -> list[CategoryOut]:
    """The category tree as ``CategoryOut`` nodes."""
    return [CategoryOut(n.id, n.slug, n.name, tree_out(n.children)) for n in nodes]


# --- Category writes (admin API) ----------------------------------------------------------------------

CATEGORY_NAME_PATTERN = rf"^[{SPACE}{INVISIBLE}]*[^|{CONTROL}{SPACE}{INVISIBLE}][^|{CONTROL}]*\Z"
"""At least one visible character; no ``|`` (the catalog CSV's separator) and no control characters
(``webshop.text``: the same white space and control characters as every other text field)."""
SLUG_PATTERN = rf"^{limits.SLUG.pattern}\Z"
"""Lowercase letters and digits joined by single ``-`` (``\\Z``: see ``webshop.text``)."""
PATTERN_MESSAGES[CATEGORY_NAME_PATTERN] = "Expected a name with a visible character, without “|” or control characters"
PATTERN_MESSAGES[SLUG_PATTERN] = "Expected lowercase letters and digits joined by single hyphens, like trail-shoes"

CategoryName = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=limits.CATEGORY_NAME,
        pattern=CATEGORY_NAME_PATTERN,
        description="Unique among its siblings (ignoring case); spaces are collapsed.",
    ),
]
CategorySlug = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.CATEGORY_SLUG, pattern=SLUG_PATTERN)]
RowId = Annotated[int, msgspec.Meta(ge=1, le=BIGINT_MAX)]
Position = Annotated[int, msgspec.Meta(ge=0, le=INT_MAX, description="0-based place among its siblings")]


class CategoryCreate(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/categories``: a new category, last among its siblings; ``slug`` is derived when left out."""

    name: CategoryName
    parent_id: RowId | None = None
    slug: CategorySlug | None = None


class CategoryPatch(msgspec.Struct, forbid_unknown_fields=True):
    """``PATCH /api/categories/{id}``: rename (``name``, ``slug``) and/or move (``parent_id``, ``position``).

    A field left out keeps its value; ``parent_id: null`` moves the category to the top level.
    """

    name: CategoryName | msgspec.UnsetType = msgspec.UNSET
    slug: CategorySlug | msgspec.UnsetType = msgspec.UNSET
    parent_id: RowId | msgspec.UnsetType | None = msgspec.UNSET
    position: Position | msgspec.UnsetType = msgspec.UNSET


class CategoryDetail(msgspec.Struct):
    """One category as stored: its parent (``null`` at the top level) and its place among its siblings."""

    id: int
    slug: str
    name: str
    parent_id: int | None
    position: int


def category_detail(category: Category) -> CategoryDetail:
    """``CategoryDetail`` from a ``Category`` row."""
    return msgspec.convert(category, CategoryDetail, from_attributes=True)


# --- Product, variant, stock and photo writes (admin API) --------------------------------------------
# The API's own input shapes, with every constraint a JSON Schema can state (so clients and schema-driven
# tools know them); ProductService checks them again, plus the rules that span fields or rows.

# Text fields are ``webshop.text`` types: no control characters; "visible" ones need a character that
# is not white space (the service trims them), multi-line ones (the description) may hold line breaks.
ProductName = Annotated[VisibleLine, msgspec.Meta(max_length=limits.PRODUCT_NAME)]
ProductSlug = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.PRODUCT_SLUG, pattern=SLUG_PATTERN)]
Description = Annotated[Lines, msgspec.Meta(max_length=limits.DESCRIPTION)]
FacetName = Annotated[VisibleLine, msgspec.Meta(max_length=limits.FACET_NAME)]
FacetValueText = Annotated[Line, msgspec.Meta(max_length=limits.FACET_VALUE)]
OptionGroup = Annotated[VisibleLine, msgspec.Meta(max_length=limits.OPTION_GROUP)]
OptionValue = Annotated[VisibleLine, msgspec.Meta(max_length=limits.OPTION_VALUE)]
Sku = Annotated[VisibleLine, msgspec.Meta(max_length=limits.SKU)]
MinorUnits = Annotated[
    int, msgspec.Meta(ge=0, le=INT_MAX, description="Price in minor units (cents), net or gross per WEBSHOP_PRICE_MODE")
]
Units = Annotated[int, msgspec.Meta(ge=0, le=INT_MAX)]
TaxCategory = Annotated[
    str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,40}\Z", description="A tax category of WEBSHOP_TAX_RATES")
]
Facets = Annotated[
    dict[FacetName, list[FacetValueText]],
    msgspec.Meta(description='Facet values by facet, e.g. {"brand": ["Nikon"]}; "category" is not a facet'),
]
OptionGroups = Annotated[
    list[OptionGroup], msgspec.Meta(max_length=limits.OPTION_GROUPS, description="Variant axes, in order")
]
OptionValues = Annotated[
    list[OptionValue], msgspec.Meta(max_length=limits.OPTION_GROUPS, description="One value per option group")
]


class VariantIn(msgspec.Struct, forbid_unknown_fields=True):
    """A new variant (``POST /api/products`` and ``POST /api/products/{id}/variants``); in the shop's currency.

    Attributes:
        sku: Stock-keeping unit, unique in the shop (1-64 characters, trimmed).
        price: Net price in minor units of the shop's currency (``1299`` is 12.99), 0 or more.
        option_values: One value per option group of the product, in the same order.
        tax_category: A key of ``WEBSHOP_TAX_RATES`` (``standard``, ``reduced``, ``zero``...).
        stock: Initial units on hand (0 or more), written to the stock ledger as an adjustment.
        low_stock_threshold: At or below this many units the variant counts as "low" (0 or more).
        weight_grams: Shipping weight of one unit in grams (0 or more; weight-band shipping rates).
    """

    sku: Sku
    price: MinorUnits
    option_values: OptionValues = msgspec.field(default_factory=list)
    tax_category: TaxCategory = TAX_CATEGORY_DEFAULT
    stock: Units = 0
    low_stock_threshold: Units = limits.LOW_STOCK_THRESHOLD
    weight_grams: Units = 0

    def to_write(self, currency: str) -> VariantWrite:
        """The service's ``VariantWrite`` for this variant, priced in ``currency``."""
        return VariantWrite(**msgspec.structs.asdict(self), currency=currency)


class VariantWrite(VariantIn, forbid_unknown_fields=True):
    """A new variant as ``ProductService`` takes it: a ``VariantIn`` (from the API, the product form or
    the CSV importer) priced in ``currency``, an ISO 4217 code (callers pass ``settings.shop.currency``)."""

    currency: str = "USD"


class ProductCreate(ProductWrite, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/products``: a ``ProductWrite`` with at least one variant; ``slug`` is derived when left out.

    Ids, timestamps, ``deleted_at`` and photos cannot be set here (photos are uploaded separately).
    """

    variants: Annotated[list[VariantIn], msgspec.Meta(min_length=1, max_length=100)]

    def to_write(self) -> ProductWrite:
        """The service's ``ProductWrite`` (without the variants)."""
        fields = msgspec.structs.asdict(self)
        del fields["variants"]
        return ProductWrite(**fields)


class ProductPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial product update: ``PATCH /api/products/{id}`` decodes it (with these constraints) and
    ``ProductService.update_product`` takes it; only the fields that are set change, ``facets`` and
    ``option_groups`` are replaced whole.

    Same meaning and rules as ``ProductWrite``; a field left ``UNSET`` keeps its value. Changing
    ``option_groups`` requires every existing variant to still have one value per group. Variants are
    changed through ``/api/variants/{id}``, photos through ``/api/products/{id}/images``.
    """

    name: ProductName | msgspec.UnsetType = msgspec.UNSET
    slug: ProductSlug | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    category_id: RowId | msgspec.UnsetType | None = msgspec.UNSET
    facets: Facets | msgspec.UnsetType = msgspec.UNSET
    option_groups: OptionGroups | msgspec.UnsetType = msgspec.UNSET
    is_active: bool | msgspec.UnsetType = msgspec.UNSET


class VariantPatch(msgspec.Struct, forbid_unknown_fields=True):
    """A partial variant update: ``PATCH /api/variants/{id}`` decodes it (with these constraints) and
    ``ProductService.update_variant`` takes it; only the fields that are set change.

    ``stock`` is not here: stock changes go through ``ProductService.set_variant_stock`` (with the
    level the admin saw) or ``adjust_variant_stock`` (a delta), so every change is in the ledger.
    """

    sku: Sku | msgspec.UnsetType = msgspec.UNSET
    price: MinorUnits | msgspec.UnsetType = msgspec.UNSET
    option_values: OptionValues | msgspec.UnsetType = msgspec.UNSET
    tax_category: TaxCategory | msgspec.UnsetType = msgspec.UNSET
    low_stock_threshold: Units | msgspec.UnsetType = msgspec.UNSET
    weight_grams: Units | msgspec.UnsetType = msgspec.UNSET


class StockAdjustmentIn(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/variants/{id}/stock-adjustments``: add ``delta`` units (negative removes), with a reason.

    The stock never goes below zero; the change and its reason go to the stock ledger.
    """

    delta: Annotated[int, msgspec.Meta(ge=-INT_MAX, le=INT_MAX, description="Units; 0 changes nothing")]
    reason: Annotated[VisibleLine, msgspec.Meta(max_length=200)]


class StockAdjustmentOut(msgspec.Struct):
    """A recorded stock adjustment and the variant's stock after it."""

    variant_id: int
    sku: str
    delta: int
    reason: str
    stock: int


class ImageOrderIn(msgspec.Struct, forbid_unknown_fields=True):
    """``PUT /api/products/{id}/image-order``: every photo id of the product, in the new order."""

    image_ids: Annotated[list[RowId], msgspec.Meta(max_length=100)]


class ImageUpload(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/products/{id}/images`` (multipart/form-data): a JPEG, PNG or WebP photo of at most 5 MB.

    The file is decoded and re-encoded (EXIF dropped) under a random name; its file name is kept for
    the admin only. ``alt`` defaults to the product's name.
    """

    file: UploadFile
    alt: Annotated[Line, msgspec.Meta(max_length=limits.IMAGE_ALT)] = ""
