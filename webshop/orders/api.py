"""Order routes of the JSON API: a customer's own orders; every order for admins, with status changes and
its audit trail; for a shop's members, the orders with their shop's lines (only those), and shipping their part."""

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal, TypedDict

from litestar import Controller, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, QueryParameter

from webshop.api.responses import problems
from webshop.api.schemas import ID_MAX, IdCursor, PathId
from webshop.audit.schemas import AuditEventOut, audit_trail_out
from webshop.db.models import Order, OrderStatus
from webshop.deps import AuditDep, FulfilmentDep, OrdersDep, UserRequest
from webshop.errors import InvalidTransition, ValidationFailed
from webshop.orders.fulfilment import ShopView
from webshop.orders.refunds import RefundService
from webshop.orders.refunds_api import OrderRefundOut, refund_out
from webshop.orders.schemas import (
    OrderOut,
    OrderPage,
    OrderPatch,
    ShipmentIn,
    StatusName,
    WholeRefundOut,
    order_out,
    whole_refund_out,
)
from webshop.security.jwt import BEARER, api_admin
from webshop.shops.guards import api_shop_staff, runs_a_shop


class _Filters(TypedDict):
    """The filters and page of ``GET /api/orders``: the same whether it lists a shop's orders or one's own."""

    status: OrderStatus | None
    to_ship: bool
    created_from: datetime | None
    created_to: datetime | None
    limit: int
    before_id: int | None


