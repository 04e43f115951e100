"""Shipping zones and their methods: the rules of a valid zone and method, and the admin's verbs.

A zone is a set of ISO 3166-1 alpha-2 countries (checked with ``pycountry``), or the one "rest of the
world" zone (no countries), which serves every country no other zone names; a country belongs to one
zone at most. A method prices an order flat, by weight bands (grams) or by subtotal bands (minor units),
bands checked by ``webshop.pricing.shipping.validate_bands`` (Saleor #4527/#4529 are what happens
without such checks), optionally free from a subtotal; its code is unique within its zone.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.audit.service import Audited
from webshop.checkout.quote import country_name
from webshop.db.models import ShippingMethod, ShippingZone, User
from webshop.db.repository import assign, patched, repository_for, sent
from webshop.errors import NotFound, ValidationFailed
from webshop.money import MAX_AMOUNT
from webshop.pricing.shipping import Band, validate_bands
from webshop.text import Line, VisibleLine
from webshop.validation import validated

Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
Name = Annotated[VisibleLine, msgspec.Meta(max_length=120)]
CountryCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2}\Z", description="ISO 3166-1 alpha-2")]
MethodCode = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,40}\Z", examples=["standard"])]
RateKindName = Literal["flat", "weight", "subtotal"]


class BandIn(msgspec.Struct, forbid_unknown_fields=True):
    """A band of a weight or subtotal rate: ``price`` (minor units) up to and including ``up_to`` grams or
    minor units (null: no upper limit, the last band)."""

    price: Amount
    up_to: Amount | None = None


class ShippingZoneInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A zone: its name and countries (ISO 3166-1 alpha-2, any case), or ``rest_of_world`` (no countries)."""

    name: Name
    countries: Annotated[list[CountryCode], msgspec.Meta(max_length=300)] = msgspec.field(default_factory=list)
    rest_of_world: bool = False


class ShippingZonePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial change of a zone; see ``ShippingZoneInput``."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    countries: Annotated[list[CountryCode], msgspec.Meta(max_length=300)] | msgspec.UnsetType = msgspec.UNSET
    rest_of_world: bool | msgspec.UnsetType = msgspec.UNSET


class ShippingMethodInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A method of a zone: ``kind`` flat (``price``), ``weight`` or ``subtotal`` (``bands``); free from
    ``free_over`` minor units of subtotal (null: never); all amounts in the shop's currency."""

    code: MethodCode
    name: Name
    kind: RateKindName = "flat"
    price: Amount = 0
    bands: Annotated[list[BandIn], msgspec.Meta(max_length=50)] = msgspec.field(default_factory=list)
    free_over: Amount | None = None
    delivery_estimate: Annotated[Line, msgspec.Meta(max_length=120)] = ""
    position: Annotated[int, msgspec.Meta(ge=0, le=1000)] = 0
    active: bool = True


class ShippingMethodPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial change of a method; see ``ShippingMethodInput``."""

    code: MethodCode | msgspec.UnsetType = msgspec.UNSET
    name: Name | msgspec.UnsetType = msgspec.UNSET
    kind: RateKindName | msgspec.UnsetType = msgspec.UNSET
    price: Amount | msgspec.UnsetType = msgspec.UNSET
    bands: Annotated[list[BandIn], msgspec.Meta(max_length=50)] | msgspec.UnsetType = msgspec.UNSET
    free_over: Amount | msgspec.UnsetType | None = msgspec.UNSET
    delivery_estimate: Annotated[Line, msgspec.Meta(max_length=120)] | msgspec.UnsetType = msgspec.UNSET
    position: Annotated[int, msgspec.Meta(ge=0, le=1000)] | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET


ZONE_FIELDS = ("name", "countries", "rest_of_world")
METHOD_FIELDS = ("code", "name", "kind", "price", "bands", "free_over", "delivery_estimate", "position", "active")


class ShippingZoneService(SQLAlchemyAsyncRepositoryService[ShippingZone], Audited):
    """Zones and methods for admins; every write commits and is in the audit trail."""

    repository_type = repository_for(ShippingZone)

    async def list_zones(self) -> list[ShippingZone]:
        """Every zone with its methods, the rest of the world last."""
        rows = await self.repository.session.scalars(
            select(ShippingZone)
            .options(selectinload(ShippingZone.methods))
            .order_by(ShippingZone.rest_of_world, ShippingZone.name, ShippingZone.id)
        )
        return list(rows)

    async def get_zone(self, zone_id: int) -> ShippingZone:
        """One zone with its methods.

        Raises:
            NotFound: no such zone.
        """
        zone: ShippingZone | None = await self.repository.session.scalar(
            select(ShippingZone)
            .where(ShippingZone.id == zone_id)
            .options(selectinload(ShippingZone.methods))
            .execution_options(populate_existing=True)
        )
        if zone is None:
            raise NotFound("There is no such shipping zone.")
        return zone

    async def get_method(self, zone_id: int, method_id: int) -> ShippingMethod:
        """One method of one zone.

        Raises:
            NotFound: no such method in that zone.
        """
        method: ShippingMethod | None = await self.repository.session.scalar(
            select(ShippingMethod).where(ShippingMethod.id == method_id, ShippingMethod.zone_id == zone_id)
        )
        if method is None:
            raise NotFound("There is no such shipping method.")
        return method

    async def create_zone(self, actor: User | None, data: ShippingZoneInput) -> ShippingZone:
        """Create a zone; committed.

        Raises:
            ValidationFailed: a name another zone has (case aside), an unknown country, one another zone
                has, or a second rest-of-the-world zone.
        """
        values = await self._zone_values(msgspec.structs.asdict(data))
        validated(data, ShippingZoneInput, subject="the zone")  # the limits, however ``data`` was built
        zone = ShippingZone(**values)
        self.repository.session.add(zone)
        await self._commit(actor, "shipping_zone", zone, "create", f"Shipping zone “{zone.name}” created")
        return await self.get_zone(zone.id)

    async def update_zone(self, actor: User | None, zone_id: int, patch: ShippingZonePatch) -> ShippingZone:
        """Change a zone; committed.

        Raises:
            NotFound: no such zone. ValidationFailed: as ``create_zone``.
        """
        zone = await self.get_zone(zone_id)
        values = await self._zone_values(patched(zone, ZONE_FIELDS, patch), zone.id)
        validated(patch, ShippingZonePatch, subject="the zone")
        assign(zone, values)
        await self._commit(actor, "shipping_zone", zone, "update", f"Shipping zone “{zone.name}” changed")
        return await self.get_zone(zone.id)

    async def delete_zone(self, actor: User | None, zone_id: int) -> None:
        """Delete a zone and its methods (orders keep the method's name and price); committed.

        Raises:
            NotFound: no such zone.
        """
        zone = await self.get_zone(zone_id)
        await self.delete_audited(actor, "shipping_zone", zone, f"Shipping zone “{zone.name}” deleted")

    async def create_method(self, actor: User | None, zone_id: int, data: ShippingMethodInput) -> ShippingMethod:
        """Add a method to a zone; committed.

        Raises:
            NotFound: no such zone. ValidationFailed: a code the zone has, bad bands or amounts.
        """
        zone = await self.get_zone(zone_id)
        values = await self._method_values(msgspec.structs.asdict(data), zone.id)
        validated(data, ShippingMethodInput, subject="the method")  # the limits, however ``data`` was built
        method = ShippingMethod(zone_id=zone.id, **values)
        self.repository.session.add(method)
        await self._commit(actor, "shipping_method", method, "create", f"Method “{method.name}” added to “{zone.name}”")
        return method

    async def update_method(
        self, actor: User | None, zone_id: int, method_id: int, patch: ShippingMethodPatch
    ) -> ShippingMethod:
        """Change a method; committed.

        Raises:
            NotFound: no such method. ValidationFailed: as ``create_method``.
        """
        method = await self.get_method(zone_id, method_id)
        current = {k: getattr(method, k) for k in METHOD_FIELDS}
        current["bands"] = [{"up_to": up_to, "price": price} for up_to, price in method.bands or []]
        values = await self._method_values({**current, **sent(patch)}, zone_id, method.id)
        validated(patch, ShippingMethodPatch, subject="the method")
        assign(method, values)
        await self._commit(actor, "shipping_method", method, "update", f"Method “{method.name}” changed")
        return method

    async def check_method(
        self, zone_id: int, data: ShippingMethodInput, *, method_id: int | None = None
    ) -> dict[str, str]:
        """The ``field_errors`` ``create_method`` (with ``method_id``: ``update_method`` of every field)
        would raise for ``data`` (``{}``: none), writing nothing: the admin form asks it when some of its
        fields could not be read, to show every problem in one round."""
        try:
            await self._method_values(msgspec.structs.asdict(data), zone_id, method_id)
        except ValidationFailed as exc:
            return dict(exc.field_errors)
        return {}

    async def delete_method(self, actor: User | None, zone_id: int, method_id: int) -> None:
        """Delete a method; committed.

        Raises:
            NotFound: no such method.
        """
        method = await self.get_method(zone_id, method_id)
        await self.delete_audited(actor, "shipping_method", method, f"Method “{method.name}” deleted")

    async def _commit(self, actor: User | None, entity: str, row: Any, action: str, summary: str) -> None:
        await self.commit_audited(actor, entity, row, action, summary, conflict=_code_taken)

    async def _zone_values(self, values: dict[str, Any], zone_id: int | None = None) -> dict[str, Any]:
        errors: dict[str, str] = {}
        name = " ".join(str(values["name"]).split())
        if not name:
            errors["name"] = "Enter a name."
        countries = sorted({str(code).upper() for code in values.get("countries") or []})
        unknown = [code for code in countries if country_name(code) == code]
        if unknown:
            errors["countries"] = f"Not ISO 3166-1 country codes: {', '.join(unknown)}."
        rest = bool(values.get("rest_of_world"))
        others = [zone for zone in await self.repository.session.scalars(select(ShippingZone)) if zone.id != zone_id]
        if name and any(zone.name.casefold() == name.casefold() for zone in others):
            # Two zones of one name read as one in the admin's lists, the audit trail and the API.
            errors["name"] = f"Another zone is called “{name}”: give this one a name of its own."
        if rest:
            if countries:
                errors["countries"] = (
                    "The rest-of-the-world zone serves every other country: leave its countries empty."
                )
            if any(zone.rest_of_world for zone in others):
                errors["rest_of_world"] = "There already is a rest-of-the-world zone."
        elif not countries and "countries" not in errors:
            errors["countries"] = "Choose at least one country."
        taken = {code: zone.name for zone in others for code in zone.countries or []}
        clashes = [f"{country_name(code)} ({taken[code]})" for code in countries if code in taken]
        if clashes:
            errors["countries"] = "Already in another zone: " + ", ".join(clashes) + "."
        if errors:
            raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
        return {"name": name, "countries": countries, "rest_of_world": rest}

    async def _method_values(
        self, values: dict[str, Any], zone_id: int, method_id: int | None = None
    ) -> dict[str, Any]:
        errors: dict[str, str] = {}
        values = {k: values[k] for k in METHOD_FIELDS}
        values["name"] = " ".join(str(values["name"]).split())
        if not values["name"]:
            errors["name"] = "Enter a name."
        values["delivery_estimate"] = " ".join(str(values["delivery_estimate"] or "").split())
        bands = [
            Band(b.up_to, b.price) if isinstance(b, BandIn) else Band(b["up_to"], b["price"])
            for b in values["bands"] or []
        ]
        if values["kind"] == "flat":
            values["bands"] = []
        else:
            try:
                values["bands"] = [[band.up_to, band.price] for band in validate_bands(bands)]
            except ValueError as exc:
                errors["bands"] = str(exc)
            values["price"] = 0
        clash = select(ShippingMethod.id).where(
            ShippingMethod.zone_id == zone_id, ShippingMethod.code == values["code"]
        )
        if method_id is not None:
            clash = clash.where(ShippingMethod.id != method_id)
        if await self.repository.session.scalar(clash) is not None:
            errors["code"] = "Another method of this zone has this code."
        if errors:
            raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
        return values


def _code_taken(_: IntegrityError) -> ValidationFailed:
    """The field error for a method whose code another method of the zone took meanwhile."""
    message = "Another method of this zone has this code."
    return ValidationFailed(message, field_errors={"code": message})
