"""Admin product pages: the product table with inline price/stock edits, the product form, photos.

Platform admins see every shop's products; a shop's owners and staff only their shops' (the table is
scoped by ``webshop.shops.scope``, and every product, variant and photo is loaded with the user as
``actor``, so another shop's is a 404 page). A member of several shops picks a new product's shop
(``shop_id``), checked by ``ShopService.shop_for_new_product``.

Everything goes through ``ProductService`` (the same methods the admin API calls). Every htmx action
also works without JavaScript: the inline cell editor is a page of its own whose form posts back with a
303, the product form adds variant rows by posting to itself, photo moves are small forms.

Form field names (the e2e tests and the no-JS form rely on them): ``name``, ``slug``, ``description``,
``category_id``, ``facets`` (lines ``brand: Nikon`` or ``color: black, red``), ``option_groups``
(comma separated), ``is_active``; variant rows ``variants-{i}-{field}`` for existing variants (with
hidden ``-id`` and ``-stock_seen``) and ``new-{k}-{field}`` for new ones, fields ``sku``,
``option_values`` (one per group, separated by ``|``), ``price`` (a decimal such as 12.99), ``stock``,
``low_stock_threshold``, ``tax_category``.
"""

from typing import Annotated, Any, TypeAlias

from litestar import MediaType, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.admin import ADMIN_PAGE_SIZE, SHOP_STAFF_DEPENDENCIES, ShopStaffPages, admin_list_page
from webshop.admin.pages import AdminRequest, ShopScopeDep, flash_see_other
from webshop.admin.product_form import (
    CELL_FIELDS,
    CellFields,
    ProductForm,
    flat_categories,
    major_text,
    posted_text,
    price_field,
    product_form_values,
    row_prefixes,
    safe_next,
    stock_level,
    whole_number,
)
from webshop.api.schemas import PathId
from webshop.catalog import limits
from webshop.catalog.products import NOT_SAVED
from webshop.catalog.rules import ADMIN_SORTS, ADMIN_STATES, ADMIN_STOCK_LEVELS
from webshop.catalog.schemas import VariantPatch
from webshop.db.models import Product, User, Variant
from webshop.deps import CategoriesDep, ProductsDep, SettingsDep, ShopsDep
from webshop.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from webshop.media import MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, UPLOAD_BODY_LIMIT, too_large_message
from webshop.shops.scope import admin_scope
from webshop.stock.service import StockChanged
from webshop.text import whole_number_text
from webshop.web import AnyRequest
from webshop.web.forms import FormFields, read_form
from webshop.web.responses import page_number, see_other, see_other_to, wants_fragment


class VariantCell:
    """The price or stock cell (``field``) of the variant in the path, built per request by Litestar (the
    ``variant_cell`` of the inline cell handlers): the variant, its cell and the cell's editor."""

    def __init__(
        self, request: AdminRequest, variant_id: PathId, field: FromPath[str], products_service: ProductsDep
    ) -> None:
        self.request, self.variant_id, self.field, self.products = request, variant_id, field, products_service

    async def variant(self) -> Variant:
        """The variant with its product.

        Raises:
            NotFound: ``field`` is not a cell (``CELL_FIELDS``), or no such variant the user's shops run.
        """
        if self.field not in CELL_FIELDS:
            raise NotFound("There is no such field.")
        variant = await self.products.variant_with_product(variant_id=self.variant_id)
        if variant is None:
            raise NotFound("There is no such variant.")
        await self.products.check_runs(self.request.user, variant.product.shop_id, "There is no such variant.")
        return variant

    def fragment(self, variant: Variant, *, next_url: str, saved: bool = False) -> Template:
        """The cell as the product table shows it (``saved``: with the "saved" note)."""
        return Template(
            "admin/products/_cell.html",
            context={
                "v": variant,
                "field": self.field,
                "here": next_url,
                "saved": saved,
                "stock_level": stock_level,
                "major_text": major_text,
            },
            headers={"Vary": "HX-Request"},
        )

    def editor(
        self,
        variant: Variant,
        *,
        value: str,
        expected: int,
        next_url: str,
        error: str = "",
        status_code: int = 200,
    ) -> Template:
        """The cell's editor with ``value`` (a small form in the cell for htmx, else a page of its own);
        ``expected`` is the stock level the edit was made against."""
        template = "admin/products/_cell_form.html" if wants_fragment(self.request) else "admin/products/cell_edit.html"
        return Template(
            template,
            context={
                "v": variant,
                "field": self.field,
                "value": value,
                "expected": expected,
                "here": next_url,
                "error": error,
            },
            status_code=status_code,
            headers={"Vary": "HX-Request"},
        )


