"""Admin stock pages: the stock-health dashboard, the stock-adjustment form and a variant's stock history.

The health rule is ``webshop.stock.service.stock_level_expression``; adjustments go through
``StockService.adjust_by_sku`` (the conditional ``adjust_stock`` update, a ledger row and an audit event).
A shop's members see and adjust their shops' variants only (``webshop.shops.scope``; another shop's SKU
is unknown to them), with a "Shop" select when they run several.
"""

from typing import Annotated, Any

import msgspec
from litestar import MediaType, get, post
from litestar.params import FromQuery
from litestar.response import Template

from webshop.admin import ShopStaffPages
from webshop.admin.pages import AdminRequest, ShopScopeDep, flash_see_other
from webshop.api.schemas import PathId
from webshop.deps import ShopsDep, StockDep
from webshop.errors import Conflict, ValidationFailed
from webshop.shops.scope import ShopScope, admin_scope
from webshop.stock.history import REASON_LABELS
from webshop.stock.service import ADJUSTMENT_REASONS, StockLevel, StockService
from webshop.text import whole_number_text
from webshop.web.forms import Form, form_again
from webshop.web.responses import page_or_fragment
from webshop.web.templating import query_url

LEVEL_LABELS = {
    StockLevel.OUT: "Out of stock",
    StockLevel.CRITICAL: "Critical",
    StockLevel.LOW: "Low",
    StockLevel.MEDIUM: "Medium",
    StockLevel.HEALTHY: "Healthy",
}
# Lists shown when no level is chosen: the ones that need attention.
ATTENTION = (StockLevel.OUT, StockLevel.CRITICAL, StockLevel.LOW)
LIST_LIMIT = 200
HISTORY_PAGE = 50
"""Movements a page of a variant's stock history lists."""


class AdjustForm(msgspec.Struct):
    """The stock-adjustment form (text fields, so a malformed number gets a message, not a 400)."""

    sku: str = ""
    delta: str = ""
    reason: str = ""
    note: str = ""


class AdminStockController(ShopStaffPages):
    """Stock health and adjustments."""

    path = "/admin/stock"

    @get("", name="admin_stock", media_type=MediaType.HTML)
    async def index(
        self,
        request: AdminRequest,
        stock_service: StockDep,
        shop_scope: ShopScopeDep,
        level: FromQuery[str | None] = None,
        sku: FromQuery[str | None] = None,
    ) -> Template:
        """The dashboard: counts per level and the variants that need attention (or the chosen level)."""
        context = await dashboard_context(stock_service, level, shop_scope)
        context["form"] = {"sku": (sku or "")[:64], "delta": "", "reason": "", "note": ""}
        fragments = {"stock-health": "admin/stock/_health.html"}
        return page_or_fragment(request, "admin/stock/index.html", fragments, context)

    @post("/adjust", name="admin_stock_adjust", media_type=MediaType.HTML)
    async def adjust(
        self, request: AdminRequest, stock_service: StockDep, shops_service: ShopsDep, data: Annotated[AdjustForm, Form]
    ) -> Any:
        """Adjust one variant's stock; the form comes back with the errors when something is wrong."""
        try:
            level = await stock_service.adjust_by_sku(
                sku=data.sku, delta=data.delta, reason=data.reason, note=data.note, actor=request.user
            )
        except (ValidationFailed, Conflict) as exc:
            context = await dashboard_context(stock_service, None, await admin_scope(shops_service, request.user))
            context["form"] = {"sku": data.sku, "delta": data.delta, "reason": data.reason, "note": data.note}
            return form_again("admin/stock/index.html", exc, context, status_code=exc.status_code)
        return flash_see_other(request, f"Stock of {data.sku.strip()} is now {level}.", "admin_stock", category="info")

    @get("/variants/{variant_id:int}", name="admin_stock_history", media_type=MediaType.HTML)
    async def history(
        self, request: AdminRequest, variant_id: PathId, stock_service: StockDep, before: FromQuery[str | None] = None
    ) -> Template:
        """A variant's stock ledger, newest first, ``HISTORY_PAGE`` movements a page (``?before=`` the id of
        the last one shown: older ones); another shop's variant is 404 to a shop's member."""
        before_id = whole_number_text(before) if before else None
        history = await stock_service.history(request.user, variant_id, limit=HISTORY_PAGE + 1, before_id=before_id)
        rows = history.movements[:HISTORY_PAGE]
        here = request.app.route_reverse("admin_stock_history", variant_id=variant_id)
        older = query_url(here, {"before": str(rows[-1].id)}) if len(history.movements) > HISTORY_PAGE else ""
        context = {
            "history": history,
            "rows": rows,
            "older_url": older,
            "newest_url": here if before_id is not None else "",
            "reasons": REASON_LABELS,
            "adjustment_reasons": ADJUSTMENT_REASONS,
        }
        return Template("admin/stock/history.html", context=context)


async def dashboard_context(stock_service: StockService, level: str | None, scope: ShopScope) -> dict[str, Any]:
    """Counts per level, and the lists of ``level`` (or of the levels that need attention), of the
    shops in ``scope`` (every shop for a platform admin)."""
    chosen = StockLevel(level) if level in {lv.value for lv in StockLevel} else None
    shown = (chosen,) if chosen else ATTENTION
    shop_ids = scope.shop_ids
    counts = await stock_service.health_counts(shop_ids=shop_ids)
    return {
        "counts": counts,
        "levels": list(StockLevel),
        "labels": LEVEL_LABELS,
        "chosen": chosen,
        "lists": [(lv, await stock_service.health_list(lv, limit=LIST_LIMIT, shop_ids=shop_ids)) for lv in shown],
        "scope": scope,
        "list_limit": LIST_LIMIT,
        "reasons": ADJUSTMENT_REASONS,
        "form": {},
        "errors": {},
        "message": "",
    }