class OrderApiController(Controller):
    """Orders: customers see their own (others' are 404); admins see and change all."""

    path = "/api/orders"
    tags = ["orders"]
    security = BEARER

    @get("", operation_id="listOrders", responses=problems(400, 401, 403, 422))
    async def list_orders(
        self,
        request: UserRequest,
        orders_service: OrdersDep,
        fulfilment_service: FulfilmentDep,
        status: Annotated[
            StatusName | Literal["to_ship"] | None,
            QueryParameter(
                description="Only orders in this status; `to_ship`: paid orders with a part still to send (for a "
                "shop's members, a part of their shops)"
            ),
        ] = None,
        created_from: Annotated[datetime | None, QueryParameter(description="RFC 3339; placed at or after")] = None,
        created_to: Annotated[datetime | None, QueryParameter(description="RFC 3339; placed before")] = None,
        customer_id: Annotated[
            int | None,
            QueryParameter(
                ge=1,
                le=ID_MAX,
                description="One customer's orders: admins any customer's, a customer their own id only",
            ),
        ] = None,
        cursor: IdCursor = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
        view: Annotated[
            Literal["mine", "shop"] | None,
            QueryParameter(
                description="Shop members: `shop` (their default) lists their shops' orders; `mine`: one's own "
                "purchases (admins too)"
            ),
        ] = None,
    ) -> OrderPage:
        """Orders newest first: your own, or (admins) everyone's with filters; a shop's members see the
        orders with their shops' lines, each with those lines only (``view=mine``: their own purchases)."""
        user = request.user
        for name in ("created_from", "created_to"):
            # The framework also takes a bare number as a Unix timestamp; only RFC 3339 is documented.
            raw = request.query_params.get(name)
            if raw is None:
                continue
            try:
                datetime.fromisoformat(raw)
            except ValueError:
                message = "Not an RFC 3339 date-time."
                raise ValidationFailed(message, field_errors={name: message}) from None
        # A customer_id asks for a customer's orders, not the shops' (OrderService.search_visible_to decides).
        shop_view = (
            not user.is_admin
            and view != "mine"
            and customer_id is None
            and (view == "shop" or await runs_a_shop(request, user))
        )
        filters = _Filters(
            status=OrderStatus(status) if status and status != "to_ship" else None,
            to_ship=status == "to_ship",
            created_from=created_from,
            created_to=created_to,
            limit=limit,
            before_id=int(cursor) if cursor else None,
        )
        seen: Sequence[Order | ShopView]
        if shop_view:
            seen, next_id = await fulfilment_service.search_for_shops(user, **filters)
        else:
            seen, next_id = await orders_service.search_visible_to(
                user, customer_id=customer_id, own=view == "mine", **filters
            )
        return OrderPage(items=[order_out(s) for s in seen], next_cursor=str(next_id) if next_id else None)

    @get("/{order_id:int}", operation_id="getOrder", responses=problems(400, 401, 404))
    async def get_order(self, request: UserRequest, order_id: PathId, fulfilment_service: FulfilmentDep) -> OrderOut:
        """One order (another customer's order is 404); a shop's member sees their shops' lines of it."""
        return order_out(await fulfilment_service.view(request.user, order_id))

    @get("/{order_id:int}/refunds", operation_id="listOrderRefunds", responses=problems(400, 401, 403, 404))
    async def list_refunds(
        self,
        request: UserRequest,
        order_id: PathId,
        fulfilment_service: FulfilmentDep,
        refunds_service: NamedDependency[RefundService],
    ) -> list[OrderRefundOut]:
        """The order's refunds, oldest first, with their credit notes' ids (``GET
        /api/orders/{order_id}/credit-notes/{credit_note_id}``): admins see any order's, a customer their
        own order's (another's is 404, as ``GET /api/orders/{id}``; a shop's member who sees the order
        for their lines gets 403)."""
        order = await fulfilment_service.as_customer_or_admin(request.user, order_id)
        return [refund_out(row) for row in await refunds_service.for_order(order)]

    @get(
        "/{order_id:int}/history",
        operation_id="getOrderHistory",
        guards=[api_admin],
        responses=problems(400, 401, 403, 404),
    )
    async def order_history(
        self, order_id: PathId, orders_service: OrdersDep, audit_service: AuditDep
    ) -> list[AuditEventOut]:
        """Admins: the order's audit trail as its admin page shows it (placed, paid, status changes with
        their reason, refunds, shipments), newest first (at most 100). It names every shop's part and the
        payment, so a shop's member or the customer gets 403; no such order 404."""
        order = await orders_service.get_for(order_id)
        return audit_trail_out(await audit_service.for_entity("order", [order.id]))

    @post(
        "/{order_id:int}/shipments",
        operation_id="shipOrderPart",
        status_code=201,
        guards=[api_shop_staff],
        responses=problems(400, 401, 403, 404, 409, 422),
    )
    async def ship_part(
        self, request: UserRequest, order_id: PathId, data: JSONBody[ShipmentIn], fulfilment_service: FulfilmentDep
    ) -> OrderOut:
        """A shop's members (or an admin) mark their part of a paid order shipped, with carrier and
        tracking number; the order becomes ``shipped`` with its last part (409 if not paid or shipped)."""
        seen = await fulfilment_service.ship(
            request.user, order_id, shop_id=data.shop_id, carrier=data.carrier, tracking_number=data.tracking_number
        )
        return order_out(seen)

    @post(
        "/{order_id:int}/cancel",
        operation_id="cancelOrder",
        status_code=200,
        responses=problems(400, 401, 403, 404, 409),
    )
    async def cancel_order(
        self, request: UserRequest, order_id: PathId, orders_service: OrdersDep, fulfilment_service: FulfilmentDep
    ) -> OrderOut:
        """Cancel an order that has not shipped; its stock comes back exactly once. A shop's member who
        sees the order for their lines may not (403)."""
        await fulfilment_service.as_customer_or_admin(request.user, order_id)
        return order_out(await orders_service.cancel_for(request.user, order_id))

    @post(
        "/{order_id:int}/whole-refund/retry",
        operation_id="retryWholeRefund",
        status_code=200,
        guards=[api_admin],
        responses=problems(400, 401, 403, 404, 409),
    )
    async def retry_whole_refund(
        self, request: UserRequest, order_id: PathId, orders_service: OrdersDep
    ) -> WholeRefundOut:
        """Admins: ask the payment provider again for a cancelled or wholly refunded order's refund that it
        has not made (the page's "Retry the refund"): ``pending`` false once made; ``failure_reason`` when
        refused. Asking for one already made changes nothing; 409 when the order owes no refund."""
        order = await orders_service.settle_refund(order_id, actor=request.user)
        if not order.refund_amount:
            raise InvalidTransition(
                f"Order {order.number} owes no refund: it was not cancelled or refunded after payment."
            )
        return whole_refund_out(order)

    @patch(
        "/{order_id:int}",
        operation_id="updateOrderStatus",
        guards=[api_admin],
        responses=problems(400, 401, 403, 404, 409),
    )
    async def update_order(
        self, request: UserRequest, order_id: PathId, data: JSONBody[OrderPatch], orders_service: OrdersDep
    ) -> OrderOut:
        """Admins: change the status along the state machine (pending → paid → shipped → delivered, ...)."""
        return order_out(await orders_service.change_status(order_id, OrderStatus(data.status), actor=request.user))
