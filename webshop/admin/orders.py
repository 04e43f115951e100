"""Admin order pages: the list with filters, one order's detail and history, and status changes.

Status changes go through ``OrderService.change_status`` (the same state machine as the API), which
records an audit event; an invalid change re-renders the detail page with the reason (409), never a 500.
Cancelling or refunding asks first (``GET .../status?status=cancelled`` says what happens to the
customer's money and the stock, and changes nothing); a paid order is refunded through the payment
provider, and a refund the provider did not confirm can be retried from the order's page.

Shop members (issue 16) list the orders with lines of their shops and see only those lines, their
totals and their shops' parts (``FulfilmentService``); another shop's order is a 404 page. Each pending
part of a paid order has a "Mark shipped" form (carrier, tracking number) for its shop's members and
for admins. Status changes and refunds stay with platform admins.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, TypeAlias

import msgspec
from litestar import MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.plugins.htmx import HXLocation
from litestar.response import Redirect, Template

from webshop.admin import ADMIN_PAGE_SIZE, SHOP_STAFF_DEPENDENCIES, ShopStaffPages, admin_list_page
from webshop.admin.pages import AdminRequest, ShopScopeDep, flash_see_other
from webshop.api.schemas import PathId
from webshop.db.models import Order, OrderStatus
from webshop.deps import AuditDep, FulfilmentDep, OrdersDep, UsersDep
from webshop.errors import InvalidTransition, ValidationFailed
from webshop.invoices.service import documents_of
from webshop.orders.refund_rules import any_pending, refundable_problem
from webshop.orders.refunding import returned_by_shop_message, units_refunded
from webshop.orders.refunds import RefundService
from webshop.orders.status_rules import NOT_YET_SHIPPED, RESTOCKING, moves_from, nothing_left_to_ship, refund_owed
from webshop.security.session import requires_admin
from webshop.shops.scope import shop_choice
from webshop.web.forms import FORM_MESSAGE, Form
from webshop.web.responses import page_number
from webshop.web.templating import money

STATUSES = [s.value for s in OrderStatus]
TO_SHIP = "to_ship"
"""The list's filter for paid orders with a part still to send (a member: of their shops): the dashboard's
"paid, to ship" (``OrderService.search_for_admin(to_ship=True)``)."""
FILTERS = {TO_SHIP: "Paid, to ship"} | {s: s.capitalize() for s in STATUSES}
"""The status filter's choices: value -> label."""
# What the button that moves an order to each status says.
ACTION_LABELS = {
    OrderStatus.PAID: "Mark as paid",
    OrderStatus.SHIPPED: "Mark as shipped",
    OrderStatus.DELIVERED: "Mark as delivered",
    OrderStatus.CANCELLED: "Cancel order",
    OrderStatus.REFUNDED: "Refund the whole order",
}
# The changes that are asked about first: they give money back and cannot be undone.
CONFIRMED = frozenset(s.value for s in RESTOCKING)


class StatusForm(msgspec.Struct):
    """The status-change form: the target status."""

    status: str = ""


class ShipForm(msgspec.Struct):
    """The "Mark shipped" form of one shop's part: whose part, the carrier and the tracking number."""

    shop_id: str = ""
    carrier: str = ""
    tracking_number: str = ""


