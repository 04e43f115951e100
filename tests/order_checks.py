"""After a crash or an outage: no half-written order, a consistent stock ledger, no negative stock.

Used by the tests that stop the database or kill a worker in the middle of checkouts. Every check
reads the database directly; what it asserts is what an accountant would check by hand.
"""

from __future__ import annotations

import collections

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.db.models import Fulfilment, Order, OrderLine, StockMovement, StockReason, Variant
from webshop.stock.service import find_ledger_mismatches


async def assert_orders_whole(session: AsyncSession, *, pending_at_most: int = 0) -> int:
    """Every order is complete and consistent; return how many orders there are.

        Checked for each order: it is paid, or pending payment for at most ``pending_at_most`` orders (a
        checkout cut off between its reservation and its payment leaves its order pending with the stock
        reserved, and the same checkout token resumes it: webshop.checkout.service), it has lines, each
        line's total is price x quantity, the order's subtotal, tax and total add up, its shipping is the
    sum of its shops' parts (one part per shop of its lines), and its sale
        movements in the stock ledger match its lines exactly (variant by variant). Also: no sale
        movement without its order, no variant below zero, and the ledger sums to every stock.
    """
    orders = (await session.scalars(select(Order))).all()
    lines_by_order: dict[int, list[OrderLine]] = collections.defaultdict(list)
    for line in (await session.scalars(select(OrderLine))).all():
        lines_by_order[line.order_id].append(line)
    parts_by_order: dict[int, list[Fulfilment]] = collections.defaultdict(list)
    for part in (await session.scalars(select(Fulfilment))).all():
        parts_by_order[part.order_id].append(part)
    sales: dict[str, collections.Counter[int]] = collections.defaultdict(collections.Counter)
    for movement in (
        await session.scalars(select(StockMovement).where(StockMovement.reason == StockReason.SALE))
    ).all():
        sales[movement.reference][movement.variant_id] -= movement.delta
    problems = []
    pending = [order.number for order in orders if order.status == "pending"]
    if len(pending) > pending_at_most:
        problems.append(f"{len(pending)} pending orders, at most {pending_at_most} expected: {pending}")
    for order in orders:
        lines = lines_by_order.get(order.id, [])
        if order.status not in ("paid", "pending"):
            problems.append(f"{order.number}: status {order.status}")
        if not lines:
            problems.append(f"{order.number}: no lines")
        for line in lines:
            if line.line_total != line.unit_price * line.quantity:
                problems.append(f"{order.number}: line {line.sku} total {line.line_total}")
        if order.subtotal != sum(ln.line_total for ln in lines):
            problems.append(f"{order.number}: subtotal {order.subtotal} is not the sum of its lines")
        if order.tax_total != sum(ln.tax_amount for ln in lines) + order.shipping_tax:
            problems.append(f"{order.number}: tax {order.tax_total} is not the sum of its lines' and shipping's tax")
        if order.discount_total != sum(ln.discount for ln in lines):
            problems.append(f"{order.number}: discount {order.discount_total} is not the sum of its lines' discounts")
        paid_for_lines = sum(ln.net_amount + ln.tax_amount for ln in lines)
        shipping_gross = order.shipping_total + (0 if order.prices_include_tax else order.shipping_tax)
        if order.total != paid_for_lines + shipping_gross:
            problems.append(f"{order.number}: total {order.total} is not what its lines and shipping cost")
        tax = 0 if order.prices_include_tax else order.tax_total
        if order.total != order.subtotal - order.discount_total + order.shipping_total + tax:
            problems.append(f"{order.number}: total {order.total} does not add up")
        parts = parts_by_order.get(order.id, [])
        if parts and order.shipping_total != sum(part.shipping_amount for part in parts):
            problems.append(f"{order.number}: shipping is not the sum of its shops' parts")
        if parts and {part.shop_id for part in parts} != {ln.shop_id for ln in lines}:
            problems.append(f"{order.number}: its parts are not one per shop of its lines")
        taken = collections.Counter({ln.variant_id: ln.quantity for ln in lines})
        if sales.pop(order.number, collections.Counter()) != taken:
            problems.append(f"{order.number}: stock movements do not match its lines")
    problems.extend(f"sale movement for {reference}, which is no order" for reference in sales)
    lowest = await session.scalar(select(func.min(Variant.stock)))
    if lowest is not None and lowest < 0:
        problems.append(f"a variant has negative stock: {lowest}")
    problems.extend(f"ledger mismatch {m}" for m in await find_ledger_mismatches(session))
    assert problems == [], problems
    return len(orders)
