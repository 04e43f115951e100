"""The admin home page (``/admin``): what needs attention, with links to each management page.

Platform admins see every shop's figures; a shop's members their shops' (``webshop.shops.scope``).
"""

from litestar import MediaType, get
from litestar.response import Template

from webshop.admin import ShopStaffPages
from webshop.admin.pages import AdminRequest
from webshop.deps import OrdersDep, ShopsDep, StockDep
from webshop.shops.scope import admin_scope


class AdminController(ShopStaffPages):
    """The admin dashboard."""

    path = "/admin"

    @get("", name="admin", media_type=MediaType.HTML)
    async def index(
        self, request: AdminRequest, orders_service: OrdersDep, stock_service: StockDep, shops_service: ShopsDep
    ) -> Template:
        """The admin home page: orders by status and stock health at a glance."""
        scope = await admin_scope(shops_service, request.user)
        return Template(
            "admin/index.html",
            context={
                "order_counts": await orders_service.status_counts(shop_ids=scope.shop_ids),
                "to_ship": await orders_service.to_ship_count(shop_ids=scope.shop_ids),
                "stock_counts": await stock_service.health_counts(shop_ids=scope.shop_ids),
                "platform": scope.everything,
                # A member's shops, each with its page (profile, logo and staff: owners change them).
                "my_shops": []
                if scope.everything
                else sorted((await shops_service.names(list(scope.access.roles))).values(), key=lambda s: s.name),
            },
        )
