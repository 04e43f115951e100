"""Admin order pages: the list with filters, one order's detail and history, and status changes.

Status changes go through ``OrderService.change_status`` (the same state machine as the API), which
records an audit event; an invalid change re-renders the detail page with the reason (409), never a 500.
Cancelling or refunding asks first (``GET .../status?status=cancelled`` says what happens to the
customer's money and the stock, and changes nothing); a paid order is refunded through the payment
provider, and a refund the provider did not confirm can be retried from the order's page.
"""

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.accounts.service import UserService
from webshop.admin import ADMIN_PAGE_SIZE, AdminPages, admin_list_page
from webshop.audit.service import AuditService
from webshop.db.models import Order, OrderStatus, User
from webshop.errors import InvalidTransition
from webshop.orders.service import NOT_YET_SHIPPED, RESTOCKING, TRANSITIONS, OrderService, refund_owed
from webshop.web.forms import Form
from webshop.web.responses import see_other_to
from webshop.web.templating import money

STATUSES = [s.value for s in OrderStatus]
# What the button that moves an order to each status says.
ACTION_LABELS = {
    OrderStatus.PAID: "Mark as paid",
    OrderStatus.SHIPPED: "Mark as shipped",
    OrderStatus.DELIVERED: "Mark as delivered",
    OrderStatus.CANCELLED: "Cancel order",
    OrderStatus.REFUNDED: "Refund",
}
# The changes that are asked about first: they give money back and cannot be undone.
CONFIRMED = frozenset(s.value for s in RESTOCKING)


class StatusForm(msgspec.Struct):
    """The status-change form: the target status."""

    status: str = ""


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


def next_actions(order: Order) -> list[tuple[str, str]]:
    """``[(status, button label)]`` the state machine allows from the order's current status."""
    allowed = TRANSITIONS[OrderStatus(order.status)]
    return [(s.value, ACTION_LABELS[s]) for s in OrderStatus if s in allowed]


