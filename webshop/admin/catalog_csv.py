"""Admin catalog import and export as CSV, in exactly the format ``webshop import-catalog`` reads.

* Export (``GET /admin/catalog-csv/export``) writes every product that is not deleted with
  ``webshop.catalog.csv.export.export_catalog``; importing that file again changes nothing. Text cells that
  a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return first) are written
  with a ``'`` in front (OWASP "CSV Injection"), which the importer's parser takes off again.
* Import is two steps. The upload (``POST /admin/catalog-csv/preview``) is parsed with the importer's
  own parser and compared with the database by ``preview_import``: the page lists what would be created,
  changed and rejected (with line numbers), and nothing is written. The confirm form carries the
  previewed file itself, compressed, with an itsdangerous signature over its SHA-256 digest, the admin's
  id and the time (valid for an hour); confirming (``POST /admin/catalog-csv/import``) applies exactly
  that file with ``import_catalog``, the same code as the command line. No upload is kept on the server,
  so any worker process or host can take the confirmation.

Shop members (issue 16) export and import their shops' products only: an import of theirs puts new
products in their shop (a member of several names the shop in the ``shop`` column) and rejects rows for
other shops' products, in the dry run and the import alike (``webshop.catalog.csv.sellers``).
"""

import base64
import binascii
import hashlib
import io
import zlib
from typing import Annotated, Any, TypeAlias

import msgspec
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from litestar import MediaType, Response, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency, Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.plugins.htmx import HXLocation
from litestar.response import Redirect, Template
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.admin import SHOP_STAFF_DEPENDENCIES, ShopStaffPages
from webshop.admin.pages import AdminRequest
from webshop.catalog.csv.export import export_catalog
from webshop.catalog.csv.sellers import ImportShops
from webshop.catalog.csv.transfer import (
    CSV_BODY_LIMIT,
    MAX_CSV_BYTES,
    UploadRejected,
    check_size,
    export_download,
    import_upload,
    preview_upload,
)
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, end_transaction
from webshop.db.models import User
from webshop.deps import AuditDep, SettingsDep, ShopsDep
from webshop.shops.scope import admin_scope
from webshop.web.forms import Form
from webshop.web.responses import see_other_to

CONFIRM_MAX_AGE = 3600
"""Seconds a preview can be confirmed for."""
_SALT = "webshop.admin.catalog-csv"


class UploadForm(msgspec.Struct):
    """The import form: the CSV file (``file``)."""

    file: UploadFile | None = None


class ConfirmForm(msgspec.Struct):
    """The confirm form: the previewed file (``payload``: zlib, URL-safe base64) and its signed digest."""

    payload: str = ""
    token: str = ""


def _serializer(settings: Settings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.security.secret_key, salt=_SALT)


def _pack(content: bytes) -> str:
    """``content`` compressed and URL-safe base64 encoded (no padding), for a hidden form field."""
    return base64.urlsafe_b64encode(zlib.compress(content, 6)).decode("ascii").rstrip("=")


def _unpack(payload: str) -> bytes:
    """The bytes ``_pack`` packed, at most ``MAX_CSV_BYTES`` (a zlib bomb is cut off and refused).

    Raises:
        UploadRejected: the payload is not one this page wrote.
    """
    try:
        compressed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        inflater = zlib.decompressobj()
        content = inflater.decompress(compressed, MAX_CSV_BYTES + 1)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise UploadRejected("The confirmation form was damaged. Upload the file again.", 400) from exc
    if len(content) > MAX_CSV_BYTES or inflater.unconsumed_tail:
        raise UploadRejected("The confirmation form was damaged. Upload the file again.", 400)
    return content


async def provide_released_session(audit_service: AuditDep) -> AsyncSession:
    """The request's session with its transaction ended (``end_transaction``): the import steps parse,
    preview and apply in sessions of their own and must not hold the request's connection (or, on
    SQLite, a transaction) meanwhile. What the request writes afterwards (the audit events) starts anew."""
    session: AsyncSession = audit_service.repository.session
    await end_transaction(session)
    return session


class ImportStep:
    """What both import steps (preview and confirm) work with; ``provide_import_step`` makes one per request.

    A plain class, not a dataclass: Litestar resolves the type hints of a dataclass dependency's fields,
    and those of ``Settings``'s groups do not resolve outside ``webshop.config`` (a ``NameError`` at
    start-up). The page dependencies that hold no ``Settings`` (``ShopPage``, ``EndpointPage``) can be
    dataclasses.

    Attributes:
        alchemy: The database config: the steps read and write in sessions of their own.
        session: The request's session, its transaction ended (``provide_released_session``).
        settings: The application's settings (currency, media folder, the signing key).
        shops: Whose import it is (``ImportShops.of`` the user's access).
    """

    def __init__(
        self, alchemy: ShopAlchemyConfig, session: AsyncSession, settings: Settings, shops: ImportShops
    ) -> None:
        self.alchemy, self.session, self.settings, self.shops = alchemy, session, settings, shops

    async def refused(self, exc: UploadRejected) -> Template:
        """The import page again with the reason the file was refused (and its status code)."""
        return await csv_page(
            self.session, self.settings, error=exc.message, status_code=exc.status, shop_ids=self.shops.allowed
        )


async def provide_import_step(
    request: AdminRequest,
    alchemy: NamedDependency[Any],  # a ShopAlchemyConfig (Any: a config object, not input to validate)
    released_session: NamedDependency[AsyncSession],
    shops_service: ShopsDep,
    settings: SettingsDep,
) -> ImportStep:
    """The ``import_step`` of the preview and confirm handlers."""
    shops = ImportShops.of(await shops_service.access(request.user))
    return ImportStep(alchemy, released_session, settings, shops)


