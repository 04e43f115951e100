"""Promotions whose targets are deleted (QA: a promotion for a deleted variant took money off the next variant
that was created, on SQLite).

A promotion names its targets by row id (``category_ids``, ``product_ids``, ``variant_ids``). Variants and
categories are deleted for good, and SQLite gives the largest freed ``INTEGER PRIMARY KEY`` to the next row,
so a promotion that kept a deleted id would apply to whichever row gets it next: another product, maybe
another shop's. ``forget_targets`` takes deleted ids out of every promotion in the deleting transaction.
A promotion left with no target at all would apply to every item (no target means the whole cart), so it is
switched off instead: a discount with nothing eligible left does nothing. Products are only soft-deleted,
so their ids are never given again.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from sqlalchemy import select

from webshop.db.models import Promotion

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.audit.service import AuditService
    from webshop.db.models import User


async def forget_targets(
    session: AsyncSession,
    audit: AuditService,
    actor: User | None,
    *,
    variant_ids: Collection[int] = (),
    category_ids: Collection[int] = (),
    reason: str,
) -> list[Promotion]:
    """Take ``variant_ids`` and ``category_ids`` (rows being deleted) out of every promotion's targets, in the
    caller's transaction, each change audited (``promotion``/``update``, by ``actor``, saying ``reason``).

    Args:
        session: The deleting transaction's session.
        audit: Its audit trail.
        actor: Who deletes (``None``: the command line).
        variant_ids: Variants being deleted.
        category_ids: Categories being deleted.
        reason: What was deleted, in words (``"variant DC-1 was deleted"``).

    Returns:
        The promotions changed (those left without a target are switched off).
    """
    gone_variants, gone_categories = set(variant_ids), set(category_ids)
    changed: list[Promotion] = []
    # Locked (PostgreSQL; SQLite's writers are serial): two deletions at once must not each rewrite a
    # promotion from what it held before the other.
    for promotion in await session.scalars(select(Promotion).order_by(Promotion.id).with_for_update()):
        variants = [i for i in promotion.variant_ids or [] if i not in gone_variants]
        categories = [i for i in promotion.category_ids or [] if i not in gone_categories]
        if len(variants) == len(promotion.variant_ids or []) and len(categories) == len(promotion.category_ids or []):
            continue
        changes: dict[str, list[object]] = {}
        if variants != list(promotion.variant_ids or []):
            changes["variant_ids"] = [list(promotion.variant_ids or []), variants]
        if categories != list(promotion.category_ids or []):
            changes["category_ids"] = [list(promotion.category_ids or []), categories]
        promotion.variant_ids, promotion.category_ids = variants, categories
        summary = f"Promotion “{promotion.name}”: {reason}, so it no longer applies to it"
        if not (variants or categories or promotion.product_ids) and promotion.active:
            promotion.active = False
            changes["active"] = [True, False]
            summary += "; nothing it applied to is left, so it is switched off"
        audit.record(actor, "promotion", promotion.id, "update", summary=summary + ".", changes=changes)
        changed.append(promotion)
    return changed
