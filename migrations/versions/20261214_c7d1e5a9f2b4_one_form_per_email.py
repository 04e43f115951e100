"""One form per e-mail address: full-width letters and the DNS root's trailing dot

Addresses are now stored in Unicode NFKC (full-width ``ａｎｎ`` is ``ann``) and without the root's trailing
dot (``ann@example.com.`` is ``ann@example.com``), and looked up in that form
(``webshop.accounts.service.normalize_email``). Addresses stored before in another form would no longer
be found by their owner, and the same mailbox could register again. This rewrites them in the new form:
accounts (unless another account already has that form: such a pair is left as it is, for an admin to
settle; its orders keep their address too) and orders and promotion uses (so the guest orders of an address
still join its account, and a once-per-customer code still counts its earlier uses).

Only rows whose address has a character outside printable ASCII, or ends with a dot, can change; the
others are not read. Downgrade leaves the addresses as they are.

Revision ID: c7d1e5a9f2b4
Revises: b5e2f8a1c930
Create Date: 2026-12-14 08:00:00.000000
"""

import logging
import unicodedata

from alembic import op
from sqlalchemy import text

# revision identifiers, used by Alembic.
revision = "c7d1e5a9f2b4"
down_revision = "b5e2f8a1c930"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _normal(email: str) -> str:
    """``webshop.accounts.service.normalize_email``'s new steps, as they are at this revision (the IDNA
    form of the domain is not redone: lookups find a domain in either form)."""
    email = unicodedata.normalize("NFKC", email.strip())
    local, _, domain = email.rpartition("@")
    if not local:
        return email
    if domain.endswith(".") and not domain.endswith(".."):
        domain = domain[:-1]
    return f"{local}@{domain.lower()}"


def _may_change(dialect: str) -> str:
    """SQL condition: the ``email`` column has a character outside printable ASCII, or ends with a dot."""
    outside = "email ~ '[^ -~]'" if dialect == "postgresql" else "email GLOB '*[^ -~]*'"
    return f"({outside} OR email LIKE '%.')"


def upgrade() -> None:
    bind = op.get_bind()
    condition = _may_change(bind.dialect.name)
    taken = {row[0].lower() for row in bind.execute(text("SELECT email FROM users")).all()}  # every script's case
    clash = text("SELECT 1 FROM users WHERE lower(email) = lower(:email) AND id <> :id")  # the unique index's rule
    kept: set[str] = set()  # addresses left as they were: their guest orders and promotion uses stay theirs
    for user_id, email in bind.execute(text(f"SELECT id, email FROM users WHERE {condition}")).all():  # noqa: S608
        normal = _normal(email)
        if normal == email:
            continue
        taken_in_python = normal.lower() in taken and normal.lower() != email.lower()
        if taken_in_python or bind.execute(clash, {"email": normal, "id": user_id}).first() is not None:
            log.warning("user %s: %r is another account's address in its new form; left as it is", user_id, email)
            kept.add(email)
            continue
        bind.execute(text("UPDATE users SET email = :email WHERE id = :id"), {"email": normal, "id": user_id})
        taken.add(normal.lower())
    for table in ("orders", "promotion_usages"):  # guest orders join accounts, and codes count uses, by address
        rows = bind.execute(text(f"SELECT id, email FROM {table} WHERE {condition}")).all()  # noqa: S608
        for row_id, email in rows:
            if email not in kept and (normal := _normal(email)) != email:
                update = text(f"UPDATE {table} SET email = :email WHERE id = :id")  # noqa: S608
                bind.execute(update, {"email": normal, "id": row_id})


def downgrade() -> None:
    """The addresses keep their new form (the old one is not kept)."""
