"""Refunds of paid orders on both engines: by lines (with or without restock) or by amount, through the
built-in test payment provider, exactly once (issue 18, "Refunds and invoices").

Orders are made by ``tests.factories.make_order`` and paid with a real test-provider intent
(``tok_visa``), so the provider refunds against what it took and refuses more.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tests.api_user import assert_problem, token_pair
from tests.factories import audit_events, ledger_ok, make_order, make_user, stock
from tests.integration.conftest import ADMIN_EMAIL
from tests.integration.test_invoices import text_of_pdf
from tests.shopper import csrf, post, sign_in, text_of
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import (
    Invoice,
    Order,
    OrderLine,
    OrderStatus,
    OutboundEmail,
    Refund,
    RefundStatus,
    StockMovement,
    TestPaymentIntent,
)
from webshop.money import format_money
from webshop.orders.refund_rules import refund_share
from webshop.orders.refunds import RefundService
from webshop.orders.service import OrderService
from webshop.payments.provider import IntentRequest, ProviderUnavailable, RefundResult
from webshop.payments.registry import build_provider

CUSTOMER = "ada@example.com"
TOKEN_RE = re.compile(r'name="token" value="([^"]+)"')


async def paid_order(
    alchemy: ShopAlchemyConfig, settings: Settings, user_id: int, number: str, lines: dict[str, int]
) -> Order:
    """A paid order (``make_order``) whose payment is a succeeded test-provider intent of its total."""
    order_id = await make_order(alchemy, user_id, number, lines)
    async with write_session(alchemy) as session:
        order = await session.scalar(select(Order).where(Order.id == order_id).options(selectinload(Order.lines)))
        assert order is not None
        intent = await build_provider(settings, alchemy).create_intent(
            IntentRequest(
                amount=order.total,
                currency=order.currency,
                order_number=number,
                return_url="",
                idempotency_key=f"intent-{number}",
                token="tok_visa",
            )
        )
        order.payment_reference, order.payment_status = intent.reference, intent.status.value
        order.payment_provider, order.paid_at = "test", datetime.now(UTC)
        await session.commit()
        return order


async def read(alchemy: ShopAlchemyConfig, model: Any, *conditions: Any) -> list[Any]:
    async with alchemy.get_session() as session:
        return list(await session.scalars(select(model).where(*conditions).order_by(model.id)))


async def refunded_by_provider(alchemy: ShopAlchemyConfig, reference: str) -> int:
    [intent] = await read(alchemy, TestPaymentIntent, TestPaymentIntent.reference == reference)
    return int(intent.amount_refunded)


async def admin_api(client: Any, alchemy: ShopAlchemyConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {(await token_pair(client, ADMIN_EMAIL))['access_token']}"}


def test_a_line_refunded_in_any_parts_adds_up_to_what_was_charged_for_it():
    line = OrderLine(
        unit_price=999, quantity=3, line_total=2997, net_amount=2997, tax_amount=599
    )  # 20 % of 29.97, rounded
    for parts in ([3], [1, 1, 1], [1, 2], [2, 1]):
        shares, done = [], 0
        for units in parts:
            shares.append(refund_share(line, units, done))
            done += units
        assert sum(shares) == 2997 + 599, parts
    assert refund_share(line, 1) == 999 + 200  # 599 / 3 = 199.67 → 200 for the first unit
    assert refund_share(line, 1, 1) == 999 + 199 and refund_share(line, 1, 2) == 999 + 200


async def test_admin_refunds_lines_back_to_stock_once_and_both_order_pages_list_it(
    admin, admin_id, alchemy, settings, skus
):
    client = admin
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-REF1", {"DC-1": 4, "EP-1": 1})
    assert await stock(alchemy, "DC-1") == 8
    chair = next(line for line in order.lines if line.sku == "DC-1")

    detail = f"/admin/orders/{order.id}"
    assert 'id="refund-link"' in (await client.get(detail)).text
    page = await client.get(f"{detail}/refunds")
    assert page.status_code == 200 and "Put the refunded items back in stock" in page.text
    # Each line shows what was paid for it (what its units' refunds add up to), not the list price.
    paid = chair.net_amount + chair.tax_amount
    assert f'<td class="line-paid">${paid // 100:,}.{paid % 100:02d}' in page.text
    token = TOKEN_RE.search(page.text).group(1)

    # A refused form comes back with the message and what was typed, and refunds nothing.
    form = {"token": token, f"qty-{chair.id}": "5", "reason": "Box crushed", "restock": "on"}
    refused = await post(client, f"{detail}/refunds", form, token_from=detail)
    assert refused.status_code == 422
    assert "DC-1: 4 of 4 units left to refund, not 5." in text_of(refused.text)
    assert 'value="Box crushed"' in refused.text and TOKEN_RE.search(refused.text).group(1) == token
    # So does one the form itself cannot read (QA: it came back empty).
    unreadable = await post(
        client, f"{detail}/refunds", {**form, f"qty-{chair.id}": "-1", "amount": "abc"}, token_from=detail
    )
    assert unreadable.status_code == 422
    assert "Enter a whole number of units." in text_of(unreadable.text)
    assert "Enter an amount such as 12.50." in text_of(unreadable.text)
    assert (
        'value="Box crushed"' in unreadable.text
        and 'value="abc"' in unreadable.text
        and 'value="-1"' in unreadable.text
    )
    assert TOKEN_RE.search(unreadable.text).group(1) == token

    # Two units back to stock; the same form sent twice (a double click) refunds once.
    form[f"qty-{chair.id}"] = "2"
    csrf_token = await csrf(client, detail)
    sent = [
        await client.post(f"{detail}/refunds", data={**form, "_csrf_token": csrf_token}, follow_redirects=False)
        for _ in range(2)
    ]
    assert [r.status_code for r in sent] == [303, 303] and sent[0].headers["location"] == detail
    [refund] = await read(alchemy, Refund, Refund.order_id == order.id)
    assert (refund.status, refund.amount, refund.restock, refund.reason) == ("succeeded", 17800, True, "Box crushed")
    assert await refunded_by_provider(alchemy, order.payment_reference) == 17800
    assert await stock(alchemy, "DC-1") == 10 and await ledger_ok(alchemy)
    [movement] = await read(alchemy, StockMovement, StockMovement.reason == "refund")
    assert movement.delta == 2 and movement.reference.startswith("WS-REF1 refund CN-")
    [note] = await read(alchemy, Invoice, Invoice.refund_id == refund.id)
    assert (note.kind, note.total, note.number) == ("credit_note", 17800, f"CN-{note.year}-000001")
    [mail] = await read(alchemy, OutboundEmail, OutboundEmail.kind == "order_refund")
    assert mail.to_address == CUSTOMER and mail.subject == "Order WS-REF1: we refunded $178.00"
    assert "2 × Delta Chair" in mail.text_body and "Reason: Box crushed" in mail.text_body
    assert [e.action for e in await audit_events(alchemy, "order", order.id)] == ["refund"]

    admin_html = (await client.get(detail)).text
    assert 'data-refunded="2">2 refunded</span>' in admin_html  # on the line: shown to a shop's staff too
    admin_page = text_of(admin_html)
    assert "Refunded $178.00 to the customer." in admin_page
    assert f"$178.00 2 × Delta Chair (DC-1) back in stock Box crushed Refunded {note.number}" in admin_page
    # The shopper sees the refund on their order page; another refund leaves 2 chairs to refund.
    await sign_in(client, CUSTOMER)
    shopper_html = (await client.get("/orders/WS-REF1")).text
    shopper_page = text_of(shopper_html)
    assert f"$178.00 2 × Delta Chair (DC-1) Box crushed Refunded {note.number}" in shopper_page
    # Under the total, what came back and what they paid in the end (browser QA: the total alone).
    net = format_money(order.total - 17800, "USD")
    assert f"Total {format_money(order.total, 'USD')} Refunded −$178.00 Net paid {net}" in shopper_page
    assert 'id="order-refunded">−$178.00</dd>' in shopper_html
    history = text_of((await client.get("/orders")).text)  # the list too, beside the total
    assert f"Paid {format_money(order.total, 'USD')} −$178.00 refunded" in history
    assert (await client.get(f"{detail}/refunds")).status_code == 403  # not for customers


async def test_the_api_refunds_an_amount_once_per_key_and_refuses_too_much_wrong_status_and_bad_lines(
    client, admin_id, alchemy, settings, skus
):
    headers = await admin_api(client, alchemy)
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-REF2", {"BC-1": 1})  # 450.00 + 5.00
    url = f"/api/orders/{order.id}/refunds"

    first = await client.post(
        url, json={"amount": 5000, "reason": "Late"}, headers={**headers, "Idempotency-Key": "k1"}
    )
    assert first.status_code == 201, first.text
    body = first.json()
    assert (body["status"], body["amount"], body["lines"], body["restock"]) == (
        "succeeded",
        {"amount": 5000, "currency": "USD"},
        [],
        False,
    )
    assert body["credit_note"].startswith("CN-")
    again = await client.post(
        url, json={"amount": 5000, "reason": "Late"}, headers={**headers, "Idempotency-Key": "k1"}
    )
    assert again.status_code == 201 and again.json() == body
    assert len(await read(alchemy, Refund)) == 1 and await stock(alchemy, "BC-1") == 2
    for other in ({"amount": 6000, "reason": "Late"}, {"amount": 5000}):  # the same key, another refund
        reused = await client.post(url, json=other, headers={**headers, "Idempotency-Key": "k1"})
        problem = assert_problem(reused, 422)
        assert problem["detail"].startswith("This idempotency key was already used for a different refund")
    other_order = await paid_order(alchemy, settings, customer, "WS-REF2B", {"BC-1": 1})
    elsewhere = await client.post(
        f"/api/orders/{other_order.id}/refunds",
        json={"amount": 5000, "reason": "Late"},
        headers={**headers, "Idempotency-Key": "k1"},
    )  # the key names another request, as above (QA: 409 here, 422 there)
    assert assert_problem(elsewhere, 422)["errors"] == {"Idempotency-Key": "Used for a refund of another order."}
    assert [refund.amount for refund in await read(alchemy, Refund)] == [5000]

    too_much = await client.post(url, json={"amount": 40_501}, headers={**headers, "Idempotency-Key": "k2"})
    refused = assert_problem(too_much, 422)  # as too many units of a line (QA: 409 here, 422 there)
    assert "more than the $405.00 left" in refused["detail"] and "more than" in refused["errors"]["amount"]
    bad_line = await client.post(
        url, json={"lines": [{"order_line_id": 999_999, "quantity": 1}]}, headers={**headers, "Idempotency-Key": "k3"}
    )
    assert "has no line 999999" in assert_problem(bad_line, 422)["detail"]
    both = await client.post(url, json={"amount": 1, "restock": True}, headers={**headers, "Idempotency-Key": "k4"})
    assert assert_problem(both, 422)["errors"] == {
        "restock": "Only refunded lines can go back to stock; choose their units."
    }
    assert_problem(await client.post(url, json={"amount": 1}, headers=headers), 400)  # no Idempotency-Key

    pending = await make_order(alchemy, customer, "WS-REF3", {"EP-1": 1}, status=OrderStatus.PENDING)
    not_paid = await client.post(
        f"/api/orders/{pending}/refunds", json={"amount": 100}, headers={**headers, "Idempotency-Key": "k5"}
    )
    assert "only paid, shipped or delivered orders" in assert_problem(not_paid, 409)["detail"]

    listed = await client.get(url, headers=headers)
    assert listed.status_code == 200 and listed.json() == [body]
    customer_headers = {"Authorization": f"Bearer {(await token_pair(client, CUSTOMER))['access_token']}"}
    # The customer sees their order's refunds as its page lists them (QA: the API hid them); others, 404.
    assert (await client.get(url, headers=customer_headers)).json() == [body]
    await make_user(alchemy, "eve@example.com", name="Eve")
    eve = {"Authorization": f"Bearer {(await token_pair(client, 'eve@example.com'))['access_token']}"}
    assert_problem(await client.get(url, headers=eve), 404)
    assert_problem(
        await client.post(url, json={"amount": 1}, headers={**customer_headers, "Idempotency-Key": "k6"}), 403
    )
    assert len(await read(alchemy, Refund)) == 1
    assert await refunded_by_provider(alchemy, order.payment_reference) == 5000
    # The shopper's order page lists it as an amount with no items.
    await sign_in(client, CUSTOMER)
    shopper_page = text_of((await client.get("/orders/WS-REF2")).text)
    assert f"$50.00 No items: an amount only Late Refunded {body['credit_note']}" in shopper_page, shopper_page


async def test_the_api_gives_the_ids_a_line_refund_and_its_credit_note_are_asked_by(
    client, admin_id, alchemy, settings, skus
):
    headers = await admin_api(client, alchemy)
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-REF9", {"DC-1": 2, "EP-1": 1})
    lines = (await client.get(f"/api/orders/{order.id}", headers=headers)).json()["lines"]
    chair = next(line for line in lines if line["sku"] == "DC-1")
    refunded = await client.post(
        f"/api/orders/{order.id}/refunds",
        json={"lines": [{"order_line_id": chair["id"], "quantity": 1}]},
        headers={**headers, "Idempotency-Key": "ids"},
    )
    assert refunded.status_code == 201, refunded.text
    body = refunded.json()
    assert [(line["order_line_id"], line["sku"], line["quantity"]) for line in body["lines"]] == [
        (chair["id"], "DC-1", 1)
    ]
    note = await client.get(f"/api/orders/{order.id}/credit-notes/{body['credit_note_id']}", headers=headers)
    assert note.status_code == 200 and note.headers["content-type"].startswith("application/pdf")
    assert body["credit_note"] in text_of_pdf(note.content)


async def test_units_refunded_before_shipping_are_named_in_the_shipping_email(
    client, admin_id, alchemy, settings, skus
):
    """QA: the "has shipped" e-mail listed 2 chairs when one had been refunded before it shipped."""
    headers = await admin_api(client, alchemy)
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-REF10", {"DC-1": 2, "EP-1": 1})
    chair = next(line for line in order.lines if line.sku == "DC-1")
    refunded = await client.post(
        f"/api/orders/{order.id}/refunds",
        json={"lines": [{"order_line_id": chair.id, "quantity": 1}]},
        headers={**headers, "Idempotency-Key": "before-shipping"},
    )
    assert refunded.status_code == 201, refunded.text
    shipped = await client.patch(f"/api/orders/{order.id}", json={"status": "shipped"}, headers=headers)
    assert shipped.status_code == 200, shipped.text
    [mail] = await read(alchemy, OutboundEmail, OutboundEmail.kind == "order_shipped")
    # On a line of its own after the tracking line, and the totals say what was refunded (browser QA: it
    # ran into the tracking number, and the total read as if nothing had been).
    assert "\nNot coming, as these were refunded: 1 × Delta Chair.\n" in mail.text_body
    amount = refunded.json()["amount"]["amount"]
    assert f"\nRefunded: −${amount // 100:,}.{amount % 100:02d}\n" in mail.text_body
    assert (
        f'Refunded</td><td align="right" style="padding:.25rem .4rem">−${amount // 100:,}.{amount % 100:02d}'
        in mail.html_body
    )


async def test_concurrent_refunds_never_take_more_than_was_paid(client, admin_id, alchemy, settings, skus):
    headers = await admin_api(client, alchemy)
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-REF4", {"DC-1": 2})  # 178.00 + 5.00 = 183.00
    chair = order.lines[0]
    url = f"/api/orders/{order.id}/refunds"
    requests = [{"amount": 4000}] * 4 + [{"lines": [{"order_line_id": chair.id, "quantity": 1}]}] * 4
    answers = await asyncio.gather(
        *(
            client.post(url, json=body, headers={**headers, "Idempotency-Key": f"race-{i}"})
            for i, body in enumerate(requests)
        )
    )
    assert {a.status_code for a in answers} <= {201, 409, 422}, [a.text for a in answers]
    made = [a.json() for a in answers if a.status_code == 201]
    assert all(refund["status"] == "succeeded" for refund in made)
    total = sum(refund["amount"]["amount"] for refund in made)
    assert total <= 18300 and sum(1 for r in made if r["lines"]) <= 2  # two chairs bought, never more refunded
    async with alchemy.get_session() as session:
        assert await session.scalar(select(Order.refunded_total).where(Order.id == order.id)) == total
        assert await session.scalar(
            select(func.count()).select_from(Invoice).where(Invoice.kind == "credit_note")
        ) == len(made)
    assert await refunded_by_provider(alchemy, order.payment_reference) == total


async def test_a_full_refund_in_parts_makes_the_order_refunded_and_a_cancel_after_a_part_restocks_the_rest(
    client, admin_id, alchemy, settings, skus
):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    provider = build_provider(settings, alchemy)
    order = await paid_order(alchemy, settings, customer, "WS-REF5", {"EP-1": 3})  # 59.97 + 5.00
    plant = order.lines[0]
    async with write_session(alchemy) as session:
        service = RefundService(session=session, provider=provider, invoices=settings.invoices)
        first = await service.refund(
            order.id, lines=[(plant.id, 3)], restock=False, reason="Wilted", actor=None, idempotency_key="p1"
        )
        assert (first.status, first.amount) == ("succeeded", 5997)
    # Nothing will be sent, so the parcel's shipping came back too, by a refund of its own.
    refunds = await read(alchemy, Refund, Refund.order_id == order.id)
    assert sorted((r.amount, r.status, r.is_shipping, r.reason) for r in refunds) == [
        (500, "succeeded", True, "Shipping of the items: nothing is left to send"),
        (5997, "succeeded", False, "Wilted"),
    ]
    assert await refunded_by_provider(alchemy, order.payment_reference) == 6497
    [refunded] = await read(alchemy, Order, Order.id == order.id)
    assert (refunded.status, refunded.refunded_total) == ("refunded", 6497)
    assert await stock(alchemy, "EP-1") == 37  # not restocked: the customer kept the plants
    mails = await read(alchemy, OutboundEmail, OutboundEmail.kind == "order_refund")
    assert [m.subject for m in mails] == ["Order WS-REF5: we refunded $59.97", "Order WS-REF5 is refunded"]
    # Every plant refunded: the order's only part is closed (nothing left to ship), its shipping given
    # back, and with that the order is refunded.
    events = await audit_events(alchemy, "order", order.id)
    assert [e.action for e in events] == ["refund", "close", "refund", "status"]
    notes = [n.number for n in await read(alchemy, Invoice, Invoice.kind == "credit_note")]
    assert [int(n.rsplit("-", 1)[1]) for n in notes] == [1, 2]
    # The shipping's credit note credits shipping (at its own tax rate), not an amount spread over the order.
    [shipping] = [r for r in refunds if r.is_shipping]
    [note] = await read(alchemy, Invoice, Invoice.refund_id == shipping.id)
    headers = await admin_api(client, alchemy)
    pdf = await client.get(f"/api/orders/{order.id}/credit-notes/{note.id}", headers=headers)
    assert pdf.status_code == 200 and "Shipping: Shipping of the items: nothing is left to send" in text_of_pdf(
        pdf.content
    )
    # The API says it went back, though by refunds of lines: not a whole refund, but all of the total.
    shown = (await client.get(f"/api/orders/{order.id}", headers=headers)).json()
    assert (shown["status"], shown["refund"], shown["refunded_total"]["amount"]) == ("refunded", None, 6497)

    # A part refunded back to stock, then the whole order cancelled: the rest comes back, once.
    second = await paid_order(alchemy, settings, customer, "WS-REF6", {"DC-1": 3})  # 267.00 + 5.00
    async with write_session(alchemy) as session:
        await RefundService(session=session, provider=provider).refund(
            second.id, lines=[(second.lines[0].id, 1)], restock=True, actor=None, idempotency_key="p3"
        )
        cancelled = await OrderService(session=session, provider=provider).change_status(
            second.id, OrderStatus.CANCELLED
        )
    assert (cancelled.refund_amount, cancelled.refunded_at is not None) == (27200 - 8900, True)
    assert await stock(alchemy, "DC-1") == 12 and await ledger_ok(alchemy)
    assert await refunded_by_provider(alchemy, second.payment_reference) == 27200
    await sign_in(client, CUSTOMER)  # the shopper's page says what came back in all, not the last refund alone
    page = text_of((await client.get("/orders/WS-REF6")).text)
    assert "Refunded $183.00 to your card" in page and "with the earlier refunds, $272.00 in all" in page
    assert "Total $272.00 Refunded −$272.00 Net paid $0.00" in page  # the whole refund's row counted once
    shown = (await client.get(f"/api/orders/{second.id}", headers=headers)).json()
    assert (shown["refund"]["amount"]["amount"], shown["refunded_total"]["amount"]) == (27200 - 8900, 27200)


async def test_a_whole_order_refund_returns_its_stock_as_a_refund_in_the_ledger(admin_id, alchemy, settings, skus):
    """The stock history says "Refund" for a whole order refunded before it shipped, as for a partial refund
    (QA: it said "Cancellation"); a cancelled order's stock still comes back as a cancellation."""
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    provider = build_provider(settings, alchemy)
    refunded = await paid_order(alchemy, settings, customer, "WS-REF7", {"DC-1": 2})
    cancelled = await paid_order(alchemy, settings, customer, "WS-REF8", {"DC-1": 1})
    async with write_session(alchemy) as session:
        orders = OrderService(session=session, provider=provider)
        await orders.change_status(refunded.id, OrderStatus.REFUNDED)
        await orders.change_status(cancelled.id, OrderStatus.CANCELLED)
    returned = await read(alchemy, StockMovement, StockMovement.delta > 0, StockMovement.reason != "import")
    assert sorted((m.reason, m.delta, m.reference) for m in returned) == [
        ("cancellation", 1, "WS-REF8"),
        ("refund", 2, "WS-REF7"),
    ]
    assert await stock(alchemy, "DC-1") == 12 and await ledger_ok(alchemy)


