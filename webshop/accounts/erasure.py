"""What erasing an account (GDPR art. 17, "right to erasure") removes, and what it keeps.

``UserService.erase`` and ``erase_self`` own the rules (who may, the last admin stays, one transaction,
the audit event); ``forget_personal_data`` here does the removing, inside that transaction:

- the ``users`` row stays, so the orders that point at it stay whole, but says nothing about the person:
  the name becomes ``ERASED_NAME``, the e-mail ``deleted-<id>@invalid`` (unique, and undeliverable: RFC
  2606 §2 reserves ``.invalid``), the password an unusable value no password matches, the account is
  deactivated, a customer, unverified, and ``erased_at`` says when;
- the address book, shop memberships, cart, one-time account links (their ``new_email`` is personal
  data), idempotency records (their stored answers can hold an address) and e-mails to the old address
  (waiting or sent) are deleted;
- earlier audit events name the account by its new address instead of the old ones, in their summary
  and their recorded changes, and by ``ERASED_NAME`` instead of its names (their who and when stay: the
  trail of administrative changes is kept, OWASP Logging Cheat Sheet). "The old ones" are its current
  address and those its own events recorded (e-mail changes: ``AccountLinkService.confirm_email_change``),
  likewise its names (an admin's renames); webhook deliveries that carried the customer (``order.*``
  payloads) carry the erased name and address instead, sent or not;
- the confirmation of a pending e-mail change, sent to the new address, is deleted with its link;
- orders keep everything, the ship-to name and address included: they are records the shop must
  keep for its accounts and taxes (GDPR art. 17(3)(b), a legal obligation); only the shopper's free-text
  notes to the sellers (``customer_note``) are blanked, as nothing requires keeping them.

Browser sessions and API sign-ins end through ``UserService.end_all_sessions``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Text, cast, delete, func, select, update

from webshop.db.folding import fold, folded
from webshop.db.models import (
    AccountToken,
    Address,
    AuditEvent,
    Cart,
    IdempotencyRecord,
    Order,
    OutboundEmail,
    ShopMember,
    UserRole,
    WebhookDelivery,
)

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.db.models import User

ERASED_NAME = "Deleted user"
"""The display name of every erased account."""

UNUSABLE_PASSWORD = "!erased"  # noqa: S105 (not a password: a value no password verifies against)
"""The ``password_hash`` of an erased account: not an argon2 PHC string, so verification always fails
(``verify_password`` treats an invalid hash as a mismatch), whatever is typed."""


def erased_email(user_id: int) -> str:
    """The address an erased account keeps: ``deleted-<id>@invalid`` (unique per account, never delivered)."""
    return f"deleted-{user_id}@invalid"


async def forget_personal_data(session: AsyncSession, user: User) -> dict[str, int]:
    """Replace the account's personal data and delete the rows that hold more of it (see the module's
    docstring); in the caller's transaction, which the caller commits.

    Args:
        session: The caller's session.
        user: The account, not erased yet.

    Returns:
        How many rows went, by kind (``{"addresses": 2, "shop_memberships": 0, ...}``), for the audit event.
    """
    new_email = erased_email(user.id)
    emails, names = await _known_as(session, user)
    removed: dict[str, int] = {}
    # An e-mail change's confirmation went to the new address: it goes with the links that name it.
    pending_addresses = select(AccountToken.new_email).where(
        AccountToken.user_id == user.id, AccountToken.new_email.is_not(None)
    )
    result = await session.execute(
        delete(OutboundEmail)
        .where(OutboundEmail.to_address.in_(pending_addresses))
        .execution_options(synchronize_session=False)
    )
    removed["email_change_mails"] = result.rowcount or 0  # type: ignore[attr-defined]
    for kind, statement in {
        "addresses": delete(Address).where(Address.user_id == user.id),
        "shop_memberships": delete(ShopMember).where(ShopMember.user_id == user.id),
        "carts": delete(Cart).where(Cart.user_id == user.id),
        "account_links": delete(AccountToken).where(AccountToken.user_id == user.id),
        "idempotency_records": delete(IdempotencyRecord).where(IdempotencyRecord.user_id == user.id),
        "emails": delete(OutboundEmail).where(folded(OutboundEmail.to_address).in_([fold(e) for e in emails])),
        # The shopper's free-text notes to the sellers may hold anything personal; the orders stay.
        "order_notes": update(Order)
        .where(Order.user_id == user.id, Order.customer_note != "")
        .values(customer_note=""),
    }.items():
        result = await session.execute(statement.execution_options(synchronize_session=False))
        removed[kind] = result.rowcount or 0  # type: ignore[attr-defined]
    await session.execute(
        update(AuditEvent)
        .where(AuditEvent.actor_id == user.id)
        .values(actor_email=new_email)
        .execution_options(synchronize_session=False)
    )
    replacements = {email: new_email for email in emails} | {name: ERASED_NAME for name in names}
    removed["webhook_payloads"] = removed["audit_changes"] = 0
    for email in sorted(emails, key=len, reverse=True):  # a longer address before one it contains
        await session.execute(
            update(AuditEvent)
            .where(AuditEvent.summary.contains(email, autoescape=True))
            .values(summary=func.replace(AuditEvent.summary, email, new_email))
            .execution_options(synchronize_session=False)
        )
        for kind, model, column in (
            ("webhook_payloads", WebhookDelivery, WebhookDelivery.payload),
            ("audit_changes", AuditEvent, AuditEvent.changes),
        ):
            removed[kind] += await _rewrite_json(session, model, column, email, replacements)
    # The account's own renames hold its names without an address: their before and after go too.
    own = select(AuditEvent).where(AuditEvent.entity_type == "user", AuditEvent.entity_id == user.id)
    for event in await session.scalars(own):
        if (event.changes or {}).get("name"):
            event.changes = {**event.changes, "name": [value and ERASED_NAME for value in event.changes["name"]]}
    user.name = ERASED_NAME
    user.email = new_email
    user.password_hash = UNUSABLE_PASSWORD
    user.role = UserRole.CUSTOMER.value
    user.is_active = False
    user.email_verified_at = None
    user.failed_sign_ins = 0
    user.locked_until = None
    user.erased_at = datetime.now(UTC)
    await session.flush()
    return removed


async def _known_as(session: AsyncSession, user: User) -> tuple[set[str], set[str]]:
    """``(e-mail addresses, names)`` the account has had: the current ones, and those its own audit
    events recorded (an e-mail change's and an admin's rename's before and after), so that an event or
    delivery that named the account before a change loses that too."""
    emails, names = {user.email}, {user.name}
    own = select(AuditEvent.changes).where(AuditEvent.entity_type == "user", AuditEvent.entity_id == user.id)
    for changes in await session.scalars(own):
        for field, known in (("email", emails), ("name", names)):
            known.update(value for value in (changes or {}).get(field) or [] if isinstance(value, str) and value)
    return emails, names


def _scrubbed(value: Any, replacements: dict[str, str], new_email: str) -> Any:
    """``value`` (JSON) with every string equal to a key of ``replacements`` replaced, and every e-mail
    address among those keys replaced inside longer strings (``"ann@example.com:staff"``)."""
    if isinstance(value, str):
        if value in replacements:
            return replacements[value]
        for old, new in replacements.items():
            if new == new_email and old in value:
                value = value.replace(old, new)
        return value
    if isinstance(value, list):
        return [_scrubbed(item, replacements, new_email) for item in value]
    if isinstance(value, dict):
        return {key: _scrubbed(item, replacements, new_email) for key, item in value.items()}
    return value


async def _rewrite_json(
    session: AsyncSession, model: Any, column: Any, needle: str, replacements: dict[str, str]
) -> int:
    """Rewrite the JSON ``column`` of the ``model`` rows whose text holds ``needle`` (one of the account's
    e-mail addresses): ``_scrubbed`` (a webhook delivery's ``customer``, an audit event's ``[before,
    after]`` pairs). Returns the rows changed."""
    rows = list(await session.scalars(select(model).where(cast(column, Text).contains(needle, autoescape=True))))
    for row in rows:
        setattr(row, column.key, _scrubbed(getattr(row, column.key), replacements, replacements[needle]))
    return len(rows)
