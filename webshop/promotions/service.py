"""Promotions: create, change, list and withdraw them; the rules of a valid promotion.

A promotion's terms are checked by ``webshop.pricing.promotions.PromotionTerms`` (kind and value) plus
the rules here: a code is unique whatever its case (stored as ``normalise_code`` makes it, Vendure #4364),
the end comes after the start, and the targeted categories, products and variants exist. A promotion
that orders have used is withdrawn (``active = False``) instead of deleted, so its uses stay counted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from webshop.audit.service import Audited
from webshop.db.models import Category, Product, Promotion, PromotionUsage, User, Variant
from webshop.db.repository import assign, patched, repository_for
from webshop.errors import ValidationFailed
from webshop.money import MAX_AMOUNT
from webshop.pricing.codes import normalise_code
from webshop.pricing.promotions import PromotionKind, PromotionTerms
from webshop.text import VisibleLine
from webshop.validation import validated

Kind = Literal["percentage", "fixed_amount", "free_shipping"]
Count = Annotated[int, msgspec.Meta(ge=1, le=MAX_AMOUNT)]
Amount = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT)]
Ids = Annotated[list[Annotated[int, msgspec.Meta(ge=1, le=2**53)]], msgspec.Meta(max_length=500)]
Name = Annotated[VisibleLine, msgspec.Meta(max_length=120)]
Code = Annotated[str, msgspec.Meta(min_length=1, max_length=40, pattern=r"^\s*[A-Za-z0-9_-]+\s*\Z")]

FIELDS = (
    "name",
    "code",
    "kind",
    "value",
    "usage_limit",
    "per_customer_limit",
    "starts_at",
    "ends_at",
    "min_subtotal",
    "combinable",
    "active",
    "category_ids",
    "product_ids",
    "variant_ids",
)


class PromotionInput(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A promotion as created (``POST /api/promotions``, the admin form).

    Attributes:
        name: Shown to shoppers ("Spring sale").
        code: The code to enter, any case (stored upper-case), or null for an automatic promotion.
        kind: ``percentage`` off, ``fixed_amount`` off, or ``free_shipping``.
        value: Whole percent 1..100 (percentage) or minor units (fixed_amount); ignored for free_shipping.
        usage_limit: Uses allowed in all (null: no limit). per_customer_limit: Uses per customer.
        starts_at / ends_at: Validity (RFC 3339, with a time zone); null: open.
        min_subtotal: Minor units the cart's subtotal must reach.
        combinable: Whether it may be used with other combinable promotions.
        active: False withdraws it.
        category_ids / product_ids / variant_ids: What it applies to (all empty: the whole order; a
            category includes its subcategories).
    """

    name: Name
    kind: Kind
    code: Code | None = None
    value: Amount = 0
    usage_limit: Count | None = None
    per_customer_limit: Count | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    min_subtotal: Amount = 0
    combinable: bool = True
    active: bool = True
    category_ids: Ids = msgspec.field(default_factory=list)
    product_ids: Ids = msgspec.field(default_factory=list)
    variant_ids: Ids = msgspec.field(default_factory=list)


class PromotionPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A partial change (``PATCH /api/promotions/{id}``): only the fields sent change; see ``PromotionInput``."""

    name: Name | msgspec.UnsetType = msgspec.UNSET
    kind: Kind | msgspec.UnsetType = msgspec.UNSET
    code: Code | msgspec.UnsetType | None = msgspec.UNSET
    value: Amount | msgspec.UnsetType = msgspec.UNSET
    usage_limit: Count | msgspec.UnsetType | None = msgspec.UNSET
    per_customer_limit: Count | msgspec.UnsetType | None = msgspec.UNSET
    starts_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    ends_at: datetime | msgspec.UnsetType | None = msgspec.UNSET
    min_subtotal: Amount | msgspec.UnsetType = msgspec.UNSET
    combinable: bool | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET
    category_ids: Ids | msgspec.UnsetType = msgspec.UNSET
    product_ids: Ids | msgspec.UnsetType = msgspec.UNSET
    variant_ids: Ids | msgspec.UnsetType = msgspec.UNSET


class PromotionService(SQLAlchemyAsyncRepositoryService[Promotion], Audited):
    """Promotions for admins; every write commits and is in the audit trail."""

    repository_type = repository_for(Promotion)

    async def list_promotions(self) -> list[Promotion]:
        """Every promotion, active ones first, newest first."""
        rows = await self.repository.session.scalars(
            select(Promotion).order_by(Promotion.active.desc(), Promotion.id.desc())
        )
        return list(rows)

    async def get_promotion(self, promotion_id: int) -> Promotion:
        """One promotion.

        Raises:
            NotFoundError: no such promotion (advanced-alchemy's, answered as a 404 with that message).
        """
        return await self.get(promotion_id, error_messages={"not_found": "There is no such promotion."})

    async def create_promotion(self, actor: User | None, data: PromotionInput) -> Promotion:
        """Create a promotion; committed.

        Raises:
            ValidationFailed: a rule of the module docstring is broken; ``field_errors`` says where.
        """
        values = await self._checked(msgspec.structs.asdict(data))
        validated(data, PromotionInput, subject="the promotion")  # the limits, however ``data`` was built
        promotion = Promotion(**values, times_used=0)
        self.repository.session.add(promotion)
        await self._commit(promotion, actor, "create", f"Promotion “{promotion.name}” created")
        return promotion

    async def update_promotion(self, actor: User | None, promotion_id: int, patch: PromotionPatch) -> Promotion:
        """Change the fields ``patch`` sets; committed.

        Raises:
            NotFound: no such promotion. ValidationFailed: as ``create_promotion``.
        """
        promotion = await self.get_promotion(promotion_id)
        values = patched(promotion, FIELDS, patch)
        checked = await self._checked(values, promotion_id=promotion.id, used=promotion.times_used)
        validated(patch, PromotionPatch, subject="the promotion")
        assign(promotion, checked)
        await self._commit(promotion, actor, "update", f"Promotion “{promotion.name}” changed")
        return promotion

    async def check_promotion(self, data: PromotionInput, *, promotion_id: int | None = None) -> dict[str, str]:
        """The ``field_errors`` ``create_promotion`` (or, with ``promotion_id``, ``update_promotion`` with
        every field) would raise for ``data`` (``{}``: none), writing nothing: the admin form asks it when
        some of its fields could not be read, to show every problem in one round.

        Raises:
            NotFound: no promotion ``promotion_id``.
        """
        used = 0 if promotion_id is None else (await self.get_promotion(promotion_id)).times_used
        try:
            await self._checked(msgspec.structs.asdict(data), promotion_id=promotion_id, used=used)
        except ValidationFailed as exc:
            return dict(exc.field_errors)
        return {}

    async def times_used(self, promotion_id: int) -> int:
        """How many uses orders have of the promotion (a cancelled order's use is given back)."""
        used = await self.repository.session.scalar(
            select(func.count()).select_from(PromotionUsage).where(PromotionUsage.promotion_id == promotion_id)
        )
        return int(used or 0)

    async def delete_promotion(self, actor: User | None, promotion_id: int) -> bool:
        """Delete a promotion no order used (True); one that was used is withdrawn instead (False). Committed.

        Raises:
            NotFound: no such promotion.
        """
        promotion = await self.get_promotion(promotion_id)
        if await self.times_used(promotion.id):
            promotion.active = False
            await self._commit(promotion, actor, "withdraw", f"Promotion “{promotion.name}” withdrawn (it was used)")
            return False
        await self.delete_audited(actor, "promotion", promotion, f"Promotion “{promotion.name}” deleted")
        return True

    async def _commit(self, promotion: Promotion, actor: User | None, action: str, summary: str) -> None:
        await self.commit_audited(actor, "promotion", promotion, action, summary, conflict=_conflict)

    async def _checked(
        self, values: dict[str, Any], *, promotion_id: int | None = None, used: int = 0
    ) -> dict[str, Any]:
        """``values`` cleaned (name trimmed, code normalised, ids de-duplicated) or ``ValidationFailed``;
        ``used`` is how many uses the promotion has had (its usage limit may not go below that)."""
        errors: dict[str, str] = {}
        limit = values.get("usage_limit")
        if limit is not None and limit < used:
            errors["usage_limit"] = f"This promotion has been used {used} times already: the limit cannot be lower."
        values = dict(values)
        values["name"] = " ".join(str(values["name"]).split())
        if not values["name"]:
            errors["name"] = "Enter a name."
        code = values.get("code")
        if code is not None and str(code).strip():
            try:
                values["code"] = normalise_code(str(code))
            except ValueError as exc:
                errors["code"] = str(exc)
            else:
                clash = select(Promotion.id).where(Promotion.code == values["code"])
                if promotion_id is not None:
                    clash = clash.where(Promotion.id != promotion_id)
                if await self.repository.session.scalar(clash) is not None:
                    errors["code"] = "Another promotion has this code."
        else:
            values["code"] = None
        if values["kind"] == PromotionKind.FREE_SHIPPING:
            values["value"] = 0
        try:
            PromotionTerms(
                name=values["name"] or "-", code=None, kind=PromotionKind(values["kind"]), value=values["value"]
            )
        except ValueError as exc:
            errors["value"] = str(exc)
        starts, ends = values.get("starts_at"), values.get("ends_at")
        for key in ("starts_at", "ends_at"):
            if values.get(key) is not None and values[key].tzinfo is None:
                errors[key] = "Give a time zone (for example 2026-12-24T00:00:00Z)."
        checkable = "starts_at" not in errors and "ends_at" not in errors
        if checkable and starts is not None and ends is not None and ends <= starts:
            errors["ends_at"] = "The end must come after the start."
        for key, model in (("category_ids", Category), ("product_ids", Product), ("variant_ids", Variant)):
            ids = sorted(set(values.get(key) or []))
            values[key] = ids
            if ids:
                found = set(await self.repository.session.scalars(select(model.id).where(model.id.in_(ids))))
                missing = [str(i) for i in ids if i not in found]
                if missing:
                    what = {"category_ids": "categories", "product_ids": "products", "variant_ids": "variants"}[key]
                    errors[key] = f"There are no {what} with the ids {', '.join(missing)}."
        if errors:
            raise ValidationFailed("Please correct the marked fields.", field_errors=errors)
        return {name: values[name] for name in FIELDS}


def _conflict(error: IntegrityError) -> ValidationFailed:
    """The field error for a promotion the database refused to save."""
    if "within_usage_limit" in str(error.orig):  # checkout took a use since the limit was checked
        message = "The promotion has been used more times than that limit since; reload and try again."
        return ValidationFailed(message, field_errors={"usage_limit": message})
    message = "Another promotion has this code."  # two admins saving the same code at once
    return ValidationFailed(message, field_errors={"code": message})
