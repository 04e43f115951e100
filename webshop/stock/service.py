"""Stock rules: the only ways stock changes, each written to the ledger in the same transaction.

Stock never goes below zero: a decrement is one conditional statement
(``UPDATE variants SET stock = stock - :n WHERE id = :id AND stock >= :n``) whose row count says
whether it happened, so two shoppers can never both take the last unit, on SQLite or PostgreSQL,
in one process or many. A CHECK constraint (``stock >= 0``) is the last line of defence.

A decrease that takes a variant from above its ``low_stock_threshold`` to at or below it queues the
``stock.low`` webhook event in the same transaction (``webshop.webhooks.events.queue_stock_low``).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import BigInteger, case, cast, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.audit.service import Audited
from webshop.catalog import limits
from webshop.catalog.change_feed import mark_followed_reads_stale
from webshop.catalog.query import descendant_ids
from webshop.catalog.summaries import refresh_product_summaries
from webshop.db.models import Category, Product, StockMovement, StockReason, User, Variant
from webshop.db.repository import repository_for
from webshop.errors import Conflict, NotFound, ValidationFailed
from webshop.shops.service import ShopService
from webshop.stock.history import Movement, movements
from webshop.text import whole_number_text
from webshop.webhooks.events import queue_stock_low

MAX_STOCK = limits.STOCK
"""Largest stock level a variant can hold (the column is a 32-bit integer)."""


class StockChanged(Conflict):
    """The stock level changed between reading it and writing a new one (someone bought or adjusted).

    ``current`` is the level now on hand, so the admin can re-enter their change against it.
    """

    title = "Stock changed"

    def __init__(self, detail: str, *, current: int, field_errors: dict[str, str] | None = None) -> None:
        super().__init__(detail, field_errors=field_errors)
        self.current = current


async def take_stock(
    session: AsyncSession,
    variant_id: int,
    quantity: int,
    *,
    reason: StockReason,
    reference: str,
    announce: bool = True,
) -> bool:
    """Decrement ``variant_id``'s stock by ``quantity`` units if that many are on hand.

    ``announce``: queue ``stock.low`` when the level crosses the variant's threshold. Checkout passes
    ``False``: its reservation commits before the card is charged and is released when it is declined,
    so the sale announces its crossings when it settles (``queue_stock_lows_of_sale``).

    Returns:
        True when the stock was taken (and a movement of ``-quantity`` written); False when there
        were fewer than ``quantity`` units, in which case nothing changed.
    """
    taken = (
        await session.execute(
            update(Variant)
            .where(Variant.id == variant_id, Variant.stock >= quantity)
            .values(stock=Variant.stock - quantity)
            .returning(Variant.stock, Variant.low_stock_threshold)
            .execution_options(synchronize_session=False)
        )
    ).first()
    if taken is None:
        return False
    _record(session, variant_id, -quantity, reason.value, reference)
    if announce:
        await queue_stock_low(session, variant_id, taken.stock + quantity, taken.stock, taken.low_stock_threshold)
    return True


async def return_stock(
    session: AsyncSession, variant_id: int, quantity: int, *, reason: StockReason, reference: str
) -> None:
    """Increment ``variant_id``'s stock by ``quantity`` units and record the movement."""
    await session.execute(
        update(Variant)
        .where(Variant.id == variant_id)
        .values(stock=Variant.stock + quantity)
        .execution_options(synchronize_session=False)
    )
    _record(session, variant_id, quantity, reason.value, reference)


def _record(session: AsyncSession, variant_id: int, delta: int, reason: str, reference: str) -> None:
    """Write the ledger row of a stock change made in ``session`` (``delta`` units), and make its commit
    drop this process's kept stock look-ups (``webshop.catalog.change_feed``)."""
    session.add(StockMovement(variant_id=variant_id, delta=delta, reason=reason, reference=reference))
    mark_followed_reads_stale(session)


