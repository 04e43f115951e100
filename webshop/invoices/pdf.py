"""Invoice and credit-note PDFs, drawn with fpdf2 from the order's snapshot and nothing else.

Everything printed comes from what the order stored when it was placed (its lines' names, SKUs, unit
prices, quantities, tax rates and tax amounts; its shipping and totals; its shipping address), from the
refund for a credit note, and from the seller details in the settings. Nothing is looked up in the
catalog, so a product renamed or repriced later never changes an invoice already issued, and the same
inputs give the same bytes (the PDF's creation date is the document's ``issued_at``; fpdf2 derives the
file identifier from the content and that date).

Text is set in DejaVu Sans (vendored in ``static/fonts``, see its README): the PDF core fonts know
Latin-1 only, DejaVu Sans covers Latin, Greek, Cyrillic, Hebrew and the usual symbols (€, —, …). A
character the font lacks (CJK ideographs, for one) is printed as U+FFFD "�" rather than as an empty box,
so that a missing glyph is visible on paper and in the extracted text.

What the documents say (EU VAT Directive 2006/112/EC, art. 226, as a checklist): date of issue; a
sequential number; the seller's name, address and VAT number; the buyer's name and address; quantity
and nature of the goods; per line the unit price without tax, the tax rate and amount; the taxable
amount and the tax per rate; the total. A credit note (art. 219) names the invoice it corrects.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fpdf import FPDF
from fpdf.enums import XPos, YPos
from fpdf.fonts import FontFace, TTFFont

from webshop.invoices.credits import note_tax, order_tax_by_rate, shipping_rate
from webshop.money import format_money
from webshop.pricing.tax import rate_label

if TYPE_CHECKING:
    from webshop.config import Settings
    from webshop.db.models import Invoice, Order, OrderLine, Refund

FONT_DIR = Path(__file__).resolve().parents[2] / "static" / "fonts"
REGULAR_FONT = FONT_DIR / "DejaVuSans.ttf"
BOLD_FONT = FONT_DIR / "DejaVuSans-Bold.ttf"
FAMILY = "DejaVu"
REPLACEMENT = "\ufffd"

# fontTools reports each font subset fpdf2 makes at INFO level: a dozen lines per PDF in the app's log.
logging.getLogger("fontTools.subset").setLevel(logging.WARNING)

PAGE_WIDTH = 180.0
"""Printable width of an A4 page with fpdf2's 15 mm margins, in millimetres."""


@dataclass(frozen=True)
class Seller:
    """Who issues the documents: legal name, address lines, VAT number (``""``: none shown)."""

    name: str
    address: tuple[str, ...] = ()
    vat_id: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> Seller:
        """The seller of the ``invoices`` settings group; an empty name means the shop's name, and the
        address is split into lines at ``|``."""
        group = settings.invoices
        lines = tuple(part.strip() for part in group.seller_address.split("|") if part.strip())
        return cls(name=group.seller_name.strip() or settings.shop.shop_name, address=lines, vat_id=group.seller_vat_id)


@dataclass(frozen=True)
class Buyer:
    """Who bought: the order's shipping name and address lines, and the e-mail address of the order."""

    name: str
    address: tuple[str, ...]
    email: str

    @classmethod
    def of(cls, order: Order, email: str) -> Buyer:
        """The buyer as the order stored them (``email``: the order's own, else its account's)."""
        lines = order.shipping_address_lines()
        return cls(
            name=order.ship_name, address=tuple(lines[1:] if lines[:1] == [order.ship_name] else lines), email=email
        )


