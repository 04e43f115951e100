"""The admin's refund page of an order: ``GET/POST /admin/orders/{id}/refunds`` (admins only).

The form lists each line with the units to refund (0 to what is left of it), or takes a plain amount,
a reason and "Put the refunded items back in stock". It carries a one-time ``token`` (made when the
page is shown, like checkout's ``checkout_token``): the refund's idempotency key is ``form-{token}``, so a
double submit (two clicks, a resent form) refunds once and both answers lead to the same refund. A
refused form comes back with the message and what was typed (422, or 409 when the order cannot be
refunded or not that much), with JavaScript on or off. A refund the payment provider has not answered
stays pending; its "Retry" button asks again with the same key.
"""

import secrets
from dataclasses import dataclass
from typing import Any

from litestar import MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.admin import AdminPages
from webshop.api.schemas import PathId
from webshop.db.models import Order, Refund, RefundStatus
from webshop.deps import OrdersDep, UserRequest, UsersDep
from webshop.errors import DomainError, ValidationFailed
from webshop.money import format_money, parse_major
from webshop.orders.refund_rules import amount_left, refundable_problem
from webshop.orders.refunding import RETURNED_BY_SHOP, returned_by_shop_message
from webshop.orders.refunds import RefundService
from webshop.text import whole_number_text
from webshop.web.forms import FormFields, form_message
from webshop.web.responses import see_other_to

TOKEN_MAX = 100
"""Characters of the form's one-time token (``form-`` plus it is the refund's key, at most 120)."""


def new_refund_token() -> str:
    """A one-time token for a refund form (the refund's idempotency key, unique)."""
    return secrets.token_urlsafe(24)


