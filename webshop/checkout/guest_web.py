"""HTML controllers of a guest's order: its page and documents by the signed link, and the account made from it.

``GET /orders/guest/{token}`` shows the order page (``orders/detail.html``) to whoever holds a valid link
(``webshop.checkout.guest_links``); ``.../invoice.pdf`` and ``.../credit-notes/{CN-...}.pdf`` download its
documents. An altered link is a 404 page, an expired one a 410 page (``orders/guest_link_error.html``).
Once the order belongs to an account, its link leads to the account's page (sign-in needed).

``POST /account/register/order/{token}`` creates an account from the order (one field, the password;
``webshop.checkout.guest.create_account_for_order``), signs the shopper in and shows the order among
theirs. It is under ``/account/register`` so that the strict per-address limit on registrations covers
it (``webshop.security.throttle.AUTH_PATHS``).
"""

from typing import Any

import msgspec
from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.accounts.web import sign_in_browser
from webshop.checkout.guest import AccountExists, create_account_for_order
from webshop.checkout.guest_links import GUEST_LINK_LIFETIME, GuestLinkError, guest_order_number
from webshop.db.models import Order
from webshop.deps import AccountLinksDep, InvoicesDep, OrdersDep, SettingsDep, UsersDep
from webshop.errors import Conflict, InvalidTransition, ValidationFailed
from webshop.invoices.service import Document
from webshop.invoices.web import number_of, pdf_response
from webshop.orders.refunds import RefundService
from webshop.orders.web import QueryFlag, cancel_question, order_page_context, payment_poll_answer
from webshop.text import Line, readable_email
from webshop.web import AnyRequest
from webshop.web.forms import FormFields, read_form
from webshop.web.responses import route_url, see_other, see_other_to

PRIVATE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
"""A guest's order page is personal and its address is the key to it: never cached, never sent on as a referrer."""


class GuestAccountForm(msgspec.Struct):
    """ "Create an account" on a guest's order page: the password only."""

    password: Line = ""


def guest_link_error_page(request: AnyRequest, exc: GuestLinkError) -> Template:
    """``orders/guest_link_error.html`` for a refused link (404 altered, 410 expired)."""
    return Template(
        "orders/guest_link_error.html",
        context={"problem": exc.problem.value, "message": exc.detail},
        status_code=exc.status_code,
        media_type=MediaType.HTML,
        headers=PRIVATE,
    )


class GuestOrderLink:
    """A guest's order link (``token``, the path's) with what its pages need: the ``link`` of the handlers
    here (Litestar makes one per request from the dependencies ``__init__`` names)."""

    def __init__(
        self,
        request: AnyRequest,
        token: FromPath[str],
        settings: SettingsDep,
        orders_service: OrdersDep,
        refunds_service: NamedDependency[RefundService],
    ) -> None:
        self.request, self.token, self.settings = request, token, settings
        self.orders, self.refunds = orders_service, refunds_service

    @property
    def number(self) -> str:
        """The number of the order the link names.

        Raises:
            GuestLinkError: the link is altered or expired.
        """
        return guest_order_number(self.settings.security.secret_key, self.token)

    async def order(self) -> Order:
        """The order the link names (its lines loaded), whoever it belongs to now.

        Raises:
            GuestLinkError: the link is altered or expired.
            NotFound: the order is gone.
        """
        return await self.orders.get_by_number(self.number)

    async def page(
        self,
        order: Order,
        *,
        placed: bool = False,
        cancelled: bool = False,
        error: str = "",
        account_error: ValidationFailed | Conflict | None = None,
    ) -> Template:
        """``orders/detail.html`` for a guest's order by its link: the account's order page without the
        account's history, its documents and "Cancel this order" by the link, and "Create an account" (with
        ``account_error``, the refused attempt, and its status code; ``error``: a refused cancel, 409)."""
        context = await order_page_context(order, self.orders, self.refunds, placed=placed, cancelled=cancelled)
        link = self.settings.shop.base_url.rstrip("/") + route_url(self.request, "order.guest", token=self.token)
        return Template(
            "orders/detail.html",
            context={
                **context,
                "error": error,
                "guest_token": self.token,
                "guest_link": link,
                "guest_link_days": GUEST_LINK_LIFETIME.days,
                "account_error": account_error,
                "account_exists": isinstance(account_error, AccountExists),
                "errors": account_error.field_errors if account_error else {},
            },
            status_code=account_error.status_code if account_error else (409 if error else 200),
            headers=PRIVATE,
        )