VariantCellDep: TypeAlias = NamedDependency[VariantCell]
"""``variant_cell``: the cell of the variant in the path (``AdminProductController.dependencies``)."""


class ProductFormPage:
    """The product form page (new or edit), built per request by Litestar from the services it needs (the
    ``product_form_page`` of the product handlers)."""

    def __init__(self, products_service: ProductsDep, categories_service: CategoriesDep, settings: SettingsDep) -> None:
        self.products, self.categories, self.settings = products_service, categories_service, settings

    def read(self, data: FormFields) -> ProductForm:
        """The posted product form, its prices read in the shop's currency."""
        return ProductForm(data, self.settings.shop.currency)

    async def of_product(
        self, product: Product, *, photo_error: str = "", photo_alt: str = "", status_code: int = 200
    ) -> Template:
        """The edit page of ``product`` as it is saved, with the photo upload's error if any and the
        photo's description as typed (``photo_alt``: kept for the next try)."""
        values = product_form_values(product)
        return await self.render(
            product,
            values,
            {},
            is_active=product.is_active,
            status_code=status_code,
            photo_error=photo_error,
            photo_alt=photo_alt,
        )

    async def not_saved(
        self,
        product: Product | None,
        form: ProductForm,
        *,
        status_code: int,
        shops: list[tuple[int, str]] | None = None,
    ) -> Template:
        """The form again after a refused save: the input kept, the errors beside the fields and on top."""
        form.errors.setdefault("form", NOT_SAVED)
        return await self.render(
            product, form.values, form.errors, is_active=form.is_active, status_code=status_code, shops=shops
        )

    async def check_the_rest(self, product: Product | None, form: ProductForm, actor: User) -> None:
        """When the form could not read some of its fields, still ask the service's rules about the rest
        (``check_new_product``/``check_product_update``, nothing written), so that the admin sees every
        problem in one round, not the service's only after the form's are mended."""
        data = form.product_as_read()
        new_variants, prefixes = form.new_variants(lenient=True)
        if product is None:
            errors = await self.products.check_new_product(data, new_variants, actor=actor)
        else:
            updates = form.variant_updates(product, lenient=True)
            errors = await self.products.check_product_update(product, data, updates, new_variants)
        if "option_groups" in form.errors:  # read as none: every row's values would seem too many
            errors = {key: message for key, message in errors.items() if not key.endswith(".option_values")}
        form.take_service_errors(errors, prefixes, create=product is None)

    async def more_rows(
        self, product: Product | None, form: ProductForm, shops: list[tuple[int, str]] | None = None
    ) -> Template:
        """Re-render the form with one more blank variant row (the "Add a variant row" button), the focus in
        its SKU field (browser QA: it was left on the page, three screens above the new row)."""
        values = dict(form.values)
        rows = len(form.new) + 1
        values["new_rows"] = str(rows)
        values.setdefault(f"new-{rows - 1}-low_stock_threshold", str(limits.LOW_STOCK_THRESHOLD))
        return await self.render(
            product, values, {}, is_active=form.is_active, shops=shops, focus=f"new-{rows - 1}-sku"
        )

    async def render(
        self,
        product: Product | None,
        values: dict[str, str],
        errors: dict[str, str],
        *,
        is_active: bool,
        status_code: int = 200,
        photo_error: str = "",
        photo_alt: str = "",
        shops: list[tuple[int, str]] | None = None,
        focus: str = "",
    ) -> Template:
        """The product form page (new: ``product`` is ``None``; edit) with ``values`` and ``errors`` keyed by
        field name; ``shops`` are the choices of a new product's shop (a member of several shops)."""
        existing, new_prefixes = row_prefixes(values)
        variants_by_id = {v.id: v for v in product.variants} if product else {}
        settings = self.settings
        return Template(
            "admin/products/form.html",
            context={
                "product": product,
                "values": values,
                "errors": errors,
                "is_active": is_active,
                "existing": existing,
                "variants_by_id": variants_by_id,
                "new_prefixes": new_prefixes,
                "categories": flat_categories(await self.categories.tree()),
                "tax_categories": list(settings.shop.tax_rates_bp),
                "currency": settings.shop.currency,
                "audit_events": await self.products.product_history(product) if product else [],
                "photo_error": photo_error,
                "photo_alt": photo_alt,
                "focus": focus,
                "shop_choices": shops or [],
                "max_upload_mb": MAX_UPLOAD_MB,
                "max_upload_bytes": MAX_UPLOAD_BYTES,
                "too_large": too_large_message("photos"),
                "stock_level": stock_level,
            },
            status_code=status_code,
        )