class Unreachable:
    """A provider that cannot be reached (its refunds raise ``ProviderUnavailable``)."""

    name = "test"

    async def refund(self, **_: Any) -> RefundResult:
        raise ProviderUnavailable("connection refused")


async def test_an_unanswered_refund_stays_pending_and_a_retry_refunds_it_once(admin_id, alchemy, settings, skus):
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-REF7", {"BC-1": 1})
    async with write_session(alchemy) as session:
        refund = await RefundService(session=session, provider=Unreachable()).refund(  # type: ignore[arg-type]
            order.id, amount=45500, actor=None, idempotency_key="u1"
        )
    assert refund.status == RefundStatus.PENDING.value
    [claimed] = await read(alchemy, Order, Order.id == order.id)
    assert (claimed.refunded_total, claimed.status) == (45500, "paid")  # claimed: nothing more can be refunded
    real = build_provider(settings, alchemy)
    for _ in range(2):  # the second retry finds it answered and asks nothing
        async with write_session(alchemy) as session:
            assert (await RefundService(session=session, provider=real).retry(refund.id)).status == "succeeded"
    [done] = await read(alchemy, Order, Order.id == order.id)
    assert done.status == "refunded"
    assert await refunded_by_provider(alchemy, order.payment_reference) == 45500
    assert len(await read(alchemy, OutboundEmail, OutboundEmail.kind == "order_refund")) == 1


