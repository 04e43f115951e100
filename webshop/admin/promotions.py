"""Admin pages for promotions (``/admin/promotions``): the list, a form to create or change one, delete.

Plain forms answered by a 303 redirect, or the form again with the messages (422); the rules live in
``PromotionService``. Amounts are typed in major units of the shop's currency ("50.00"), dates with the
browser's date-time picker, read as UTC.
"""

from datetime import UTC, datetime
from typing import Any

import msgspec
from litestar import MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.response import Template
from sqlalchemy import select

from webshop.admin import AdminPages
from webshop.admin.categories import flatten
from webshop.admin.pages import AdminRequest, confirm_delete, flash_see_other
from webshop.admin.product_form import major_text, price_field, whole_number
from webshop.api.schemas import PathId
from webshop.catalog.query import build_tree
from webshop.db.models import Promotion, Variant
from webshop.deps import CategoriesDep, PromotionsDep, SettingsDep
from webshop.errors import DomainError, ValidationFailed
from webshop.money import MAX_AMOUNT
from webshop.promotions.service import PromotionInput, PromotionPatch
from webshop.text import whole_number_text
from webshop.web.forms import FormFields, form_message, read_form, with_lists
from webshop.web.responses import route_url

KINDS = (("percentage", "Percentage off"), ("fixed_amount", "Fixed amount off"), ("free_shipping", "Free shipping"))


class PromotionForm(msgspec.Struct):
    """The promotion form as typed (every field text; checkboxes send "on", several categories repeat)."""

    name: str = ""
    code: str = ""
    kind: str = "percentage"
    value: str = ""
    min_subtotal: str = ""
    usage_limit: str = ""
    per_customer_limit: str = ""
    starts_at: str = ""
    ends_at: str = ""
    combinable: str = ""
    active: str = ""
    category_ids: list[str] = msgspec.field(default_factory=list)
    product_ids: str = ""
    variant_skus: str = ""


def form_of(promotion: Promotion, currency: str, skus: list[str]) -> PromotionForm:
    """The form filled with ``promotion``'s values (``skus``: its variants' SKUs)."""

    def moment(value: datetime | None) -> str:
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if value else ""

    return PromotionForm(
        name=promotion.name,
        code=promotion.code or "",
        kind=promotion.kind,
        value=str(promotion.value) if promotion.kind == "percentage" else major_text(promotion.value, currency),
        min_subtotal=major_text(promotion.min_subtotal, currency) if promotion.min_subtotal else "",
        usage_limit=str(promotion.usage_limit or ""),
        per_customer_limit=str(promotion.per_customer_limit or ""),
        starts_at=moment(promotion.starts_at),
        ends_at=moment(promotion.ends_at),
        combinable="on" if promotion.combinable else "",
        active="on" if promotion.active else "",
        category_ids=[str(i) for i in promotion.category_ids or []],
        product_ids=", ".join(str(i) for i in promotion.product_ids or []),
        variant_skus=", ".join(skus),
    )


async def read_promotion_form(
    form: PromotionForm, currency: str, session: Any
) -> tuple[PromotionInput, dict[str, str]]:
    """The form's values as a ``PromotionInput``, and the errors of the fields that cannot be read (an
    amount, a number, a date, an unknown SKU), each of which is left at a stand-in value in the input
    (no limit, no date, no target) so that the service can still check the rest.

    Raises:
        ValidationFailed: a value no promotion can have (the service names the field).
    """
    errors: dict[str, str] = {}
    kind = form.kind if form.kind in dict(KINDS) else "percentage"
    if kind == "percentage":
        value = whole_number(form.value, "value", errors, label="The percentage", minimum=1, maximum=100)
    elif kind == "fixed_amount":
        value = price_field(form.value, "value", currency, errors, maximum=MAX_AMOUNT)
    else:
        value = 0

    def count(text: str, key: str, label: str) -> int | None:
        if not text.strip():
            return None  # no limit
        return whole_number(text, key, errors, label=label, minimum=1, maximum=MAX_AMOUNT)

    def moment(text: str, key: str) -> datetime | None:
        if not text.strip():
            return None
        try:
            return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)
        except ValueError:
            errors[key] = "Enter a date and time, such as 2026-12-24T09:00."
            return None

    minimum = (
        price_field(form.min_subtotal, "min_subtotal", currency, errors, maximum=MAX_AMOUNT)
        if form.min_subtotal.strip()
        else 0
    )
    product_ids = _product_ids(form.product_ids, errors)
    variant_ids = await _variant_ids(form.variant_skus, session, errors)
    usage_limit = count(form.usage_limit, "usage_limit", "The usage limit")
    per_customer = count(form.per_customer_limit, "per_customer_limit", "The limit per customer")
    starts_at, ends_at = moment(form.starts_at, "starts_at"), moment(form.ends_at, "ends_at")
    category_ids = [i for raw in form.category_ids if (i := whole_number_text(raw, max_digits=15)) is not None]
    try:
        values = PromotionInput(
            name=form.name.strip() or " ",
            code=form.code.strip() or None,
            kind=kind,  # type: ignore[arg-type]
            value=value or 0,
            min_subtotal=minimum or 0,
            combinable=form.combinable == "on",
            active=form.active == "on",
            category_ids=category_ids,
            product_ids=product_ids,
            variant_ids=variant_ids,
            usage_limit=usage_limit,
            per_customer_limit=per_customer,
            starts_at=starts_at,
            ends_at=ends_at,
        )
    except (TypeError, ValueError) as exc:  # a value no promotion can have; the service names the field
        raise ValidationFailed(str(exc)) from exc
    return values, errors


