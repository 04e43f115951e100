"""Refund routes of the JSON API: admins refund a paid order in part or whole and retry a pending refund
(the list of an order's refunds, for admins and its customer, is ``OrderApiController``'s).

``POST /api/orders/{id}/refunds`` takes chosen lines and units, or a plain amount (minor units), and an
``Idempotency-Key`` header: the refund's key is ``api-{admin id}-{key}``, so the same request again
returns the first refund (same status code and body) and never refunds twice. The rules, and what
each refusal means, are ``RefundService.refund``'s (``webshop.orders.refunds``).
"""

import hashlib
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import Response, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from webshop.api.controllers import AdminApiController
from webshop.api.responses import problems
from webshop.api.schemas import ID_MAX, INT_MAX, IdempotencyKey, Money, PathId, money
from webshop.db.models import Refund
from webshop.deps import OrdersDep, UserRequest
from webshop.orders.refund_rules import REASON_MAX, RefundRow
from webshop.orders.refunds import RefundService
from webshop.orders.service import OrderService
from webshop.text import Line


class RefundLineIn(msgspec.Struct, forbid_unknown_fields=True):
    """Units of one order line to refund (at most what was bought minus what is refunded already)."""

    order_line_id: Annotated[int, msgspec.Meta(ge=1, le=ID_MAX)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=INT_MAX)]


class RefundIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``POST /api/orders/{id}/refunds``: either ``lines`` (their share of the payment: unit price times
    units plus their tax) or ``amount`` (minor units of the order's currency); ``restock`` (lines only)
    puts the refunded units back in stock once the refund succeeded."""

    lines: Annotated[list[RefundLineIn], msgspec.Meta(min_length=1, max_length=500)] | None = None
    amount: Annotated[int, msgspec.Meta(ge=1, le=INT_MAX)] | None = None
    reason: Annotated[Line, msgspec.Meta(max_length=REASON_MAX, examples=["Arrived damaged"])] = ""
    restock: bool = False


class RefundLineOut(msgspec.Struct):
    """Units of one order line a refund covers and what they were worth."""

    order_line_id: int
    sku: str
    product_name: str
    quantity: int
    amount: Money


class OrderRefundOut(msgspec.Struct):
    """One refund of an order. ``status``: ``pending`` (the payment provider has not answered yet),
    ``succeeded`` (``reference`` is the provider's, or ``returned by the shop`` for an order paid another
    way, which is refunded at once and whose money the shop returns; ``credit_note`` its credit note number and
    ``credit_note_id`` the id that ``GET /api/orders/{order_id}/credit-notes/{credit_note_id}`` downloads it
    by) or ``failed`` (``failure_reason``; nothing was refunded). A line's ``order_line_id`` is the ``id``
    of one of the order's ``lines``. ``is_shipping``: the shipping of a shop's parcel that will not be
    sent, refunded by itself once every item of it was (no ``lines``)."""

    id: int
    order_id: int
    status: Literal["pending", "succeeded", "failed"]
    amount: Money
    reason: str
    restock: bool
    is_shipping: bool
    lines: list[RefundLineOut]
    reference: str
    failure_reason: str
    credit_note: str | None
    credit_note_id: int | None
    created_at: datetime
    refunded_at: datetime | None


def refund_out(row: RefundRow) -> OrderRefundOut:
    """The API shape of a refund as ``RefundService.for_order`` lists it."""
    refund = row.refund
    return OrderRefundOut(
        id=refund.id,
        order_id=refund.order_id,
        status=refund.status,  # type: ignore[arg-type]  # a RefundStatus value
        amount=money(refund.amount, refund.currency),
        reason=refund.reason,
        restock=refund.restock,
        is_shipping=refund.is_shipping,
        lines=[
            RefundLineOut(
                order_line_id=rl.order_line_id,
                sku=line.sku if line else "",
                product_name=line.product_name if line else "",
                quantity=rl.quantity,
                amount=money(rl.amount, refund.currency),
            )
            for line, rl in row.lines
        ],
        reference=refund.reference,
        failure_reason=refund.failure_reason,
        credit_note=row.credit_note or None,
        credit_note_id=row.credit_note_id,
        created_at=refund.created_at,
        refunded_at=refund.refunded_at,
    )


def api_refund_key(admin_id: int, key: str) -> str:
    """The refund's idempotency key for an admin's ``Idempotency-Key`` header: ``api-{admin id}-{key}``,
    or with the key's SHA-256 when that would not fit the column (120 characters)."""
    whole = f"api-{admin_id}-{key}"
    return whole if len(whole) <= 120 else f"api-{admin_id}-{hashlib.sha256(key.encode()).hexdigest()}"


class RefundApiController(AdminApiController):
    """Refunding an order and retrying a pending refund: admins only (a customer gets 403)."""

    path = "/api/orders/{order_id:int}/refunds"
    tags = ["orders"]

    @post("", operation_id="refundOrder", status_code=201, responses=problems(400, 401, 403, 404, 409, 422))
    async def refund(
        self,
        request: UserRequest,
        order_id: PathId,
        data: JSONBody[RefundIn],
        idempotency_key: IdempotencyKey,
        orders_service: OrdersDep,
        refunds_service: NamedDependency[RefundService],
    ) -> Response[OrderRefundOut]:
        """Refund chosen lines or an amount of a paid, shipped or delivered order through the payment
        provider: 201 with the refund (``failed`` when the provider refused it, ``pending`` when it did not
        answer); 409 the order cannot be refunded; 422 unknown lines, too many units or more than is left."""
        refund = await refunds_service.refund(
            order_id,
            lines=[(line.order_line_id, line.quantity) for line in data.lines] if data.lines is not None else None,
            amount=data.amount,
            restock=data.restock,
            reason=data.reason,
            actor=request.user,
            idempotency_key=api_refund_key(request.user.id, idempotency_key),
        )
        return Response(await _one(refund, orders_service, refunds_service), status_code=201)

    @post(
        "/{refund_id:int}/retry",
        operation_id="retryOrderRefund",
        status_code=200,
        responses=problems(400, 401, 403, 404),
    )
    async def retry(
        self,
        request: UserRequest,
        order_id: PathId,
        refund_id: PathId,
        orders_service: OrdersDep,
        refunds_service: NamedDependency[RefundService],
    ) -> OrderRefundOut:
        """Ask the payment provider again for a ``pending`` refund (the page's "Retry"), with its own
        idempotency key, so the money moves once: the refund as it stands after the answer (``succeeded``,
        ``failed`` or still ``pending``); one already answered is returned unchanged."""
        refund = await refunds_service.retry(refund_id, actor=request.user, order_id=order_id)
        return await _one(refund, orders_service, refunds_service)


async def _one(refund: Refund, orders_service: OrderService, refunds_service: RefundService) -> OrderRefundOut:
    order = await orders_service.get_for(refund.order_id)
    [row] = await refunds_service.for_order(order, refund_id=refund.id)
    return refund_out(row)
