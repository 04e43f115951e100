"""Invoices and credit notes on both engines (issue 18): gap-free numbers under concurrent payments,
PDFs that print the order's snapshot, and who may download them.

The payments here are what ``PaymentService`` does when an order is paid, in one transaction: the
conditional ``UPDATE orders SET status='paid' WHERE id=? AND status='pending'``, then ``issue_invoice``,
then commit. PDFs are read back with pypdf.
"""

from __future__ import annotations

import asyncio
import io
import zipfile
from datetime import UTC, datetime
from typing import Any

from pypdf import PdfReader
from sqlalchemy import func, select, update

from tests.api_user import assert_problem, token_pair
from tests.factories import make_order, make_user
from tests.integration.conftest import ADMIN_EMAIL
from tests.shopper import sign_in
from webshop.db.engine import write_session
from webshop.db.models import Invoice, InvoiceCounter, Order, OrderLine, OrderStatus, Refund, RefundLine
from webshop.invoices.numbering import issue_credit_note, issue_invoice
from webshop.invoices.service import InvoiceService

ISSUED = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
SELLER = {
    "seller_name": "Webshop Trading SARL",
    "seller_address": "1 Rue de Rivoli|75001 Paris|France",
    "seller_vat_id": "FR12345678901",
}
PDF_HEADERS = {"content-type": "application/pdf", "cache-control": "private, no-store"}


def text_of_pdf(content: bytes) -> str:
    """All the text of a PDF's pages, whitespace (and so wrapped lines) collapsed to single spaces."""
    assert content.startswith(b"%PDF-")
    return " ".join(" ".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages).split())


async def pending_orders(alchemy: Any, user_id: int, count: int) -> list[int]:
    """``count`` pending orders (no lines: numbering needs none) in one transaction; their ids."""
    async with write_session(alchemy) as session:
        orders = [
            Order(
                number=f"P-{n:03d}",
                user_id=user_id,
                checkout_token=f"pending-{n}",
                status=OrderStatus.PENDING.value,
                currency="USD",
                subtotal=1000,
                shipping_total=0,
                tax_total=0,
                total=1000,
                shipping_method="standard",
                shipping_method_name="Standard",
                ship_name="Ada",
                ship_line1="1 Way",
                ship_city="London",
                ship_postal_code="N1",
                ship_country="GB",
            )
            for n in range(count)
        ]
        session.add_all(orders)
        await session.commit()
        return [order.id for order in orders]


async def pay(alchemy: Any, order_id: int, *, commit: bool = True) -> str:
    """Mark the order paid and number its invoice in one transaction (as the payment settle does)."""
    async with write_session(alchemy) as session:
        paid = await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status == OrderStatus.PENDING.value)
            .values(status=OrderStatus.PAID.value, paid_at=ISSUED)
            .execution_options(synchronize_session=False)
        )
        assert paid.rowcount == 1
        order = await session.get(Order, order_id)
        assert order is not None
        invoice = await issue_invoice(session, order, prefix="INV", now=ISSUED)
        if commit:
            await session.commit()
        else:
            await session.rollback()
        return invoice.number


async def test_fifty_concurrent_payments_get_fifty_consecutive_numbers_and_a_rollback_leaves_no_gap(alchemy, db_url):
    user_id = await make_user(alchemy, "ada@example.com")
    ids = await pending_orders(alchemy, user_id, 51)
    # PostgreSQL: at most 25 connections at once (CI runs two test workers on one server of 100
    # connections); the 50 transactions still overlap and queue on the counter row's lock.
    gate = asyncio.Semaphore(25 if db_url.startswith("postgresql") else 50)

    async def paid(order_id: int) -> str:
        async with gate:
            return await pay(alchemy, order_id)

    numbers = await asyncio.wait_for(asyncio.gather(*(paid(order_id) for order_id in ids[:50])), 60)
    assert sorted(numbers) == [f"INV-2026-{n:06d}" for n in range(1, 51)]
    async with alchemy.get_session() as session:
        rows = list(await session.scalars(select(Invoice).order_by(Invoice.sequence)))
        assert [row.sequence for row in rows] == list(range(1, 51))
        assert len({row.order_id for row in rows}) == 50
        assert await session.scalar(select(InvoiceCounter.last)) == 50

    # A payment whose transaction rolls back gives its number back: the next one takes it.
    assert await pay(alchemy, ids[50], commit=False) == "INV-2026-000051"
    assert await pay(alchemy, ids[50]) == "INV-2026-000051"
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Invoice)) == 51


