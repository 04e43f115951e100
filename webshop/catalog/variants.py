"""Variants of a product: add, change, stock (set and adjust), delete; ``ProductVariants`` is a
mixin of ``ProductService`` (``webshop.catalog.products``). Stock only changes through
``webshop.stock.service`` (a conditional UPDATE and a ledger row).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import msgspec
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from webshop.audit.service import AuditService, diff
from webshop.catalog.product_mixin import ProductMixin
from webshop.catalog.rules import (
    _check_variant_set,
    _clean_variant,
    _variant_snapshot,
)
from webshop.catalog.schemas import VariantPatch, VariantWrite
from webshop.catalog.summaries import catalog_write, refresh_product_summaries
from webshop.db.models import Product, StockMovement, User, Variant, WebhookEvent
from webshop.db.repository import sent
from webshop.errors import Conflict, NotFound, ValidationFailed
from webshop.money import format_money
from webshop.promotions.targets import forget_targets
from webshop.webhooks.events import queue_product_events


@dataclass(frozen=True, slots=True)
class VariantRemoval:
    """``ProductVariants.removal``: the variant (its product loaded), its stock ledger rows (``movements``), and
    whether it is the product's ``last`` variant."""

    variant: Variant
    movements: int
    last: bool


class ProductVariants(ProductMixin):
    """``ProductService``'s variant verbs (a mixin: it uses the service's repository and reads)."""

    async def add_variant(
        self,
        product_id: int,
        data: VariantWrite,
        *,
        actor: User | None,
    ) -> Variant:
        """Add a variant (with its initial stock in the ledger) at the end of the product's list; committed.

        Raises:
            NotFound: no such product.
            ValidationFailed: ``field_errors`` keyed by ``VariantWrite`` field (``sku``, ``price``...): SKU
                empty or used anywhere in the shop, option values not one per group or repeating
                another variant's, negative price/stock/threshold...
        """
        product = await self.get_for_admin(product_id, actor=actor)
        errors: dict[str, str] = {}
        row = _clean_variant(msgspec.structs.asdict(data), errors, "", self.tax_categories)
        existing = [{"sku": v.sku, "option_values": list(v.option_values or [])} for v in product.variants]
        _check_variant_set(
            list(product.option_groups or []),
            [*existing, row],
            errors,
            [f"sku {v.sku}: " for v in product.variants] + [""],
        )
        await self._check_skus_free([("", row.get("sku"))], None, errors)
        if errors:
            raise ValidationFailed("The variant was not added. Please correct the marked fields.", field_errors=errors)
        async with catalog_write(self.repository.session, product.id):
            position = max((v.position for v in product.variants), default=-1) + 1
            variant = await self._insert_variant(product, row, position, self.audit, actor)
            await queue_product_events(self.repository.session, WebhookEvent.PRODUCT_UPDATED, [product.id])
        return await self._variant(variant.id)

    async def update_variant(
        self,
        variant_id: int,
        patch: VariantPatch,
        *,
        actor: User | None,
    ) -> Variant:
        """Change a variant's SKU, option values, price, tax category or low-stock threshold; committed.

        Only the fields set in ``patch`` change (stock: see ``set_variant_stock``). Audit:
        ``variant``/``update`` with ``{field: [before, after]}`` (nothing recorded when nothing changed).

        Raises:
            NotFound: no such variant.
            ValidationFailed: ``field_errors`` keyed by field name (``price``, ``sku``...); nothing is written.
        """
        variant = await self._variant(variant_id)
        product = await self.get_for_admin(variant.product_id, actor=actor)
        variant = next(v for v in product.variants if v.id == variant_id)
        errors: dict[str, str] = {}
        fields = sent(patch)
        clean = _clean_variant(fields, errors, "", self.tax_categories, partial=True)
        final = [
            {
                "sku": clean.get("sku", v.sku) if v.id == variant_id else v.sku,
                "option_values": clean.get("option_values", list(v.option_values or []))
                if v.id == variant_id
                else list(v.option_values or []),
            }
            for v in product.variants
        ]
        prefixes = ["" if v.id == variant_id else f"sku {v.sku}: " for v in product.variants]
        _check_variant_set(list(product.option_groups or []), final, errors, prefixes)
        if "sku" in clean and clean["sku"] != variant.sku:
            await self._check_skus_free([("", clean["sku"])], None, errors)
        if errors:
            raise ValidationFailed("The variant was not saved. Please correct the marked fields.", field_errors=errors)
        async with catalog_write(self.repository.session, variant.product_id):
            self._apply_variant(variant, clean, self.audit, actor)
            await queue_product_events(self.repository.session, WebhookEvent.PRODUCT_UPDATED, [variant.product_id])
        return await self._variant(variant_id)

    async def set_variant_stock(
        self, variant_id: int, level: int, *, expected: int | None, actor: User | None, note: str = ""
    ) -> Variant:
        """Set a variant's stock to ``level`` units if it still is ``expected``; committed.

        Goes through ``webshop.stock.service.set_stock`` (one conditional UPDATE, a ledger row of
        reason ``adjustment``) and records a ``stock``/``set`` audit event with ``{"stock": [before, after]}``.

        Args:
            variant_id: The variant.
            level: Units on hand after the change (0 or more).
            expected: The level the admin saw; ``None`` uses the level read now (the API without
                an ``expected`` field: last write wins only against changes older than this request).
            actor: The admin.
            note: Ledger reference (``"admin inline edit"`` by default).

        Raises:
            NotFound: no such variant.
            ValidationFailed: ``level`` is negative (``field_errors["stock"]``).
            StockChanged: the stock is no longer ``expected`` (``current`` says what it is); nothing saved.
        """
        variant = await self._variant(variant_id, actor=actor)
        session = self.repository.session
        async with session.begin_nested():
            await self._set_stock(
                variant, variant.stock if expected is None else expected, level, actor=actor, note=note
            )
        await refresh_product_summaries(session, [variant.product_id])
        await session.commit()
        return await self._variant(variant_id)

    async def adjust_variant_stock(self, variant_id: int, delta: int, *, actor: User | None, note: str) -> Variant:
        """Add ``delta`` units (negative removes) to a variant's stock, never below zero; committed.

        Through ``StockService.adjust``, the one adjustment verb (a ``stock``/``adjust`` audit event).

        Raises:
            NotFound: no such variant.
            Conflict: the stock would go below zero (``field_errors["delta"]``).
            ValidationFailed: it would go above ``MAX_STOCK``.
        """
        from webshop.stock.service import StockService

        variant = await self._variant(variant_id, actor=actor)
        summary = f"{variant.sku}: {delta:+d}" + (f" ({note})" if note else "")
        stock = StockService(session=self.repository.session)
        await stock.adjust(variant, delta, reference=note or "admin adjustment", summary=summary, actor=actor)
        return await self._variant(variant_id)

    async def removal(self, product_id: int, variant_id: int, *, actor: User | None) -> VariantRemoval:
        """What removing variant ``variant_id`` of product ``product_id`` would take with it, for the page that
        asks first: the variant (its product loaded), how many stock movements it has, and whether it is
        the product's last variant (which cannot go).

        Raises:
            NotFound: no such variant of that product, or another shop's (``check_runs``).
        """
        session = self.repository.session
        variant = await session.scalar(
            select(Variant).where(Variant.id == variant_id).options(selectinload(Variant.product))
        )
        if variant is None or variant.product_id != product_id:
            raise NotFound("There is no such variant.")
        await self.check_runs(actor, variant.product.shop_id, "There is no such variant.")
        movements = await session.scalar(select(func.count()).where(StockMovement.variant_id == variant.id))
        siblings = await session.scalar(select(func.count()).where(Variant.product_id == product_id))
        return VariantRemoval(variant, int(movements or 0), (siblings or 0) <= 1)

    async def delete_variant(self, variant_id: int, *, actor: User | None) -> None:
        """Delete a variant; committed. Past orders keep their lines (they copied SKU, name and price).

        Its stock ledger rows go with it (``webshop check-stock`` stays consistent); carts lose the line.
        Audit: ``product``/``variant-delete`` (on the product, since the variant is gone).

        Raises:
            NotFound: no such variant.
            Conflict: it is the product's only variant (delete the product instead);
                ``field_errors["variant"]``.
        """
        variant = await self._variant(variant_id, actor=actor)
        session = self.repository.session
        count = await session.scalar(select(func.count()).where(Variant.product_id == variant.product_id)) or 0
        if count <= 1:
            message = "A product needs at least one variant: delete the product instead."
            raise Conflict(message, field_errors={"variant": message})
        async with catalog_write(session, variant.product_id):
            # ``variant_id`` lets the product's trail keep the variant's own events (``product_history``).
            removed = {"variant_id": variant.id, **_variant_snapshot(variant), "stock": variant.stock}
            gone = {k: [v, None] for k, v in removed.items()}
            summary = f"Removed variant {variant.sku}."
            self.audit.record(actor, "product", variant.product_id, "variant-delete", summary=summary, changes=gone)
            reason = f"variant {variant.sku} was deleted"
            await forget_targets(session, self.audit, actor, variant_ids=[variant.id], reason=reason)
            await session.delete(variant)
            await queue_product_events(session, WebhookEvent.PRODUCT_UPDATED, [variant.product_id])

    async def _variant(self, variant_id: int, *, actor: Any | None = None) -> Variant:
        """The variant, read afresh; given an ``actor``, only of a shop they run (``check_runs``).

        Raises:
            NotFound: no such variant, or another shop's.
        """
        row = (
            await self.repository.session.execute(
                select(Variant, Product.shop_id)
                .join(Product, Product.id == Variant.product_id)
                .where(Variant.id == variant_id)
                .execution_options(populate_existing=True)
            )
        ).first()
        if row is None:
            raise NotFound("There is no such variant.")
        await self.check_runs(actor, row[1], "There is no such variant.")
        return cast("Variant", row[0])

    async def _check_skus_free(
        self, skus: list[tuple[str, str | None]], product_id: int | None, errors: dict[str, str]
    ) -> None:
        """SKUs must be unique in the shop: an error for one used by another product (or this one
        when ``product_id`` is ``None``, i.e. for a brand-new variant)."""
        wanted = [sku for prefix, sku in skus if sku and prefix + "sku" not in errors]
        if not wanted:
            return
        statement = select(Variant.sku, Variant.product_id).where(Variant.sku.in_(wanted))
        used = {sku: owner for sku, owner in (await self.repository.session.execute(statement)).all()}
        for prefix, sku in skus:
            if sku in used and prefix + "sku" not in errors and (product_id is None or used[sku] != product_id):
                errors[prefix + "sku"] = f"SKU {sku} is already used by another variant."

    async def _insert_variant(
        self, product: Product, row: dict[str, Any], position: int, audit: AuditService, actor: User | None
    ) -> Variant:
        stock = row.pop("stock", 0)
        variant = Variant(**row, stock=0, position=position, product_id=product.id)
        self.repository.session.add(variant)
        await self.repository.session.flush()
        await self._record_new_variant(variant, stock, audit, actor)
        return variant

    async def _record_new_variant(self, variant: Variant, stock: int, audit: AuditService, actor: User | None) -> None:
        """Audit a just-flushed variant's creation and book its initial ``stock`` in the ledger."""
        audit.record(
            actor,
            "variant",
            variant.id,
            "create",
            summary=f"Added variant {variant.sku}.",
            changes=diff({}, _variant_snapshot(variant)),
        )
        await self._set_stock(variant, 0, stock, actor=actor, note="initial stock")

    def _apply_variant(self, variant: Variant, clean: dict[str, Any], audit: AuditService, actor: User | None) -> None:
        before = _variant_snapshot(variant)
        for key, value in clean.items():
            setattr(variant, key, value)
        changes = diff(before, _variant_snapshot(variant))
        if changes:
            parts = [
                f"price {format_money(change[0], variant.currency)} → {format_money(change[1], variant.currency)}"
                if field == "price"
                else field
                for field, change in changes.items()
            ]
            summary = f"Edited variant {variant.sku}: " + ", ".join(parts)
            audit.record(actor, "variant", variant.id, "update", summary=summary, changes=changes)

    async def _set_stock(
        self, variant: Variant, expected: int, level: int, *, actor: User | None, note: str = ""
    ) -> None:
        """``set_stock`` plus a ``stock`` audit event (none when the level does not change)."""
        from webshop.stock.service import set_stock

        if level == expected and note == "initial stock":
            return
        reference = note or "admin edit"
        if actor is not None:
            reference = f"{reference} by {actor.email}"
        await set_stock(self.repository.session, variant.id, level, expected=expected, reference=reference)
        if level != expected:
            self.audit.record(
                actor,
                "stock",
                variant.id,
                "set",
                summary=f"{variant.sku}: stock set to {level}" + (f" ({note})" if note else ""),
                changes={"stock": [expected, level]},
            )


