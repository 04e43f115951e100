"""Tax rates by destination: a rate (basis points) per country, or ``*`` for every country without rates
of its own, optionally per region (ISO 3166-2: once a country has a rate by region, its addresses must
name their region, ``webshop.tax.destination.RegionNeeded``), and tax category. They replace ``WEBSHOP_TAX_RATES``,
which seeded the ``*`` rates on upgrade; ``webshop.checkout.quote`` charges them."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import select

from webshop.audit.service import Audited
from webshop.checkout.quote import country_name
from webshop.db.models import REST_OF_WORLD, TaxRate, User, postal
from webshop.db.repository import assign, patched, repository_for
from webshop.errors import ValidationFailed
from webshop.pricing.tax import rate_label
from webshop.text import Line

if TYPE_CHECKING:
    from webshop.config.settings import ShopSettings

Country = Annotated[
    str, msgspec.Meta(pattern=r"^([A-Za-z]{2}|\*)\Z", description="ISO 3166-1 alpha-2, or * for every other country")
]
Region = Annotated[str, msgspec.Meta(pattern=r"^([A-Za-z0-9]{1,3}(-[A-Za-z0-9]{1,3})?)?\Z", description="ISO 3166-2")]
Category = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_-]{1,40}\Z", examples=["standard"])]
RateBp = Annotated[int, msgspec.Meta(ge=0, le=10_000, description="Basis points: 2000 is 20 %")]
RateName = Annotated[Line, msgspec.Meta(max_length=60)]
FIELDS = ("country", "region", "tax_category", "rate_bp", "name")
_REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}\Z")


class TaxRateInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A tax rate: ``rate_bp`` basis points for ``tax_category`` in ``country`` (``*``: every country
    without rates of its own) and optionally one ``region`` of it (ISO 3166-2, e.g. ``US-CA``)."""

    country: Country
    tax_category: Category
    rate_bp: RateBp
    region: Region = ""
    name: RateName = "Tax"


class TaxRatePatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial change of a tax rate; see ``TaxRateInput``."""

    country: Country | msgspec.UnsetType = msgspec.UNSET
    tax_category: Category | msgspec.UnsetType = msgspec.UNSET
    rate_bp: RateBp | msgspec.UnsetType = msgspec.UNSET
    region: Region | msgspec.UnsetType = msgspec.UNSET
    name: RateName | msgspec.UnsetType = msgspec.UNSET


class TaxRateService(SQLAlchemyAsyncRepositoryService[TaxRate], Audited):
    """Tax rates for admins; every write commits and is in the audit trail.

    Args:
        session: The session to work in.
        shop: The shop settings, whose tax categories (``WEBSHOP_TAX_RATES``' keys) a rate may name, as a
            variant may (``None``: any well-formed category, for tools and tests).
    """

    repository_type = repository_for(TaxRate)

    def __init__(self, session: Any, *, shop: ShopSettings | None = None, **repo_kwargs: Any) -> None:
        super().__init__(session=session, **repo_kwargs)
        self.shop = shop

    async def list_rates(self) -> list[TaxRate]:
        """Every rate, by country (``*`` first), region and category."""
        rows = await self.repository.session.scalars(
            select(TaxRate).order_by(
                TaxRate.country != REST_OF_WORLD, TaxRate.country, TaxRate.region, TaxRate.tax_category
            )
        )
        return list(rows)

    async def get_rate(self, rate_id: int) -> TaxRate:
        """One rate.

        Raises:
            NotFoundError: no such rate (advanced-alchemy's, answered as a 404 with that message).
        """
        return await self.get(rate_id, error_messages={"not_found": "There is no such tax rate."})

    async def fallback_for(self, rate: TaxRate) -> TaxRate | None:
        """The rate that applies where ``rate`` does once it is gone (``webshop.tax.destination``'s
        precedence): a region's falls back to that of a region it lies in, else to its country's rate of
        the category, a country's to the ``*`` one; None when that place and category would be untaxed."""
        parents = postal.region_and_parents(rate.country, rate.region)[1:] if rate.region else []
        places = [(rate.country, parent) for parent in parents] + ([(rate.country, "")] if rate.region else [])
        if rate.country != REST_OF_WORLD:
            places.append((REST_OF_WORLD, ""))
        for country, region in places:
            found: TaxRate | None = await self.repository.session.scalar(
                select(TaxRate).where(
                    TaxRate.country == country, TaxRate.region == region, TaxRate.tax_category == rate.tax_category
                )
            )
            if found is not None:
                return found
        return None

    async def create_rate(self, actor: User | None, data: TaxRateInput) -> TaxRate:
        """Create a rate; committed.

        Raises:
            ValidationFailed: an unknown country or region, a tax category no product can have, or a rate
                that exists for the same country, region and category.
        """
        rate = TaxRate(**await self._values(msgspec.structs.asdict(data)))
        self.repository.session.add(rate)
        await self._commit(actor, rate, "create")
        return rate

    async def update_rate(self, actor: User | None, rate_id: int, patch: TaxRatePatch) -> TaxRate:
        """Change a rate; committed.

        Raises:
            NotFound: no such rate. ValidationFailed: as ``create_rate``.
        """
        rate = await self.get_rate(rate_id)
        assign(rate, await self._values(patched(rate, FIELDS, patch), rate.id, rate.tax_category))
        await self._commit(actor, rate, "update")
        return rate

    async def delete_rate(self, actor: User | None, rate_id: int) -> None:
        """Delete a rate; committed. That place and category are then taxed at the rate ``fallback_for``
        names (a region's falls back to its country's, a country's to the ``*`` one), or untaxed; a country
        whose last rate by region goes no longer asks its addresses for their region.

        Raises:
            NotFound: no such rate.
        """
        rate = await self.get_rate(rate_id)
        await self.delete_audited(actor, "tax_rate", rate, f"Tax rate {_label(rate)} deleted")

    async def _commit(self, actor: User | None, rate: TaxRate, action: str) -> None:
        summary = f"Tax rate {_label(rate)} {action}d"
        await self.commit_audited(actor, "tax_rate", rate, action, summary, conflict=lambda _: _duplicate())

    async def _values(
        self, values: dict[str, Any], rate_id: int | None = None, before_category: str = ""
    ) -> dict[str, Any]:
        """The rate's fields cleaned and checked (a category only when it is new or changes: a rate of one the
        settings dropped can still be renamed).

        Raises:
            ValidationFailed: see ``create_rate``.
        """
        errors: dict[str, str] = {}
        values = {k: values[k] for k in FIELDS}
        values["country"] = str(values["country"]).upper()
        values["region"] = str(values["region"] or "").upper()
        values["name"] = " ".join(str(values["name"] or "").split()) or "Tax"
        country = values["country"]
        if country != REST_OF_WORLD and country_name(country) == country:
            errors["country"] = "Choose a country from the list (ISO 3166-1), or * for every other country."
        categories = None if self.shop is None else self.shop.tax_rates_bp
        changed = rate_id is None or values["tax_category"] != before_category
        if changed and categories is not None and values["tax_category"] not in categories:
            named = ", ".join(sorted(categories))
            errors["tax_category"] = f"Choose a tax category the shop's products can have ({named})."
        region = values["region"]
        if region and country != REST_OF_WORLD:  # "CA" or "California" for the US: its code, as checkout reads it
            region = values["region"] = postal.region_code(country, region) or region
        if region:
            # A subdivision the country has (ISO 3166-2, ``pycountry``): an address names it, and its rates apply.
            known = country != REST_OF_WORLD and _REGION.match(region) and region.startswith(country + "-")
            if country == REST_OF_WORLD:
                errors["region"] = "A rate for every other country cannot be by region: leave the region empty."
            elif not known or postal.region_code(country, region) is None:
                example = postal.region_example(country).partition(" for ")[0]
                like = f", like {country}-{example}" if example else ""
                errors["region"] = (
                    f"Give the ISO 3166-2 code of a region of {postal.country_in_text(country)}{like}, or none."
                )
        clash = select(TaxRate.id).where(
            TaxRate.country == country, TaxRate.region == region, TaxRate.tax_category == values["tax_category"]
        )
        if rate_id is not None:
            clash = clash.where(TaxRate.id != rate_id)
        if await self.repository.session.scalar(clash) is not None:
            errors.update(_duplicate().field_errors)
        if errors:
            raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
        return values


def _duplicate() -> ValidationFailed:
    message = "This country (and region) already has a rate for this tax category."
    return ValidationFailed(message, field_errors={"tax_category": message})


def _label(rate: TaxRate) -> str:
    where = rate.country + (f" {rate.region}" if rate.region else "")
    return f"{where} {rate.tax_category} {rate_label(rate.rate_bp)}"
