"""Admin pages for shipping zones and their methods (``/admin/shipping-zones``) and for tax rates
(``/admin/tax-rates``).

Plain forms answered by a 303 redirect, or the page again with the messages (422); the rules live in
``ShippingZoneService`` and ``TaxRateService``. Amounts are typed in major units ("5.00"), weights in
grams, rates in percent ("20", "5.5").
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import msgspec
from litestar import MediaType, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.admin import AdminPages
from webshop.admin.product_form import major_text, price_field, whole_number
from webshop.config import Settings
from webshop.db.models import REST_OF_WORLD, ShippingMethod, ShippingZone, TaxRate, User
from webshop.errors import DomainError, ValidationFailed
from webshop.shipping.service import (
    BandIn,
    ShippingMethodInput,
    ShippingMethodPatch,
    ShippingZoneInput,
    ShippingZonePatch,
    ShippingZoneService,
)
from webshop.tax.service import TaxRateInput, TaxRatePatch, TaxRateService
from webshop.web.forms import Form, FormFields, read_form, with_lists
from webshop.web.responses import see_other_to

_CODE = re.compile(r"^[a-z0-9_-]{1,40}\Z")


class ZoneForm(msgspec.Struct):
    """The zone form: a name, countries (the select repeats ``countries``), rest of the world ("on")."""

    name: str = ""
    countries: list[str] = msgspec.field(default_factory=list)
    rest_of_world: str = ""


class MethodForm(msgspec.Struct):
    """The method form as typed; ``bands`` is one band per line: an upper limit (grams or an amount, ``-``
    for no limit) and a price, e.g. ``2000 7.90``."""

    code: str = ""
    name: str = ""
    kind: str = "flat"
    price: str = ""
    bands: str = ""
    free_over: str = ""
    delivery_estimate: str = ""
    position: str = "0"
    active: str = ""


class TaxRateForm(msgspec.Struct):
    """The tax-rate form: country (``*``: every other), region, category, percent, name."""

    country: str = ""
    region: str = ""
    tax_category: str = "standard"
    rate: str = ""
    name: str = "VAT"


def read_method_form(form: MethodForm, currency: str) -> ShippingMethodInput:
    """The form as a ``ShippingMethodInput``.

    Raises:
        ValidationFailed: an amount, number or band line that cannot be read.
    """
    errors: dict[str, str] = {}
    kind = form.kind if form.kind in ("flat", "weight", "subtotal") else "flat"
    price = price_field(form.price, "price", currency, errors) if kind == "flat" else 0
    bands: list[BandIn] = []
    if kind != "flat":
        for number, line in enumerate(form.bands.splitlines(), 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                errors["bands"] = f"Line {number}: write an upper limit and a price, like “2000 7.90”."
                continue
            limit = None
            if parts[0] != "-":
                if kind == "weight":
                    limit = whole_number(parts[0], "bands", errors, label=f"Line {number}")
                else:
                    limit = price_field(parts[0], "bands", currency, errors)
            band_price = price_field(parts[1], "bands", currency, errors)
            if band_price is not None and (parts[0] == "-" or limit is not None):
                bands.append(BandIn(price=band_price, up_to=limit))
    free_over = price_field(form.free_over, "free_over", currency, errors) if form.free_over.strip() else None
    position = whole_number(form.position or "0", "position", errors, label="The position", default=0)
    code = form.code.strip().lower()
    if not _CODE.match(code):
        errors["code"] = "Use 1 to 40 lowercase letters, digits, - or _, like “standard”."
    if errors:
        raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
    return ShippingMethodInput(
        code=code,
        name=form.name.strip() or " ",
        kind=kind,  # type: ignore[arg-type]
        price=price or 0,
        bands=bands,
        free_over=free_over,
        delivery_estimate=form.delivery_estimate.strip()[:120],
        position=min(position or 0, 1000),
        active=form.active == "on",
    )


def method_form_of(method: ShippingMethod, currency: str) -> MethodForm:
    """The form filled with ``method``'s values."""

    def limit(up_to: int | None) -> str:
        if up_to is None:
            return "-"
        return str(up_to) if method.kind == "weight" else major_text(up_to, currency)

    return MethodForm(
        code=method.code,
        name=method.name,
        kind=method.kind,
        price=major_text(method.price, currency),
        bands="\n".join(f"{limit(up_to)} {major_text(price, currency)}" for up_to, price in method.bands or []),
        free_over=major_text(method.free_over, currency) if method.free_over is not None else "",
        delivery_estimate=method.delivery_estimate,
        position=str(method.position),
        active="on" if method.active else "",
    )


