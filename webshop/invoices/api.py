"""Invoice routes of the JSON API: an order's invoice and credit notes as PDF, for the order's owner
(with a bearer token) and for admins; a member of a shop that sold some of its lines gets 403, anyone
else's order and an order without an invoice yet 404."""

from functools import partial

from litestar import Controller, Response, get
from litestar.di import NamedDependency, Provide

from webshop.api.responses import problems
from webshop.api.schemas import PathId
from webshop.db.models import Order
from webshop.deps import FulfilmentDep, InvoicesDep, UserRequest
from webshop.invoices.web import PDF, pdf_response
from webshop.security.jwt import BEARER


async def visible_order(request: UserRequest, order_id: PathId, fulfilment_service: FulfilmentDep) -> Order:
    """The ``order`` of the routes: order ``order_id`` if the bearer token's user is its customer or an
    admin (``FulfilmentService.as_customer_or_admin``).

    Raises:
        NotFound: no such order, or another customer's (the same answer).
        PermissionDenied: the user sees the order only as a member of a shop that sold some of its lines.
    """
    doing = "download its invoice and credit notes"
    return await fulfilment_service.as_customer_or_admin(request.user, order_id, doing=doing)


pdf_get = partial(get, media_type=PDF, responses=problems(400, 401, 403, 404))
"""``@get`` of a route that answers with a PDF download (``pdf_response``)."""


class InvoiceApiController(Controller):
    """Invoices and credit notes of an order, as ``application/pdf`` downloads."""

    path = "/api/orders"
    tags = ["orders"]
    security = BEARER
    dependencies = {"order": Provide(visible_order)}

    @pdf_get(
        "/{order_id:int}/invoice",
        operation_id="getOrderInvoice",
        response_description="The invoice as a PDF file (Content-Disposition: attachment).",
    )
    async def invoice(self, order: NamedDependency[Order], invoices_service: InvoicesDep) -> Response[bytes]:
        """The order's invoice (404 while the order is unpaid, or for another customer's order)."""
        return pdf_response(await invoices_service.invoice_document(order))

    @pdf_get(
        "/{order_id:int}/credit-notes/{credit_note_id:int}",
        operation_id="getOrderCreditNote",
        response_description="The credit note as a PDF file (Content-Disposition: attachment).",
    )
    async def credit_note(
        self, order: NamedDependency[Order], credit_note_id: PathId, invoices_service: InvoicesDep
    ) -> Response[bytes]:
        """One credit note of the order, by its id (404 for another order's or another customer's)."""
        return pdf_response(await invoices_service.credit_note_document(order, note_id=credit_note_id))
