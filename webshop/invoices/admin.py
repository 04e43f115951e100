"""The admin's invoices: each order's documents, and every document of a date range as one ZIP.

Platform admins only (``AdminPages``): invoices name the buyer and the whole order, which a shop's
members (who see only their shops' lines of an order) are not shown.

``GET /admin/invoices`` is a form with two dates; it sends the browser (a plain GET form, no
JavaScript needed) to ``GET /admin/invoices.zip?from=YYYY-MM-DD&to=YYYY-MM-DD``, which answers the ZIP
or, for a missing or malformed date, a reversed or too long range, the form again with the message (422).
"""

from datetime import date
from typing import Annotated, Any

from litestar import MediaType, Response, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Stream, Template

from webshop.admin import AdminPages
from webshop.api.schemas import PathId
from webshop.deps import InvoicesDep, OrdersDep
from webshop.errors import ValidationFailed
from webshop.invoices.service import MAX_RANGE_DAYS
from webshop.invoices.web import number_of, pdf_response


def _day(value: str | None, field: str, errors: dict[str, str]) -> date | None:
    """``YYYY-MM-DD`` as a date; a missing or malformed one is noted in ``errors[field]``."""
    try:
        return date.fromisoformat((value or "").strip())
    except ValueError:
        errors[field] = "Enter a date as YYYY-MM-DD."
        return None


class AdminInvoiceController(AdminPages):
    """Invoices and credit notes for platform admins."""

    path = "/admin"

    @get("/orders/{order_id:int}/invoice.pdf", name="admin_order_invoice")
    async def invoice(
        self,
        order_id: PathId,
        orders_service: OrdersDep,
        invoices_service: InvoicesDep,
    ) -> Response[bytes]:
        """The order's invoice as a PDF download (404 before it is paid)."""
        order = await orders_service.get_for(order_id)
        return pdf_response(await invoices_service.invoice_document(order))

    @get("/orders/{order_id:int}/credit-notes/{filename:str}", name="admin_order_credit_note")
    async def credit_note(
        self,
        order_id: PathId,
        filename: FromPath[str],
        orders_service: OrdersDep,
        invoices_service: InvoicesDep,
    ) -> Response[bytes]:
        """One of the order's credit notes as a PDF download."""
        order = await orders_service.get_for(order_id)
        return pdf_response(await invoices_service.credit_note_document(order, number=number_of(filename)))

    @get("/invoices", name="admin_invoices", media_type=MediaType.HTML)
    async def index(self) -> Template:
        """The bulk download form: every invoice and credit note issued between two dates."""
        return _form({"from": "", "to": ""}, {})

    # Litestar prefers the handler's media type to a Stream's own; the form's Template names its own.
    @get("/invoices.zip", name="admin_invoices_zip", media_type="application/zip")
    async def bulk(
        self,
        invoices_service: InvoicesDep,
        day_from: Annotated[str | None, QueryParameter(name="from", max_length=40)] = None,
        day_to: Annotated[str | None, QueryParameter(name="to", max_length=40)] = None,
    ) -> Any:
        """The ZIP of the range's PDFs; bad dates show the form again with the message (422), a range
        with nothing issued in it shows the form with that notice."""
        values = {"from": (day_from or "")[:40], "to": (day_to or "")[:40]}
        errors: dict[str, str] = {}
        start, end = _day(day_from, "from", errors), _day(day_to, "to", errors)
        if start is None or end is None:
            return _form(values, errors, status_code=422)
        try:
            spool, count = await invoices_service.zip_between(start, end)
        except ValidationFailed as exc:
            return _form(values, exc.field_errors or {"to": exc.detail}, status_code=422)
        if not count:  # an empty ZIP would only puzzle: say so on the form instead
            spool.close()
            notice = f"No invoice or credit note was issued from {start:%d %b %Y} to {end:%d %b %Y}."
            return _form(values, {}, notice=notice)

        def chunks() -> Any:
            with spool:
                while chunk := spool.read(64 * 1024):
                    yield chunk

        return Stream(
            chunks(),
            headers={
                "Content-Disposition": f'attachment; filename="invoices-{start.isoformat()}-{end.isoformat()}.zip"',
                "Cache-Control": "private, no-store",
                "X-Documents": str(count),
            },
        )


def _form(values: dict[str, str], errors: dict[str, str], *, status_code: int = 200, notice: str = "") -> Template:
    return Template(
        "admin/invoices/index.html",
        context={"values": values, "errors": errors, "notice": notice, "max_days": MAX_RANGE_DAYS},
        status_code=status_code,
        media_type=MediaType.HTML,
    )
