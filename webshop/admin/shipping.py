"""Admin pages for shipping zones and their methods (``/admin/shipping-zones``) and for tax rates
(``/admin/tax-rates``).

Plain forms answered by a 303 redirect, or the page again with the messages (422); the rules live in
``ShippingZoneService`` and ``TaxRateService``. Amounts are typed in major units ("5.00"), weights in
grams, rates in percent ("20", "5.5").
"""

import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Self

import msgspec
from litestar import MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.response import Template

from webshop.admin import AdminPages
from webshop.admin.pages import AdminRequest, confirm_delete, flash_see_other
from webshop.admin.product_form import major_text, price_field, whole_number
from webshop.api.schemas import PathId
from webshop.checkout.quote import SHIPPING_TAX_CATEGORY, country_name
from webshop.db.models import REST_OF_WORLD, ShippingMethod, ShippingZone, TaxRate, postal
from webshop.deps import SettingsDep, ShippingZonesDep, TaxRatesDep
from webshop.errors import DomainError, ValidationFailed
from webshop.money import MAX_AMOUNT
from webshop.pricing.tax import rate_label
from webshop.shipping.service import (
    BandIn,
    ShippingMethodInput,
    ShippingMethodPatch,
    ShippingZoneInput,
    ShippingZonePatch,
)
from webshop.tax.destination import RegionGap, region_gaps
from webshop.tax.service import TaxRateInput, TaxRatePatch, TaxRateService
from webshop.web.forms import Form, FormFields, form_message, read_form, with_lists
from webshop.web.responses import route_url

_CODE = re.compile(r"^[a-z0-9_-]{1,40}\Z")


class ZoneForm(msgspec.Struct):
    """The zone form: a name, countries (the select repeats ``countries``), rest of the world ("on")."""

    name: str = ""
    countries: list[str] = msgspec.field(default_factory=list)
    rest_of_world: str = ""

    @classmethod
    def of(cls, zone: ShippingZone) -> Self:
        """The form filled in with ``zone``'s values."""
        return cls(zone.name, list(zone.countries or []), "on" if zone.rest_of_world else "")

    def input(self) -> ShippingZoneInput:
        """The form as a ``ShippingZoneInput`` (the service checks it)."""
        return ShippingZoneInput(name=self.name, countries=self.countries, rest_of_world=self.rest_of_world == "on")


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


def read_method_form(form: MethodForm, currency: str) -> tuple[ShippingMethodInput, dict[str, str]]:
    """The form as a ``ShippingMethodInput``, and the errors of what cannot be read (an amount, a number,
    a band line, the code's characters), each left at a stand-in (0, no band, as typed) in the input so
    that the service can still check the rest (``ShippingZoneService.check_method``)."""
    errors: dict[str, str] = {}
    kind = form.kind if form.kind in ("flat", "weight", "subtotal") else "flat"
    price = price_field(form.price, "price", currency, errors, maximum=MAX_AMOUNT) if kind == "flat" else 0
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
                    limit = whole_number(parts[0], "bands", errors, label=f"Line {number}", maximum=MAX_AMOUNT)
                else:
                    limit = price_field(parts[0], "bands", currency, errors, maximum=MAX_AMOUNT)
            band_price = price_field(parts[1], "bands", currency, errors, maximum=MAX_AMOUNT)
            if band_price is not None and (parts[0] == "-" or limit is not None):
                bands.append(BandIn(price=band_price, up_to=limit))
    free_over = (
        price_field(form.free_over, "free_over", currency, errors, maximum=MAX_AMOUNT)
        if form.free_over.strip()
        else None
    )
    position = whole_number(form.position or "0", "position", errors, label="The position", default=0, maximum=1000)
    code = form.code.strip().lower()
    if not _CODE.match(code):
        errors["code"] = "Use 1 to 40 lowercase letters, digits, - or _, like “standard”."
    values = ShippingMethodInput(
        code=code,
        name=form.name.strip() or " ",
        kind=kind,  # type: ignore[arg-type]
        price=price or 0,
        bands=bands,
        free_over=free_over,
        delivery_estimate=form.delivery_estimate.strip()[:120],
        position=position or 0,
        active=form.active == "on",
    )
    return values, errors


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