def invoice_pdf(invoice: Invoice, order: Order, lines: Sequence[OrderLine], seller: Seller, buyer: Buyer) -> bytes:
    """The invoice of a paid order as PDF bytes (A4, deterministic for the same inputs).

    Args:
        invoice: The invoice row (number, ``issued_at``: the date printed and the PDF's creation date).
        order: The order, for its number, payment reference, shipping and totals (minor units).
        lines: The order's lines (the snapshot printed, in this order).
        seller: The seller (``Seller.from_settings``).
        buyer: The buyer (``Buyer.of``).
    """
    currency = order.currency
    doc = _Document(invoice.issued_at)
    doc.heading(
        "Invoice",
        [
            ("Invoice number", invoice.number),
            ("Date of issue", invoice.issued_at.strftime("%Y-%m-%d")),
            ("Order number", order.number),
            ("Payment reference", order.payment_reference or "-"),
        ],
    )
    doc.parties(seller, buyer)
    discounted = any(line.discount for line in lines)
    shops = {(line.shop_id, line.shop_name) for line in lines}  # by id: two shops may share a name
    rows = [
        (
            _description(line, sold_by=len(shops) > 1 and bool(line.shop_name)),
            str(line.quantity),
            format_money(line.unit_price, currency),
            *((f"-{format_money(line.discount, currency)}" if line.discount else "",) if discounted else ()),
            rate_label(line.tax_rate_bp),
            format_money(line.tax_amount, currency),
            format_money(line.net_amount, currency),
        )
        for line in lines
    ]
    shipping_net = order.shipping_total - (order.shipping_tax if order.prices_include_tax else 0)
    if order.shipping_total or order.shipping_method_name:
        shipping_at = shipping_rate(order)
        rows.append(
            (
                (order.shipping_method_name or "Shipping")
                + (f" ({len(shops)} parcels, one per shop)" if len(shops) > 1 else "")
                + (" (free)" if order.shipping_discount else ""),
                "1",
                format_money(order.shipping_total, currency),
                *(("",) if discounted else ()),
                rate_label(shipping_at) if order.shipping_tax else "",
                format_money(order.shipping_tax, currency) if order.shipping_tax else "",
                format_money(shipping_net, currency),
            )
        )
    price = "Unit price (incl. tax)" if order.prices_include_tax else "Unit price"
    columns = ("Description", "Qty", price, *(("Discount",) if discounted else ()), "Tax rate", "Tax", "Net amount")
    doc.table(columns, rows)
    goods_net = sum(line.net_amount for line in lines)
    totals = [("Goods (without tax)", format_money(goods_net, currency))]
    for promotion in order.promotions or []:
        if promotion.get("amount"):
            code = f" ({promotion['code']})" if promotion.get("code") else ""
            label = f"Includes discount {promotion['name']}{code}"
            totals.append((label, f"-{format_money(int(promotion['amount']), currency)}"))
    totals.append(("Shipping (without tax)", format_money(shipping_net, currency)))
    for rate, net, tax in order_tax_by_rate(order, lines):
        totals.append((f"Tax {rate_label(rate)} on {format_money(net, currency)}", format_money(tax, currency)))
    doc.totals(totals, ("Total", format_money(order.total, currency)))
    if order.paid_at is not None:
        paid = f"Paid on {order.paid_at.strftime('%Y-%m-%d')}"
        doc.note(paid + (f" by card ending {order.card_last4}." if order.card_last4 else "."))
    return doc.output(f"Invoice {invoice.number}", seller.name)