async def invoiced_order(alchemy: Any, user_id: int, number: str = "W-1001") -> tuple[int, int]:
    """A paid order of two lines at two tax rates (Unicode names), its invoice, and a refund of one
    line with its credit note; returns ``(order id, credit note id)``."""
    async with write_session(alchemy) as session:
        order = Order(
            number=number,
            user_id=user_id,
            checkout_token=f"t-{number}",
            status=OrderStatus.PAID.value,
            currency="EUR",
            subtotal=5000,
            shipping_total=490,
            tax_total=740,
            total=6230,
            shipping_method="standard",
            shipping_method_name="Standard shipping",
            ship_name="Zoë Ångström",
            ship_line1="Hauptstraße 5",
            ship_city="München",
            ship_postal_code="80331",
            ship_country="DE",
            payment_reference="tpi_abc123",
            paid_at=ISSUED,
            card_last4="4242",
        )
        order.lines = [
            OrderLine(
                product_name="Crème brûlée set — Édition «spéciale»",
                product_slug="creme",
                sku="CB-1",
                options={"colour": "Grün"},
                unit_price=1500,
                currency="EUR",
                quantity=2,
                tax_category="standard",
                tax_rate_bp=2000,
                line_total=3000,
                net_amount=3000,
                tax_amount=600,
            ),
            OrderLine(
                product_name="Ωμέγα tea 漢",
                product_slug="tea",
                sku="TEA-7",
                options={},
                unit_price=2000,
                currency="EUR",
                quantity=1,
                tax_category="reduced",
                tax_rate_bp=700,
                line_total=2000,
                net_amount=2000,
                tax_amount=140,
            ),
        ]
        session.add(order)
        await session.flush()
        await issue_invoice(session, order, prefix="INV", now=ISSUED)
        refund = Refund(
            order_id=order.id,
            amount=1800,
            currency="EUR",
            reason="Damaged in transit",
            idempotency_key=f"refund-{number}",
            reference="tre_xyz",
            status="succeeded",
        )
        refund.lines = [RefundLine(order_line_id=order.lines[0].id, quantity=1, amount=1800)]
        session.add(refund)
        await session.flush()
        note = await issue_credit_note(session, refund, prefix="CN", now=ISSUED)
        await session.commit()
        return order.id, note.id


async def test_the_pdfs_print_the_order_snapshot_seller_buyer_taxes_and_totals(alchemy, settings):
    user_id = await make_user(alchemy, "zoe@example.com")
    order_id, note_id = await invoiced_order(alchemy, user_id)
    async with alchemy.get_session() as session:
        service = InvoiceService(session=session, settings=settings.with_values(**SELLER))
        order = await session.get(Order, order_id)
        assert order is not None
        invoice = await service.invoice_document(order)
        again = await service.invoice_document(order)
        note = await service.credit_note_document(order, note_id=note_id)
    assert invoice.filename == "INV-2026-000001.pdf" and note.filename == "CN-2026-000001.pdf"
    assert invoice.content == again.content  # the same inputs give the same bytes

    text = text_of_pdf(invoice.content)
    assert "Sold by" not in text and "parcels" not in text  # one shop: no seller per line
    for expected in (
        "Invoice",
        "INV-2026-000001",
        "2026-03-14",
        "W-1001",
        "tpi_abc123",
        "Webshop Trading SARL",
        "1 Rue de Rivoli",
        "75001 Paris",
        "FR12345678901",  # the seller
        "Zoë Ångström",
        "Hauptstraße 5",
        "80331 München",
        "zoe@example.com",  # the buyer
        "Crème brûlée set — Édition «spéciale» (Grün)",
        "SKU CB-1",
        "€15.00",
        "€30.00",  # line 1
        "Ωμέγα tea \ufffd",
        "SKU TEA-7",
        "€20.00",  # line 2 (no CJK glyph in the font: U+FFFD)
        "Standard shipping",
        "€4.90",
        "Tax 7% on €20.00",
        "€1.40",
        "Tax 20% on €30.00",
        "€6.00",  # tax per rate
        "Total",
        "€62.30",
    ):
        assert expected in text, (expected, text)

    text = text_of_pdf(note.content)
    for expected in (
        "Credit note",
        "CN-2026-000001",
        "Corrects invoice",
        "INV-2026-000001",
        "W-1001",
        "tre_xyz",
        "Webshop Trading SARL",
        "Zoë Ångström",
        "Crème brûlée set",
        "SKU CB-1",
        "€18.00",
        "Tax 20% included",
        "€3.00",
        "Total credited",
        "Damaged in transit",
    ):
        assert expected in text, (expected, text)