class ShippingPages:
    """The shipping handlers' ``shipping`` dependency: the zone service (``zones``), the shop's currency (amounts
    are typed in its major units) and the zone pages, filled in again with the messages when a post is refused."""

    def __init__(self, shipping_zones_service: ShippingZonesDep, settings: SettingsDep) -> None:
        self.zones = shipping_zones_service
        self.currency = settings.shop.currency

    async def checked_method(
        self, zone_id: int, form: MethodForm, *, method_id: int | None = None
    ) -> ShippingMethodInput:
        """The method form read (``read_method_form``), once nothing in it is wrong.

        Raises:
            ValidationFailed: what the form cannot read and what the service's rules refuse, together
                (``ShippingZoneService.check_method``), so that one round shows every problem.
        """
        values, errors = read_method_form(form, self.currency)
        if errors:
            rules = await self.zones.check_method(zone_id, values, method_id=method_id)
            raise ValidationFailed("Please correct the marked fields.", field_errors=rules | errors)
        return values

    async def zones_page(self, form: ZoneForm, error: DomainError | None = None) -> Template:
        """Every zone with its methods, and the new-zone form (``error``: why it was refused)."""
        return Template(
            "admin/shipping/index.html",
            context={
                "zones": await self.zones.list_zones(),
                "form": form,
                "currency": self.currency,
                "error": form_message(error),
                "errors": error.field_errors if error else {},
            },
            status_code=error.status_code if error else 200,
        )

    async def zone_page(
        self, zone_id: int, posted: ZoneForm | MethodForm | None = None, error: DomainError | None = None
    ) -> Template:
        """A zone's page: its form and the new-method form; after a refused post, ``posted`` is the form sent
        (the zone's or a new method's), filled in again with ``error``'s messages.

        Raises:
            NotFound: no such zone.
        """
        zone = await self.zones.get_zone(zone_id)
        zone_error = error if isinstance(posted, ZoneForm) else None
        method_error = error if isinstance(posted, MethodForm) else None
        return Template(
            "admin/shipping/zone.html",
            context={
                "zone": zone,
                "form": posted if isinstance(posted, ZoneForm) else ZoneForm.of(zone),
                "method_form": posted if isinstance(posted, MethodForm) else MethodForm(active="on"),
                "currency": self.currency,
                "zone_error": zone_error.detail if zone_error else None,
                "zone_errors": zone_error.field_errors if zone_error else {},
                "method_error": method_error.detail if method_error else None,
                "errors": method_error.field_errors if method_error else {},
            },
            status_code=error.status_code if error else 200,
        )

    async def zone_deletion(self, zone: ShippingZone) -> list[str]:
        """What deleting ``zone`` (its methods loaded) takes with it, for the page that asks first."""
        names = ", ".join(f"“{method.name}”" for method in zone.methods)
        count = len(zone.methods)
        said = [f"Its shipping method{'' if count == 1 else 's'} ({names}) go{'es' if count == 1 else ''} with it."]
        said = said if count else []
        if zone.rest_of_world:
            said.append("Countries no other zone names can then not be shipped to: checkout tells their shoppers so.")
        else:
            where = ", ".join(country_name(code) for code in zone.countries or [])
            rest = any(other.rest_of_world for other in await self.zones.list_zones())
            how = "then ship by the rest of the world's methods" if rest else "can then not be shipped to"
            said.append(f"Addresses in {where} {how}.")
        said.append("Orders already placed keep their shipping method's name and price.")
        return said

    def method_page(
        self, zone: ShippingZone, method: ShippingMethod, form: MethodForm, error: DomainError | None = None
    ) -> Template:
        """A method's page with ``form`` (``error``: why it was refused)."""
        return Template(
            "admin/shipping/method.html",
            context={
                "zone": zone,
                "method": method,
                "method_form": form,
                "currency": self.currency,
                "method_error": form_message(error),
                "errors": error.field_errors if error else {},
            },
            status_code=error.status_code if error else 200,
        )


ShippingDep = NamedDependency[ShippingPages]
"""The ``shipping`` dependency (``ShippingPages``)."""


