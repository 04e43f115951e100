"""A catalog CSV over HTTP, for the admin pages (``webshop.admin.catalog_csv``) and the API
(``webshop.catalog.csv.api``) alike: the export as a download, and an uploaded file's dry run and import.

An upload is written to a temporary folder as ``products.csv`` and read by the importer's own parser;
the dry run (``preview_import``) and the import (``import_catalog``, the command line's code) read and
write in sessions of their own, so a caller must not hold a transaction meanwhile (on SQLite, its
write lock). An upload names only photos the shop already has (as an export does): it carries no
``images/`` folder.
"""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
from litestar import Response

from webshop.catalog.csv.apply import ImportReport, import_catalog
from webshop.catalog.csv.export import export_catalog
from webshop.catalog.csv.parse import CSV_FILE, ParsedCatalog, parse_catalog
from webshop.catalog.csv.plan import ImportPreview, preview_import
from webshop.errors import ValidationFailed

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.catalog.csv.sellers import ImportShops
    from webshop.config import ShopSettings
    from webshop.db.engine import ShopAlchemyConfig
    from webshop.db.models import User

MAX_CSV_BYTES = 16 * 1024 * 1024
"""Largest CSV an admin may upload (16 MB: about 30,000 products)."""
CSV_BODY_LIMIT = MAX_CSV_BYTES + 64 * 1024
"""The largest request body carrying one CSV: the file and room for the multipart framing."""


class UploadRejected(ValidationFailed):
    """The uploaded file cannot be read as a catalog: ``status`` (and ``status_code``) 422 (not UTF-8 text,
    no catalog header), 413 (more than ``MAX_CSV_BYTES``) or 400 (a damaged confirmation form); ``message``
    says why, also as ``field_errors["file"]``."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message, field_errors={"file": message})
        self.message = message
        self.status = self.status_code = status
        if status == 413:
            self.title = "Too large"  # RFC 9110 §15.5.14 Content Too Large, as webshop.media.ImageTooLarge


def check_size(content: bytes) -> bytes:
    """``content`` if it is at most ``MAX_CSV_BYTES`` (read one byte more to know).

    Raises:
        UploadRejected: larger (413).
    """
    if len(content) > MAX_CSV_BYTES:
        raise UploadRejected(f"The file is too large: at most {MAX_CSV_BYTES // (1024 * 1024)} MB.", 413)
    return content


async def parse_upload(
    content: bytes, workdir: Path, currency: str, tax_categories: Collection[str] | None = None
) -> ParsedCatalog:
    """Write ``content`` as ``workdir/products.csv`` and parse it with the importer's parser
    (``parse_catalog``: prices in ``currency``, variants in ``tax_categories``).

    Raises:
        UploadRejected: the file is not UTF-8 text or has no usable header row (422).
    """
    try:
        content.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UploadRejected(f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read).") from exc
    path = workdir / CSV_FILE
    await anyio.Path(path).write_bytes(content)
    parsed = await anyio.to_thread.run_sync(
        lambda: parse_catalog(path, currency=currency, tax_categories=tax_categories)
    )
    if not parsed.products and parsed.errors and parsed.errors[0].line == 1:
        raise UploadRejected(f"This is not a catalog CSV: line 1: {parsed.errors[0].reason}.")
    return parsed


async def dry_run(
    alchemy: ShopAlchemyConfig, parsed: ParsedCatalog, *, media_dir: Path, currency: str, shops: ImportShops
) -> ImportPreview:
    """What importing ``parsed`` for ``shops`` would create, change and reject, read in a session of its
    own (a plain read: on SQLite it takes no write lock). Nothing is written."""
    async with alchemy.get_session() as session:
        return await preview_import(session, parsed, media_dir=media_dir, currency=currency, shops=shops)


async def preview_upload(
    alchemy: ShopAlchemyConfig, content: bytes, shop: ShopSettings, shops: ImportShops
) -> ImportPreview:
    """The dry run of an uploaded file (``parse_upload``, then ``dry_run``) for ``shop``'s settings (its
    media folder, currency and tax categories).

    Raises:
        UploadRejected: not a readable catalog CSV (422).
    """
    with tempfile.TemporaryDirectory(prefix="webshop-import-") as workdir:
        parsed = await parse_upload(content, Path(workdir), shop.currency, shop.tax_rates_bp)
    return await dry_run(alchemy, parsed, media_dir=shop.media_dir, currency=shop.currency, shops=shops)


async def import_upload(
    alchemy: ShopAlchemyConfig, content: bytes, shop: ShopSettings, shops: ImportShops, *, actor: User | None
) -> tuple[ImportPreview, ImportReport]:
    """Import an uploaded file as ``webshop import-catalog`` would (audited as ``actor``'s), with the dry
    run made just before it (which lists what was created and changed, in words).

    Raises:
        UploadRejected: not a readable catalog CSV (422); nothing is written.
    """
    with tempfile.TemporaryDirectory(prefix="webshop-import-") as workdir:
        parsed = await parse_upload(content, Path(workdir), shop.currency, shop.tax_rates_bp)
        plan = await dry_run(alchemy, parsed, media_dir=shop.media_dir, currency=shop.currency, shops=shops)
        report = await import_catalog(
            alchemy,
            Path(workdir),
            shop.media_dir,
            currency=shop.currency,
            tax_categories=shop.tax_rates_bp,
            actor=actor,
            shops=shops,
        )
    return plan, report


async def export_download(session: AsyncSession, *, currency: str, shop_ids: frozenset[int] | None) -> Response[bytes]:
    """The catalog (``shop_ids``' products; ``None``: every shop's) as a ``products.csv`` download, with
    ``X-Products-Exported`` and ``X-Products-Skipped`` (products the format cannot carry) counts."""
    buffer = io.StringIO(newline="")
    report = await export_catalog(session, buffer, currency=currency, shop_ids=shop_ids)
    return Response(
        buffer.getvalue().encode("utf-8"),
        media_type="text/csv",  # Litestar adds "; charset=utf-8" to text types
        headers={
            "Content-Disposition": 'attachment; filename="products.csv"',
            "X-Products-Exported": str(report.products),
            "X-Products-Skipped": str(len(report.skipped)),
            "Cache-Control": "no-store",
        },
    )
