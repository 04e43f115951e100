"""The e-mail outbox sender: an asyncio task in each app process that sends committed e-mails.

It is an ``OutboxSender`` (``webshop.db.outbox_sender``: claim a due row with a conditional ``UPDATE``
and a lease, send with no transaction open, record the outcome fenced by the attempt number, back off
exponentially), for ``OutboundEmail`` rows: a message is handed to the transport (SMTP, or ``.eml``
files in development) and becomes ``sent``; a failure is retried after ``WEBSHOP_MAIL_RETRY_SECONDS``
× 2^(attempt-1) until ``WEBSHOP_MAIL_MAX_ATTEMPTS``, and a permanent (5xx) refusal is ``failed`` at once.

Delivery is at least once: if a process dies after the server accepted a message but before the
``sent`` mark commits, the message is sent again when its lease ends.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from webshop.db.models import OutboundEmail
from webshop.db.outbox_sender import MAX_BACKOFF, Failure, OutboxSender, Pace
from webshop.db.outbox_sender import backoff as _backoff
from webshop.mail.transport import PermanentFailure, Transport, build_message, transport_for

if TYPE_CHECKING:
    from datetime import timedelta

    from webshop.config import MailSettings
    from webshop.db.engine import ShopAlchemyConfig

logger = logging.getLogger("webshop.mail")

__all__ = ["MAX_BACKOFF", "MailSender", "backoff"]


def backoff(mail: MailSettings, attempts: int) -> timedelta:
    """Delay before the next attempt after ``attempts`` failed ones: ``mail.retry_seconds`` × 2^(attempts-1),
    at most 6 h."""
    return _backoff(mail.retry_seconds, attempts)


class MailSender(OutboxSender[OutboundEmail]):
    """Sends the e-mail outbox in the background of one app process (see the module docstring).

    Args:
        mail: Poll interval, back-off, attempts, and the transport's settings.
        alchemy: The app's database config, made by ``create_alchemy_config``.
        transport: Where mail goes (default: ``transport_for(mail)``).

    Raises:
        ValueError: ``alchemy`` was not made by ``create_alchemy_config``.
    """

    model: ClassVar[type[Any]] = OutboundEmail
    done_status: ClassVar[str] = "sent"
    name: ClassVar[str] = "mail"
    logger: ClassVar[logging.Logger] = logger

    def __init__(self, mail: MailSettings, alchemy: ShopAlchemyConfig, transport: Transport | None = None) -> None:
        super().__init__(alchemy, Pace.of(mail, lease_seconds=mail.smtp_timeout + 60))
        self.mail = mail
        self.transport = transport or transport_for(mail)

    def _describe(self, row: OutboundEmail) -> str:
        return f"mail {row.id} ({row.kind}) to {row.to_address}"

    async def _deliver(self, row: OutboundEmail, resources: Any) -> dict[str, Any]:
        """Hand ``row`` to the transport and log where it went; a 5xx refusal is permanent."""
        try:
            where = await self.transport.deliver(build_message(row, self.mail), row)
        except PermanentFailure as exc:
            raise Failure(f"{type(exc).__name__}: {exc}", permanent=True) from exc
        verb = "sent via" if where.startswith("smtp://") else "written to"
        logger.info("mail %s (%s) to %s %s %s", row.id, row.kind, row.to_address, verb, where)
        return {"sent_at": datetime.now(UTC)}