class AdminShippingController(AdminPages):
    """Shipping zones and their methods for admins."""

    path = "/admin/shipping-zones"
    dependencies = {"shipping": Provide(ShippingPages, sync_to_thread=False)}

    @get("", name="admin_shipping_zones", media_type=MediaType.HTML)
    async def index(self, shipping: ShippingDep) -> Template:
        """Every zone with its methods, and the form for a new zone."""
        return await shipping.zones_page(ZoneForm())

    @post("", name="admin_shipping_zone_create", media_type=MediaType.HTML)
    async def create_zone(self, request: AdminRequest, data: FormFields, shipping: ShippingDep) -> Any:
        """Create a zone, then add its methods on its page."""
        form = read_form(ZoneForm, with_lists(data, "countries"))
        try:
            zone = await shipping.zones.create_zone(request.user, form.input())
        except DomainError as exc:
            return await shipping.zones_page(form, exc)
        message = f"Created the zone “{zone.name}”: now add its shipping methods."
        return flash_see_other(request, message, "admin_shipping_zone", zone_id=zone.id)

    @get("/{zone_id:int}", name="admin_shipping_zone", media_type=MediaType.HTML)
    async def zone(self, zone_id: PathId, shipping: ShippingDep) -> Template:
        """A zone: its countries, its methods, and the form for a new method."""
        return await shipping.zone_page(zone_id)

    @post("/{zone_id:int}", name="admin_shipping_zone_update", media_type=MediaType.HTML)
    async def update_zone(self, request: AdminRequest, zone_id: PathId, data: FormFields, shipping: ShippingDep) -> Any:
        """Save the zone's name and countries."""
        form = read_form(ZoneForm, with_lists(data, "countries"))
        try:
            patch = ShippingZonePatch(**msgspec.structs.asdict(form.input()))
            zone = await shipping.zones.update_zone(request.user, zone_id, patch)
        except DomainError as exc:
            return await shipping.zone_page(zone_id, form, exc)
        return flash_see_other(request, f"Saved the zone “{zone.name}”.", "admin_shipping_zone", zone_id=zone_id)

    @get("/{zone_id:int}/delete", name="admin_shipping_zone_delete_confirm", media_type=MediaType.HTML)
    async def delete_zone_question(self, request: AdminRequest, zone_id: PathId, shipping: ShippingDep) -> Template:
        """Ask before deleting the zone, saying what goes with it (its methods, where its countries ship)."""
        zone = await shipping.zones.get_zone(zone_id)
        back = (zone.name, route_url(request, "admin_shipping_zone", zone_id=zone.id))
        said = await shipping.zone_deletion(zone)
        heading = f"Delete the zone “{zone.name}”?"
        return confirm_delete(
            request,
            heading,
            said,
            "Yes, delete the zone",
            action="admin_shipping_zone_delete",
            back=back,
            zone_id=zone.id,
        )

    @post("/{zone_id:int}/delete", name="admin_shipping_zone_delete", media_type=MediaType.HTML)
    async def delete_zone(self, request: AdminRequest, zone_id: PathId, shipping: ShippingDep) -> Any:
        """Delete a zone and its methods."""
        await shipping.zones.delete_zone(request.user, zone_id)
        return flash_see_other(request, "Deleted the zone and its methods.", "admin_shipping_zones")

    @post("/{zone_id:int}/methods", name="admin_shipping_method_create", media_type=MediaType.HTML)
    async def create_method(
        self, request: AdminRequest, zone_id: PathId, data: Annotated[MethodForm, Form], shipping: ShippingDep
    ) -> Any:
        """Add a method to the zone."""
        try:
            values = await shipping.checked_method(zone_id, data)
            method = await shipping.zones.create_method(request.user, zone_id, values)
        except DomainError as exc:
            return await shipping.zone_page(zone_id, data, exc)
        return flash_see_other(request, f"Added “{method.name}”.", "admin_shipping_zone", zone_id=zone_id)

    @get("/{zone_id:int}/methods/{method_id:int}", name="admin_shipping_method", media_type=MediaType.HTML)
    async def method(self, zone_id: PathId, method_id: PathId, shipping: ShippingDep) -> Template:
        """The form with the method's values."""
        zone = await shipping.zones.get_zone(zone_id)
        method = await shipping.zones.get_method(zone_id, method_id)
        return shipping.method_page(zone, method, method_form_of(method, shipping.currency))

    @post("/{zone_id:int}/methods/{method_id:int}", name="admin_shipping_method_update", media_type=MediaType.HTML)
    async def update_method(
        self,
        request: AdminRequest,
        zone_id: PathId,
        method_id: PathId,
        data: Annotated[MethodForm, Form],
        shipping: ShippingDep,
    ) -> Any:
        """Save the method."""
        zone = await shipping.zones.get_zone(zone_id)
        method = await shipping.zones.get_method(zone_id, method_id)
        try:
            values = await shipping.checked_method(zone_id, data, method_id=method_id)
            patch = ShippingMethodPatch(**msgspec.structs.asdict(values))
            await shipping.zones.update_method(request.user, zone_id, method_id, patch)
        except DomainError as exc:
            return shipping.method_page(zone, method, data, exc)
        return flash_see_other(request, f"Saved “{data.name.strip()}”.", "admin_shipping_zone", zone_id=zone_id)

    @get(
        "/{zone_id:int}/methods/{method_id:int}/delete",
        name="admin_shipping_method_delete_confirm",
        media_type=MediaType.HTML,
    )
    async def delete_method_question(
        self, request: AdminRequest, zone_id: PathId, method_id: PathId, shipping: ShippingDep
    ) -> Template:
        """Ask before deleting the method, saying when its zone is left with none to offer."""
        zone = await shipping.zones.get_zone(zone_id)
        method = await shipping.zones.get_method(zone_id, method_id)
        said = [f"Shoppers in “{zone.name}” can no longer choose it."]
        if not any(other.active for other in zone.methods if other.id != method.id):
            said.append(f"“{zone.name}” has no other active method: its countries cannot check out until it has one.")
        said.append("Orders already placed keep its name and price.")
        back = (method.name, route_url(request, "admin_shipping_method", zone_id=zone.id, method_id=method.id))
        return confirm_delete(
            request,
            f"Delete the shipping method “{method.name}”?",
            said,
            "Yes, delete the method",
            action="admin_shipping_method_delete",
            back=back,
            zone_id=zone.id,
            method_id=method.id,
        )

    @post(
        "/{zone_id:int}/methods/{method_id:int}/delete", name="admin_shipping_method_delete", media_type=MediaType.HTML
    )
    async def delete_method(
        self, request: AdminRequest, zone_id: PathId, method_id: PathId, shipping: ShippingDep
    ) -> Any:
        """Delete the method."""
        await shipping.zones.delete_method(request.user, zone_id, method_id)
        return flash_see_other(request, "Deleted the shipping method.", "admin_shipping_zone", zone_id=zone_id)