ImportStepDep: TypeAlias = NamedDependency[ImportStep]
"""``import_step``: what an import step works with (``AdminCatalogCsvController.dependencies``)."""


class AdminCatalogCsvController(ShopStaffPages):
    """Catalog export and import with a dry run (a shop member: their shops' products only)."""

    path = "/admin/catalog-csv"
    dependencies = {
        **SHOP_STAFF_DEPENDENCIES,
        "released_session": Provide(provide_released_session),
        "import_step": Provide(provide_import_step),
    }

    @get("", name="admin_catalog_csv", media_type=MediaType.HTML)
    async def index(
        self, request: AdminRequest, audit_service: AuditDep, shops_service: ShopsDep, settings: SettingsDep
    ) -> Template:
        """Export link (with what the export leaves out) and the import form."""
        shop_ids = (await admin_scope(shops_service, request.user)).shop_ids
        return await csv_page(audit_service.repository.session, settings, shop_ids=shop_ids)

    @get("/export", name="admin_catalog_csv_export")
    async def export(
        self, request: AdminRequest, audit_service: AuditDep, shops_service: ShopsDep, settings: SettingsDep
    ) -> Response[bytes]:
        """The catalog (a member: their shops' products) as ``products.csv`` (a download)."""
        shop_ids = (await admin_scope(shops_service, request.user)).shop_ids
        session = audit_service.repository.session
        return await export_download(session, currency=settings.shop.currency, shop_ids=shop_ids)

    @get(["/preview", "/import"], name="admin_catalog_csv_start_again", include_in_schema=False)
    async def start_again(self, request: AdminRequest) -> Redirect | HXLocation:
        """A preview or a report is the answer to a post; its address in the address bar (kept by a
        reload, Back or history) holds nothing to show again, so it leads to the import form (303)."""
        return see_other_to(request, "admin_catalog_csv")

    @post(
        "/preview",
        name="admin_catalog_csv_preview",
        media_type=MediaType.HTML,
        status_code=200,
        request_max_body_size=CSV_BODY_LIMIT,
    )
    async def preview(
        self,
        request: AdminRequest,
        data: Annotated[UploadForm, Body(media_type=RequestEncodingType.MULTI_PART)],
        import_step: ImportStepDep,
    ) -> Template:
        """Dry run of an uploaded CSV: what would be created, changed and rejected. Nothing is written."""
        settings = import_step.settings
        try:
            if data.file is None or not data.file.filename:
                raise UploadRejected("Choose a CSV file to import.")
            content = check_size(await data.file.read(MAX_CSV_BYTES + 1))
            plan = await preview_upload(import_step.alchemy, content, import_step.settings.shop, import_step.shops)
        except UploadRejected as exc:
            return await import_step.refused(exc)
        token = _serializer(settings).dumps({"u": request.user.id, "d": hashlib.sha256(content).hexdigest()})
        return Template(
            "admin/csv/preview.html",
            context={
                "filename": data.file.filename,
                "size": len(content),
                "plan": plan,
                "payload": _pack(content),
                "token": token,
            },
        )

    @post(
        "/import",
        name="admin_catalog_csv_import",
        media_type=MediaType.HTML,
        status_code=200,
        request_max_body_size=MAX_CSV_BYTES * 2,
    )
    async def confirm(
        self, request: AdminRequest, data: Annotated[ConfirmForm, Form], import_step: ImportStepDep
    ) -> Template:
        """Apply exactly the previewed file (signature and digest checked), then show the import's report."""
        settings = import_step.settings
        try:
            content = self._verified(data, request.user, settings)
            plan, report = await import_upload(
                import_step.alchemy, content, import_step.settings.shop, import_step.shops, actor=request.user
            )
        except UploadRejected as exc:
            return await import_step.refused(exc)
        return Template("admin/csv/result.html", context={"report": report, "plan": plan})

    @staticmethod
    def _verified(data: ConfirmForm, user: User, settings: Settings) -> bytes:
        """The previewed file's bytes, once the signature, its age, the admin and the digest check out.

        Raises:
            UploadRejected: expired, forged, someone else's, or not the previewed file.
        """
        try:
            claims = _serializer(settings).loads(data.token, max_age=CONFIRM_MAX_AGE)
        except SignatureExpired as exc:
            raise UploadRejected("The preview is more than an hour old. Upload the file again.", 400) from exc
        except BadSignature as exc:
            raise UploadRejected("The confirmation form was damaged. Upload the file again.", 400) from exc
        if not isinstance(claims, dict) or claims.get("u") != user.id:
            raise UploadRejected("This preview was made by another admin. Upload the file again.", 400)
        content = _unpack(data.payload)
        if hashlib.sha256(content).hexdigest() != claims.get("d"):
            raise UploadRejected("The file is not the one that was previewed. Upload it again.", 400)
        return content


async def csv_page(
    session: AsyncSession,
    settings: Settings,
    *,
    error: str | None = None,
    status_code: int = 200,
    shop_ids: frozenset[int] | None = None,
) -> Template:
    """The import and export page: what an export would write and leave out, the import form, and the
    reason an upload was refused (``error``, with its ``status_code``)."""
    sink = io.StringIO(newline="")
    report = await export_catalog(session, sink, currency=settings.shop.currency, shop_ids=shop_ids)
    return Template(
        "admin/csv/index.html",
        context={
            "export": report,
            "error": error,
            "max_mb": MAX_CSV_BYTES // (1024 * 1024),
        },
        status_code=status_code,
    )
