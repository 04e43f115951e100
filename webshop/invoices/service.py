"""Invoices and credit notes as documents: look-ups, one PDF, and a ZIP of a date range.

Numbers are given by ``webshop.invoices.numbering`` in the transaction that pays an order or records
a refund; this module only reads. Who may fetch which document is the caller's rule (the routes in
``webshop.invoices.web`` and ``api``: the buyer and platform admins); ``InvoiceService.invoice_document``
and ``credit_note_document`` take an order the caller has already been allowed to see, so another way
in (the guest's signed order link) calls them the same way.

PDFs are drawn (``webshop.invoices.pdf``, about 0.1 s each) in a worker thread, so a bulk export does
not stall the event loop; the ZIP is written to a spooled temporary file (in memory up to
``SPOOL_BYTES``, then on disk).
"""

from __future__ import annotations

import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from webshop.db.models import Invoice, InvoiceKind, Order, OrderLine, Refund, User
from webshop.db.repository import repository_for
from webshop.errors import NotFound, ValidationFailed
from webshop.invoices.numbering import notes_before
from webshop.invoices.pdf import Buyer, Seller, credit_note_pdf, invoice_pdf

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import Settings

SPOOL_BYTES = 16 * 1024 * 1024
"""A bulk ZIP stays in memory up to this size (bytes), then goes to a temporary file."""

MAX_RANGE_DAYS = 366
"""The longest date range one bulk export covers (days), so one request renders at most a year."""


@dataclass(frozen=True)
class Document:
    """A rendered document: its file name (``INV-2026-000001.pdf``) and PDF bytes."""

    filename: str
    content: bytes


def filename_of(invoice: Invoice) -> str:
    """The download name of a document: its number and ``.pdf``."""
    return f"{invoice.number}.pdf"


async def documents_of(session: AsyncSession, order_id: int) -> list[Invoice]:
    """The order's invoice (first) and credit notes (oldest first); ``[]`` before it is paid.

    A plain function on a session, so that the order pages can list them next to what they show.
    """
    rows = await session.scalars(
        select(Invoice)
        .where(Invoice.order_id == order_id)
        .order_by(Invoice.kind != InvoiceKind.INVOICE.value, Invoice.issued_at, Invoice.id)
    )
    return list(rows)


def day_range(day_from: date, day_to: date) -> tuple[datetime, datetime]:
    """``[start, end)`` in UTC covering the days ``day_from`` to ``day_to``, both included.

    Raises:
        ValidationFailed: ``day_to`` is before ``day_from``, or the range is longer than
            ``MAX_RANGE_DAYS``.
    """
    if day_to < day_from:
        raise ValidationFailed("The end date is before the start date.", field_errors={"to": "Before the start date."})
    if (day_to - day_from).days + 1 > MAX_RANGE_DAYS:
        message = f"Choose at most {MAX_RANGE_DAYS} days."
        raise ValidationFailed(message, field_errors={"to": message})
    start = datetime(day_from.year, day_from.month, day_from.day, tzinfo=UTC)
    end = datetime(day_to.year, day_to.month, day_to.day, tzinfo=UTC) + timedelta(days=1)
    return start, end