async def record_imported_stock(session: AsyncSession, levels: dict[int, int], reference: str) -> None:
    """Write the ledger rows of variants created with stock (a catalog import): ``{variant id: units}``,
    one ``import`` movement each, in one executemany; none for a variant created with nothing in stock
    (a movement is a change). The variants' ``stock`` column was written with them, so the ledger and
    the level agree (``webshop check-stock``).
    """
    movements = [
        {"variant_id": variant_id, "delta": units, "reason": StockReason.IMPORT.value, "reference": reference}
        for variant_id, units in levels.items()
        if units
    ]
    if movements:
        await session.execute(insert(StockMovement), movements)


async def set_stock(session: AsyncSession, variant_id: int, new_level: int, *, expected: int, reference: str) -> int:
    """Set ``variant_id``'s stock to ``new_level`` units, but only if it still is ``expected``.

    One conditional statement (``UPDATE variants SET stock = :new WHERE id = :id AND stock = :expected``,
    optimistic concurrency): a sale or another admin's change that happened after the admin read
    ``expected`` is never overwritten. A movement of ``new_level - expected`` units (reason
    ``adjustment``) is written in the same transaction; none when the level is unchanged.

    Args:
        session: The caller's session (its transaction commits or rolls back the change).
        variant_id: The variant.
        new_level: Units on hand after the change (0 to ``MAX_STOCK``).
        expected: Units the admin saw on hand when they started the change.
        reference: What caused it, for the ledger (an admin's note); cut to 200 characters.

    Returns:
        The new stock level.

    Raises:
        ValidationFailed: ``new_level`` is negative or too large (``field_errors["stock"]``).
        StockChanged: the stock is no longer ``expected`` (``current`` holds what it is now).
        NotFound: there is no such variant.
    """
    if new_level < 0 or new_level > MAX_STOCK:
        raise ValidationFailed(
            "Stock must be a whole number of 0 or more.",
            field_errors={"stock": "Enter a whole number of 0 or more."},
        )
    threshold = await session.scalar(
        update(Variant)
        .where(Variant.id == variant_id, Variant.stock == expected)
        .values(stock=new_level)
        .returning(Variant.low_stock_threshold)
        .execution_options(synchronize_session=False)
    )
    if threshold is None:
        current = await session.scalar(select(Variant.stock).where(Variant.id == variant_id))
        if current is None:
            raise NotFound("There is no such variant.")
        message = f"The stock changed meanwhile (it is now {current}, you saw {expected}); nothing was saved."
        raise StockChanged(message, current=current, field_errors={"stock": message})
    if new_level != expected:
        _record(session, variant_id, new_level - expected, StockReason.ADJUSTMENT.value, reference[:200])
        await queue_stock_low(session, variant_id, expected, new_level, threshold)
    return new_level


async def adjust_stock(session: AsyncSession, variant_id: int, delta: int, *, reference: str) -> int:
    """Change ``variant_id``'s stock by ``delta`` units (negative takes away), never below zero.

    One conditional statement (``... SET stock = stock + :delta WHERE id = :id AND stock + :delta >= 0``)
    with a movement of ``delta`` (reason ``adjustment``) in the same transaction.

    Args:
        session: The caller's session.
        variant_id: The variant.
        delta: Units to add (positive) or remove (negative); 0 changes nothing and writes no movement.
        reference: Why, for the ledger (an admin's reason); cut to 200 characters.

    Returns:
        The stock level after the change.

    Raises:
        Conflict: the change would take the stock below zero (``field_errors["delta"]``): the stock on
            hand, not the input, refuses it (RFC 9110 §15.5.10).
        ValidationFailed: the change would take the stock above ``MAX_STOCK`` (``field_errors["delta"]``).
        NotFound: there is no such variant.
    """
    statement = (
        update(Variant)
        # The sum is compared as a 64-bit number: in 32 bits ``stock + delta`` overflows (PostgreSQL raises).
        .where(Variant.id == variant_id, cast(Variant.stock, BigInteger) + delta >= 0)
        .where(cast(Variant.stock, BigInteger) + delta <= MAX_STOCK)
        .values(stock=Variant.stock + delta)
        .returning(Variant.stock, Variant.low_stock_threshold)
        .execution_options(synchronize_session=False)
    )
    changed = (await session.execute(statement)).first()
    if changed is None:
        current = await session.scalar(select(Variant.stock).where(Variant.id == variant_id))
        if current is None:
            raise NotFound("There is no such variant.")
        if current + delta > MAX_STOCK:
            message = f"Stock cannot exceed {MAX_STOCK}."
            raise ValidationFailed(message, field_errors={"delta": message})
        message = f"Stock cannot go below zero: {current} on hand, change of {delta:+d}."
        raise Conflict(message, field_errors={"delta": message})
    if delta:
        _record(session, variant_id, delta, StockReason.ADJUSTMENT.value, reference[:200])
        await queue_stock_low(session, variant_id, changed.stock - delta, changed.stock, changed.low_stock_threshold)
    return int(changed.stock)