async def test_refunding_every_item_before_it_ships_gives_back_the_parcels_shipping_on_the_admins_page(
    admin, admin_id, alchemy, settings, skus
):
    """The admin is told of both refunds, and the order's refunds list the second as shipping."""
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order = await paid_order(alchemy, settings, customer, "WS-REF10", {"EP-1": 1})  # 19.99 + 5.00
    detail = f"/admin/orders/{order.id}"
    token = TOKEN_RE.search((await admin.get(f"{detail}/refunds")).text).group(1)
    form = {"token": token, f"qty-{order.lines[0].id}": "1", "reason": "Wilted"}
    sent = await post(admin, f"{detail}/refunds", form, token_from=detail)
    assert sent.status_code == 303, sent.text
    page = text_of((await admin.get(detail)).text)
    assert "Refunded $19.99 to the customer." in page
    assert "Refunded $5.00 (Shipping of the items: nothing is left to send) to the customer." in page
    assert "$5.00 Shipping Shipping of the items: nothing is left to send Refunded" in page
    [done] = await read(alchemy, Order, Order.id == order.id)
    assert (done.status, done.refunded_total) == ("refunded", done.total)


async def test_an_order_paid_another_way_is_refunded_by_the_shop_on_the_admin_pages(admin, alchemy, settings, skus):
    client = admin
    customer = await make_user(alchemy, CUSTOMER, name="Ada")
    order_id = await make_order(alchemy, customer, "WS-HAND", {"DC-1": 2, "EP-1": 1})
    async with write_session(alchemy) as session:  # marked paid by hand: a bank transfer, no card payment
        order = await session.scalar(select(Order).where(Order.id == order_id).options(selectinload(Order.lines)))
        order.paid_at, order.payment_status, order.card_last4 = datetime.now(UTC), "cancelled", ""
        await session.commit()
    chair = next(line for line in order.lines if line.sku == "DC-1")
    detail = f"/admin/orders/{order_id}"

    form_page = text_of((await client.get(f"{detail}/refunds")).text)
    assert "The order was paid another way, so no payment provider refunds it" in form_page
    token = TOKEN_RE.search((await client.get(f"{detail}/refunds")).text).group(1)
    form = {"token": token, f"qty-{chair.id}": "1", "reason": "Wrong colour", "restock": "on"}
    chairs = await stock(alchemy, "DC-1")
    sent = await post(client, f"{detail}/refunds", form, token_from=detail)
    assert sent.status_code == 303, sent.text
    [refund] = await read(alchemy, Refund, Refund.order_id == order_id)
    assert (refund.status, refund.reference, refund.restock) == ("succeeded", "returned by the shop", True)
    told = text_of((await client.get(detail)).text)  # browser QA: "Refunded $X to the customer.", "card"
    money_back = format_money(refund.amount, "USD")
    assert f"{money_back} is recorded as refunded: return it to the customer yourself, the way they paid." in told
    assert "the order was paid another way, so return its money to the customer yourself" in told
    assert " · paid another way " in told and "card" not in told
    assert await stock(alchemy, "DC-1") == chairs + 1 and await ledger_ok(alchemy)
    [note] = await read(alchemy, Invoice, Invoice.refund_id == refund.id)
    assert note.kind == "credit_note" and note.total == refund.amount
    note_url = f"/admin/orders/{order_id}/credit-notes/{note.number}.pdf"
    assert (await client.get(detail)).text.count(f'href="{note_url}"') == 2  # the documents and the refunds table
    printed = text_of_pdf((await admin.get(note_url)).content)
    assert "The shop returns the amount the way the order was paid." in printed  # QA: "original means of payment"
    assert "original means" not in printed
    [mail] = await read(alchemy, OutboundEmail, OutboundEmail.kind == "order_refund")
    assert "We return it to you the way you paid it." in mail.text_body and "card" not in mail.text_body

    asked = text_of((await client.get(f"{detail}/status?status=cancelled")).text)
    left = order.total - refund.amount
    money = f"${left // 100:,}.{left % 100:02d}"
    assert f"The order was paid another way, so no payment provider refunds it: {money} is recorded" in asked
    cancelled = await post(client, f"{detail}/status", {"status": "cancelled"}, token_from=detail)
    assert cancelled.status_code == 303
    page = text_of((await client.get(detail)).text)
    assert f"{money} is recorded as refunded: return it to the customer yourself, the way they paid." in page
    assert f"Refunded {money} on" in page and "the order was paid another way, so return it" in page
    events = [e.summary for e in await audit_events(alchemy, "order", order_id) if e.action == "refund"]
    assert events[-1] == f"Order WS-HAND: refunded {money}, returned by the shop (the order was paid another way)"

    await sign_in(client, CUSTOMER)
    shopper = text_of((await client.get("/orders/WS-HAND")).text)
    assert f"Refunded {money} on" in shopper and "We return it to you the way you paid it." in shopper
    assert "Paid another way (not through our payment page); the shop confirmed your payment." in shopper
    shopper_html = (await client.get("/orders/WS-HAND")).text
    assert '<span class="status status-refunded" data-refunded="1">1 refunded</span>' in shopper_html  # the chair
    assert shopper_html.count(f'href="/orders/WS-HAND/credit-notes/{note.number}.pdf"') == 2
    assert "card" not in shopper
