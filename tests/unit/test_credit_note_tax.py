"""The tax a credit note of an amount refund states: split over the rates the order was charged at,
its shipping's tax included (``webshop.invoices.pdf.credit_note_pdf``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from webshop.db.models import Invoice, Order, OrderLine, Refund, RefundLine
from webshop.invoices.credits import credited_tax, tax_to_credit
from webshop.invoices.pdf import Buyer, Seller, credit_note_pdf

ISSUED = datetime(2026, 3, 14, 12, 0, tzinfo=UTC)


def _text(content: bytes) -> str:
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


def _order() -> tuple[Order, list[OrderLine]]:
    """$160.00 of goods and $10.00 of shipping, both taxed at 20% (net prices): $34.00 of tax, $204.00 in all."""
    line = OrderLine(
        id=1, product_name="Lamp", sku="L-1", options={}, unit_price=16000, currency="USD", quantity=1,
        tax_rate_bp=2000, line_total=16000, net_amount=16000, tax_amount=3200,
    )  # fmt: skip
    order = Order(
        number="W-1", currency="USD", subtotal=16000, shipping_total=1000, shipping_tax=200, tax_total=3400,
        total=20400, ship_name="Ada", ship_line1="1 Main St", ship_city="Austin", ship_postal_code="73301",
        ship_country="US", tax_breakdown=[{"rate_bp": 2000, "net": 17000, "tax": 3400}],
    )  # fmt: skip
    return order, [line]


def _credited_tax(amount: int) -> str:
    order, lines = _order()
    refund = Refund(amount=amount, currency="USD", reason="", lines=[], reference="re_1")
    note = Invoice(number="CN-2026-000001", issued_at=ISSUED)
    content = credit_note_pdf(note, refund, order, lines, Seller("Shop"), Buyer("Ada", ("1 Main St",), "a@b.c"))
    return _text(content)


def test_a_refund_of_the_whole_order_credits_the_tax_its_invoice_charged_shipping_s_too():
    assert "Tax 20% included $34.00" in _credited_tax(20400)


def test_a_part_refund_credits_its_share_of_every_charged_tax():
    assert "Tax 20% included $0.83" in _credited_tax(500)  # $5.00 at 20% contains $0.83


def _two_rates() -> tuple[Order, list[OrderLine]]:
    """A $100.00 lamp at 20% and a $100.00 book at 5%, $10.00 of shipping at 20% (net prices): $27.00 of
    tax ($5.00 at 5%, $22.00 at 20%), $237.00 in all."""
    lamp = OrderLine(
        id=1, product_name="Lamp", sku="L-1", options={}, unit_price=10000, currency="USD", quantity=1,
        tax_rate_bp=2000, line_total=10000, net_amount=10000, tax_amount=2000,
    )  # fmt: skip
    book = OrderLine(
        id=2, product_name="Book", sku="B-1", options={}, unit_price=10000, currency="USD", quantity=1,
        tax_rate_bp=500, line_total=10000, net_amount=10000, tax_amount=500,
    )  # fmt: skip
    order = Order(
        number="W-2", currency="USD", subtotal=20000, shipping_total=1000, shipping_tax=200, tax_total=2700,
        total=23700, ship_name="Ada", ship_line1="1 Main St", ship_city="Austin", ship_postal_code="73301",
        ship_country="US",
        tax_breakdown=[{"rate_bp": 500, "net": 10000, "tax": 500}, {"rate_bp": 2000, "net": 11000, "tax": 2200}],
    )  # fmt: skip
    return order, [lamp, book]


def test_the_refund_that_completes_the_order_credits_the_tax_left_per_rate_not_a_share_of_every_rate():
    """The lamp is refunded (its $20.00 at 20%), then the order is cancelled: the cancel's credit note
    credits the book's $5.00 at 5% and the shipping's $2.00 at 20%, so the two notes credit exactly the
    $27.00 the invoice charged, rate by rate (a share of every rate would say $2.47 at 5%, $10.86 at 20%)."""
    order, lines = _two_rates()
    lamp = Refund(id=1, amount=12000, currency="USD", reason="", reference="re_1", lines=[])
    lamp.lines = [RefundLine(order_line_id=1, quantity=1, amount=12000)]
    cancel = Refund(id=2, amount=11700, currency="USD", reason="Order cancelled", reference="re_2", lines=[])
    assert credited_tax(lamp, order, lines) == {2000: 2000}
    assert credited_tax(cancel, order, lines, [lamp]) == {500: 500, 2000: 200}
    note = Invoice(number="CN-2026-000002", issued_at=ISSUED)
    buyer = Buyer("Ada", ("1 Main St",), "a@b.c")
    text = _text(credit_note_pdf(note, cancel, order, lines, Seller("Shop"), buyer, earlier=[lamp]))
    assert "Tax 5% included $5.00" in text and "Tax 20% included $2.00" in text
    # Without the lamp's refund before it, the same amount is a share of every rate, as any part refund.
    assert credited_tax(cancel, order, lines) == {500: 247, 2000: 1086}


def test_an_amount_refund_after_a_line_refund_credits_a_share_of_what_each_rate_has_left():
    """The lamp's refund credits $20.00 of the $22.00 charged at 20%; an amount
    refund of $50.00 then took a share of every rate as charged (20%: $4.64, $2.64 more than was left).
    Now it takes a share of what is left ($11,700 to refund: 20% $0.85, 5% $2.14), and the refund that
    completes the order credits the rest, so the notes add up to the invoice rate by rate."""
    order, lines = _two_rates()
    lamp = Refund(id=1, amount=12000, currency="USD", reason="", lines=[], is_shipping=False)
    lamp.lines = [RefundLine(order_line_id=1, quantity=1, amount=12000)]
    part = Refund(id=2, amount=5000, currency="USD", reason="Goodwill", lines=[], is_shipping=False)
    rest = Refund(id=3, amount=6700, currency="USD", reason="Order cancelled", lines=[], is_shipping=False)
    assert credited_tax(part, order, lines, [lamp]) == {500: 105, 2000: 464}  # the earlier rule: over 20%'s $2.00

    first = tax_to_credit(lamp, order, lines, credited_before={}, refunded_before=0)
    assert first == {2000: 2000}
    second = tax_to_credit(part, order, lines, credited_before=first, refunded_before=12000)
    assert second == {500: 214, 2000: 85}  # 5000 × 500 / 11700, 5000 × 200 / 11700
    before = {rate: first.get(rate, 0) + second.get(rate, 0) for rate in (500, 2000)}
    third = tax_to_credit(rest, order, lines, credited_before=before, refunded_before=17000)
    assert third == {500: 286, 2000: 115}
    assert {rate: first.get(rate, 0) + second[rate] + third[rate] for rate in (500, 2000)} == {500: 500, 2000: 2200}


def test_a_line_refund_never_credits_more_of_its_rate_than_is_left():
    """An amount refund first took a share of 20%; refunding the lamp's line then credits what 20% has
    left, not the whole $20.00 its amount contains."""
    order, lines = _two_rates()
    part = Refund(id=1, amount=11700, currency="USD", reason="", lines=[], is_shipping=False)
    lamp = Refund(id=2, amount=12000, currency="USD", reason="", lines=[], is_shipping=False)
    lamp.lines = [RefundLine(order_line_id=1, quantity=1, amount=12000)]
    first = tax_to_credit(part, order, lines, credited_before={}, refunded_before=0)
    assert first == {500: 247, 2000: 1086}
    second = tax_to_credit(lamp, order, lines, credited_before=first, refunded_before=11700)
    assert second == {500: 253, 2000: 1114}  # it completes the order: all that is left of each rate


def test_right_to_left_names_addresses_and_reasons_are_drawn_in_reading_order():
    """Browser QA: a Hebrew address and an Arabic reason came out backwards, the Arabic letters unjoined
    (fpdf2 draws them in order only with text shaping on, through uharfbuzz)."""
    order, lines = _order()
    refund = Refund(amount=500, currency="USD", reason="لون خاطئ", lines=[], reference="re_1")
    note = Invoice(number="CN-2026-000001", issued_at=ISSUED)
    buyer = Buyer("דנה כהן", ("רחוב הרצל 1", "תל אביב"), "a@b.c")
    text = _text(credit_note_pdf(note, refund, order, lines, Seller("Shop"), buyer))
    assert "דנה כהן" in text and "רחוב הרצל" in text and "תל אביב" in text
    assert "لون خاطئ" in text