async def test_the_note_of_the_refund_that_completes_the_order_credits_the_tax_left_and_notes_never_change(
    alchemy, settings
):
    """The order's 20% line was refunded (note 1, €3.00 at 20%). An amount refund waits for the provider;
    another, made meanwhile, gets note 2: a share of what each rate has left (20%: €3.00 of its €6.00).
    The waiting one succeeds last and its note 3 completes the order: what is left of each rate. The
    three notes credit the invoice's €1.40 at 7% and €6.00 at 20%, no more; note 2, drawn again
    afterwards, is the same document."""
    user_id = await make_user(alchemy, "zoe@example.com")
    order_id, first_note = await invoiced_order(alchemy, user_id)
    async with write_session(alchemy) as session:
        waiting = Refund(order_id=order_id, amount=1000, currency="EUR", idempotency_key="late", status="pending")
        meanwhile = Refund(order_id=order_id, amount=3430, currency="EUR", idempotency_key="now", status="succeeded")
        session.add_all([waiting, meanwhile])
        await session.flush()
        second_note = (await issue_credit_note(session, meanwhile, prefix="CN", now=ISSUED)).id
        await session.commit()

    async def drawn(note_id: int) -> bytes:
        async with alchemy.get_session() as session:
            service = InvoiceService(session=session, settings=settings.with_values(**SELLER))
            order = await session.get(Order, order_id)
            assert order is not None
            return (await service.credit_note_document(order, note_id=note_id)).content

    before = await drawn(second_note)
    # 34.30 of the 44.30 left: 1.40 × 34.30 / 44.30 at 7%, 3.00 × 34.30 / 44.30 at 20% (once 3.30, more than left)
    assert "Tax 7% included €1.08 Tax 20% included €2.32" in text_of_pdf(before)
    async with write_session(alchemy) as session:
        late = await session.get(Refund, waiting.id)
        assert late is not None
        late.status = "succeeded"
        third_note = (await issue_credit_note(session, late, prefix="CN", now=ISSUED)).id
        await session.commit()
    assert await drawn(second_note) == before
    last = text_of_pdf(await drawn(third_note))
    assert "Tax 7% included €0.32 Tax 20% included €0.68" in last  # 1.40 - 1.08 and 6.00 - 3.00 - 2.32
    assert "Tax 20% included €3.00" in text_of_pdf(await drawn(first_note))


async def test_a_credit_note_issued_before_notes_kept_their_tax_draws_as_it_always_did(alchemy, settings):
    """A note issued before ``invoices.credited_tax`` existed (the column ``NULL``) is drawn by the earlier
    rule, so the document the customer already has never changes: an amount refund after the 20% line's
    refund still says the share of every rate it said then (€3.30 at 20%)."""
    user_id = await make_user(alchemy, "zoe@example.com")
    order_id, _first_note = await invoiced_order(alchemy, user_id)
    async with write_session(alchemy) as session:
        amount = Refund(order_id=order_id, amount=3430, currency="EUR", idempotency_key="old", status="succeeded")
        session.add(amount)
        await session.flush()
        note = await issue_credit_note(session, amount, prefix="CN", now=ISSUED)
        assert note.credited_tax == [{"rate_bp": 700, "tax": 108}, {"rate_bp": 2000, "tax": 232}]
        note.credited_tax = None  # as the notes issued before the revision that added the column
        await session.commit()
    async with alchemy.get_session() as session:
        service = InvoiceService(session=session, settings=settings.with_values(**SELLER))
        order = await session.get(Order, order_id)
        assert order is not None
        drawn = await service.credit_note_document(order, note_id=note.id)
    assert "Tax 7% included €0.77 Tax 20% included €3.30" in text_of_pdf(drawn.content)  # 34.30 × 6.00 / 62.30