class GuestLinkPages(Controller):
    """Pages by a guest's signed link: an altered or expired link is its own error page."""

    include_in_schema = False
    exception_handlers = {GuestLinkError: guest_link_error_page}
    dependencies = {"link": Provide(GuestOrderLink, sync_to_thread=False)}


class GuestOrderController(GuestLinkPages):
    """A guest's order by its signed link (no account needed)."""

    path = "/orders/guest"

    @get("/{token:str}", name="order.guest", media_type=MediaType.HTML)
    async def detail(
        self, link: NamedDependency[GuestOrderLink], placed: QueryFlag = None, cancelled: QueryFlag = None
    ) -> Any:
        """The order page by its link (the confirmation page of a guest's checkout)."""
        order = await link.order()
        if order.user_id is not None:
            return see_other_to(link.request, "order", number=order.number)
        if (polled := payment_poll_answer(link.request, order)) is not None:
            return polled
        return await link.page(order, placed=bool(placed), cancelled=bool(cancelled))

    @get("/{token:str}/cancel", name="order.guest.cancel_confirm", media_type=MediaType.HTML)
    async def confirm_cancel(self, link: NamedDependency[GuestOrderLink]) -> Any:
        """Ask before cancelling (``orders/cancel.html``, as for an account; changes nothing)."""
        order = await link.order()
        if order.user_id is not None:
            return see_other_to(link.request, "order.cancel_confirm", number=order.number)
        waiting = await link.orders.refund_waiting(order.id)
        context = {**cancel_question(order, waiting=waiting), "guest_token": link.token}
        return Template("orders/cancel.html", context=context, headers=PRIVATE)

    @post("/{token:str}/cancel", name="order.guest.cancel", media_type=MediaType.HTML)
    async def cancel(self, link: NamedDependency[GuestOrderLink]) -> Any:
        """Cancel the order by its link (until it ships): stock back, a paid order refunded, an e-mail sent."""
        try:
            await link.orders.cancel_by_guest(link.number)
        except InvalidTransition as exc:
            return await link.page(await link.order(), error=exc.detail)
        return see_other_to(link.request, "order.guest", token=link.token, query={"cancelled": "1"})

    @get("/{token:str}/invoice.pdf", name="order.guest.invoice")
    async def invoice(
        self, link: NamedDependency[GuestOrderLink], invoices_service: InvoicesDep
    ) -> Response[bytes] | Any:
        """The order's invoice as a PDF download."""
        order = await link.order()
        if order.user_id is not None:
            return see_other_to(link.request, "order.invoice", number=order.number)
        return _private(pdf_response(await invoices_service.invoice_document(order)))

    @get("/{token:str}/credit-notes/{filename:str}", name="order.guest.credit_note")
    async def credit_note(
        self,
        link: NamedDependency[GuestOrderLink],
        filename: FromPath[str],
        invoices_service: InvoicesDep,
    ) -> Response[bytes] | Any:
        """One of the order's credit notes as a PDF download (``CN-2026-000001.pdf``)."""
        order = await link.order()
        if order.user_id is not None:
            return see_other_to(link.request, "order.credit_note", number=order.number, filename=filename)
        document: Document = await invoices_service.credit_note_document(order, number=number_of(filename))
        return _private(pdf_response(document))


def _private(response: Response[bytes]) -> Response[bytes]:
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


class GuestAccountController(GuestLinkPages):
    """ "Create an account" from a guest's order."""

    path = "/account/register/order"

    @post("/{token:str}", name="order.guest.account", media_type=MediaType.HTML)
    async def create_account(
        self,
        link: NamedDependency[GuestOrderLink],
        data: FormFields,
        users_service: UsersDep,
        account_links_service: AccountLinksDep,
    ) -> Any:
        """Create the account with the order's e-mail address and this password, give it the order and
        sign in; the order page again with the reason otherwise (an account exists: sign in instead)."""
        request, number = link.request, link.number
        try:
            password = read_form(GuestAccountForm, data).password
            user, order = await create_account_for_order(account_links_service, number, password)
        except (ValidationFailed, Conflict) as exc:
            if isinstance(exc, Conflict) and not isinstance(exc, AccountExists):
                return see_other_to(request, "order", number=number)  # adopted meanwhile: the account's page
            return await link.page(await link.order(), account_error=exc)
        await sign_in_browser(request, users_service, user)
        flash(
            request,
            f"Your account is ready and order {order.number} is in it. We sent a link to {readable_email(order.email)} "
            "to confirm your e-mail address.",
            "info",
        )
        return see_other(request, route_url(request, "order", number=order.number))