def parse_day(value: str | None) -> date | None:
    """``YYYY-MM-DD`` (an ``<input type=date>``) as a date, or ``None`` when empty or malformed."""
    if not value:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def day_start(day: date) -> datetime:
    """Midnight UTC at the start of ``day``."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def next_actions(order: Order, *, refund_waiting: bool = False) -> list[tuple[str, str]]:
    """``[(status, button label)]`` the state machine allows from the order's current status; none that
    cancels or refunds it whole while ``refund_waiting`` (a refund the provider has not answered)."""
    allowed = moves_from(order) - (RESTOCKING if refund_waiting else frozenset())
    return [(s.value, ACTION_LABELS[s]) for s in OrderStatus if s in allowed]


class OrderPage:
    """One order's admin page as the signed-in user may see it, built per request by Litestar from the path's
    ``order_id`` and the services the page needs (the ``order_page`` of the order handlers)."""

    def __init__(
        self,
        request: AdminRequest,
        order_id: PathId,
        fulfilment_service: FulfilmentDep,
        users_service: UsersDep,
        audit_service: AuditDep,
    ) -> None:
        self.request, self.order_id = request, order_id
        self.fulfilment, self.users, self.audit = fulfilment_service, users_service, audit_service

    async def render(
        self,
        *,
        error: str = "",
        ship_form: dict[str, str] | None = None,
        ship_errors: dict[str, str] | None = None,
        status_code: int = 200,
    ) -> Template:
        """The order detail page (``FulfilmentService.view_for_shops``: another shop's order is a 404),
        optionally with an error message (and its status code), the "Mark shipped" form's input kept and
        its fields' messages (``ship_errors``: ``carrier``, ``tracking_number``)."""
        view = await self.fulfilment.view_for_shops(self.request.user, self.order_id)
        order, everything = view.order, view.shops is None
        session = self.fulfilment.repository.session
        refunds = await RefundService(session=session).for_order(order) if everything else []
        waiting = any_pending(refunds)
        return Template(
            "admin/orders/detail.html",
            context={
                "order": order,
                "view": view,
                "everything": everything,
                "customer": await self.users.get_one_or_none(id=order.user_id),
                "actions": next_actions(order, refund_waiting=waiting) if everything else [],
                "nothing_to_ship": everything and order.status == "paid" and nothing_left_to_ship(order),
                # The order's history names every shop's part and the payment: the platform's to see.
                "audit_events": await self.audit.for_entity("order", [order.id]) if everything else [],
                # Invoices name the buyer and the whole order: the platform's too (webshop.invoices.admin).
                "invoices": await documents_of(session, order.id) if everything else [],
                # Its refunds (a platform admin's to see and make: webshop/orders/refunds_web.py).
                "refunds": refunds,
                "refundable": everything and refundable_problem(order) is None,
                # Units refunded per line, for every viewer: a shop's staff must not ship what was refunded.
                "refunded_units": await units_refunded(session, order.id),
                "error": error,
                "ship_form": ship_form or {},
                "ship_errors": ship_errors or {},
            },
            status_code=status_code,
        )

    def done(self, message: str, category: str = "info") -> Redirect | HXLocation:
        """Flash ``message`` and go back to the order's page (a post that worked)."""
        return flash_see_other(self.request, message, "admin_order", category=category, order_id=self.order_id)


OrderPageDep: TypeAlias = NamedDependency[OrderPage]
"""``order_page``: the page of the order in the path (``AdminOrderController.dependencies``)."""


class AdminOrderController(ShopStaffPages):
    """Orders: every customer's for admins, with status changes; their shops' lines for shop members."""

    path = "/admin/orders"
    dependencies = {**SHOP_STAFF_DEPENDENCIES, "order_page": Provide(OrderPage, sync_to_thread=False)}

    @get("", name="admin_orders", media_type=MediaType.HTML)
    async def index(
        self,
        request: AdminRequest,
        fulfilment_service: FulfilmentDep,
        shop_scope: ShopScopeDep,
        status: FromQuery[str | None] = None,
        date_from: FromQuery[str | None] = None,
        date_to: FromQuery[str | None] = None,
        customer: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Template:
        """The order list (the results fragment for an htmx filter request)."""
        page = page_number(page)
        status_filter = OrderStatus(status) if status in STATUSES else None
        day_from, day_to = parse_day(date_from), parse_day(date_to)
        errors: dict[str, str] = {}
        if date_from and day_from is None:
            errors["date_from"] = "Enter a date as YYYY-MM-DD."
        if date_to and day_to is None:
            errors["date_to"] = "Enter a date as YYYY-MM-DD."
        if day_from and day_to and day_to < day_from:
            errors["date_to"] = "The last day comes before the first: no order can match."
        rows, total = await fulfilment_service.search_for_admin(
            request.user,
            shop_ids=shop_scope.shop_ids,
            status=status_filter,
            to_ship=status == TO_SHIP,
            created_from=day_start(day_from) if day_from else None,
            # The "to" day is included: orders placed before the next midnight.
            created_to=day_start(day_to) + timedelta(days=1) if day_to and day_to < date.max else None,
            customer=(customer or "")[:320],
            limit=ADMIN_PAGE_SIZE,
            offset=(page - 1) * ADMIN_PAGE_SIZE,
        )
        filters = {
            "status": status_filter.value if status_filter else (TO_SHIP if status == TO_SHIP else ""),
            "date_from": day_from.isoformat() if day_from else "",
            "date_to": day_to.isoformat() if day_to else "",
            "customer": customer or "",
            "shop": str(shop_scope.chosen or ""),
        }
        context = {"rows": rows, "statuses": FILTERS, "errors": errors, "scope": shop_scope}
        return admin_list_page(
            request, "admin/orders", "order-results", context, total=total, page=page, filters=filters
        )

    @get("/{order_id:int}", name="admin_order", media_type=MediaType.HTML)
    async def detail(self, order_page: OrderPageDep) -> Template:
        """One order (a member: their shops' lines): lines, address, totals, the shops' parts, status
        history and the allowed status changes."""
        return await order_page.render()

    @post("/{order_id:int}/shipments", name="admin_order_ship", media_type=MediaType.HTML)
    async def ship(self, data: Annotated[ShipForm, Form], order_page: OrderPageDep) -> Any:
        """Mark one shop's part shipped; a refusal shows the reason on the order's page (409/422)."""
        try:
            view = await order_page.fulfilment.ship(
                order_page.request.user,
                order_page.order_id,
                shop_id=shop_choice(data.shop_id),
                carrier=data.carrier,
                tracking_number=data.tracking_number,
            )
        except (InvalidTransition, ValidationFailed) as exc:
            beside = {name: text for name, text in exc.field_errors.items() if name in ("carrier", "tracking_number")}
            message = f"{exc.detail} {FORM_MESSAGE}" if beside else "; ".join(exc.field_errors.values()) or exc.detail
            ship_form = {"shop_id": data.shop_id, "carrier": data.carrier, "tracking_number": data.tracking_number}
            return await order_page.render(
                error=message, ship_form=ship_form, ship_errors=beside, status_code=exc.status_code
            )
        order = view.order
        if order.status == OrderStatus.SHIPPED.value:
            closed = any(part.closed for part in order.fulfilments)
            rest = "Every part has shipped or was refunded." if closed else "Every part has shipped."
            return order_page.done(f"Order {order.number}: marked shipped. {rest}")
        return order_page.done(
            f"Order {order.number}: this part is marked shipped. The order shows as shipped once every "
            "shop's part has shipped."
        )

    @get("/{order_id:int}/status", name="admin_order_confirm", media_type=MediaType.HTML, guards=[requires_admin])
    async def confirm_status(
        self, orders_service: OrdersDep, order_page: OrderPageDep, status: FromQuery[str] = ""
    ) -> Template:
        """Ask before cancelling or refunding: the refund, the stock, the e-mail (changes nothing)."""
        if status not in CONFIRMED:
            return await order_page.render()
        order = await orders_service.get_for(order_page.order_id)
        refunded = await units_refunded(orders_service.repository.session, order.id)
        target = OrderStatus(status)
        movable = target in moves_from(order)
        waiting = movable and await orders_service.refund_waiting(order.id)  # ``transition`` refuses it then
        return Template(
            "admin/orders/confirm.html",
            context={
                "order": order,
                "target": target.value,
                "label": ACTION_LABELS[target],
                "allowed": movable and not waiting,
                "waiting": waiting,
                "refund": refund_owed(order, target),
                "restocks": OrderStatus(order.status) in NOT_YET_SHIPPED,
                # Units a refund already covered went back to stock with it (or stay out): not counted again.
                "items": sum(line.quantity - refunded.get(line.id, 0) for line in order.lines),
                "customer": await order_page.users.get_one_or_none(id=order.user_id),
            },
        )

    @post("/{order_id:int}/refund", name="admin_order_refund", media_type=MediaType.HTML, guards=[requires_admin])
    async def retry_refund(self, orders_service: OrdersDep, order_page: OrderPageDep) -> Any:
        """Ask the payment provider again for a refund it has not confirmed (a no-op once refunded)."""
        order = await orders_service.settle_refund(order_page.order_id, actor=order_page.request.user)
        if order.refund_pending and order.refund_failure:
            return order_page.done(
                f"The payment provider refused the refund of order {order.number}: {order.refund_failure}", "error"
            )
        if order.refund_pending:
            return order_page.done(
                f"The payment provider has not refunded order {order.number} yet; try again later.", "error"
            )
        return order_page.done(f"Order {order.number} is refunded.")

    @post("/{order_id:int}/status", name="admin_order_status", media_type=MediaType.HTML, guards=[requires_admin])
    async def change_status(
        self, data: Annotated[StatusForm, Form], orders_service: OrdersDep, order_page: OrderPageDep
    ) -> Any:
        """Move the order to another status; an invalid change shows the reason on the page (409)."""
        try:
            if data.status not in STATUSES:
                raise InvalidTransition(f"“{data.status[:40]}” is not an order status.")
            order = await orders_service.change_status(
                order_page.order_id, OrderStatus(data.status), actor=order_page.request.user
            )
        except InvalidTransition as exc:
            return await order_page.render(error=exc.detail, status_code=exc.status_code)
        message = f"Order {order.number} is now {order.status}."
        if order.refunded_at is not None and order.refund_amount and order.paid_another_way:
            message += " " + returned_by_shop_message(money(order.refund_amount, order.currency))
        elif order.refunded_at is not None and order.refund_amount:
            message += f" {money(order.refund_amount, order.currency)} was refunded to the customer's card."
        elif order.refund_pending and order.refund_failure:
            message += f" The payment provider refused the refund: {order.refund_failure}"
        elif order.refund_pending:
            message += " The payment provider has not confirmed the refund yet: retry it below."
        return order_page.done(message)