async def test_the_buyer_and_admins_download_them_and_nobody_else(client, alchemy, admin_id):
    owner = await make_user(alchemy, "ada@example.com")
    await make_user(alchemy, "bob@example.com")
    order_id, note_id = await invoiced_order(alchemy, owner)
    unpaid = await make_order(alchemy, owner, "W-2002", {}, status=OrderStatus.PENDING)
    invoice_url, note_url = "/orders/W-1001/invoice.pdf", "/orders/W-1001/credit-notes/CN-2026-000001.pdf"

    # Signed out: to the sign-in form.
    response = await client.get(invoice_url, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/account/sign-in?next=")

    # The buyer: the order page links both; both download.
    await sign_in(client, "ada@example.com")
    page = await client.get("/orders/W-1001")
    assert f'href="{invoice_url}"' in page.text and f'href="{note_url}"' in page.text
    for url, name in ((invoice_url, "INV-2026-000001.pdf"), (note_url, "CN-2026-000001.pdf")):
        response = await client.get(url)
        assert response.status_code == 200 and response.content.startswith(b"%PDF-")
        assert {k: response.headers[k] for k in PDF_HEADERS} == PDF_HEADERS
        assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    for url in (
        "/orders/W-2002/invoice.pdf",
        "/orders/W-1001/credit-notes/CN-2026-000009.pdf",
        "/orders/W-1001/credit-notes/INV-2026-000001.pdf",
    ):
        assert (await client.get(url)).status_code == 404
    assert "order-documents" not in (await client.get("/orders/W-2002")).text

    # Another customer: the same 404 as for no such order.
    client.cookies.clear()
    await sign_in(client, "bob@example.com")
    assert (await client.get(invoice_url)).status_code == 404
    assert (await client.get(note_url)).status_code == 404
    assert (await client.get("/admin/invoices")).status_code == 403

    # The API: the owner and admins; anyone else and an unpaid order are 404.
    api = {}
    for email in ("ada@example.com", "bob@example.com", ADMIN_EMAIL):
        api[email] = {"Authorization": f"Bearer {(await token_pair(client, email))['access_token']}"}
    for email in ("ada@example.com", ADMIN_EMAIL):
        response = await client.get(f"/api/orders/{order_id}/invoice", headers=api[email])
        assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
        assert "INV-2026-000001" in text_of_pdf(response.content)
        response = await client.get(f"/api/orders/{order_id}/credit-notes/{note_id}", headers=api[email])
        assert response.status_code == 200 and "CN-2026-000001" in text_of_pdf(response.content)
    assert_problem(await client.get(f"/api/orders/{order_id}/invoice", headers=api["bob@example.com"]), 404)
    assert_problem(
        await client.get(f"/api/orders/{order_id}/credit-notes/{note_id}", headers=api["bob@example.com"]), 404
    )
    assert_problem(await client.get(f"/api/orders/{unpaid}/invoice", headers=api["ada@example.com"]), 404)
    assert_problem(await client.get(f"/api/orders/{unpaid}/credit-notes/{note_id}", headers=api[ADMIN_EMAIL]), 404)
    assert_problem(await client.get(f"/api/orders/{order_id}/invoice"), 401)

    # The admin: the order page and the navigation link them; the PDFs and the ZIP of a date range.
    client.cookies.clear()
    await sign_in(client, ADMIN_EMAIL)
    page = await client.get(f"/admin/orders/{order_id}")
    admin_invoice = f"/admin/orders/{order_id}/invoice.pdf"
    assert f'href="{admin_invoice}"' in page.text and 'href="/admin/invoices"' in page.text
    response = await client.get(admin_invoice)
    assert response.status_code == 200 and response.headers["cache-control"] == "private, no-store"
    response = await client.get(f"/admin/orders/{order_id}/credit-notes/CN-2026-000001.pdf")
    assert response.status_code == 200 and "Total credited" in text_of_pdf(response.content)
    assert (await client.get(f"/admin/orders/{unpaid}/invoice.pdf")).status_code == 404

    assert "Download ZIP" in (await client.get("/admin/invoices")).text
    response = await client.get("/admin/invoices.zip", params={"from": "2026-03-14", "to": "2026-03-31"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == 'attachment; filename="invoices-2026-03-14-2026-03-31.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["CN-2026-000001.pdf", "INV-2026-000001.pdf"]
        assert "Zoë Ångström" in text_of_pdf(archive.read("INV-2026-000001.pdf"))
    # Nothing issued in the range: the form says so, rather than downloading an empty ZIP.
    response = await client.get("/admin/invoices.zip", params={"from": "2026-03-15", "to": "2026-03-31"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "No invoice or credit note was issued from 15 Mar 2026 to 31 Mar 2026." in response.text
    assert 'value="2026-03-15"' in response.text and "Download ZIP" in response.text
    for params, message in (
        ({"from": "2026-13-01", "to": "2026-03-31"}, "Enter a date as YYYY-MM-DD."),
        ({"to": "2026-03-31"}, "Enter a date as YYYY-MM-DD."),
        ({"from": "2026-03-31", "to": "2026-03-01"}, "Before the start date."),
    ):
        response = await client.get("/admin/invoices.zip", params=params)
        assert response.status_code == 422 and message in response.text and "Download ZIP" in response.text
