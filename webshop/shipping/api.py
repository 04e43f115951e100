"""``/api/shipping-zones``: shipping zones and their methods for admins (``ShippingZoneService``).
Shoppers see a destination's methods, priced for their cart, at ``GET /api/shipping-methods``."""

import msgspec
from litestar import delete, get, patch, post
from litestar.params import JSONBody

from webshop.api.controllers import AdminApiController
from webshop.api.responses import created_at, problems
from webshop.api.schemas import PathId, from_row
from webshop.db.models import ShippingMethod, ShippingZone
from webshop.deps import ShippingZonesDep, UserRequest
from webshop.shipping.service import (
    ShippingMethodInput,
    ShippingMethodPatch,
    ShippingZoneInput,
    ShippingZonePatch,
)


class BandOut(msgspec.Struct):
    """A band: ``price`` minor units up to and including ``up_to`` grams or minor units (null: no limit)."""

    up_to: int | None
    price: int


class ShippingMethodOut(msgspec.Struct):
    """A zone's method and its rate (amounts in minor units of the shop's currency)."""

    id: int
    code: str
    name: str
    kind: str
    price: int
    bands: list[BandOut]
    free_over: int | None
    delivery_estimate: str
    position: int
    active: bool


class ShippingZoneOut(msgspec.Struct):
    """A zone: its countries (ISO 3166-1 alpha-2), or the rest of the world, and its methods."""

    id: int
    name: str
    countries: list[str]
    rest_of_world: bool
    methods: list[ShippingMethodOut]


def method_out(method: ShippingMethod) -> ShippingMethodOut:
    """``ShippingMethodOut`` of a row."""
    return from_row(ShippingMethodOut, method, bands=[BandOut(up_to, price) for up_to, price in method.bands or []])


def zone_out(zone: ShippingZone) -> ShippingZoneOut:
    """``ShippingZoneOut`` of a row with its methods loaded."""
    return from_row(
        ShippingZoneOut, zone, countries=list(zone.countries or []), methods=[method_out(m) for m in zone.methods]
    )


class ShippingZoneApiController(AdminApiController):
    """Shipping zones and methods (admins)."""

    path = "/api/shipping-zones"
    tags = ["shipping"]

    @get("", operation_id="listShippingZones", responses=problems(401, 403))
    async def list_zones(self, shipping_zones_service: ShippingZonesDep) -> list[ShippingZoneOut]:
        """Every zone with its methods, the rest of the world last."""
        return [zone_out(zone) for zone in await shipping_zones_service.list_zones()]

    @post(
        "",
        operation_id="createShippingZone",
        **created_at("/api/shipping-zones/{id}"),
        responses=problems(400, 401, 403, 422),
    )
    async def create_zone(
        self, request: UserRequest, data: JSONBody[ShippingZoneInput], shipping_zones_service: ShippingZonesDep
    ) -> ShippingZoneOut:
        """Create a zone. 422: a name another zone has, an unknown country, one another zone has (named), a
        second rest of the world."""
        return zone_out(await shipping_zones_service.create_zone(request.user, data))

    @get("/{zone_id:int}", operation_id="getShippingZone", responses=problems(400, 401, 403, 404))
    async def get_zone(self, zone_id: PathId, shipping_zones_service: ShippingZonesDep) -> ShippingZoneOut:
        """One zone with its methods."""
        return zone_out(await shipping_zones_service.get_zone(zone_id))

    @patch("/{zone_id:int}", operation_id="updateShippingZone", responses=problems(400, 401, 403, 404, 422))
    async def update_zone(
        self,
        request: UserRequest,
        zone_id: PathId,
        data: JSONBody[ShippingZonePatch],
        shipping_zones_service: ShippingZonesDep,
    ) -> ShippingZoneOut:
        """Change the fields sent; 422 as ``POST``."""
        return zone_out(await shipping_zones_service.update_zone(request.user, zone_id, data))

    @delete("/{zone_id:int}", operation_id="deleteShippingZone", responses=problems(400, 401, 403, 404))
    async def delete_zone(
        self, request: UserRequest, zone_id: PathId, shipping_zones_service: ShippingZonesDep
    ) -> None:
        """Delete a zone and its methods (placed orders keep their method's name and price)."""
        await shipping_zones_service.delete_zone(request.user, zone_id)

    @post(
        "/{zone_id:int}/methods",
        operation_id="createShippingMethod",
        status_code=201,
        responses=problems(400, 401, 403, 404, 422),
    )
    async def create_method(
        self,
        request: UserRequest,
        zone_id: PathId,
        data: JSONBody[ShippingMethodInput],
        shipping_zones_service: ShippingZonesDep,
    ) -> ShippingMethodOut:
        """Add a method. 422: a code the zone has; bands that overlap, repeat a limit or have two open ends."""
        return method_out(await shipping_zones_service.create_method(request.user, zone_id, data))

    @patch(
        "/{zone_id:int}/methods/{method_id:int}",
        operation_id="updateShippingMethod",
        responses=problems(400, 401, 403, 404, 422),
    )
    async def update_method(
        self,
        request: UserRequest,
        zone_id: PathId,
        method_id: PathId,
        data: JSONBody[ShippingMethodPatch],
        shipping_zones_service: ShippingZonesDep,
    ) -> ShippingMethodOut:
        """Change the fields sent; 422 as ``POST``."""
        return method_out(await shipping_zones_service.update_method(request.user, zone_id, method_id, data))

    @delete(
        "/{zone_id:int}/methods/{method_id:int}",
        operation_id="deleteShippingMethod",
        responses=problems(400, 401, 403, 404),
    )
    async def delete_method(
        self, request: UserRequest, zone_id: PathId, method_id: PathId, shipping_zones_service: ShippingZonesDep
    ) -> None:
        """Delete a method."""
        await shipping_zones_service.delete_method(request.user, zone_id, method_id)
