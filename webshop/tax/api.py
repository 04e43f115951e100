"""``/api/tax-rates``: tax rates by destination for admins (``TaxRateService``)."""

import msgspec
from litestar import delete, get, patch, post
from litestar.params import JSONBody

from webshop.api.controllers import AdminApiController
from webshop.api.responses import created_at, problems
from webshop.api.schemas import PathId, from_row
from webshop.db.models import TaxRate
from webshop.deps import TaxRatesDep, UserRequest
from webshop.tax.service import TaxRateInput, TaxRatePatch


class TaxRateOut(msgspec.Struct):
    """A tax rate: ``rate_bp`` basis points (2000 = 20 %) for ``tax_category`` in ``country`` (``*``: every
    country without rates of its own) and ``region`` (``""``: the whole country)."""

    id: int
    country: str
    region: str
    tax_category: str
    rate_bp: int
    name: str


def tax_rate_out(rate: TaxRate) -> TaxRateOut:
    """``TaxRateOut`` of a row."""
    return from_row(TaxRateOut, rate)


class TaxRateApiController(AdminApiController):
    """Tax rates (admins)."""

    path = "/api/tax-rates"
    tags = ["tax"]

    @get("", operation_id="listTaxRates", responses=problems(401, 403))
    async def list_rates(self, tax_rates_service: TaxRatesDep) -> list[TaxRateOut]:
        """Every rate, the rest of the world's (``*``) first."""
        return [tax_rate_out(rate) for rate in await tax_rates_service.list_rates()]

    @post("", operation_id="createTaxRate", **created_at("/api/tax-rates/{id}"), responses=problems(400, 401, 403, 422))
    async def create_rate(
        self, request: UserRequest, data: JSONBody[TaxRateInput], tax_rates_service: TaxRatesDep
    ) -> TaxRateOut:
        """Create a rate. 422: an unknown country or region, or a rate the same place and category has."""
        return tax_rate_out(await tax_rates_service.create_rate(request.user, data))

    @get("/{tax_rate_id:int}", operation_id="getTaxRate", responses=problems(400, 401, 403, 404))
    async def get_rate(self, tax_rate_id: PathId, tax_rates_service: TaxRatesDep) -> TaxRateOut:
        """One rate."""
        return tax_rate_out(await tax_rates_service.get_rate(tax_rate_id))

    @patch("/{tax_rate_id:int}", operation_id="updateTaxRate", responses=problems(400, 401, 403, 404, 422))
    async def update_rate(
        self, request: UserRequest, tax_rate_id: PathId, data: JSONBody[TaxRatePatch], tax_rates_service: TaxRatesDep
    ) -> TaxRateOut:
        """Change the fields sent; 422 as ``POST``."""
        return tax_rate_out(await tax_rates_service.update_rate(request.user, tax_rate_id, data))

    @delete("/{tax_rate_id:int}", operation_id="deleteTaxRate", responses=problems(400, 401, 403, 404))
    async def delete_rate(self, request: UserRequest, tax_rate_id: PathId, tax_rates_service: TaxRatesDep) -> None:
        """Delete a rate."""
        await tax_rates_service.delete_rate(request.user, tax_rate_id)