async def find_ledger_mismatches(session: AsyncSession) -> list[tuple[str, int, int]]:
    """Return ``[(sku, stock, sum of movements)]`` for every variant whose stock disagrees with its ledger."""
    ledger = (
        select(StockMovement.variant_id, func.sum(StockMovement.delta).label("total"))
        .group_by(StockMovement.variant_id)
        .subquery()
    )
    rows = await session.execute(
        select(Variant.sku, Variant.stock, func.coalesce(ledger.c.total, 0))
        .outerjoin(ledger, ledger.c.variant_id == Variant.id)
        .where(Variant.stock != func.coalesce(ledger.c.total, 0))
        .order_by(Variant.sku)
    )
    return [(sku, stock, int(total)) for sku, stock, total in rows.all()]


# --- stock health and admin adjustments (issue 5) ---------------------------------------------


class StockLevel(enum.StrEnum):
    """A variant's stock health against its own ``low_stock_threshold`` (see ``stock_level_expression``)."""

    OUT = "out"
    CRITICAL = "critical"
    LOW = "low"
    MEDIUM = "medium"
    HEALTHY = "healthy"


ADJUSTMENT_REASONS = {
    "received": "Goods received",
    "returned": "Customer return",
    "damaged": "Damaged",
    "lost": "Lost or stolen",
    "count": "Stock count correction",
    "other": "Other",
}
"""Reasons an admin can give for a stock adjustment (``{code: label}``); recorded with the note."""


def stock_level_expression() -> Any:
    """SQL ``CASE`` giving a variant's ``StockLevel`` value, the one definition of the health rule.

    With ``s`` = stock on hand and ``t`` = the variant's ``low_stock_threshold``:

    - ``out``: ``s = 0``;
    - ``critical``: ``0 < s`` and ``2 * s <= t`` (at most half the threshold; integers only, so a
      threshold of 5 makes 1 and 2 critical, 3 to 5 low);
    - ``low``: ``0 < s <= t`` and not critical;
    - ``medium``: ``t < s <= 2 * t`` (within twice the threshold: reorder soon);
    - ``healthy``: ``s > 2 * t``.

    ``stock_level_of`` is the same rule in Python, for one variant already loaded. The doubled values are
    computed as 64-bit integers: both columns are 32-bit, and PostgreSQL refuses ``2 * s`` past
    2,147,483,647 ("integer out of range") where SQLite and Python just carry on.
    """
    stock = cast(Variant.stock, BigInteger)
    threshold = cast(Variant.low_stock_threshold, BigInteger)
    return case(
        (stock <= 0, StockLevel.OUT.value),
        (stock * 2 <= threshold, StockLevel.CRITICAL.value),
        (stock <= threshold, StockLevel.LOW.value),
        (stock <= threshold * 2, StockLevel.MEDIUM.value),
        else_=StockLevel.HEALTHY.value,
    )


def stock_level_of(stock: int, threshold: int) -> StockLevel:
    """The ``StockLevel`` of ``stock`` units against a ``threshold`` (the rule of ``stock_level_expression``)."""
    if stock <= 0:
        return StockLevel.OUT
    if stock * 2 <= threshold:
        return StockLevel.CRITICAL
    if stock <= threshold:
        return StockLevel.LOW
    if stock <= threshold * 2:
        return StockLevel.MEDIUM
    return StockLevel.HEALTHY


