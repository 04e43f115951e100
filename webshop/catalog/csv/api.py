"""The catalog CSV in the JSON API, as on the admin page ``/admin/catalog-csv``: the export as a download,
and an upload's dry run or import (``webshop.catalog.csv.transfer``, the page's and the command line's code).

Admins work on every shop's products; a shop's members on their shops' only (an import of theirs puts
new products in their shop and rejects rows for other shops' products), as on the page. The API has no
confirmation step: ``dry_run=true`` (the default) answers what an import would do and writes nothing;
``dry_run=false`` imports and answers what it did.
"""

from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.enums import RequestEncodingType
from litestar.params import Body, QueryParameter

from webshop.api.controllers import ShopStaffApiController
from webshop.api.responses import problems
from webshop.catalog.csv.apply import ImportReport
from webshop.catalog.csv.parse import RowError
from webshop.catalog.csv.plan import ImportPreview, PlannedProduct
from webshop.catalog.csv.sellers import ImportShops
from webshop.catalog.csv.transfer import (
    CSV_BODY_LIMIT,
    MAX_CSV_BYTES,
    check_size,
    export_download,
    import_upload,
    preview_upload,
)
from webshop.db.engine import end_transaction
from webshop.deps import SettingsDep, ShopsDep, UserRequest


class CsvUpload(msgspec.Struct, forbid_unknown_fields=True):
    """``POST /api/catalog/import`` (multipart/form-data): a ``products.csv`` of at most 16 MB in ``file``,
    in the format ``GET /api/catalog/export`` writes (UTF-8)."""

    file: UploadFile


class RowProblemOut(msgspec.Struct, frozen=True):
    """A row of the file that was (or would be) skipped or imported with a change: its line and why."""

    line: int
    reason: str


class PlannedProductOut(msgspec.Struct, frozen=True):
    """A product the import creates or changes: its product row's line, slug, name, and what, in words."""

    line: int
    slug: str
    name: str
    changes: list[str]


class CatalogImportOut(msgspec.Struct, frozen=True, kw_only=True):
    """What an import did (``dry_run`` false) or would do (``dry_run`` true): counts by outcome, the products
    created and changed with their changes in words, rows rejected and notices (with line numbers), and
    the category paths created (``"Electronics > Audio"``)."""

    dry_run: bool
    products_created: int
    products_updated: int
    products_unchanged: int
    variants_created: int
    variants_updated: int
    images_stored: int
    categories_created: int
    created: list[PlannedProductOut]
    changed: list[PlannedProductOut]
    rejected: list[RowProblemOut]
    notices: list[RowProblemOut]
    categories: list[str]


def _rows(rows: list[RowError]) -> list[RowProblemOut]:
    return [RowProblemOut(line=row.line, reason=row.reason) for row in rows]


def _planned(products: list[PlannedProduct]) -> list[PlannedProductOut]:
    return [PlannedProductOut(line=p.line, slug=p.slug, name=p.name, changes=list(p.changes)) for p in products]


def catalog_import_out(plan: ImportPreview, report: ImportReport | None) -> CatalogImportOut:
    """``CatalogImportOut`` of a dry run (``report`` ``None``) or of an import and the dry run made before it
    (the counts and rows are the import's own; the products' changes in words, the dry run's)."""
    counts: ImportPreview | ImportReport = plan if report is None else report
    return CatalogImportOut(
        dry_run=report is None,
        products_created=counts.products_created,
        products_updated=counts.products_updated,
        products_unchanged=plan.unchanged if report is None else report.products_unchanged,
        variants_created=counts.variants_created,
        variants_updated=counts.variants_updated,
        images_stored=counts.images_stored,
        categories_created=counts.categories_created,
        created=_planned(plan.created),
        changed=_planned(plan.changed),
        rejected=_rows(plan.rejected if report is None else report.errors),
        notices=_rows(plan.notices if report is None else report.notices),
        categories=list(plan.categories),
    )


class CatalogCsvApiController(ShopStaffApiController):
    """The catalog as CSV: export, and import with or without a dry run."""

    path = "/api/catalog"
    tags = ["catalog admin"]

    @get(
        "/export",
        operation_id="exportCatalog",
        media_type="text/csv",
        responses=problems(401, 403),
    )
    async def export(self, request: UserRequest, shops_service: ShopsDep, settings: SettingsDep) -> Response[bytes]:
        """The catalog (a member: their shops' products) as ``products.csv``, the file ``importCatalog`` reads."""
        access = await shops_service.access(request.user)
        session = shops_service.repository.session
        return await export_download(session, currency=settings.shop.currency, shop_ids=access.shop_ids)

    @post(
        "/import",
        operation_id="importCatalog",
        status_code=200,
        request_max_body_size=CSV_BODY_LIMIT,
        responses=problems(400, 401, 403, 413, 422),
    )
    async def import_csv(
        self,
        request: UserRequest,
        data: Annotated[CsvUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
        shops_service: ShopsDep,
        settings: SettingsDep,
        alchemy: NamedDependency[Any],  # a ShopAlchemyConfig (Any: a config object, not input to validate)
        dry_run: Annotated[
            bool, QueryParameter(description="true: say what the import would do, write nothing")
        ] = True,
    ) -> CatalogImportOut:
        """Import a ``products.csv`` (products by slug, variants by SKU; never existing stock; nothing deleted;
        photos only by the stored names an export writes). 413 over 16 MB; 422 not a catalog CSV."""
        shops = ImportShops.of(await shops_service.access(request.user))
        await end_transaction(shops_service.repository.session)  # the steps use sessions of their own
        content = check_size(await data.file.read(MAX_CSV_BYTES + 1))
        if dry_run:
            return catalog_import_out(await preview_upload(alchemy, content, settings.shop, shops), None)
        plan, report = await import_upload(alchemy, content, settings.shop, shops, actor=request.user)
        return catalog_import_out(plan, report)
