"""The admin home page (``/admin``): what needs attention, with links to each management page."""

from litestar import MediaType, get
from litestar.di import NamedDependency
from litestar.response import Template

from webshop.admin import AdminPages
from webshop.orders.service import OrderService
from webshop.stock.service import StockService


class AdminController(AdminPages):
    """The admin dashboard."""

    path = "/admin"

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
