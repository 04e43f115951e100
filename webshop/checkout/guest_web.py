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
from litestar import Controller, MediaType, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.accounts.links import AccountLinkService
from webshop.accounts.service import UserService
from webshop.accounts.web import sign_in_browser
from webshop.checkout.guest import AccountExists, create_account_for_order
from webshop.checkout.guest_links import GUEST_LINK_LIFETIME, GuestLinkError, guest_order_number
from webshop.config import Settings
from webshop.db.models import Order
from webshop.errors import Conflict, InvalidTransition, ValidationFailed
from webshop.invoices.service import Document, InvoiceService, documents_of
from webshop.invoices.web import number_of, pdf_response
from webshop.orders.fulfilment import shop_groups
from webshop.orders.refunds import RefundService
from webshop.orders.service import OrderService, shopper_may_cancel
from webshop.orders.web import cancel_question
from webshop.text import Line
from webshop.web.forms import FormFields, read_form
from webshop.web.responses import route_url, see_other, see_other_to

PRIVATE = {"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"}
"""A guest's order page is personal and its address is the key to it: never cached, never sent on as a referrer."""


class GuestAccountForm(msgspec.Struct):
    """ "Create an account" on a guest's order page: the password only."""

    password: Line = ""


def guest_link_error_page(request: Request[Any, Any, Any], exc: GuestLinkError) -> Template:
    """``orders/guest_link_error.html`` for a refused link (404 altered, 410 expired)."""
    return Template(
        "orders/guest_link_error.html",
        context={"problem": exc.problem.value, "message": exc.detail},
        status_code=exc.status_code,
        media_type=MediaType.HTML,
        headers=PRIVATE,
    )


async def guest_order(token: str, settings: Settings, orders_service: OrderService) -> Order:
    """The order a link's ``token`` names (its lines loaded), whoever it belongs to now.

    Raises:
        GuestLinkError: the link is altered or expired.
        NotFound: the order is gone.
    """
    return await orders_service.get_by_number(guest_order_number(settings.security.secret_key, token))


async def guest_order_page(
    request: Request[Any, Any, Any],
    order: Order,
    token: str,
    settings: Settings,
    orders_service: OrderService,
    refunds_service: RefundService,
    *,
    placed: bool = False,
    cancelled: bool = False,
    error: str = "",
    account_error: ValidationFailed | Conflict | None = None,
) -> Template:
    """``orders/detail.html`` for a guest's order by its link: the account's order page without the
    account's history, its documents and "Cancel this order" by the link, and "Create an account" (with
    ``account_error``, the refused attempt, and its status code; ``error``: a refused cancel, 409)."""
    return Template(
        "orders/detail.html",
        context={
            "order": order,
            "thumbnails": await orders_service.thumbnails([order]),
            "placed": placed,
            "cancelled": cancelled,
            "error": error,
            "cancellable": shopper_may_cancel(order),
            "groups": shop_groups(order),
            "invoices": await documents_of(orders_service.repository.session, order.id),
            "refunds": await refunds_service.for_order(order),
            "guest_token": token,
            "guest_link": settings.shop.base_url.rstrip("/") + route_url(request, "order.guest", token=token),
            "guest_link_days": GUEST_LINK_LIFETIME.days,
            "account_error": account_error,
            "account_exists": isinstance(account_error, AccountExists),
            "errors": account_error.field_errors if account_error else {},
        },
        status_code=account_error.status_code if account_error else (409 if error else 200),
        headers=PRIVATE,
    )