def _listed(text: str) -> list[str]:
    """The items of a list typed with commas (or semicolons) between them."""
    return [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]


def _product_ids(text: str, errors: dict[str, str]) -> list[int]:
    """The product ids typed in ``text``; a word that is no id is an error on ``product_ids``."""
    ids = [whole_number_text(part, max_digits=15) for part in _listed(text)]
    if None in ids:
        errors["product_ids"] = "Enter product ids (numbers) separated by commas."
    return [i for i in ids if i is not None]


async def _variant_ids(text: str, session: Any, errors: dict[str, str]) -> list[int]:
    """The ids of the variants whose SKUs are typed in ``text``; an unknown SKU is an error on ``variant_skus``."""
    skus = _listed(text)
    if not skus:
        return []
    found = dict((await session.execute(select(Variant.sku, Variant.id).where(Variant.sku.in_(skus)))).all())
    missing = [sku for sku in skus if sku not in found]
    if missing:
        errors["variant_skus"] = f"No variant has the SKU {', '.join(missing)}."
    return [found[sku] for sku in skus if sku in found]


class PromotionPages:
    """The promotion handlers' ``promotions`` dependency: the promotion service (``service``), the shop's
    currency (amounts are typed in its major units), the form page and saving a posted form."""

    def __init__(
        self,
        promotions_service: PromotionsDep,
        categories_service: CategoriesDep,
        settings: SettingsDep,
    ) -> None:
        self.service = promotions_service
        self.categories = categories_service
        self.currency = settings.shop.currency

    async def form_page(
        self, form: PromotionForm, promotion: Promotion | None, error: DomainError | None = None
    ) -> Template:
        """The form for a new promotion or for ``promotion``, with ``error``'s messages when a post was refused."""
        tree = build_tree(await self.categories.all_categories())
        return Template(
            "admin/promotions/form.html",
            context={
                "form": form,
                "promotion": promotion,
                "kinds": KINDS,
                "category_options": flatten(tree),
                "error": form_message(error),
                "errors": {
                    ("variant_skus" if k == "variant_ids" else k): v
                    for k, v in (error.field_errors if error else {}).items()
                },
            },
            status_code=error.status_code if error else 200,
        )

    async def save(self, request: AdminRequest, data: FormFields, promotion_id: int | None = None) -> Any:
        """Create a promotion from the posted form, or change promotion ``promotion_id``; back to the list,
        or the form again with what to correct.

        Raises:
            NotFound: no promotion ``promotion_id``.
        """
        form = read_form(PromotionForm, with_lists(data, "category_ids"))
        promotion = None if promotion_id is None else await self.service.get_promotion(promotion_id)
        try:
            values, errors = await read_promotion_form(form, self.currency, self.service.repository.session)
            if errors:  # the service's rules speak too, so that one round shows every problem
                rules = await self.service.check_promotion(values, promotion_id=promotion_id)
                raise ValidationFailed("Please correct the marked fields.", field_errors=rules | errors)
            if promotion_id is None:
                created = await self.service.create_promotion(request.user, values)
                message = f"Created the promotion “{created.name}”."
            else:
                patch = PromotionPatch(**msgspec.structs.asdict(values))
                await self.service.update_promotion(request.user, promotion_id, patch)
                message = f"Saved the promotion “{form.name.strip()}”."
        except DomainError as exc:
            return await self.form_page(form, promotion, exc)
        return flash_see_other(request, message, "admin_promotions")


