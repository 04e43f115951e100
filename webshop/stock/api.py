"""The stock-health endpoint of the JSON API: the admin dashboard's figures for integrations.

``GET /api/stock/health`` answers with the count of variants in each band (out, critical, low, medium,
healthy; the rule is ``webshop.stock.service.stock_level_expression``) and the variants of each band,
lowest stock first. Admins see every shop's variants; a shop's members (``api_shop_staff``) see their
shops' only, as on the ``/admin/stock`` page.
"""

from typing import Annotated

from litestar import get
from litestar.params import QueryParameter

from webshop.api.controllers import ShopStaffApiController
from webshop.api.responses import problems
from webshop.api.schemas import ID_MAX
from webshop.deps import ShopsDep, StockDep, UserRequest
from webshop.shops.scope import admin_scope
from webshop.stock.schemas import BandName, StockHealthOut, stock_health_out
from webshop.stock.service import StockLevel


class StockApiController(ShopStaffApiController):
    """Stock health for admins and shop members."""

    path = "/api/stock"
    tags = ["Stock"]

    @get("/health", operation_id="getStockHealth", responses=problems(400, 401, 403, 404))
    async def health(
        self,
        request: UserRequest,
        stock_service: StockDep,
        shops_service: ShopsDep,
        band: Annotated[BandName | None, QueryParameter(description="List only this band's variants")] = None,
        category_id: Annotated[
            int | None, QueryParameter(ge=1, le=ID_MAX, description="Only products in this category or below it")
        ] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200, description="Variants listed per band")] = 50,
        offset: Annotated[int, QueryParameter(ge=0, le=1_000_000)] = 0,
    ) -> StockHealthOut:
        """Counts per band and each band's variants (lowest stock first); 404 for an unknown category."""
        scope = await admin_scope(shops_service, request.user)
        levels = (StockLevel(band),) if band else tuple(StockLevel)
        report = await stock_service.health(
            levels=levels, category_id=category_id, limit=limit, offset=offset, shop_ids=scope.shop_ids
        )
        return stock_health_out(report, limit=limit, offset=offset)