def read_rate(text: str) -> int | None:
    """A percent as typed ("20", "5.5") in basis points, without floats; None if it is not one."""
    try:
        percent = Decimal(text.strip().rstrip("%").strip())
    except InvalidOperation:
        return None
    if not percent.is_finite() or percent < 0 or percent > 100 or (percent * 100) % 1:
        return None
    return int(percent * 100)


class AdminShippingController(AdminPages):
    """Shipping zones and their methods for admins."""

    path = "/admin/shipping-zones"

    @get("", name="admin_shipping_zones", media_type=MediaType.HTML)
    async def index(
        self, shipping_zones_service: NamedDependency[ShippingZoneService], settings: NamedDependency[Settings]
    ) -> Template:
        """Every zone with its methods, and the form for a new zone."""
        return await _zones_page(shipping_zones_service, settings, ZoneForm())

    @post("", name="admin_shipping_zone_create", media_type=MediaType.HTML)
    async def create_zone(
        self,
        request: Request[User, Any, Any],
        data: FormFields,
        shipping_zones_service: NamedDependency[ShippingZoneService],
        settings: NamedDependency[Settings],
    ) -> Any:
        """Create a zone, then add its methods on its page."""
        form = read_form(ZoneForm, with_lists(data, "countries"))
        try:
            zone = await shipping_zones_service.create_zone(
                request.user,
                ShippingZoneInput(name=form.name, countries=form.countries, rest_of_world=form.rest_of_world == "on"),
            )
        except DomainError as exc:
            return await _zones_page(shipping_zones_service, settings, form, exc)
        flash(request, f"Created the zone “{zone.name}”: now add its shipping methods.", "success")
        return see_other_to(request, "admin_shipping_zone", zone_id=zone.id)

    @get("/{zone_id:int}", name="admin_shipping_zone", media_type=MediaType.HTML)
    async def zone(
        self,
        zone_id: FromPath[int],
        shipping_zones_service: NamedDependency[ShippingZoneService],
        settings: NamedDependency[Settings],
    ) -> Template:
        """A zone: its countries, its methods, and the form for a new method."""
        zone = await shipping_zones_service.get_zone(zone_id)
        form = ZoneForm(zone.name, list(zone.countries or []), "on" if zone.rest_of_world else "")
        return _zone_page(zone, settings, form, MethodForm(active="on"))

    @post("/{zone_id:int}", name="admin_shipping_zone_update", media_type=MediaType.HTML)
    async def update_zone(
        self,
        request: Request[User, Any, Any],
        zone_id: FromPath[int],
        data: FormFields,
        shipping_zones_service: NamedDependency[ShippingZoneService],
        settings: NamedDependency[Settings],
    ) -> Any:
        """Save the zone's name and countries."""
        form = read_form(ZoneForm, with_lists(data, "countries"))
        try:
            patch = ShippingZonePatch(
                name=form.name, countries=form.countries, rest_of_world=form.rest_of_world == "on"
            )
            zone = await shipping_zones_service.update_zone(request.user, zone_id, patch)
        except DomainError as exc:
            zone = await shipping_zones_service.get_zone(zone_id)
            return _zone_page(zone, settings, form, MethodForm(active="on"), zone_error=exc)
        flash(request, f"Saved the zone “{zone.name}”.", "success")
        return see_other_to(request, "admin_shipping_zone", zone_id=zone_id)

    @post("/{zone_id:int}/delete", name="admin_shipping_zone_delete", media_type=MediaType.HTML)
    async def delete_zone(
        self,
        request: Request[User, Any, Any],
        zone_id: FromPath[int],
        shipping_zones_service: NamedDependency[ShippingZoneService],
    ) -> Any:
        """Delete a zone and its methods."""
        await shipping_zones_service.delete_zone(request.user, zone_id)
        flash(request, "Deleted the zone and its methods.", "success")
        return see_other_to(request, "admin_shipping_zones")

    @post("/{zone_id:int}/methods", name="admin_shipping_method_create", media_type=MediaType.HTML)
    async def create_method(
        self,
        request: Request[User, Any, Any],
        zone_id: FromPath[int],
        data: Annotated[MethodForm, Form],
        shipping_zones_service: NamedDependency[ShippingZoneService],
        settings: NamedDependency[Settings],
    ) -> Any:
        """Add a method to the zone."""
        try:
            values = read_method_form(data, settings.shop.currency)
            method = await shipping_zones_service.create_method(request.user, zone_id, values)
        except DomainError as exc:
            zone = await shipping_zones_service.get_zone(zone_id)
            form = ZoneForm(zone.name, list(zone.countries or []), "on" if zone.rest_of_world else "")
            return _zone_page(zone, settings, form, data, method_error=exc)
        flash(request, f"Added “{method.name}”.", "success")
        return see_other_to(request, "admin_shipping_zone", zone_id=zone_id)

    @get("/{zone_id:int}/methods/{method_id:int}", name="admin_shipping_method", media_type=MediaType.HTML)
    async def method(
        self,
        zone_id: FromPath[int],
        method_id: FromPath[int],
        shipping_zones_service: NamedDependency[ShippingZoneService],
        settings: NamedDependency[Settings],
    ) -> Template:
        """The form with the method's values."""
        zone = await shipping_zones_service.get_zone(zone_id)
        method = await shipping_zones_service.get_method(zone_id, method_id)
        return _method_page(zone, method, method_form_of(method, settings.shop.currency), settings)

    @post("/{zone_id:int}/methods/{method_id:int}", name="admin_shipping_method_update", media_type=MediaType.HTML)
    async def update_method(
        self,
        request: Request[User, Any, Any],
        zone_id: FromPath[int],
        method_id: FromPath[int],
        data: Annotated[MethodForm, Form],
        shipping_zones_service: NamedDependency[ShippingZoneService],
        settings: NamedDependency[Settings],
    ) -> Any:
        """Save the method."""
        zone = await shipping_zones_service.get_zone(zone_id)
        method = await shipping_zones_service.get_method(zone_id, method_id)
        try:
            values = read_method_form(data, settings.shop.currency)
            patch = ShippingMethodPatch(**msgspec.structs.asdict(values))
            await shipping_zones_service.update_method(request.user, zone_id, method_id, patch)
        except DomainError as exc:
            return _method_page(zone, method, data, settings, exc)
        flash(request, f"Saved “{data.name.strip()}”.", "success")
        return see_other_to(request, "admin_shipping_zone", zone_id=zone_id)

    @post(
        "/{zone_id:int}/methods/{method_id:int}/delete", name="admin_shipping_method_delete", media_type=MediaType.HTML
    )
    async def delete_method(
        self,
        request: Request[User, Any, Any],
        zone_id: FromPath[int],
        method_id: FromPath[int],
        shipping_zones_service: NamedDependency[ShippingZoneService],
    ) -> Any:
        """Delete the method."""
        await shipping_zones_service.delete_method(request.user, zone_id, method_id)
        flash(request, "Deleted the shipping method.", "success")
        return see_other_to(request, "admin_shipping_zone", zone_id=zone_id)


