"""Counting promotion uses so a usage limit holds under concurrency, and giving uses back exactly once.

A use is taken in the checkout's reserve transaction with one conditional statement per promotion,
``UPDATE promotions SET times_used = times_used + 1 WHERE id = :id AND active AND (usage_limit IS NULL
OR times_used < usage_limit)``, whose row count says whether a use was left: on PostgreSQL the row lock
makes racing checkouts re-check the condition one after the other; on SQLite writers take turns
(``BEGIN IMMEDIATE``). So 50 shoppers racing for a code limited to 10 uses place exactly 10 orders
with it, and the others are told (``PromotionUnavailable``) with nothing written. A per-customer limit
is checked in the same transaction against the customer's uses of orders still standing.

A cancelled or fully refunded order gives its uses back once: each ``PromotionUsage`` row is released
by a conditional ``UPDATE ... WHERE released_at IS NULL``, and only the statement that released it
takes the use off ``times_used``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select, update

from webshop.db.models import Order, Promotion, PromotionUsage
from webshop.errors import PromotionUnavailable

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.checkout.quote import Quote


async def take_promotion_uses(session: AsyncSession, order: Order, quote: Quote) -> None:
    """Count one use of each promotion ``quote`` applied, for ``order`` (flushed, inside its transaction).

    Raises:
        PromotionUnavailable: a promotion has no use left (or was withdrawn), or this customer used it
            as often as it allows; the caller's transaction must be rolled back (nothing is kept).
    """
    for applied in quote.effective_promotions:
        label = applied.code or applied.name
        taken = await session.execute(
            update(Promotion)
            .where(
                Promotion.id == applied.id,
                Promotion.active.is_(True),
                or_(Promotion.usage_limit.is_(None), Promotion.times_used < Promotion.usage_limit),
            )
            .values(times_used=Promotion.times_used + 1)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise PromotionUnavailable(
                f"Sorry, {label} has just been used up. Your cart is now priced without it: "
                "please review your order again."
            )
        limit = await session.scalar(select(Promotion.per_customer_limit).where(Promotion.id == applied.id))
        if limit is not None and await _customer_uses(session, applied.id, order) >= limit:
            raise PromotionUnavailable(
                f"You have already used {label} as often as it allows. Your cart is now priced without it: "
                "please review your order again."
            )
        session.add(
            PromotionUsage(
                promotion_id=applied.id,
                order_id=order.id,
                user_id=order.user_id,
                email=order.email,
                amount=applied.amount + applied.shipping,
            )
        )
    await session.flush()


async def _customer_uses(session: AsyncSession, promotion_id: int, order: Order) -> int:
    who = [PromotionUsage.user_id == order.user_id] if order.user_id is not None else []
    if order.email:
        who.append(PromotionUsage.email == order.email)
    if not who:
        return 0
    count = await session.scalar(
        select(func.count())
        .select_from(PromotionUsage)
        .where(PromotionUsage.promotion_id == promotion_id, PromotionUsage.released_at.is_(None), or_(*who))
    )
    return int(count or 0)


async def release_promotion_uses(session: AsyncSession, order_id: int) -> int:
    """Give back the promotion uses of a cancelled or fully refunded order, each exactly once, in the
    caller's transaction. Returns how many were given back (0 when they already were)."""
    usages = list(
        await session.execute(
            select(PromotionUsage.id, PromotionUsage.promotion_id).where(
                PromotionUsage.order_id == order_id, PromotionUsage.released_at.is_(None)
            )
        )
    )
    released = 0
    now = datetime.now(UTC)
    for usage_id, promotion_id in usages:
        result = await session.execute(
            update(PromotionUsage)
            .where(PromotionUsage.id == usage_id, PromotionUsage.released_at.is_(None))
            .values(released_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            await session.execute(
                update(Promotion)
                .where(Promotion.id == promotion_id, Promotion.times_used > 0)
                .values(times_used=Promotion.times_used - 1)
                .execution_options(synchronize_session=False)
            )
            released += 1
    return released