def credit_note_pdf(
    note: Invoice,
    refund: Refund,
    order: Order,
    lines: Sequence[OrderLine],
    seller: Seller,
    buyer: Buyer,
    *,
    invoice_number: str = "",
    earlier: Sequence[Refund] = (),
) -> bytes:
    """The credit note of a refund as PDF bytes (A4, deterministic for the same inputs).

    Refunded lines are printed with the quantity refunded and the refund line's amount (minor units,
    tax included, as refunded). A refund of a parcel's shipping (``is_shipping``) is one "Shipping" row,
    a refund of an amount without lines one "Refund" row. The tax credited per rate is what the note kept
    when it was issued, else the earlier rule's (``webshop.invoices.credits.note_tax``; so a refund of
    the whole order credits the tax its invoice charged; an order placed before orders kept their tax
    breakdown: its lines' tax only).

    Args:
        note: The credit note row (number, ``issued_at``).
        refund: The refund it documents (amount, reason, lines, provider reference).
        order: The refunded order.
        lines: The order's lines (to name the refunded ones).
        seller: The seller. buyer: The buyer.
        invoice_number: The number of the order's invoice this note corrects (``""``: none printed).
        earlier: The order's refunds whose credit notes were issued before this one (for a note that kept
            no tax: ``webshop.invoices.credits.credited_tax``).
    """
    currency = order.currency
    by_id = {line.id: line for line in lines}
    doc = _Document(note.issued_at)
    facts = [("Credit note number", note.number), ("Date of issue", note.issued_at.strftime("%Y-%m-%d"))]
    if invoice_number:
        facts.append(("Corrects invoice", invoice_number))
    facts += [("Order number", order.number), ("Refund reference", refund.reference or "-")]
    doc.heading("Credit note", facts)
    doc.parties(seller, buyer)
    rows: list[tuple[str, ...]] = []
    for refunded in refund.lines:
        line = by_id.get(refunded.order_line_id)
        rate = line.tax_rate_bp if line is not None else 0
        rows.append(
            (
                _description(line) if line is not None else "Order line",
                str(refunded.quantity),
                rate_label(rate),
                format_money(refunded.amount, currency),
            )
        )
    rest = refund.amount - sum(refunded.amount for refunded in refund.lines)
    if refund.is_shipping:  # a parcel's shipping (webshop.orders.refunds): its own rate and tax
        rate = shipping_rate(order)
        rows.append(
            (
                f"Shipping: {refund.reason}" if refund.reason else "Shipping",
                "",
                rate_label(rate),
                format_money(rest, currency),
            )
        )
    elif rest or not rows:
        rows.append(
            (
                "Refund" + (f": {refund.reason}" if refund.reason and not refund.lines else ""),
                "",
                "",
                format_money(rest, currency),
            )
        )
    taxes = note_tax(note, refund, order, lines, earlier)
    doc.table(("Description", "Qty", "Tax rate", "Credited"), rows)
    totals = [(f"Tax {rate_label(rate)} included", format_money(tax, currency)) for rate, tax in sorted(taxes.items())]
    doc.totals(totals, ("Total credited", format_money(refund.amount, currency)))
    if refund.reason and refund.lines:
        doc.note(f"Reason: {refund.reason}")
    if order.paid_another_way:  # a bank transfer, cash: no provider holds the payment (``refunding.ShopReturns``)
        doc.note("The shop returns the amount the way the order was paid.")
    else:
        doc.note("The amount is refunded to the original means of payment.")
    return doc.output(f"Credit note {note.number}", seller.name)


def _description(line: OrderLine, *, sold_by: bool = False) -> str:
    """A line's description cell: its product and options, its SKU, and with ``sold_by`` (an order from
    several shops) the shop that sold it."""
    options = ", ".join(str(value) for value in (line.options or {}).values())
    name = f"{line.product_name} ({options})" if options else line.product_name
    return f"{name}\nSKU {line.sku}" + (f"\nSold by {line.shop_name}" if sold_by else "")