def _text(fields: dict[str, Any], name: str) -> str:
    """A posted field as one string (a repeated field counts as its last value)."""
    value = fields.get(name, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return str(value)


def read_refund_form(
    order: Order, fields: dict[str, Any]
) -> tuple[dict[str, Any], list[tuple[int, int]], int | None, dict[str, str]]:
    """The posted refund form: ``(values to show again, [(line id, units)], amount in minor units or None,
    field errors)``; the errors (a units field that is not a whole number, an amount that is not one)
    are returned with the values, so that the form comes back as it was typed."""
    form: dict[str, Any] = {
        "token": _text(fields, "token")[:TOKEN_MAX],
        "amount": _text(fields, "amount").strip()[:20],
        "reason": _text(fields, "reason")[:400],
        "restock": _text(fields, "restock") in {"on", "1", "true"},
        "qty": {},
    }
    errors: dict[str, str] = {}
    lines: list[tuple[int, int]] = []
    for line in order.lines:
        raw = _text(fields, f"qty-{line.id}").strip()[:10]
        form["qty"][line.id] = raw
        if not raw:
            continue
        if (quantity := whole_number_text(raw, max_digits=9)) is None:
            errors[f"qty-{line.id}"] = "Enter a whole number of units."
            continue
        lines.append((line.id, quantity))
    amount: int | None = None
    if form["amount"]:
        try:
            amount = parse_major(form["amount"], order.currency)
        except ValueError:
            errors["amount"] = "Enter an amount such as 12.50."
    return form, lines, amount, errors


@dataclass(frozen=True)
class RefundPage:
    """The refund page of order ``order_id`` (the path's) and the services it reads and writes with: the
    ``page`` of the handlers here (Litestar makes one per request from the dependencies the fields name)."""

    order_id: PathId
    orders_service: OrdersDep
    refunds_service: NamedDependency[RefundService]
    users_service: UsersDep

    async def order(self) -> Order:
        """The order (its lines loaded); ``NotFound`` when there is no such order."""
        return await self.orders_service.get_for(self.order_id)

    async def render(self, order: Order, form: dict[str, Any], *, error: DomainError | None = None) -> Template:
        """The refund page of ``order`` with ``form``'s values; with ``error``, its message (and status)."""
        problem = refundable_problem(order)
        return Template(
            "admin/orders/refund.html",
            context={
                "order": order,
                "customer": await self.users_service.get_one_or_none(id=order.user_id) if order.user_id else None,
                "lines_left": await self.refunds_service.lines_left(order),
                "amount_left": amount_left(order),
                "refundable": problem is None,
                "problem": problem.detail if problem else "",
                "refunds": await self.refunds_service.for_order(order),
                "form": form,
                "errors": error.field_errors if error else {},
                "message": form_message(error),
            },
            status_code=error.status_code if error else 200,
        )


def new_form() -> dict[str, Any]:
    """The refund form as the page first shows it, with a new one-time token."""
    return {"token": new_refund_token(), "amount": "", "reason": "", "restock": False, "qty": {}}


class AdminRefundController(AdminPages):
    """Refunding an order's lines or an amount; retrying a refund the provider has not answered."""

    path = "/admin/orders/{order_id:int}/refunds"
    dependencies = {"page": Provide(RefundPage, sync_to_thread=False)}

    @get("", name="admin_order_refunds", media_type=MediaType.HTML)
    async def form(self, page: NamedDependency[RefundPage]) -> Template:
        """The refund form (and the order's refunds so far)."""
        return await page.render(await page.order(), new_form())

    @post("", name="admin_order_refund_create", media_type=MediaType.HTML)
    async def create(self, request: UserRequest, page: NamedDependency[RefundPage], data: FormFields) -> Any:
        """Refund what the form says; the form again with the message when it is refused."""
        order = await page.order()
        form = new_form()
        try:
            form, lines, amount, errors = read_refund_form(order, data)
            if errors:
                raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
            if not form["token"]:
                raise ValidationFailed("This form has expired. Check the figures and send it again.")
            refund = await page.refunds_service.refund(
                page.order_id,
                lines=lines,
                amount=amount,
                restock=bool(form["restock"]),
                reason=str(form["reason"]),
                actor=request.user,
                idempotency_key=f"form-{form['token']}",
            )
        except DomainError as exc:
            if not form["token"]:
                form["token"] = new_refund_token()
            return await page.render(await page.order(), form, error=exc)
        flash_outcome(request, refund)
        for parcel in await page.refunds_service.parcels_of(refund):  # the shipping of a part it closed
            flash_outcome(request, parcel)
        return see_other_to(request, "admin_order", order_id=page.order_id)

    @post("/{refund_id:int}/retry", name="admin_order_refund_retry", media_type=MediaType.HTML)
    async def retry(self, request: UserRequest, refund_id: PathId, page: NamedDependency[RefundPage]) -> Any:
        """Ask the payment provider again for a pending refund (a no-op once it has answered)."""
        refund = await page.refunds_service.retry(refund_id, actor=request.user, order_id=page.order_id)
        flash_outcome(request, refund)
        return see_other_to(request, "admin_order", order_id=page.order_id)


def flash_outcome(request: UserRequest, refund: Refund) -> None:
    """Tell the admin, on the order's page, how the refund went."""
    amount = format_money(refund.amount, refund.currency)
    what = f"{amount} ({refund.reason})" if refund.is_shipping else amount
    if refund.status == RefundStatus.SUCCEEDED.value and refund.reference == RETURNED_BY_SHOP:
        # An order paid another way: nobody but the shop gives the money back (``refunding.ShopReturns``).
        flash(request, returned_by_shop_message(what), "info")
    elif refund.status == RefundStatus.SUCCEEDED.value:
        flash(request, f"Refunded {what} to the customer.", "info")
    elif refund.status == RefundStatus.FAILED.value:
        flash(request, f"The payment provider refused the refund of {what}: {refund.failure_reason}", "error")
    else:
        flash(request, f"The payment provider has not confirmed the refund of {what} yet: retry it.", "error")


__all__ = ["AdminRefundController", "read_refund_form"]