class AdminTaxRateController(AdminPages):
    """Tax rates by destination for admins."""

    path = "/admin/tax-rates"

    @get("", name="admin_tax_rates", media_type=MediaType.HTML)
    async def index(self, tax_rates_service: TaxRatesDep) -> Template:
        """Every rate, and the form for a new one."""
        return await _rates_page(tax_rates_service, TaxRateForm())

    @post("", name="admin_tax_rate_create", media_type=MediaType.HTML)
    async def create(
        self, request: AdminRequest, data: Annotated[TaxRateForm, Form], tax_rates_service: TaxRatesDep
    ) -> Any:
        """Create a rate."""
        try:
            await tax_rates_service.create_rate(request.user, _rate_input(data))
        except DomainError as exc:
            return await _rates_page(tax_rates_service, data, exc)
        return flash_see_other(request, "Added the tax rate.", "admin_tax_rates")

    @get("/{tax_rate_id:int}", name="admin_tax_rate", media_type=MediaType.HTML)
    async def edit(self, tax_rate_id: PathId, tax_rates_service: TaxRatesDep) -> Template:
        """The form with the rate's values."""
        rate = await tax_rates_service.get_rate(tax_rate_id)
        return _rate_page(rate, _rate_form(rate))

    @post("/{tax_rate_id:int}", name="admin_tax_rate_update", media_type=MediaType.HTML)
    async def update(
        self,
        request: AdminRequest,
        tax_rate_id: PathId,
        data: Annotated[TaxRateForm, Form],
        tax_rates_service: TaxRatesDep,
    ) -> Any:
        """Save the rate."""
        rate = await tax_rates_service.get_rate(tax_rate_id)
        try:
            patch = TaxRatePatch(**msgspec.structs.asdict(_rate_input(data)))
            await tax_rates_service.update_rate(request.user, tax_rate_id, patch)
        except DomainError as exc:
            return _rate_page(rate, data, exc)
        return flash_see_other(request, "Saved the tax rate.", "admin_tax_rates")

    @get("/{tax_rate_id:int}/delete", name="admin_tax_rate_delete_confirm", media_type=MediaType.HTML)
    async def delete_question(
        self, request: AdminRequest, tax_rate_id: PathId, tax_rates_service: TaxRatesDep
    ) -> Template:
        """Ask before deleting the rate, saying which rate applies there instead (``fallback_for``)."""
        rate = await tax_rates_service.get_rate(tax_rate_id)
        instead = await tax_rates_service.fallback_for(rate)
        where = _place(rate.country, rate.region)
        taxed = "untaxed"
        if instead is not None:
            source = _place(instead.country, instead.region, in_text=True)
            taxed = f"taxed at {rate_label(instead.rate_bp)}, the rate of {source}"
        goods = f"“{rate.tax_category}” goods" + (" and shipping" if rate.tax_category == SHIPPING_TAX_CATEGORY else "")
        said = [f"{goods} to addresses in {_place(rate.country, rate.region, in_text=True)} are then {taxed}."]
        if not rate.region and any(
            other.region and other.tax_category == rate.tax_category and other.country == rate.country
            for other in await tax_rates_service.list_rates()
        ):
            said.append("Its regions with a rate of their own keep it.")
        said.append("Orders already placed keep the tax they were charged.")
        label = f"{rate.name} {rate_label(rate.rate_bp)}, {where}"
        return confirm_delete(
            request,
            f"Delete the tax rate {label}?",
            said,
            "Yes, delete the rate",
            action="admin_tax_rate_delete",
            back=(label, route_url(request, "admin_tax_rate", tax_rate_id=rate.id)),
            tax_rate_id=rate.id,
        )

    @post("/{tax_rate_id:int}/delete", name="admin_tax_rate_delete", media_type=MediaType.HTML)
    async def delete(self, request: AdminRequest, tax_rate_id: PathId, tax_rates_service: TaxRatesDep) -> Any:
        """Delete the rate."""
        await tax_rates_service.delete_rate(request.user, tax_rate_id)
        return flash_see_other(request, "Deleted the tax rate.", "admin_tax_rates")