class _Document:
    """One A4 page (more when the lines overflow) in DejaVu Sans, with the blocks both documents share."""

    def __init__(self, issued_at: datetime) -> None:
        pdf = FPDF(format="A4", unit="mm")
        pdf.set_creation_date(issued_at)
        pdf.add_font(FAMILY, "", str(REGULAR_FONT))
        pdf.add_font(FAMILY, "B", str(BOLD_FONT))
        # Shaped with HarfBuzz (uharfbuzz): right-to-left text (a Hebrew street, an Arabic reason) in
        # reading order by the Unicode bidirectional algorithm (UAX #9), Arabic letters joined.
        pdf.set_text_shaping(True)
        pdf.set_auto_page_break(auto=True, margin=15)
        pdf.add_page()
        self.pdf = pdf
        # The characters both faces have glyphs for (fpdf2 read the fonts' cmaps in add_font).
        faces = [pdf.fonts[FAMILY.lower() + style] for style in ("", "B")]
        self.covered = frozenset.intersection(*(frozenset(f.cmap) for f in faces if isinstance(f, TTFFont)))

    def printable(self, text: str) -> str:
        """``text`` with every character the font lacks replaced by U+FFFD (line breaks kept)."""
        return "".join(ch if ch == "\n" or ord(ch) in self.covered else REPLACEMENT for ch in text)

    def heading(self, title: str, facts: list[tuple[str, str]]) -> None:
        pdf = self.pdf
        pdf.set_font(FAMILY, "B", 18)
        pdf.cell(0, 10, self.printable(title), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        for label, value in facts:
            pdf.set_font(FAMILY, "", 9)
            pdf.cell(40, 5, self.printable(label))
            pdf.set_font(FAMILY, "B", 9)
            pdf.cell(0, 5, self.printable(value), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(5)

    def parties(self, seller: Seller, buyer: Buyer) -> None:
        pdf = self.pdf
        top = pdf.get_y()
        seller_lines = [*seller.address] + ([f"VAT ID: {seller.vat_id}"] if seller.vat_id else [])
        self._block(pdf.l_margin, top, "Seller", seller.name, seller_lines)
        seller_bottom = pdf.get_y()
        self._block(pdf.l_margin + PAGE_WIDTH / 2, top, "Bill to", buyer.name, [*buyer.address, buyer.email])
        pdf.set_xy(pdf.l_margin, max(seller_bottom, pdf.get_y()) + 6)

    def _block(self, x: float, y: float, label: str, name: str, lines: list[str]) -> None:
        pdf = self.pdf
        width = PAGE_WIDTH / 2 - 5
        pdf.set_xy(x, y)
        pdf.set_font(FAMILY, "", 8)
        pdf.cell(width, 5, self.printable(label.upper()), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font(FAMILY, "B", 10)
        pdf.multi_cell(width, 5, self.printable(name), new_x=XPos.LEFT, new_y=YPos.NEXT)
        pdf.set_font(FAMILY, "", 9)
        for line in lines:
            if line:
                pdf.multi_cell(width, 4.5, self.printable(line), new_x=XPos.LEFT, new_y=YPos.NEXT)

    def table(self, headings: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
        pdf = self.pdf
        numeric = len(headings) - 1
        # Quantity and rate columns narrow, money columns wide enough for "€1,234,567.00".
        money = {"Qty": 12.0, "Tax rate": 17.0}
        rest = tuple(money.get(h, 27.0) for h in headings[1:])
        widths = (PAGE_WIDTH - sum(rest), *rest)
        pdf.set_font(FAMILY, "", 9)
        with pdf.table(
            col_widths=widths,
            text_align=("LEFT", *(["RIGHT"] * numeric)),
            headings_style=FontFace(family=FAMILY, emphasis="BOLD", fill_color=(235, 235, 235)),
            line_height=5,
            first_row_as_headings=True,
        ) as table:
            table.row([self.printable(h) for h in headings])
            for values in rows:
                table.row([self.printable(v) for v in values])
        pdf.ln(3)

    def totals(self, rows: list[tuple[str, str]], total: tuple[str, str]) -> None:
        pdf = self.pdf
        label_x = pdf.l_margin + PAGE_WIDTH - 110
        for label, value in rows:
            pdf.set_x(label_x)
            pdf.set_font(FAMILY, "", 9)
            pdf.cell(80, 5.5, self.printable(label), align="R")
            pdf.cell(30, 5.5, self.printable(value), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_x(label_x)
        pdf.set_font(FAMILY, "B", 11)
        pdf.cell(80, 7, self.printable(total[0]), align="R")
        pdf.cell(30, 7, self.printable(total[1]), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(4)

    def note(self, text: str) -> None:
        self.pdf.set_font(FAMILY, "", 9)
        self.pdf.multi_cell(0, 5, self.printable(text), new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def output(self, title: str, author: str) -> bytes:
        self.pdf.set_title(self.printable(title))
        self.pdf.set_author(self.printable(author))
        return bytes(self.pdf.output())
