"""Admin catalog routes of the JSON API: categories, products, variants, stock (adjustments and history) and photos.

Category routes need an admin's bearer token (the ``api_admin`` guard: no token → 401, a customer →
403). Product, variant, photo and stock routes also let in the members of a shop (``api_shop_staff``),
and the services keep each member to their shop's products (another shop's is 404; a ``shop_id`` of
a shop they are not in is 403). Every route calls the same service methods as the admin pages, so
the rules, the audit trail and the stock ledger are the same whichever way a change comes in. Input
Structs forbid unknown fields: an ``id``, ``created_at``, ``deleted_at`` or image key in a body is
refused with a 400 naming the field.
"""

from typing import Annotated, Literal

import msgspec
from litestar import Response, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody, QueryParameter

from webshop.api.controllers import AdminApiController, ShopStaffApiController
from webshop.api.responses import created_at, problems
from webshop.api.schemas import ID_MAX, IdCursor, OptionalIdempotencyKey, PageLimit, PathId, keyset_page
from webshop.api.uploads import image_errors_named, read_upload
from webshop.audit.schemas import AuditEventOut, audit_trail_out
from webshop.catalog.products import ProductService
from webshop.catalog.schemas import (
    CategoryCreate,
    CategoryDetail,
    CategoryPatch,
    ImageOrderIn,
    ImageOut,
    ImageUpload,
    ProductAdminPage,
    ProductCreate,
    ProductOut,
    ProductPatch,
    StockAdjustmentIn,
    StockAdjustmentOut,
    VariantIn,
    VariantOut,
    VariantPatch,
    category_detail,
    image_out,
    product_admin_out,
    product_out,
    variant_out,
)
from webshop.checkout.idempotency import IdempotencyService
from webshop.db.models import Variant
from webshop.deps import CategoriesDep, ProductsDep, SettingsDep, ShopsDep, StockDep, UserRequest
from webshop.media import UPLOAD_BODY_LIMIT
from webshop.shops.scope import admin_scope
from webshop.stock.schemas import StockMovementPage, movement_out
from webshop.text import query_text
from webshop.web.responses import page_count


async def _variant_out(products: ProductService, variant: Variant) -> VariantOut:
    """``VariantOut`` of a just-written variant, its options named by its product's option groups."""
    product = await products.get_for_admin(variant.product_id)
    return variant_out(variant, list(product.option_groups or []))


class CategoryAdminApiController(AdminApiController):
    """Create, rename, move and delete categories."""

    path = "/api/categories"
    tags = ["catalog admin"]

    @post("", operation_id="createCategory", status_code=201, responses=problems(400, 401, 403, 409, 422))
    async def create_category(
        self, request: UserRequest, data: JSONBody[CategoryCreate], categories_service: CategoriesDep
    ) -> CategoryDetail:
        """Create a category, last among its siblings. 422: a missing parent, a sibling's name, a slug taken;
        409: a category made at the same moment took the name or slug."""
        category = await categories_service.create_category(
            request.user, name=data.name, parent_id=data.parent_id, slug=data.slug
        )
        return category_detail(category)

    @patch("/{category_id:int}", operation_id="updateCategory", responses=problems(400, 401, 403, 404, 409, 422))
    async def update_category(
        self,
        request: UserRequest,
        category_id: PathId,
        data: JSONBody[CategoryPatch],
        categories_service: CategoriesDep,
    ) -> CategoryDetail:
        """Rename and/or move a category. 422 as ``POST``, or a move into its own subtree; 409: changed at the
        same time by someone else."""
        category = await categories_service.update_category(request.user, category_id, data)
        return category_detail(category)

    @delete("/{category_id:int}", operation_id="deleteCategory", responses=problems(400, 401, 403, 404, 409))
    async def delete_category(
        self, request: UserRequest, category_id: PathId, categories_service: CategoriesDep
    ) -> None:
        """Delete an empty category; one with subcategories or products (deleted ones too) is 409, with the reason."""
        await categories_service.delete_category(request.user, category_id)


ManagedState = Literal["active", "deleted", "all"]
"""``GET /api/products/managed``'s ``state`` (``webshop.catalog.rules.ADMIN_STATES``)."""
ManagedSort = Literal["name", "-name", "newest", "updated", "price", "-price", "stock", "-stock"]
"""``GET /api/products/managed``'s ``sort`` (``webshop.catalog.rules.ADMIN_SORTS``)."""
StockLevelName = Literal["out", "critical", "low", "medium", "healthy"]
"""A stock level (``webshop.catalog.rules.ADMIN_STOCK_LEVELS``)."""