class AdminTaxRateController(AdminPages):
    """Tax rates by destination for admins."""

    path = "/admin/tax-rates"

    @get("", name="admin_tax_rates", media_type=MediaType.HTML)
    async def index(self, tax_rates_service: NamedDependency[TaxRateService]) -> Template:
        """Every rate, and the form for a new one."""
        return await _rates_page(tax_rates_service, TaxRateForm())

    @post("", name="admin_tax_rate_create", media_type=MediaType.HTML)
    async def create(
        self,
        request: Request[User, Any, Any],
        data: Annotated[TaxRateForm, Form],
        tax_rates_service: NamedDependency[TaxRateService],
    ) -> Any:
        """Create a rate."""
        try:
            await tax_rates_service.create_rate(request.user, _rate_input(data))
        except DomainError as exc:
            return await _rates_page(tax_rates_service, data, exc)
        flash(request, "Added the tax rate.", "success")
        return see_other_to(request, "admin_tax_rates")

    @get("/{tax_rate_id:int}", name="admin_tax_rate", media_type=MediaType.HTML)
    async def edit(self, tax_rate_id: FromPath[int], tax_rates_service: NamedDependency[TaxRateService]) -> Template:
        """The form with the rate's values."""
        rate = await tax_rates_service.get_rate(tax_rate_id)
        return _rate_page(rate, _rate_form(rate))

    @post("/{tax_rate_id:int}", name="admin_tax_rate_update", media_type=MediaType.HTML)
    async def update(
        self,
        request: Request[User, Any, Any],
        tax_rate_id: FromPath[int],
        data: Annotated[TaxRateForm, Form],
        tax_rates_service: NamedDependency[TaxRateService],
    ) -> Any:
        """Save the rate."""
        rate = await tax_rates_service.get_rate(tax_rate_id)
        try:
            values = _rate_input(data)
            await tax_rates_service.update_rate(
                request.user, tax_rate_id, TaxRatePatch(**msgspec.structs.asdict(values))
            )
        except DomainError as exc:
            return _rate_page(rate, data, exc)
        flash(request, "Saved the tax rate.", "success")
        return see_other_to(request, "admin_tax_rates")

    @post("/{tax_rate_id:int}/delete", name="admin_tax_rate_delete", media_type=MediaType.HTML)
    async def delete(
        self,
        request: Request[User, Any, Any],
        tax_rate_id: FromPath[int],
        tax_rates_service: NamedDependency[TaxRateService],
    ) -> Any:
        """Delete the rate."""
        await tax_rates_service.delete_rate(request.user, tax_rate_id)
        flash(request, "Deleted the tax rate.", "success")
        return see_other_to(request, "admin_tax_rates")