def _in_shops(shop_ids: frozenset[int] | None, category_ids: frozenset[int] | None = None) -> list[Any]:
    """The conditions "the product is of one of ``shop_ids``" and "in one of ``category_ids``"
    (none for ``None``: every shop, every category)."""
    conditions = [] if shop_ids is None else [Product.shop_id.in_(shop_ids or {0})]
    if category_ids is not None:
        conditions.append(Product.category_id.in_(category_ids or {0}))
    return conditions


@dataclass(frozen=True)
class StockRow:
    """One variant on the stock dashboard and in ``GET /api/stock/health``: its stock on hand and the
    threshold its ``level`` is measured against (units)."""

    variant_id: int
    sku: str
    product_id: int
    product_name: str
    option_values: list[str]
    stock: int
    low_stock_threshold: int
    level: StockLevel


@dataclass(frozen=True)
class StockHealth:
    """The stock-health report: ``counts`` of every level and the listed variants of the chosen ones.

    ``bands`` is ``[(level, rows)]`` in ``StockLevel`` order, each with at most the requested number
    of rows (lowest stock first); ``counts[level]`` says how many there are in all.
    """

    counts: dict[StockLevel, int]
    bands: list[tuple[StockLevel, list[StockRow]]]


@dataclass(frozen=True, slots=True)
class VariantHistory:
    """``StockService.history``: the variant, its product, its stock on hand and a page of its movements
    (newest first; on the first page, the newest movement's ``level_after`` is ``stock``)."""

    variant: Variant
    product: Product
    stock: int
    movements: list[Movement]