def _place(country: str, region: str, *, in_text: bool = False) -> str:
    """A tax rate's place in words: "California, United States", "France", "every other country";
    ``in_text``: inside a sentence ("the United States", ``postal.country_in_text``)."""
    if country == REST_OF_WORLD:
        return "every other country"
    if region:
        return f"{postal.region_name(region)}, {country_name(country)}"
    return postal.country_in_text(country) if in_text else country_name(country)


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


def _gap_note(gap: RegionGap) -> str:
    """What a ``RegionGap`` means, in a sentence for the tax rates page."""
    country = postal.country_in_text(gap.country)
    taxed = (
        "untaxed"
        if gap.fallback_bp is None
        else f"taxed at {rate_label(gap.fallback_bp)}, the rate for every other country"
    )
    regions = _and(postal.region_name(region) for region in gap.regions)
    return (
        f"“{gap.tax_category}” goods to addresses in {country} outside {regions}"
        f" are {taxed}: add a rate for {country} without a region to tax them otherwise (0 % too)."
    )


def _and(names: Iterable[str]) -> str:
    """``["A", "B", "C"]`` as "A, B and C"."""
    items = list(names)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


async def _rates_page(rates: TaxRateService, form: TaxRateForm, error: DomainError | None = None) -> Template:
    every = await rates.list_rates()
    return Template(
        "admin/tax/index.html",
        context={
            "rates": every,
            "gaps": [_gap_note(gap) for gap in region_gaps(every)],
            "form": form,
            "rest_of_world": REST_OF_WORLD,
            "error": form_message(error),
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
            "error": form_message(error),
            "errors": error.field_errors if error else {},
        },
        status_code=error.status_code if error else 200,
    )