ProductFormPageDep: TypeAlias = NamedDependency[ProductFormPage]
"""``product_form_page``: the product form page (``AdminProductController.dependencies``)."""


class AdminProductController(ShopStaffPages):
    """Product management for admins and, for their shops' products, shop members."""

    path = "/admin/products"
    dependencies = {
        **SHOP_STAFF_DEPENDENCIES,
        "product_form_page": Provide(ProductFormPage, sync_to_thread=False),
        "variant_cell": Provide(VariantCell, sync_to_thread=False),
    }

    @get("", name="admin_products", media_type=MediaType.HTML)
    async def index(
        self,
        request: AdminRequest,
        products_service: ProductsDep,
        categories_service: CategoriesDep,
        shop_scope: ShopScopeDep,
        q: FromQuery[str | None] = None,
        category: FromQuery[str | None] = None,
        state_filter: Annotated[str | None, QueryParameter(name="state")] = None,
        stock: FromQuery[str | None] = None,
        sort: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Template:
        """The product table with search, filters, sort and pages (the results fragment for htmx)."""
        page = page_number(page)
        filters = {
            "q": (q or "").strip()[:100],
            "category": category if category and whole_number_text(category, max_digits=17) is not None else "",
            "state": state_filter if state_filter in ADMIN_STATES else "active",
            "stock": stock if stock in ADMIN_STOCK_LEVELS else "",
            "sort": sort if sort in ADMIN_SORTS else "name",
            "shop": str(shop_scope.chosen or ""),
        }
        rows, total = await products_service.admin_search(
            q=filters["q"],
            category_id=int(filters["category"]) if filters["category"] else None,
            state=filters["state"],
            stock_level=filters["stock"] or None,
            sort=filters["sort"],
            page=page,
            page_size=ADMIN_PAGE_SIZE,
            shop_ids=shop_scope.shop_ids,
        )
        query = {k: v for k, v in filters.items() if v and not (k == "state" and v == "active")}
        query = {k: v for k, v in query.items() if not (k == "sort" and v == "name")}
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return admin_list_page(
            request,
            "admin/products",
            "product-results",
            {
                "rows": rows,
                "categories": flat_categories(await categories_service.tree()),
                "states": ADMIN_STATES,
                "stock_levels": ADMIN_STOCK_LEVELS,
                "sorts": ADMIN_SORTS,
                "scope": shop_scope,
                "here": safe_next(here),
                "stock_level": stock_level,
                "major_text": major_text,
            },
            total=total,
            page=page,
            filters=filters,
            query=query,
        )

    # --- inline cells: price and stock of one variant ------------------------------------------------

    @get("/variants/{variant_id:int}/{field:str}", name="admin_variant_cell", media_type=MediaType.HTML)
    async def cell(self, variant_cell: VariantCellDep, next_url: FromQuery[str | None] = None) -> Any:
        """One variant's price or stock cell (htmx: the cell; otherwise back to the table)."""
        variant = await variant_cell.variant()
        if not wants_fragment(variant_cell.request):
            return see_other(variant_cell.request, safe_next(next_url))
        return variant_cell.fragment(variant, next_url=safe_next(next_url))

    @get("/variants/{variant_id:int}/{field:str}/edit", name="admin_variant_cell_edit", media_type=MediaType.HTML)
    async def cell_edit(self, variant_cell: VariantCellDep, next_url: FromQuery[str | None] = None) -> Template:
        """The editor of one variant's price or stock: a small form in the cell (htmx) or a page."""
        variant = await variant_cell.variant()
        value = major_text(variant.price, variant.currency) if variant_cell.field == "price" else str(variant.stock)
        return variant_cell.editor(variant, value=value, expected=variant.stock, next_url=safe_next(next_url))

    @post("/variants/{variant_id:int}/{field:str}", name="admin_variant_cell_save", media_type=MediaType.HTML)
    async def cell_save(self, data: FormFields, variant_cell: VariantCellDep) -> Any:
        """Save an inline price or stock edit; invalid input shows the error on the cell and saves nothing."""
        request, variant_id, products_service = variant_cell.request, variant_cell.variant_id, variant_cell.products
        variant = await variant_cell.variant()
        value, next_url = posted_text(data, "value").strip(), safe_next(posted_text(data, "next"))
        errors: dict[str, str] = {}
        expected = variant.stock
        try:
            form = read_form(CellFields, data)  # a control character: InvalidForm, shown on the cell
            if variant_cell.field == "price":
                price = price_field(value, "value", variant.currency, errors)
                if price is None:
                    raise ValidationFailed(errors["value"], field_errors=errors)
                variant = await products_service.update_variant(
                    variant_id, VariantPatch(price=price), actor=request.user
                )
            else:
                level = whole_number(value, "value", errors, label="Stock")
                seen = whole_number(form.expected, "expected", errors, label="Stock seen")
                if level is None or seen is None:
                    raise ValidationFailed(errors.get("value") or errors["expected"], field_errors=errors)
                expected = seen
                variant = await products_service.set_variant_stock(
                    variant_id, level, expected=seen, actor=request.user, note="admin inline edit"
                )
        except (ValidationFailed, StockChanged) as exc:
            if isinstance(exc, StockChanged):
                expected = exc.current  # a re-submit applies the admin's value against the new level
            # Read again with its product: the service re-read the variant (its product unloaded), and
            # the editor page names the product.
            variant = await variant_cell.variant()
            message = next(iter(exc.field_errors.values()), exc.detail)
            return variant_cell.editor(
                variant,
                value=value,
                expected=expected,
                next_url=next_url,
                error=message,
                status_code=exc.status_code,
            )
        if wants_fragment(request):
            return variant_cell.fragment(variant, next_url=next_url, saved=True)
        flash(request, f"{variant.sku}: {variant_cell.field} saved.", "success")
        return see_other(request, next_url)

    # --- create and edit ------------------------------------------------------------------------------

    @get("/new", name="admin_product_new", media_type=MediaType.HTML)
    async def new(self, shop_scope: ShopScopeDep, product_form_page: ProductFormPageDep) -> Template:
        """The empty product form (two blank variant rows; a shop select for a member of several shops)."""
        default = str(limits.LOW_STOCK_THRESHOLD)
        values = {"new_rows": "2", "new-0-low_stock_threshold": default, "new-1-low_stock_threshold": default}
        values["shop_id"] = str(shop_scope.chosen or "")
        return await product_form_page.render(None, values, {}, is_active=True, shops=shop_scope.choices)

    @post("/new", name="admin_product_create", media_type=MediaType.HTML)
    async def create(
        self,
        request: AdminRequest,
        data: FormFields,
        products_service: ProductsDep,
        shops_service: ShopsDep,
        product_form_page: ProductFormPageDep,
    ) -> Any:
        """Create the product in the user's (chosen) shop; errors re-render the form with the input kept
        (422; a shop the user is not a member of: 403 with the reason)."""
        form = product_form_page.read(data)
        shops = (await admin_scope(shops_service, request.user)).choices
        if form.fields.action == "more":
            return await product_form_page.more_rows(None, form, shops=shops)
        product_data = form.product()
        variants, prefixes = form.new_variants()
        status_code = 422
        if product_data is not None and not form.errors:
            try:
                product = await products_service.create_product(product_data, variants, actor=request.user)
            except ValidationFailed as exc:
                form.take_service_errors(exc.field_errors, prefixes, create=True)
                form.errors.setdefault("form", exc.detail)
            except PermissionDenied as exc:  # a forged shop_id, or a shop the user has just left
                form.errors.update(form=exc.detail, shop_id=exc.detail)
                status_code = exc.status_code
            else:
                return flash_see_other(request, f"Created “{product.name}”.", "admin_product", product_id=product.id)
        else:
            await product_form_page.check_the_rest(None, form, request.user)
        return await product_form_page.not_saved(None, form, status_code=status_code, shops=shops)

    @get("/{product_id:int}", name="admin_product", media_type=MediaType.HTML)
    async def edit(
        self,
        request: AdminRequest,
        product_id: PathId,
        products_service: ProductsDep,
        product_form_page: ProductFormPageDep,
    ) -> Template:
        """The product edit page: fields, variants, photos, delete/restore and the audit trail."""
        product = await products_service.get_for_admin(product_id, actor=request.user)
        return await product_form_page.of_product(product)

    @post("/{product_id:int}", name="admin_product_update", media_type=MediaType.HTML)
    async def update(
        self,
        request: AdminRequest,
        product_id: PathId,
        data: FormFields,
        products_service: ProductsDep,
        product_form_page: ProductFormPageDep,
    ) -> Any:
        """Save the product form (fields and every variant row at once); errors re-render it (422/409)."""
        product = await products_service.get_for_admin(product_id, actor=request.user)
        form = product_form_page.read(data)
        if form.fields.action == "more":
            return await product_form_page.more_rows(product, form)
        product_data = form.product()
        updates = form.variant_updates(product)
        variants, prefixes = form.new_variants()
        status_code = 422
        if product_data is not None and not form.errors:
            try:
                product = await products_service.update_product(
                    product_id,
                    product_data,
                    actor=request.user,
                    variants=updates,
                    new_variants=variants,
                )
            except (ValidationFailed, StockChanged) as exc:
                form.take_service_errors(exc.field_errors, prefixes, create=False)
                form.errors.setdefault("form", exc.detail)
                status_code = exc.status_code
                product = await products_service.get_for_admin(product_id, actor=request.user)
                if isinstance(exc, StockChanged):
                    # Show the current levels, so saving again applies the admin's values to them.
                    for index, variant in enumerate(product.variants):
                        form.values[f"variants-{index}-stock_seen"] = str(variant.stock)
            else:
                return flash_see_other(request, f"Saved “{product.name}”.", "admin_product", product_id=product.id)
        else:
            await product_form_page.check_the_rest(product, form, request.user)
        return await product_form_page.not_saved(product, form, status_code=status_code)

    # --- variants, delete and restore ------------------------------------------------------------------

    @get(
        "/{product_id:int}/variants/{variant_id:int}/delete",
        name="admin_variant_delete_confirm",
        media_type=MediaType.HTML,
    )
    async def confirm_delete_variant(
        self, request: AdminRequest, product_id: PathId, variant_id: PathId, products_service: ProductsDep
    ) -> Template:
        """Ask before removing a variant, saying what goes with it (a page of its own: the question works
        without JavaScript)."""
        removal = await products_service.removal(product_id, variant_id, actor=request.user)
        context = {"variant": removal.variant, "movements": removal.movements, "last": removal.last}
        return Template("admin/products/variant_delete.html", context=context)

    @post("/{product_id:int}/variants/{variant_id:int}/delete", name="admin_variant_delete", media_type=MediaType.HTML)
    async def delete_variant(
        self, request: AdminRequest, product_id: PathId, variant_id: PathId, products_service: ProductsDep
    ) -> Any:
        """Remove a variant (not the last one: the reason is flashed)."""
        variant = await products_service.variant_with_product(variant_id=variant_id)
        if variant is None or variant.product_id != product_id:
            raise NotFound("There is no such variant.")
        await products_service.check_runs(request.user, variant.product.shop_id, "There is no such variant.")
        try:
            await products_service.delete_variant(variant_id, actor=request.user)
        except Conflict as exc:
            flash(request, exc.detail, "error")
        else:
            flash(request, f"Removed variant {variant.sku}.", "success")
        return see_other_to(request, "admin_product", product_id=product_id)

    @post("/{product_id:int}/delete", name="admin_product_delete", media_type=MediaType.HTML)
    async def delete(self, request: AdminRequest, product_id: PathId, products_service: ProductsDep) -> Any:
        """Soft-delete the product: gone from the shop and the API, kept for past orders."""
        product = await products_service.soft_delete(product_id, actor=request.user)
        message = f"Deleted “{product.name}”: it no longer shows in the shop. You can restore it."
        return flash_see_other(request, message, "admin_product", product_id=product_id)

    @post("/{product_id:int}/restore", name="admin_product_restore", media_type=MediaType.HTML)
    async def restore(self, request: AdminRequest, product_id: PathId, products_service: ProductsDep) -> Any:
        """Bring a soft-deleted product back."""
        product = await products_service.restore(product_id, actor=request.user)
        return flash_see_other(request, f"Restored “{product.name}”.", "admin_product", product_id=product_id)

    # --- photos -------------------------------------------------------------------------------------------

    @post(
        "/{product_id:int}/images",
        name="admin_product_images",
        media_type=MediaType.HTML,
        request_max_body_size=UPLOAD_BODY_LIMIT,
        exception_handlers={413: lambda request, exc: upload_too_large(request)},
    )
    async def upload(
        self,
        request: AdminRequest,
        product_id: PathId,
        products_service: ProductsDep,
        product_form_page: ProductFormPageDep,
    ) -> Any:
        """Upload a photo (JPEG, PNG or WebP, at most 5 MB); a bad file re-renders the page with the reason."""
        form = await request.form()
        upload = form.get("image")
        alt = str(form.get("alt") or "")
        try:
            if not isinstance(upload, UploadFile) or not upload.filename:
                raise ValidationFailed("Choose a photo to upload.", field_errors={"image": "Choose a photo to upload."})
            data = await upload.read(MAX_UPLOAD_BYTES + 1)
            await products_service.add_image(
                product_id,
                data,
                alt=alt,
                source_name=upload.filename,
                actor=request.user,
            )
        except ValidationFailed as exc:
            product = await products_service.get_for_admin(product_id, actor=request.user)
            message = exc.field_errors.get("image", exc.detail)
            if message and message[0].islower():
                message = f"This file cannot be used as a photo: {message}."
            return await product_form_page.of_product(
                product, photo_error=message, photo_alt=alt, status_code=exc.status_code
            )
        return flash_see_other(request, "Photo added.", "admin_product", product_id=product_id)

    @post("/{product_id:int}/images/{image_id:int}/move", name="admin_image_move", media_type=MediaType.HTML)
    async def move_image(
        self, request: AdminRequest, product_id: PathId, image_id: PathId, products_service: ProductsDep
    ) -> Any:
        """Move a photo one place up (earlier) or down."""
        form = await request.form()
        offset = -1 if form.get("direction") == "up" else 1
        await products_service.move_image(product_id, image_id, offset, actor=request.user)
        return see_other_to(request, "admin_product", product_id=product_id, fragment="photos")

    @post("/{product_id:int}/images/{image_id:int}/delete", name="admin_image_delete", media_type=MediaType.HTML)
    async def delete_image(
        self, request: AdminRequest, product_id: PathId, image_id: PathId, products_service: ProductsDep
    ) -> Any:
        """Remove a photo (its files too, unless another product shows the same file)."""
        await products_service.remove_image(product_id, image_id, actor=request.user)
        return flash_see_other(request, "Photo removed.", "admin_product", product_id=product_id, fragment="photos")


def upload_too_large(request: AnyRequest) -> Response[Any]:
    """The 413 page for an upload whose request body is over the limit (Litestar refused to read it)."""
    product_id = request.path_params.get("product_id")
    return Template(
        "admin/products/upload_error.html",
        context={
            "message": too_large_message("photos"),
            "product_id": product_id,
        },
        status_code=413,
        media_type=MediaType.HTML,
    )