def _rate_input(form: TaxRateForm) -> TaxRateInput:
    rate = read_rate(form.rate)
    category = form.tax_category.strip().lower()
    errors = {}
    if rate is None:
        errors["rate"] = "Enter a percent from 0 to 100 with at most 2 decimals, like 20 or 5.5."
    if not _CODE.match(category):
        errors["tax_category"] = "Use lowercase letters, digits, - or _, like “standard”."
    if errors:
        raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
    return TaxRateInput(
        country=form.country.strip() or "?",
        region=form.region.strip(),
        tax_category=category,
        rate_bp=rate or 0,
        name=form.name.strip()[:60],
    )


def _rate_form(rate: TaxRate) -> TaxRateForm:
    whole, part = divmod(rate.rate_bp, 100)
    percent = str(whole) if not part else f"{whole}.{part:02d}".rstrip("0")
    return TaxRateForm(rate.country, rate.region, rate.tax_category, percent, rate.name)


async def _zones_page(
    zones: ShippingZoneService, settings: Settings, form: ZoneForm, error: DomainError | None = None
) -> Template:
    return Template(
        "admin/shipping/index.html",
        context={
            "zones": await zones.list_zones(),
            "form": form,
            "currency": settings.shop.currency,
            "error": error.detail if error else None,
            "errors": error.field_errors if error else {},
        },
        status_code=error.status_code if error else 200,
    )


def _zone_page(
    zone: ShippingZone,
    settings: Settings,
    form: ZoneForm,
    method_form: MethodForm,
    *,
    zone_error: DomainError | None = None,
    method_error: DomainError | None = None,
) -> Template:
    error = zone_error or method_error
    return Template(
        "admin/shipping/zone.html",
        context={
            "zone": zone,
            "form": form,
            "method_form": method_form,
            "currency": settings.shop.currency,
            "zone_error": zone_error.detail if zone_error else None,
            "zone_errors": zone_error.field_errors if zone_error else {},
            "method_error": method_error.detail if method_error else None,
            "errors": method_error.field_errors if method_error else {},
        },
        status_code=error.status_code if error else 200,
    )


def _method_page(
    zone: ShippingZone, method: ShippingMethod, form: MethodForm, settings: Settings, error: DomainError | None = None
) -> Template:
    return Template(
        "admin/shipping/method.html",
        context={
            "zone": zone,
            "method": method,
            "method_form": form,
            "currency": settings.shop.currency,
            "method_error": error.detail if error else None,
            "errors": error.field_errors if error else {},
        },
        status_code=error.status_code if error else 200,
    )


async def _rates_page(rates: TaxRateService, form: TaxRateForm, error: DomainError | None = None) -> Template:
    return Template(
        "admin/tax/index.html",
        context={
            "rates": await rates.list_rates(),
            "form": form,
            "rest_of_world": REST_OF_WORLD,
            "error": error.detail if error else None,
            "errors": error.field_errors if error else {},
        },
        status_code=error.status_code if error else 200,
    )


def _rate_page(rate: TaxRate, form: TaxRateForm, error: DomainError | None = None) -> Template:
    return Template(
        "admin/tax/form.html",
        context={
            "rate": rate,
            "form": form,
            "rest_of_world": REST_OF_WORLD,
            "error": error.detail if error else None,
            "errors": error.field_errors if error else {},
        },
        status_code=error.status_code if error else 200,
    )