PromotionPagesDep = NamedDependency[PromotionPages]
"""The ``promotions`` dependency (``PromotionPages``)."""


class AdminPromotionController(AdminPages):
    """Promotions and discount codes for admins."""

    path = "/admin/promotions"
    dependencies = {"promotions": Provide(PromotionPages, sync_to_thread=False)}

    @get("", name="admin_promotions", media_type=MediaType.HTML)
    async def index(self, promotions: PromotionPagesDep) -> Template:
        """Every promotion with its code, kind, validity and uses."""
        return Template(
            "admin/promotions/index.html",
            context={
                "promotions": await promotions.service.list_promotions(),
                "currency": promotions.currency,
                "now": datetime.now(UTC),
            },
        )

    @get("/new", name="admin_promotion_new", media_type=MediaType.HTML)
    async def new(self, promotions: PromotionPagesDep) -> Template:
        """The form for a new promotion."""
        return await promotions.form_page(PromotionForm(active="on", combinable="on"), None)

    @post("/new", name="admin_promotion_create", media_type=MediaType.HTML)
    async def create(self, request: AdminRequest, data: FormFields, promotions: PromotionPagesDep) -> Any:
        """Create the promotion, or show the form again with what to correct."""
        return await promotions.save(request, data)

    @get("/{promotion_id:int}", name="admin_promotion", media_type=MediaType.HTML)
    async def edit(self, promotion_id: PathId, promotions: PromotionPagesDep) -> Template:
        """The form with the promotion's values."""
        promotion = await promotions.service.get_promotion(promotion_id)
        skus = list(
            await promotions.service.repository.session.scalars(
                select(Variant.sku).where(Variant.id.in_(promotion.variant_ids or []))
            )
        )
        return await promotions.form_page(form_of(promotion, promotions.currency, skus), promotion)

    @post("/{promotion_id:int}", name="admin_promotion_update", media_type=MediaType.HTML)
    async def update(
        self, request: AdminRequest, promotion_id: PathId, data: FormFields, promotions: PromotionPagesDep
    ) -> Any:
        """Save the changes, or show the form again with what to correct."""
        return await promotions.save(request, data, promotion_id)

    @get("/{promotion_id:int}/delete", name="admin_promotion_delete_confirm", media_type=MediaType.HTML)
    async def delete_question(
        self, request: AdminRequest, promotion_id: PathId, promotions: PromotionPagesDep
    ) -> Template:
        """Ask before deleting the promotion; one that orders used is withdrawn instead, and the page says so."""
        promotion = await promotions.service.get_promotion(promotion_id)
        used = await promotions.service.times_used(promotion.id)
        code = f" (code {promotion.code})" if promotion.code else ""
        said = [f"Carts that have it{code} no longer get its discount."]
        if used:
            times = "once" if used == 1 else f"{used} times"
            said.insert(0, f"Orders used it {times}, so it is withdrawn (switched off), not deleted: they keep it.")
            heading, confirm = f"Withdraw the promotion “{promotion.name}”?", "Yes, withdraw it"
        else:
            said.append("No order has used it: it is deleted for good.")
            heading, confirm = f"Delete the promotion “{promotion.name}”?", "Yes, delete it"
        back = (promotion.name, route_url(request, "admin_promotion", promotion_id=promotion.id))
        action = "admin_promotion_delete"
        return confirm_delete(request, heading, said, confirm, action=action, back=back, promotion_id=promotion.id)

    @post("/{promotion_id:int}/delete", name="admin_promotion_delete", media_type=MediaType.HTML)
    async def delete(self, request: AdminRequest, promotion_id: PathId, promotions: PromotionPagesDep) -> Any:
        """Delete the promotion, or withdraw it when orders used it."""
        promotion = await promotions.service.get_promotion(promotion_id)
        name = promotion.name
        if await promotions.service.delete_promotion(request.user, promotion_id):
            return flash_see_other(request, f"Deleted the promotion “{name}”.", "admin_promotions")
        withdrawn = f"“{name}” was used by orders, so it is withdrawn (inactive) instead of deleted."
        return flash_see_other(request, withdrawn, "admin_promotions", category="info")