class AdminOrderController(AdminPages):
    """Orders for admins: every customer's, with status changes."""

    path = "/admin/orders"

    @get("", name="admin_orders", media_type=MediaType.HTML)
    async def index(
        self,
        request: Request[User, Any, Any],
        orders_service: NamedDependency[OrderService],
        status: FromQuery[str | None] = None,
        date_from: FromQuery[str | None] = None,
        date_to: FromQuery[str | None] = None,
        customer: FromQuery[str | None] = None,
        page: FromQuery[int] = 1,
    ) -> Template:
        """The order list (the results fragment for an htmx filter request)."""
        page = max(page, 1)
        status_filter = OrderStatus(status) if status in STATUSES else None
        day_from, day_to = parse_day(date_from), parse_day(date_to)
        errors: dict[str, str] = {}
        if date_from and day_from is None:
            errors["date_from"] = "Enter a date as YYYY-MM-DD."
        if date_to and day_to is None:
            errors["date_to"] = "Enter a date as YYYY-MM-DD."
        rows, total = await orders_service.search_for_admin(
            status=status_filter,
            created_from=day_start(day_from) if day_from else None,
            # The "to" day is included: orders placed before the next midnight.
            created_to=day_start(day_to) + timedelta(days=1) if day_to else None,
            customer=(customer or "")[:320],
            limit=ADMIN_PAGE_SIZE,
            offset=(page - 1) * ADMIN_PAGE_SIZE,
        )
        filters = {
            "status": status_filter.value if status_filter else "",
            "date_from": day_from.isoformat() if day_from else "",
            "date_to": day_to.isoformat() if day_to else "",
            "customer": customer or "",
        }
        context = {"rows": rows, "statuses": STATUSES, "errors": errors}
        return admin_list_page(
            request, "admin/orders", "order-results", context, total=total, page=page, filters=filters
        )

    @get("/{order_id:int}", name="admin_order", media_type=MediaType.HTML)
    async def detail(
        self,
        order_id: FromPath[int],
        orders_service: NamedDependency[OrderService],
        users_service: NamedDependency[UserService],
        audit_service: NamedDependency[AuditService],
    ) -> Template:
        """One order: lines, address, totals, status history and the allowed status changes."""
        return await render_detail(order_id, orders_service, users_service, audit_service)

    @get("/{order_id:int}/status", name="admin_order_confirm", media_type=MediaType.HTML)
    async def confirm_status(
        self,
        order_id: FromPath[int],
        orders_service: NamedDependency[OrderService],
        users_service: NamedDependency[UserService],
        audit_service: NamedDependency[AuditService],
        status: FromQuery[str] = "",
    ) -> Template:
        """Ask before cancelling or refunding: the refund, the stock, the e-mail (changes nothing)."""
        if status not in CONFIRMED:
            return await render_detail(order_id, orders_service, users_service, audit_service)
        order = await orders_service.get_for(order_id)
        target = OrderStatus(status)
        return Template(
            "admin/orders/confirm.html",
            context={
                "order": order,
                "target": target.value,
                "label": ACTION_LABELS[target],
                "allowed": target in TRANSITIONS[OrderStatus(order.status)],
                "refund": refund_owed(order, target),
                "restocks": OrderStatus(order.status) in NOT_YET_SHIPPED,
                "items": sum(line.quantity for line in order.lines),
                "customer": await users_service.get_one_or_none(id=order.user_id),
            },
        )

    @post("/{order_id:int}/refund", name="admin_order_refund", media_type=MediaType.HTML)
    async def retry_refund(
        self, request: Request[User, Any, Any], order_id: FromPath[int], orders_service: NamedDependency[OrderService]
    ) -> Any:
        """Ask the payment provider again for a refund it has not confirmed (a no-op once refunded)."""
        order = await orders_service.settle_refund(order_id, actor=request.user)
        if order.refund_pending:
            flash(request, f"The payment provider has not refunded order {order.number} yet; try again later.", "error")
        else:
            flash(request, f"Order {order.number} is refunded.", "info")
        return see_other_to(request, "admin_order", order_id=order_id)

    @post("/{order_id:int}/status", name="admin_order_status", media_type=MediaType.HTML)
    async def change_status(
        self,
        request: Request[User, Any, Any],
        order_id: FromPath[int],
        data: Annotated[StatusForm, Form],
        orders_service: NamedDependency[OrderService],
        users_service: NamedDependency[UserService],
        audit_service: NamedDependency[AuditService],
    ) -> Any:
        """Move the order to another status; an invalid change shows the reason on the page (409)."""
        try:
            if data.status not in STATUSES:
                raise InvalidTransition(f"“{data.status[:40]}” is not an order status.")
            order = await orders_service.change_status(order_id, OrderStatus(data.status), actor=request.user)
        except InvalidTransition as exc:
            return await render_detail(
                order_id, orders_service, users_service, audit_service, error=exc.detail, status_code=exc.status_code
            )
        message = f"Order {order.number} is now {order.status}."
        if order.refunded_at is not None and order.refund_amount:
            message += f" {money(order.refund_amount, order.currency)} was refunded to the customer's card."
        elif order.refund_pending:
            message += " The payment provider has not confirmed the refund yet: retry it below."
        flash(request, message, "info")
        return see_other_to(request, "admin_order", order_id=order_id)


async def render_detail(
    order_id: int,
    orders_service: OrderService,
    users_service: UserService,
    audit_service: AuditService,
    *,
    error: str = "",
    status_code: int = 200,
) -> Template:
    """The order detail page, optionally with an error message (and its status code)."""
    order = await orders_service.get_for(order_id)
    return Template(
        "admin/orders/detail.html",
        context={
            "order": order,
            "customer": await users_service.get_one_or_none(id=order.user_id),
            "actions": next_actions(order),
            "audit_events": await audit_service.for_entity("order", [order.id]),
            "error": error,
        },
        status_code=status_code,
    )
