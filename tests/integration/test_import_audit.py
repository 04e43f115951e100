"""A catalog import writes its own audit trail, whoever runs it (the command line as well as the admin page).

Each product the import creates or changes gets a ``product``/``import`` event in the batch's
transaction, saying what the dry run would have said; an import that changes nothing adds none.
"""

from __future__ import annotations

import csv
import io

from sqlalchemy import select

from tests.integration.test_admin_catalog import sample_catalog
from webshop.catalog.csv.apply import import_catalog
from webshop.db.models import AuditEvent, Product


async def import_events(alchemy) -> list[tuple[str, str, str]]:
    async with alchemy.get_session() as session:
        rows = await session.execute(
            select(Product.slug, AuditEvent.actor_email, AuditEvent.summary)
            .join(Product, Product.id == AuditEvent.entity_id)
            .where(AuditEvent.entity_type == "product", AuditEvent.action == "import")
            .order_by(AuditEvent.id)
        )
        return [tuple(row) for row in rows]


async def test_a_command_line_import_leaves_an_audit_trail(alchemy, settings, shared_catalog, tmp_path):
    folder = tmp_path / "sample"
    count = sample_catalog(shared_catalog, folder)
    await import_catalog(alchemy, folder, settings.shop.media_dir)  # as `webshop import-catalog` does: no actor
    created = await import_events(alchemy)
    assert len(created) == count
    assert all(email == "" and summary.startswith("Created by a CSV import (line ") for _s, email, summary in created)

    # The same file again changes nothing and records nothing.
    await import_catalog(alchemy, folder, settings.shop.media_dir)
    assert await import_events(alchemy) == created

    # One price changed: that product, and only it, gets an event naming the change.
    rows = list(csv.reader(io.StringIO((folder / "products.csv").read_text(encoding="utf-8"))))
    header, first = [name.strip() for name in rows[0]], rows[1]  # the shared file pads its columns
    price, sku, slug = header.index("price"), header.index("sku"), header.index("slug")
    old_price = first[price].strip()
    first[price] = f"{float(old_price) + 1:.2f}"
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    (folder / "products.csv").write_text(buffer.getvalue(), encoding="utf-8")
    await import_catalog(alchemy, folder, settings.shop.media_dir)
    changed = (await import_events(alchemy))[len(created) :]
    assert [(s, email) for s, email, _summary in changed] == [(first[slug].strip(), "")]
    assert f"{first[sku].strip()}: price {float(old_price):.2f} → {first[price]}" in changed[0][2]
