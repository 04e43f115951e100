"""HTML controllers for the shopper's orders: history, detail (and confirmation), cancel.

Cancelling takes two steps, with JavaScript on or off: "Cancel this order" on the order page is a
link to ``GET /orders/{number}/cancel``, a page that says what happens to the money and the items
and changes nothing; its "Yes, cancel this order" form posts to the same address.
"""

from typing import Any

from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Template

from webshop.db.models import Order, OrderStatus
from webshop.deps import OrdersDep, UserRequest
from webshop.errors import InvalidTransition
from webshop.invoices.service import documents_of
from webshop.orders.fulfilment import shop_groups
from webshop.orders.refund_rules import amount_given_back, any_pending, units_given_back
from webshop.orders.refunds import RefundService
from webshop.orders.service import OrderService
from webshop.orders.status_rules import refund_owed, shopper_may_cancel
from webshop.security.session import requires_user
from webshop.web import AnyRequest
from webshop.web.responses import page_count, page_number, see_other_to

ORDERS_PAGE_SIZE = 20
"""Orders per page of the history."""
QueryFlag = FromQuery[str | None]
"""A flag of the order page's query string (``?placed=1``, ``?cancelled=1``): set when given and not empty."""


async def own_order(request: UserRequest, number: FromPath[str], orders_service: OrdersDep) -> Order:
    """The ``order`` of the pages under ``/orders/{number}``: the signed-in shopper's order ``number``.

    Raises:
        NotFound: no such order, or another customer's (the same answer).
    """
    return await orders_service.get_by_number(number, user_id=request.user.id)


async def order_page_context(
    order: Order,
    orders_service: OrderService,
    refunds_service: RefundService,
    *,
    placed: bool = False,
    cancelled: bool = False,
) -> dict[str, Any]:
    """The context of ``orders/detail.html`` for ``order`` (an account's or a guest's): its lines with
    their thumbnails, shop groups, documents and refunds; ``placed`` for the confirmation after checkout,
    ``cancelled`` right after the shopper cancelled it (ignored unless the order is cancelled). No
    "Cancel" while a refund waits for the provider's answer (``OrderService.transition`` refuses it then)."""
    refunds = await refunds_service.for_order(order)
    waiting = any_pending(refunds)
    return {
        "order": order,
        "thumbnails": await orders_service.thumbnails([order]),
        "placed": placed,
        # Only true while it is: "?cancelled=1" typed on a paid order's address says nothing false.
        "cancelled": cancelled and order.status == OrderStatus.CANCELLED.value,
        "cancellable": shopper_may_cancel(order) and not waiting,
        "groups": shop_groups(order),
        "invoices": await documents_of(orders_service.repository.session, order.id),
        "refunds": refunds,
        "refunded_units": units_given_back(refunds),
        "refunded": amount_given_back(order, refunds),
    }


PAYMENT_POLL = "order-payment"
"""The id of the order page's "payment being processed" notice, which asks the page again every few
seconds (``hx-trigger="every 3s"``): its requests carry it as ``HX-Trigger``."""


def payment_poll_answer(request: AnyRequest, order: Order) -> Response[bytes] | None:
    """The answer to the order page's own poll while the bank processes the payment, or ``None`` for any
    other request: 204 (htmx swaps nothing) while it is still processing, and once it is not, an empty
    200 with ``HX-Refresh`` so the whole page loads again, paid or cancelled (htmx's response headers).
    The page never swaps itself piecemeal, so a form being filled in on it (a guest's "Create an account")
    keeps what was typed until the payment's answer arrives."""
    if request.headers.get("hx-request") != "true" or request.headers.get("hx-trigger") != PAYMENT_POLL:
        return None
    if order.status == OrderStatus.PENDING.value and order.payment_status == "processing":
        return Response(b"", status_code=204)
    return Response(b"", status_code=200, headers={"HX-Refresh": "true"})


def cancel_question(order: Order, *, waiting: bool = False) -> dict[str, Any]:
    """The context of ``orders/cancel.html`` for ``order`` (an account's or a guest's): whether it may
    still be cancelled (not while a refund of it is ``waiting`` for the provider), what the card gets
    back, how many items go back to stock."""
    return {
        "order": order,
        "cancellable": shopper_may_cancel(order) and not waiting,
        "waiting": waiting,
        "refund": refund_owed(order, OrderStatus.CANCELLED),
        "items": sum(line.quantity for line in order.lines),
    }


class OrderController(Controller):
    """A shopper's own orders; anyone else's order number is a 404."""

    path = "/orders"
    guards = [requires_user]
    include_in_schema = False
    dependencies = {"order": Provide(own_order)}

    @get("", name="orders", media_type=MediaType.HTML)
    async def history(
        self,
        request: UserRequest,
        orders_service: OrdersDep,
        page: FromQuery[int] = 1,
    ) -> Template:
        """Order history, newest first."""
        page = page_number(page)
        orders, total = await orders_service.list_for_user(
            request.user.id, limit=ORDERS_PAGE_SIZE, offset=(page - 1) * ORDERS_PAGE_SIZE
        )
        return Template(
            "orders/history.html",
            context={
                "orders": orders,
                "thumbnails": await orders_service.thumbnails(orders),
                "total": total,
                "page": page,
                "pages": page_count(total, ORDERS_PAGE_SIZE),
            },
        )

    @get("/{number:str}", name="order", media_type=MediaType.HTML)
    async def detail(
        self,
        request: AnyRequest,
        order: NamedDependency[Order],
        orders_service: OrdersDep,
        refunds_service: NamedDependency[RefundService],
        placed: QueryFlag = None,
        cancelled: QueryFlag = None,
    ) -> Template | Response[bytes]:
        """One order (the confirmation page right after checkout); ``payment_poll_answer`` to its own poll."""
        if (polled := payment_poll_answer(request, order)) is not None:
            return polled
        context = await order_page_context(
            order, orders_service, refunds_service, placed=bool(placed), cancelled=bool(cancelled)
        )
        return Template("orders/detail.html", context=context)

    @get("/{number:str}/cancel", name="order.cancel_confirm", media_type=MediaType.HTML)
    async def confirm_cancel(self, order: NamedDependency[Order], orders_service: OrdersDep) -> Template:
        """Ask before cancelling: what comes back to the card, what goes back to stock (changes nothing)."""
        waiting = await orders_service.refund_waiting(order.id)
        return Template("orders/cancel.html", context=cancel_question(order, waiting=waiting))

    @post("/{number:str}/cancel", name="order.cancel", media_type=MediaType.HTML)
    async def cancel(
        self,
        request: UserRequest,
        number: FromPath[str],
        orders_service: OrdersDep,
        refunds_service: NamedDependency[RefundService],
    ) -> Any:
        """Cancel the order (until it ships): its stock goes back and a paid order is refunded. A refusal
        shows the whole order page again with the reason (409)."""
        try:
            await orders_service.cancel_by_shopper(number, request.user.id)
        except InvalidTransition as exc:
            order = await orders_service.get_by_number(number, user_id=request.user.id)
            context = await order_page_context(order, orders_service, refunds_service)
            return Template("orders/detail.html", context={**context, "error": exc.detail}, status_code=exc.status_code)
        return see_other_to(request, "order", number=number, query={"cancelled": "1"})
