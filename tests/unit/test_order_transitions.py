"""The order status state machine and what a move owes the customer, without a database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from webshop.db.models import Fulfilment, Order, OrderStatus
from webshop.orders.refunding import refund_idempotency_key
from webshop.orders.status_rules import (
    REFUNDING_FROM,
    RESTOCKING,
    SHOPPER_CANCELLABLE,
    TRANSITIONS,
    can_transition,
    moves_from,
    refund_owed,
)

S = OrderStatus
ALLOWED = {
    (S.PENDING, S.PAID),
    (S.PENDING, S.CANCELLED),
    (S.PAID, S.SHIPPED),
    (S.PAID, S.CANCELLED),
    (S.PAID, S.REFUNDED),
    (S.SHIPPED, S.DELIVERED),
    (S.SHIPPED, S.REFUNDED),
    (S.DELIVERED, S.REFUNDED),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(S, S)), ids=lambda s: s.value)
def test_only_the_listed_moves_are_allowed(current, target):
    assert can_transition(current.value, target.value) is ((current, target) in ALLOWED)


def test_every_status_has_its_moves_and_cancelled_and_refunded_are_final():
    assert set(TRANSITIONS) == set(S)
    assert TRANSITIONS[S.CANCELLED] == TRANSITIONS[S.REFUNDED] == frozenset()
    assert all(status not in moves for status, moves in TRANSITIONS.items())  # no move to itself


@pytest.mark.parametrize(("current", "target"), [("paid", "lost"), ("mislaid", "paid"), ("", "")])
def test_an_unknown_status_allows_nothing(current, target):
    assert can_transition(current, target) is False


def test_a_shopper_may_cancel_only_what_has_not_shipped():
    assert {S.PENDING, S.PAID} == SHOPPER_CANCELLABLE
    assert all(can_transition(status, S.CANCELLED) for status in SHOPPER_CANCELLABLE)
    assert not any(can_transition(status, S.CANCELLED) for status in set(S) - SHOPPER_CANCELLABLE)


def order(status: OrderStatus, **fields: object) -> Order:
    values: dict[str, object] = {
        "id": 7,
        "number": "W-7",
        "status": status.value,
        "total": 4999,
        "payment_reference": "pay-1",
        "payment_status": "succeeded",
        "refunded_total": 0,
        "refund_amount": 0,
        "refunded_at": None,
    }
    values.update(fields)
    return Order(**values)


@pytest.mark.parametrize(("current", "target"), sorted(ALLOWED))
def test_a_move_owes_the_whole_total_only_when_it_undoes_a_charge(current, target):
    owed = refund_owed(order(current), target)
    assert owed == (4999 if target in RESTOCKING and current in REFUNDING_FROM else 0)


def test_nothing_is_owed_twice_nor_for_an_order_never_charged():
    assert refund_owed(order(S.PAID, payment_reference=None), S.CANCELLED) == 0
    assert refund_owed(order(S.PAID, refund_amount=4999), S.CANCELLED) == 0
    assert refund_owed(order(S.DELIVERED, refunded_at=datetime(2026, 1, 1, tzinfo=UTC)), S.REFUNDED) == 0
    assert refund_owed(order(S.PENDING), S.CANCELLED) == 0  # a pending order was never charged
    assert refund_owed(order(S.PAID), S.SHIPPED) == 0


def test_the_refund_key_names_the_order_by_id_and_number():
    assert refund_idempotency_key(order(S.PAID)) == "refund-7-W-7"


def test_once_a_part_has_shipped_the_order_is_no_longer_cancelled_or_refunded_whole():
    paid = order(S.PAID)
    paid.fulfilments = [Fulfilment(shop_name="A", status="pending"), Fulfilment(shop_name="B", status="pending")]
    # Two shops' parts still to send: each ships on its own, not the order in one go (browser QA).
    assert moves_from(paid) == TRANSITIONS[S.PAID] - {S.SHIPPED}
    paid.fulfilments[1].status = "shipped"
    # One part left: it too ships as a part, with its carrier and tracking number, not by the order's status
    # (API QA: the status shipped the last seller's part with no tracking, before that seller sent it).
    assert moves_from(paid) == set()
    paid.fulfilments = [Fulfilment(shop_name="A", status="pending")]
    assert moves_from(paid) == TRANSITIONS[S.PAID]  # a single-part order ships in one go
