"""The shopper's invoice and credit-note downloads, under their own order's address.

``GET /orders/{number}/invoice.pdf`` and ``GET /orders/{number}/credit-notes/{CN-...}.pdf``: the signed-in
shopper's own orders only; another customer's order, an order without an invoice yet and an unknown
credit note are the same 404. Signed-out visitors are sent to the sign-in form (``requires_user``).
"""

from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath

from webshop.db.models import Order
from webshop.deps import InvoicesDep
from webshop.errors import NotFound
from webshop.invoices.service import Document
from webshop.orders.web import own_order
from webshop.security.session import requires_user

PDF = "application/pdf"


def pdf_response(document: Document) -> Response[bytes]:
    """A download of ``document``: ``attachment`` with its file name, never cached (personal data)."""
    return Response(
        document.content,
        media_type=PDF,
        headers={
            "Content-Disposition": f'attachment; filename="{document.filename}"',
            "Cache-Control": "private, no-store",
        },
    )


def number_of(filename: str) -> str:
    """The document number in a ``{number}.pdf`` path segment.

    Raises:
        NotFound: the segment does not end in ``.pdf``.
    """
    if not filename.endswith(".pdf") or len(filename) > 60:
        raise NotFound("There is no such document.")
    return filename.removesuffix(".pdf")


class InvoiceController(Controller):
    """A shopper's invoices and credit notes (their own orders only)."""

    path = "/orders"
    guards = [requires_user]
    include_in_schema = False
    dependencies = {"order": Provide(own_order)}

    @get("/{number:str}/invoice.pdf", name="order.invoice")
    async def invoice(self, order: NamedDependency[Order], invoices_service: InvoicesDep) -> Response[bytes]:
        """The order's invoice as a PDF download."""
        return pdf_response(await invoices_service.invoice_document(order))

    @get("/{number:str}/credit-notes/{filename:str}", name="order.credit_note")
    async def credit_note(
        self, order: NamedDependency[Order], filename: FromPath[str], invoices_service: InvoicesDep
    ) -> Response[bytes]:
        """One of the order's credit notes as a PDF download (``CN-2026-000001.pdf``)."""
        return pdf_response(await invoices_service.credit_note_document(order, number=number_of(filename)))
