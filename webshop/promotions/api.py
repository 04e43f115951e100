"""``/api/promotions``: promotions for admins (``PromotionService``); shoppers use them through the cart."""

from datetime import datetime

import msgspec
from litestar import Response, delete, get, patch, post
from litestar.params import JSONBody

from webshop.api.controllers import AdminApiController
from webshop.api.responses import created_at, problems
from webshop.api.schemas import PathId, from_row
from webshop.db.models import Promotion
from webshop.deps import PromotionsDep, SettingsDep, UserRequest
from webshop.promotions.service import PromotionInput, PromotionPatch


class PromotionOut(msgspec.Struct):
    """A promotion: the fields of ``PromotionInput`` plus its ``id`` and ``times_used`` (uses of orders not
    cancelled or fully refunded). ``value`` and ``min_subtotal`` are minor units of ``currency`` (``value``
    is a whole percent for a percentage)."""

    id: int
    name: str
    code: str | None
    kind: str
    value: int
    usage_limit: int | None
    per_customer_limit: int | None
    starts_at: datetime | None
    ends_at: datetime | None
    min_subtotal: int
    combinable: bool
    active: bool
    category_ids: list[int]
    product_ids: list[int]
    variant_ids: list[int]
    times_used: int
    currency: str


def promotion_out(promotion: Promotion, currency: str) -> PromotionOut:
    """``PromotionOut`` of a row, amounts in ``currency`` (the shop's)."""
    return from_row(
        PromotionOut,
        promotion,
        category_ids=list(promotion.category_ids or []),
        product_ids=list(promotion.product_ids or []),
        variant_ids=list(promotion.variant_ids or []),
        currency=currency,
    )


class PromotionApiController(AdminApiController):
    """Promotions and discount codes (admins)."""

    path = "/api/promotions"
    tags = ["promotions"]

    @get("", operation_id="listPromotions", responses=problems(401, 403))
    async def list_promotions(self, promotions_service: PromotionsDep, settings: SettingsDep) -> list[PromotionOut]:
        """Every promotion, active ones first."""
        currency = settings.shop.currency
        return [promotion_out(p, currency) for p in await promotions_service.list_promotions()]

    @post(
        "", operation_id="createPromotion", **created_at("/api/promotions/{id}"), responses=problems(400, 401, 403, 422)
    )
    async def create_promotion(
        self,
        request: UserRequest,
        data: JSONBody[PromotionInput],
        promotions_service: PromotionsDep,
        settings: SettingsDep,
    ) -> PromotionOut:
        """Create a promotion. 422 with ``errors`` per field: a code another promotion has (whatever its
        case), an end before the start, unknown category/product/variant ids, a value out of range."""
        promotion = await promotions_service.create_promotion(request.user, data)
        return promotion_out(promotion, settings.shop.currency)

    @get("/{promotion_id:int}", operation_id="getPromotion", responses=problems(400, 401, 403, 404))
    async def get_promotion(
        self, request: UserRequest, promotion_id: PathId, promotions_service: PromotionsDep, settings: SettingsDep
    ) -> PromotionOut:
        """One promotion."""
        promotion = await promotions_service.get_promotion(promotion_id)
        return promotion_out(promotion, settings.shop.currency)

    @patch("/{promotion_id:int}", operation_id="updatePromotion", responses=problems(400, 401, 403, 404, 422))
    async def update_promotion(
        self,
        request: UserRequest,
        promotion_id: PathId,
        data: JSONBody[PromotionPatch],
        promotions_service: PromotionsDep,
        settings: SettingsDep,
    ) -> PromotionOut:
        """Change the fields sent (the others stay); 422 as ``POST``."""
        promotion = await promotions_service.update_promotion(request.user, promotion_id, data)
        return promotion_out(promotion, settings.shop.currency)

    @delete(
        "/{promotion_id:int}", operation_id="deletePromotion", status_code=200, responses=problems(400, 401, 403, 404)
    )
    async def delete_promotion(
        self, request: UserRequest, promotion_id: PathId, promotions_service: PromotionsDep
    ) -> Response[dict[str, bool]]:
        """Delete a promotion no order used; one that was used is withdrawn (``active`` false) and kept, as
        its orders' records name it. Answers ``{"deleted": true}`` or ``{"deleted": false}`` (withdrawn)."""
        deleted = await promotions_service.delete_promotion(request.user, promotion_id)
        return Response({"deleted": deleted})