class GuestOrderController(Controller):
    """A guest's order by its signed link (no account needed)."""

    path = "/orders/guest"
    include_in_schema = False
    exception_handlers = {GuestLinkError: guest_link_error_page}

    @get("/{token:str}", name="order.guest", media_type=MediaType.HTML)
    async def detail(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
        orders_service: NamedDependency[OrderService],
        refunds_service: NamedDependency[RefundService],
        placed: FromQuery[str | None] = None,
        cancelled: FromQuery[str | None] = None,
    ) -> Any:
        """The order page by its link (the confirmation page of a guest's checkout)."""
        order = await guest_order(token, settings, orders_service)
        if order.user_id is not None:
            return see_other_to(request, "order", number=order.number)
        return await guest_order_page(
            request,
            order,
            token,
            settings,
            orders_service,
            refunds_service,
            placed=bool(placed),
            cancelled=bool(cancelled),
        )

    @get("/{token:str}/cancel", name="order.guest.cancel_confirm", media_type=MediaType.HTML)
    async def confirm_cancel(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
        orders_service: NamedDependency[OrderService],
    ) -> Any:
        """Ask before cancelling (``orders/cancel.html``, as for an account; changes nothing)."""
        order = await guest_order(token, settings, orders_service)
        if order.user_id is not None:
            return see_other_to(request, "order.cancel_confirm", number=order.number)
        return Template("orders/cancel.html", context={**cancel_question(order), "guest_token": token}, headers=PRIVATE)

    @post("/{token:str}/cancel", name="order.guest.cancel", media_type=MediaType.HTML)
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
        orders_service: NamedDependency[OrderService],
        refunds_service: NamedDependency[RefundService],
    ) -> Any:
        """Cancel the order by its link (until it ships): stock back, a paid order refunded, an e-mail sent."""
        number = guest_order_number(settings.security.secret_key, token)
        try:
            await orders_service.cancel_by_guest(number)
        except InvalidTransition as exc:
            order = await guest_order(token, settings, orders_service)
            return await guest_order_page(
                request, order, token, settings, orders_service, refunds_service, error=exc.detail
            )
        return see_other_to(request, "order.guest", token=token, query={"cancelled": "1"})

    @get("/{token:str}/invoice.pdf", name="order.guest.invoice")
    async def invoice(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        settings: NamedDependency[Settings],
        orders_service: NamedDependency[OrderService],
        invoices_service: NamedDependency[InvoiceService],
    ) -> Response[bytes] | Any:
        """The order's invoice as a PDF download."""
        order = await guest_order(token, settings, orders_service)
        if order.user_id is not None:
            return see_other_to(request, "order.invoice", number=order.number)
        return _private(pdf_response(await invoices_service.invoice_document(order)))

    @get("/{token:str}/credit-notes/{filename:str}", name="order.guest.credit_note")
    async def credit_note(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        filename: FromPath[str],
        settings: NamedDependency[Settings],
        orders_service: NamedDependency[OrderService],
        invoices_service: NamedDependency[InvoiceService],
    ) -> Response[bytes] | Any:
        """One of the order's credit notes as a PDF download (``CN-2026-000001.pdf``)."""
        order = await guest_order(token, settings, orders_service)
        if order.user_id is not None:
            return see_other_to(request, "order.credit_note", number=order.number, filename=filename)
        document: Document = await invoices_service.credit_note_document(order, number=number_of(filename))
        return _private(pdf_response(document))


def _private(response: Response[bytes]) -> Response[bytes]:
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


class GuestAccountController(Controller):
    """ "Create an account" from a guest's order."""

    path = "/account/register/order"
    include_in_schema = False
    exception_handlers = {GuestLinkError: guest_link_error_page}

    @post("/{token:str}", name="order.guest.account", media_type=MediaType.HTML)
    async def create_account(
        self,
        request: Request[Any, Any, Any],
        token: FromPath[str],
        data: FormFields,
        settings: NamedDependency[Settings],
        orders_service: NamedDependency[OrderService],
        refunds_service: NamedDependency[RefundService],
        users_service: NamedDependency[UserService],
        account_links_service: NamedDependency[AccountLinkService],
    ) -> Any:
        """Create the account with the order's e-mail address and this password, give it the order and
        sign in; the order page again with the reason otherwise (an account exists: sign in instead)."""
        number = guest_order_number(settings.security.secret_key, token)
        try:
            password = read_form(GuestAccountForm, data).password
            user, order = await create_account_for_order(account_links_service, number, password)
        except (ValidationFailed, Conflict) as exc:
            if isinstance(exc, Conflict) and not isinstance(exc, AccountExists):
                return see_other_to(request, "order", number=number)  # adopted meanwhile: the account's page
            order = await guest_order(token, settings, orders_service)
            return await guest_order_page(
                request, order, token, settings, orders_service, refunds_service, account_error=exc
            )
        await sign_in_browser(request, users_service, user)
        flash(
            request,
            f"Your account is ready and order {order.number} is in it. We sent a link to {order.email} "
            "to confirm your e-mail address.",
            "info",
        )
        return see_other(request, route_url(request, "order", number=order.number))