class StockService(Audited, SQLAlchemyAsyncRepositoryService[Variant]):
    """Stock health figures, admin stock adjustments (through ``adjust_stock``, audited) and a variant's stock
    history (the ledger read back)."""

    repository_type = repository_for(Variant)

    async def health_counts(
        self, *, shop_ids: frozenset[int] | None = None, category_ids: frozenset[int] | None = None
    ) -> dict[StockLevel, int]:
        """How many variants of products not deleted are at each ``StockLevel``: one grouped query.

        Args:
            shop_ids: Only these shops' variants (a shop member's dashboard); ``None`` for every shop's.
            category_ids: Only products in these categories (``None``: any category).

        Returns:
            ``{level: count}`` with every level present (0 when none).
        """
        level = stock_level_expression().label("level")
        rows = await self.repository.session.execute(
            select(level, func.count())
            .select_from(Variant)
            .join(Product, Product.id == Variant.product_id)
            .where(Product.deleted_at.is_(None), *_in_shops(shop_ids, category_ids))
            .group_by(level)
        )
        counts = dict.fromkeys(StockLevel, 0)
        for value, count in rows.all():
            counts[StockLevel(value)] = int(count)
        return counts

    async def health_list(
        self,
        level: StockLevel,
        *,
        limit: int = 100,
        offset: int = 0,
        shop_ids: frozenset[int] | None = None,
        category_ids: frozenset[int] | None = None,
    ) -> list[StockRow]:
        """Variants at ``level`` (products not deleted), lowest stock first, then by product name and SKU;
        only shops ``shop_ids``' variants unless it is ``None`` (every shop's), and only products in
        ``category_ids`` unless it is ``None``."""
        expression = stock_level_expression()
        rows = await self.repository.session.execute(
            select(
                Variant.id,
                Variant.sku,
                Product.id,
                Product.name,
                Variant.option_values,
                Variant.stock,
                Variant.low_stock_threshold,
            )
            .join(Product, Product.id == Variant.product_id)
            .where(Product.deleted_at.is_(None), expression == level.value, *_in_shops(shop_ids, category_ids))
            .order_by(Variant.stock, Product.name, Variant.sku)
            .limit(limit)
            .offset(offset)
        )
        return [
            StockRow(vid, sku, pid, name, list(options or []), stock, threshold, level)
            for vid, sku, pid, name, options, stock, threshold in rows.all()
        ]

    async def health(
        self,
        *,
        levels: Sequence[StockLevel] = tuple(StockLevel),
        category_id: int | None = None,
        limit: int = 50,
        offset: int = 0,
        shop_ids: frozenset[int] | None = None,
    ) -> StockHealth:
        """The stock-health report of the API (``GET /api/stock/health``), the dashboard's numbers.

        Args:
            levels: The levels whose variants are listed (counts always cover every level).
            category_id: Only products in this category or below it.
            limit / offset: The slice of each listed level (lowest stock first).
            shop_ids: Only these shops' variants (a shop member); ``None`` for every shop's.

        Raises:
            NotFound: ``category_id`` is no category.
        """
        category_ids: frozenset[int] | None = None
        if category_id is not None:
            categories = list(await self.repository.session.scalars(select(Category)))
            if not any(category.id == category_id for category in categories):
                raise NotFound(f"There is no category {category_id}.")
            category_ids = frozenset(descendant_ids(categories, category_id))
        counts = await self.health_counts(shop_ids=shop_ids, category_ids=category_ids)
        bands = [
            (
                level,
                await self.health_list(level, limit=limit, offset=offset, shop_ids=shop_ids, category_ids=category_ids),
            )
            for level in StockLevel
            if level in levels
        ]
        return StockHealth(counts, bands)

    async def adjust_by_sku(self, *, sku: str, delta: str | int, reason: str, note: str, actor: User | None) -> int:
        """An admin's stock adjustment: ``delta`` units for the variant ``sku``, with a reason and a note.

        Goes through ``adjust_stock`` (one conditional UPDATE, never below zero, a ledger row with
        reason ``adjustment`` whose reference is ``"<reason>: <note>"``) and records a ``stock``
        audit event with the level before and after; committed.

        Args:
            sku: The variant's SKU (surrounding spaces ignored; in any case when it names one variant).
            delta: Signed whole number of units (``"+5"``, ``"-2"``, ``"−2"`` with U+2212, or an int); not 0.
            reason: A key of ``ADJUSTMENT_REASONS``.
            note: Why, in the admin's words (required, up to 200 characters).
            actor: The admin or shop member (``None``: the command line); a member only finds their
                shops' variants (another shop's SKU is unknown to them).

        Returns:
            The new stock level.

        Raises:
            ValidationFailed: with ``field_errors`` for every bad field at once (unknown SKU or another
                shop's, delta not a non-zero whole number, unknown reason, empty note), or (from ``adjust``)
                a delta that would take the stock above ``MAX_STOCK``.
            Conflict: the delta would take the stock below zero (``field_errors["delta"]``).
        """
        errors: dict[str, str] = {}
        sku = sku.strip()
        found = await self._managed(actor, Variant.sku == sku) if sku else None
        if sku and found is None and (stored := await self._sku_in_any_case(sku)) is not None:
            found = await self._managed(actor, Variant.sku == stored)
        variant = found[0] if found else None
        if not sku:
            errors["sku"] = "Enter the variant's SKU."
        elif variant is None:
            errors["sku"] = f"There is no variant with SKU {sku}."
        # A typographic minus (U+2212, as word processors and some keyboards write it) means minus.
        typed = delta if isinstance(delta, int) else delta.replace("\u2212", "-")
        units = typed if isinstance(typed, int) else whole_number_text(typed, signed=True)
        if units is None and re.fullmatch(r"[+-]?[0-9]+", str(typed).strip()):
            # A whole number, just more digits than any stock (QA: it was "not a whole number"); not int()'d.
            errors["delta"] = f"Enter a change of at most {MAX_STOCK} units."
        elif units is None:
            errors["delta"] = "Enter a whole number of units, such as 5 or -3."
        else:
            if units == 0:
                errors["delta"] = "Enter a change other than 0."
            elif abs(units) > MAX_STOCK:
                errors["delta"] = f"Enter a change of at most {MAX_STOCK} units."
        if reason not in ADJUSTMENT_REASONS:
            errors["reason"] = "Choose a reason."
        note = note.strip()
        if not note:
            errors["note"] = "Say why the stock changes."
        elif len(note) > 200:
            errors["note"] = "Use at most 200 characters."
        if errors or variant is None or units is None:
            raise ValidationFailed("The stock was not changed. Please correct the marked fields.", field_errors=errors)
        summary = f"{variant.sku}: {units:+d} ({ADJUSTMENT_REASONS[reason]}: {note})"
        return await self.adjust(variant, units, reference=f"{reason}: {note}", summary=summary, actor=actor)

    async def history(
        self, actor: User | None, variant_id: int, *, limit: int, before_id: int | None = None
    ) -> VariantHistory:
        """The stock ledger of variant ``variant_id``, newest first (``webshop.stock.history.movements``).

        Args:
            actor: Who reads it (``None``: the command line); a shop's member reads their shops' variants only.
            variant_id: The variant.
            limit: Movements at most (ask for one more than a page to know whether there are more).
            before_id: Only movements older than this ledger row (the next page).

        Returns:
            The variant, its product, its stock read with the movements, and the movements.

        Raises:
            NotFound: no such variant, or ``actor`` is a shop's member and the variant another shop's.
        """
        found = await self._managed(actor, Variant.id == variant_id)
        if found is None:
            raise NotFound("There is no such variant.")
        variant, product = found
        ledger = await movements(self.repository.session, variant.id, limit=limit, before_id=before_id)
        stock = variant.stock if ledger.stock is None else ledger.stock
        return VariantHistory(variant, product, stock, ledger.movements)

    async def _sku_in_any_case(self, sku: str) -> str | None:
        """The SKU as stored that ``sku`` names in another case (``ng-scarf-red`` for ``NG-SCARF-RED``, as the
        product search finds it), when exactly one does; ``None`` when none or several (SKUs are unique as
        written, so two may differ by case only: then the one typed must be exact)."""
        session = self.repository.session
        stored = (
            await session.scalars(select(Variant.sku).where(func.lower(Variant.sku) == sku.lower()).limit(2))
        ).all()
        return stored[0] if len(stored) == 1 else None

    async def _managed(self, actor: User | None, condition: Any) -> tuple[Variant, Product] | None:
        """The variant matching ``condition`` and its product, if ``actor`` manages it (an admin or the command
        line: any; a shop's member: their shops'); ``None`` otherwise: another shop's variant is as unknown
        as a missing one."""
        session = self.repository.session
        row = (
            await session.execute(
                select(Variant, Product).join(Product, Product.id == Variant.product_id).where(condition)
            )
        ).first()
        if row is None:
            return None
        variant, product = row
        outsider = actor is not None and not actor.is_admin
        if outsider and not (await ShopService(session=session).access(actor)).runs(product.shop_id):
            return None
        return variant, product

    async def adjust(self, variant: Variant, units: int, *, reference: str, summary: str, actor: User | None) -> int:
        """The one stock-adjustment verb (the stock page by SKU, the product form and the admin API by
        variant): ``units`` more (negative: fewer) on hand, never below zero, committed.

        In one transaction: ``adjust_stock`` (the conditional UPDATE and a ledger row with ``reference``),
        the product's summary (its "in stock" flag, which the catalog filters by) and, unless ``units``
        is 0, a ``stock``/``adjust`` audit event with ``summary`` and the level before and after.

        Returns:
            The new stock level.

        Raises:
            Conflict: the stock would go below zero (``field_errors["delta"]``).
            ValidationFailed: the stock would go above ``MAX_STOCK`` (``field_errors["delta"]``).
            NotFound: the variant is gone.
        """
        session = self.repository.session
        async with session.begin_nested():
            level = await adjust_stock(session, variant.id, units, reference=reference)
            await refresh_product_summaries(session, [variant.product_id])
            if units:
                self.audit.record(
                    actor, "stock", variant.id, "adjust", summary=summary, changes={"stock": [level - units, level]}
                )
        await session.commit()
        return level
