"""Invoice routes of the JSON API: an order's invoice and credit notes as PDF, for the order's owner
(with a bearer token) and for admins; anyone else's order, and an order without an invoice yet, is 404."""

from typing import Annotated

from litestar import Controller, Response, get
from litestar.params import PathParameter

from webshop.api.deps import InvoicesDep, OrdersDep, UserRequest
from webshop.api.responses import problems
from webshop.api.schemas import ID_MAX, PathId
from webshop.invoices.web import PDF, pdf_response
from webshop.security.jwt import BEARER


class InvoiceApiController(Controller):
    """Invoices and credit notes of an order, as ``application/pdf`` downloads."""

    path = "/api/orders"
    tags = ["orders"]
    security = BEARER

    @get(
        "/{order_id:int}/invoice",
        operation_id="getOrderInvoice",
        media_type=PDF,
        response_description="The invoice as a PDF file (Content-Disposition: attachment).",
        responses=problems(400, 401, 404),
    )
    async def invoice(
        self, request: UserRequest, order_id: PathId, orders_service: OrdersDep, invoices_service: InvoicesDep
    ) -> Response[bytes]:
        """The order's invoice (404 while the order is unpaid, or for another customer's order)."""
        order = await orders_service.visible_to(request.user, order_id)
        return pdf_response(await invoices_service.invoice_document(order))

    @get(
        "/{order_id:int}/credit-notes/{credit_note_id:int}",
        operation_id="getOrderCreditNote",
        media_type=PDF,
        response_description="The credit note as a PDF file (Content-Disposition: attachment).",
        responses=problems(400, 401, 404),
    )
    async def credit_note(
        self,
        request: UserRequest,
        order_id: PathId,
        credit_note_id: Annotated[int, PathParameter(ge=1, le=ID_MAX)],
        orders_service: OrdersDep,
        invoices_service: InvoicesDep,
    ) -> Response[bytes]:
        """One credit note of the order, by its id (404 for another order's or another customer's)."""
        order = await orders_service.visible_to(request.user, order_id)
        return pdf_response(await invoices_service.credit_note_document(order, note_id=credit_note_id))