class ProductAdminApiController(ShopStaffApiController):
    """Create, change, soft-delete and restore products; add variants; upload, reorder and remove photos."""

    path = "/api/products"
    tags = ["catalog admin"]

    @get("/managed", operation_id="listManagedProducts", responses=problems(400, 401, 403))
    async def list_managed(
        self,
        request: UserRequest,
        products_service: ProductsDep,
        shops_service: ShopsDep,
        q: Annotated[str, query_text(max_length=200, description="Part of a name, slug or SKU")] = "",
        category_id: Annotated[
            int | None, QueryParameter(ge=1, le=ID_MAX, description="Only products in this category or below it")
        ] = None,
        product_state: Annotated[  # ``state`` is Litestar's name for the app's state: the query names it
            ManagedState,
            QueryParameter(name="state", description="active: not deleted (on sale or switched off); deleted; all"),
        ] = "active",
        stock_level: Annotated[
            StockLevelName | None, QueryParameter(description="Only products with a variant at this stock level")
        ] = None,
        sort: Annotated[ManagedSort, QueryParameter(description="The admin product table's orders")] = "name",
        page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 25,
    ) -> ProductAdminPage:
        """The products the caller manages, as the admin product table lists them (an admin: every shop's;
        a shop's member: their shops'), switched-off and deleted ones too, with ``is_active`` and
        ``deleted_at``; a page past the last is empty."""
        scope = await admin_scope(shops_service, request.user)
        rows, total = await products_service.admin_search(
            q=q,
            category_id=category_id,
            state=product_state,
            stock_level=stock_level,
            sort=sort,
            page=page,
            page_size=limit,
            shop_ids=scope.shop_ids,
            with_details=True,
        )
        items = [product_admin_out(product) for product in rows]
        return ProductAdminPage(items=items, total=total, page=page, pages=page_count(total, limit))

    @get("/{product_id:int}/history", operation_id="getProductHistory", responses=problems(400, 401, 403, 404))
    async def history(
        self, request: UserRequest, product_id: PathId, products_service: ProductsDep
    ) -> list[AuditEventOut]:
        """The product's audit trail as its admin page shows it, newest first (at most 100): its own changes,
        its variants' and their stock's. A deleted product's too; another shop's is 404 to a member."""
        product = await products_service.get_for_admin(product_id, actor=request.user)
        return audit_trail_out(await products_service.product_history(product))

    @post("", operation_id="createProduct", **created_at("/api/products/{id}"), responses=problems(400, 401, 403, 422))
    async def create_product(
        self, request: UserRequest, data: JSONBody[ProductCreate], products_service: ProductsDep, settings: SettingsDep
    ) -> ProductOut:
        """Create a product with its variants and their initial stock (in the ledger)."""
        product = await products_service.create_product(
            data.to_write(),
            [variant.to_write(settings.shop.currency) for variant in data.variants],
            actor=request.user,
        )
        return product_out(product)

    @patch("/{product_id:int}", operation_id="updateProduct", responses=problems(400, 401, 403, 404, 422))
    async def update_product(
        self, request: UserRequest, product_id: PathId, data: JSONBody[ProductPatch], products_service: ProductsDep
    ) -> ProductOut:
        """Change a product's fields (deleted products too); only the fields sent change."""
        product = await products_service.update_product(product_id, data, actor=request.user)
        return product_out(product)

    @delete("/{product_id:int}", operation_id="deleteProduct", responses=problems(400, 401, 403, 404))
    async def delete_product(self, request: UserRequest, product_id: PathId, products_service: ProductsDep) -> None:
        """Soft-delete: the product leaves the shop and the API; past orders keep it. Repeating it is harmless."""
        await products_service.soft_delete(product_id, actor=request.user)

    @post(
        "/{product_id:int}/restore",
        operation_id="restoreProduct",
        status_code=200,
        responses=problems(400, 401, 403, 404),
    )
    async def restore_product(
        self, request: UserRequest, product_id: PathId, products_service: ProductsDep
    ) -> ProductOut:
        """Bring a soft-deleted product back into the shop."""
        return product_out(await products_service.restore(product_id, actor=request.user))

    @post(
        "/{product_id:int}/variants",
        operation_id="createVariant",
        status_code=201,
        responses=problems(400, 401, 403, 404, 422),
    )
    async def create_variant(
        self,
        request: UserRequest,
        product_id: PathId,
        data: JSONBody[VariantIn],
        products_service: ProductsDep,
        settings: SettingsDep,
    ) -> VariantOut:
        """Add a variant (one option value per option group of the product) with its initial stock."""
        variant = await products_service.add_variant(
            product_id,
            data.to_write(settings.shop.currency),
            actor=request.user,
        )
        return await _variant_out(products_service, variant)

    @post(
        "/{product_id:int}/images",
        operation_id="uploadProductImage",
        status_code=201,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        responses=problems(400, 401, 403, 404, 413, 422),
    )
    async def upload_image(
        self,
        request: UserRequest,
        product_id: PathId,
        data: Annotated[ImageUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        products_service: ProductsDep,
    ) -> ImageOut:
        """Upload a JPEG, PNG or WebP photo (field ``file``, at most 5 MB; optional ``alt``) as the last photo.

        Too large → 413; not an image, another format, truncated or a decompression bomb → 422.
        """
        content = await read_upload(data.file)
        with image_errors_named("file"):
            image = await products_service.add_image(
                product_id, content, alt=data.alt, source_name=data.file.filename or "", actor=request.user
            )
        return image_out(image)

    @put(
        "/{product_id:int}/image-order",
        operation_id="reorderProductImages",
        responses=problems(400, 401, 403, 404, 422),
    )
    async def reorder_images(
        self, request: UserRequest, product_id: PathId, data: JSONBody[ImageOrderIn], products_service: ProductsDep
    ) -> list[ImageOut]:
        """Put the photos in this order (every photo id of the product once); the first is the main photo."""
        images = await products_service.reorder_images(product_id, data.image_ids, actor=request.user)
        return [image_out(image) for image in images]

    @delete(
        "/{product_id:int}/images/{image_id:int}",
        operation_id="deleteProductImage",
        responses=problems(400, 401, 403, 404),
    )
    async def delete_image(
        self, request: UserRequest, product_id: PathId, image_id: PathId, products_service: ProductsDep
    ) -> None:
        """Remove a photo (its files go too unless another product uses them)."""
        await products_service.remove_image(product_id, image_id, actor=request.user)


class VariantAdminApiController(ShopStaffApiController):
    """Change and delete variants; adjust their stock through the ledger."""

    path = "/api/variants"
    tags = ["catalog admin"]

    @patch("/{variant_id:int}", operation_id="updateVariant", responses=problems(400, 401, 403, 404, 422))
    async def update_variant(
        self, request: UserRequest, variant_id: PathId, data: JSONBody[VariantPatch], products_service: ProductsDep
    ) -> VariantOut:
        """Change a variant's SKU, price, option values, tax category or low-stock threshold."""
        variant = await products_service.update_variant(variant_id, data, actor=request.user)
        return await _variant_out(products_service, variant)

    @delete("/{variant_id:int}", operation_id="deleteVariant", responses=problems(400, 401, 403, 404, 409))
    async def delete_variant(self, request: UserRequest, variant_id: PathId, products_service: ProductsDep) -> None:
        """Delete a variant; past orders keep their lines. A product's last variant cannot go (409)."""
        await products_service.delete_variant(variant_id, actor=request.user)

    @get("/{variant_id:int}/stock-movements", operation_id="listStockMovements", responses=problems(400, 401, 403, 404))
    async def list_stock_movements(
        self,
        request: UserRequest,
        variant_id: PathId,
        stock_service: StockDep,
        cursor: IdCursor = None,
        limit: PageLimit = 20,
    ) -> StockMovementPage:
        """The variant's stock ledger, newest first: every sale, cancellation, refund, adjustment and import,
        with the units on hand each left. Another shop's variant is 404 to a shop's member."""
        history = await stock_service.history(
            request.user, variant_id, limit=limit + 1, before_id=int(cursor) if cursor else None
        )
        page, next_cursor = keyset_page(history.movements, limit)
        variant = history.variant
        items = [movement_out(movement) for movement in page]
        return StockMovementPage(
            variant_id=variant.id, sku=variant.sku, stock=history.stock, items=items, next_cursor=next_cursor
        )

    @post(
        "/{variant_id:int}/stock-adjustments",
        operation_id="adjustStock",
        status_code=201,
        responses=problems(400, 401, 403, 404, 409, 422),
    )
    async def adjust_stock(
        self,
        request: UserRequest,
        variant_id: PathId,
        data: JSONBody[StockAdjustmentIn],
        products_service: ProductsDep,
        idempotency_service: NamedDependency[IdempotencyService],
        idempotency_key: OptionalIdempotencyKey = None,
    ) -> Response[StockAdjustmentOut]:
        """Add (or, negative, remove) units with a reason, recorded in the stock ledger; never below zero (409)
        nor above 2,147,483,647 (422).

        With an ``Idempotency-Key`` (a warehouse's receipt id, say) the change is made once: the same key and
        body again answer the first answer (``stock`` as it was then), another body with it 422, a request
        still running with it 409 (draft-ietf-httpapi-idempotency-key-header). A request refused (409, 422)
        frees its key."""

        async def adjust() -> StockAdjustmentOut:
            note = data.reason.strip()
            variant = await products_service.adjust_variant_stock(variant_id, data.delta, actor=request.user, note=note)
            return StockAdjustmentOut(
                variant_id=variant.id, sku=variant.sku, delta=data.delta, reason=note, stock=variant.stock
            )

        if idempotency_key is None:
            return Response(await adjust(), status_code=201)
        status, answer = await idempotency_service.run_once(
            user_id=request.user.id,
            scope="stock-adjustment",
            key=idempotency_key,
            request={"variant_id": variant_id, **msgspec.to_builtins(data)},
            operation=adjust,
        )
        return Response(answer, status_code=status)
