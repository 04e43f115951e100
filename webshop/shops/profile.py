"""A shop's profile as ``ShopService`` stores it: the fields of a ``ShopWrite``/``ShopPatch`` checked and
cleaned in one pass, so that every problem is named at once (the admin form shows them together).

The checks, in order, each on what the earlier ones let through: the fields' limits (``ShopWrite``'s
constraints), a country of ISO 3166-1, a name that is not blank, a name no other shop reads as
(``ShopProfiles._check_name_free``) and a free slug (``ShopProfiles._slug_for``, which also makes one from
the name when none is given).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from sqlalchemy import select

from webshop.catalog.slugs import free_slug, slugify
from webshop.db.models import Shop
from webshop.db.models.postal import country_line
from webshop.db.models.shops import SHOP_SLUG
from webshop.errors import ValidationFailed
from webshop.text import name_skeleton
from webshop.validation import validated

if TYPE_CHECKING:
    from collections.abc import Mapping


PROFILE = ("name", "slug", "description", "contact_email", "contact_phone")
"""The profile's own columns (the address's are ``ADDRESS``'s and ``country``)."""
ADDRESS = {"line1": "address_line1", "line2": "address_line2", "city": "city", "postal_code": "postal_code"}
"""The address's parts and the columns they are stored in."""


def clean_profile(values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    """Trimmed column values of a ``ShopWrite``/``ShopPatch`` (as builtins), the address flattened; a
    blank name or a country that is not one of ISO 3166-1's codes goes into ``errors`` (unless that
    field has an error already)."""
    clean: dict[str, Any] = {}
    for key in PROFILE:
        if key in values and values[key] is not None:
            clean[key] = str(values[key]).strip()
    if "address" in values:
        address = values["address"] or {}
        for part, column in ADDRESS.items():
            clean[column] = " ".join(str(address.get(part) or "").split())
        clean["country"] = country = str(address.get("country") or "").strip().upper()
        if country and country_line(country) == country and "country" not in errors:
            errors["country"] = "There is no country with this code: enter its ISO 3166-1 code, such as US or DE."
    if "name" in clean and not clean["name"] and "name" not in errors:
        errors["name"] = "Enter the shop's name."
    return clean


class ShopProfiles:
    """``ShopService``'s checks of a shop's profile: ``_checked_profile`` and the name and slug rules."""

    repository: Any

    async def _checked_profile(
        self, data: msgspec.Struct | Mapping[str, Any], shape: type[msgspec.Struct], shop: Shop | None
    ) -> dict[str, Any]:
        """The column values of a new shop's profile (``shop`` ``None``: the slug made from the name when none
        is given) or of a change to ``shop``'s (a name checked only when it reads differently), checked.

        Raises:
            ValidationFailed: every problem at once, ``field_errors`` keyed by the form's field names;
                ``extra["limits"]``: those refused by ``shape``'s limits (``webshop.validation.validated``).
        """
        errors: dict[str, str] = {}
        detail, limits = "", frozenset[str]()
        try:
            raw: Mapping[str, Any] = validated(data, shape, subject="the shop's details")
        except ValidationFailed as exc:  # the other checks still speak, on the fields that could be read
            errors.update(exc.field_errors)
            detail, limits = exc.detail, exc.extra.get("limits", limits)
            raw = msgspec.to_builtins(data) if isinstance(data, msgspec.Struct) else data
        values = clean_profile(raw, errors)
        shop_id = None if shop is None else shop.id
        renamed = "name" in values and (shop is None or name_skeleton(values["name"]) != name_skeleton(shop.name))
        try:
            if renamed and "name" not in errors:
                await self._check_name_free(values["name"], shop_id)
        except ValidationFailed as exc:
            errors.update(exc.field_errors)
        if (shop is None or "slug" in values) and "slug" not in errors:
            name = values.get("name") or ("" if shop is None else shop.name)
            try:
                values["slug"] = await self._slug_for(values.get("slug") or "", name, shop_id)
            except ValidationFailed as exc:
                errors.update(exc.field_errors)
        if errors:
            raise ValidationFailed(detail or next(iter(errors.values())), field_errors=errors, limits=limits)
        return values

    async def _check_name_free(self, name: str, shop_id: int | None) -> None:
        """Refuse a name another shop (not deleted) goes by to a reader (``_name_clash``).

        Raises:
            ValidationFailed: another shop's name has the same skeleton (``field_errors["name"]``).
        """
        if (clash := await self._name_clash(name, shop_id)) is not None:
            message = f"Another shop is called “{clash}”: choose a name shoppers can tell apart from it."
            raise ValidationFailed(message, field_errors={"name": message})

    async def _name_clash(self, name: str, shop_id: int | None) -> str | None:
        """The name of another shop (not deleted) that reads as ``name`` (the same ``name_skeleton``), or
        ``None``: shoppers read "Sold by ..." and e-mails by the name, so two shops that look alike would
        pass one for the other. Checked when a name is chosen (not under a lock: two admins naming two
        shops alike at the same instant both succeed, and the next rename of either is refused)."""
        wanted = name_skeleton(name)
        others = await self.repository.session.execute(
            select(Shop.name).where(Shop.deleted_at.is_(None), Shop.id != (shop_id or 0))
        )
        return next((other for (other,) in others if name_skeleton(other) == wanted), None)

    async def _slug_for(self, wanted: str, name: str, shop_id: int | None) -> str:
        """``wanted`` if free, else (when ``wanted`` is empty) a free slug made from ``name``.

        Raises:
            ValidationFailed: ``wanted`` is taken by another shop.
        """
        session = self.repository.session
        if wanted:
            taken = await session.scalar(select(Shop.id).where(Shop.slug == wanted, Shop.id != (shop_id or 0)))
            if taken is not None:
                message = "Another shop already has this slug."
                raise ValidationFailed(message, field_errors={"slug": message})
            return wanted
        base = slugify(name)[: SHOP_SLUG - 4] or "shop"
        others = select(Shop.slug).where(Shop.slug.startswith(base), Shop.id != (shop_id or 0))
        taken_slugs = set(await session.scalars(others))
        return free_slug([base], taken_slugs, limit=SHOP_SLUG - 4, fallback="shop")
