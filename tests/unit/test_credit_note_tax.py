"""The tax a credit note of an amount refund states: split over the rates the order was charged at,
its shipping's tax included (``webshop.invoices.pdf.credit_note_pdf``)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from pypdf import PdfReader

from webshop.db.models import Invoice, Order, OrderLine, Refund
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