def choose_variant(
    product: Product, chosen: dict[str, str], sku: str | None = None, shown: str | None = None
) -> Variant | None:
    """Pick the variant the shopper chose.

    Args:
        product: The product, its ``variants`` in list order.
        chosen: The picker's values, ``{group: value}`` (a group left out is not chosen).
        sku: A SKU that picks its variant outright (when it is one of the product's).
        shown: The SKU of the variant the picker showed before this choice (its ``from`` field), or
            ``None`` (an old link): the groups whose chosen value differs from that variant's are the
            ones the shopper just changed.

    Returns:
        ``sku``'s variant; otherwise the one matching the most changed groups (the shopper keeps the
        value they just picked even where it exists only with other values), then the most chosen
        groups, then in stock, then first in the list. An exact match always wins; with nothing chosen,
        the first in stock (or the first). ``None`` for a product without variants.
    """
    variants = list(product.variants)
    if not variants:
        return None
    by_sku = {variant.sku: variant for variant in variants}
    if sku in by_sku:
        return by_sku[sku]
    groups = product.option_groups or []
    before = by_sku[shown].options(groups) if shown in by_sku else chosen
    changed = {g: v for g, v in chosen.items() if before.get(g) != v}

    def score(variant: Variant) -> tuple[int, int, int, int]:
        options = variant.options(groups)
        return (
            sum(1 for g, v in changed.items() if options.get(g) == v),
            sum(1 for g, v in chosen.items() if options.get(g) == v),
            1 if variant.stock > 0 else 0,
            -variants.index(variant),
        )

    return max(variants, key=score)


def option_choices(product: Product) -> list[tuple[str, list[str]]]:
    """Return ``[(group, [values in first-seen order])]`` for the variant picker."""
    groups = product.option_groups or []
    choices: list[tuple[str, list[str]]] = []
    for index, group in enumerate(groups):
        values: list[str] = []
        for variant in product.variants:
            if index < len(variant.option_values) and variant.option_values[index] not in values:
                values.append(variant.option_values[index])
        choices.append((group, values))
    return choices