class InvoiceService(SQLAlchemyAsyncRepositoryService[Invoice]):
    """Invoices and credit notes: find them and render them (read-only)."""

    repository_type = repository_for(Invoice)

    def __init__(self, session: Any, *, settings: Settings, **repo_kwargs: Any) -> None:
        """A service on ``session``; ``settings`` give the seller (``Seller.from_settings``)."""
        super().__init__(session=session, **repo_kwargs)
        self.seller = Seller.from_settings(settings)

    @property
    def _session(self) -> AsyncSession:
        session: AsyncSession = self.repository.session
        return session

    # -- look-ups ----------------------------------------------------------------------------------

    async def invoice_of(self, order_id: int) -> Invoice | None:
        """The order's invoice, or ``None`` while it has none (not paid yet)."""
        return await self._session.scalar(
            select(Invoice).where(Invoice.order_id == order_id, Invoice.kind == InvoiceKind.INVOICE.value)
        )

    async def credit_notes_of(self, order_id: int) -> list[Invoice]:
        """The order's credit notes, oldest first."""
        rows = await self._session.scalars(
            select(Invoice)
            .where(Invoice.order_id == order_id, Invoice.kind == InvoiceKind.CREDIT_NOTE.value)
            .order_by(Invoice.issued_at, Invoice.id)
        )
        return list(rows)

    async def issued_between(self, start: datetime, end: datetime) -> list[Invoice]:
        """Invoices and credit notes issued in ``[start, end)`` (aware datetimes), by kind then number."""
        rows = await self._session.scalars(
            select(Invoice)
            .where(Invoice.issued_at >= start, Invoice.issued_at < end)
            .order_by(Invoice.kind, Invoice.year, Invoice.sequence)
        )
        return list(rows)

    # -- documents of an order the caller may see --------------------------------------------------

    async def invoice_document(self, order: Order) -> Document:
        """The PDF of ``order``'s invoice.

        Raises:
            NotFound: the order has no invoice (yet).
        """
        invoice = await self.invoice_of(order.id)
        if invoice is None:
            raise NotFound("This order has no invoice yet: it is issued when the order is paid.")
        return await self.render(invoice)

    async def credit_note_document(
        self, order: Order, *, number: str | None = None, note_id: int | None = None
    ) -> Document:
        """The PDF of one of ``order``'s credit notes, chosen by ``number`` or by ``note_id``.

        Raises:
            NotFound: the order has no such credit note.
        """
        condition = Invoice.number == number if number is not None else Invoice.id == note_id
        note = await self._session.scalar(
            select(Invoice).where(
                condition, Invoice.order_id == order.id, Invoice.kind == InvoiceKind.CREDIT_NOTE.value
            )
        )
        if note is None:
            raise NotFound("This order has no such credit note.")
        return await self.render(note)

    async def render(self, document: Invoice) -> Document:
        """The PDF of an invoice or credit note, drawn from its order's snapshot (in a worker thread)."""
        order, email = await self._order_of(document.order_id)
        drawing = await self._drawing(document, order, email)
        content = await anyio.to_thread.run_sync(drawing)
        return Document(filename_of(document), content)

    # -- bulk --------------------------------------------------------------------------------------

    async def zip_between(self, day_from: date, day_to: date) -> tuple[Any, int]:
        """A ZIP of the PDFs of every invoice and credit note issued from ``day_from`` to ``day_to``
        (UTC days, both included), each named by its number.

        Returns:
            ``(file, count)``: a spooled temporary file holding the ZIP, positioned at its start (the
            caller closes it), and how many documents it holds.

        Raises:
            ValidationFailed: the dates are the wrong way round or too far apart (``day_range``).
        """
        start, end = day_range(day_from, day_to)
        documents = await self.issued_between(start, end)
        orders: dict[int, tuple[Order, str]] = {}
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115 (the caller closes it)
        try:
            with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
                for document in documents:
                    if document.order_id not in orders:
                        orders[document.order_id] = await self._order_of(document.order_id)
                    order, email = orders[document.order_id]
                    content = await anyio.to_thread.run_sync(await self._drawing(document, order, email))
                    issued = document.issued_at.astimezone(UTC)
                    info = zipfile.ZipInfo(filename_of(document), date_time=issued.timetuple()[:6])
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, content)
            spool.seek(0)
        except BaseException:
            spool.close()
            raise
        return spool, len(documents)

    # -- helpers -----------------------------------------------------------------------------------

    async def _order_of(self, order_id: int) -> tuple[Order, str]:
        """The order with its lines, and the buyer's e-mail (the order's, else its account's)."""
        order = await self._session.scalar(select(Order).where(Order.id == order_id).options(selectinload(Order.lines)))
        if order is None:
            raise NotFound("There is no such order.")
        email = order.email
        if not email and order.user_id is not None:
            email = await self._session.scalar(select(User.email).where(User.id == order.user_id)) or ""
        return order, email

    async def _drawing(self, document: Invoice, order: Order, email: str) -> Any:
        """A no-argument callable that draws ``document`` (everything it needs loaded beforehand, so the
        thread touches no session)."""
        lines: list[OrderLine] = list(order.lines)
        buyer = Buyer.of(order, email)
        seller = self.seller
        if document.kind == InvoiceKind.INVOICE.value:
            return lambda: invoice_pdf(document, order, lines, seller, buyer)
        refund = await self._session.scalar(
            select(Refund).where(Refund.id == document.refund_id).options(selectinload(Refund.lines))
        )
        if refund is None:
            raise NotFound("The refund of this credit note is gone.")
        invoice = await self.invoice_of(order.id)
        number = invoice.number if invoice is not None else ""
        earlier: list[Refund] = []
        if document.credited_tax is None:  # a note that kept no tax draws by the earlier rule, which needs these
            earlier = [row.Refund for row in await self._session.execute(notes_before(document))]
        return lambda: credit_note_pdf(
            document, refund, order, lines, seller, buyer, invoice_number=number, earlier=earlier
        )
