"""The admin home page (``/admin``): what needs attention, with links to each management page."""

from litestar import Controller, MediaType, get
from litestar.di import NamedDependency
from litestar.response import Template

from webshop.admin import ADMIN_GUARDS
from webshop.orders.service import OrderService
from webshop.stock.service import StockService


class AdminController(Controller):
    """The admin dashboard."""

    path = "/admin"
    guards = ADMIN_GUARDS
    include_in_schema = False

    @get("", name="admin", media_type=MediaType.HTML)
    async def index(
        self, orders_service: NamedDependency[OrderService], stock_service: NamedDependency[StockService]
    ) -> Template:
        """The admin home page: orders by status and stock health at a glance."""
        return Template(
            "admin/index.html",
            context={
                "order_counts": await orders_service.status_counts(),
                "stock_counts": await stock_service.health_counts(),
            },
        )
