"""Where e-mail goes: an SMTP server (aiosmtplib), or ``.eml`` files in an outbox folder.

``build_message`` turns an ``OutboundEmail`` row into a standard ``multipart/alternative`` message
(RFC 2046 §5.1.4: plain text first, HTML last, so clients show the richest part they can) with the
stdlib's ``EmailMessage``. ``transport_for(mail)`` picks the transport: SMTP when
``WEBSHOP_SMTP_HOST`` is set, else the file transport (the development default).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import aiosmtplib
import anyio.to_thread

from webshop.text import ascii_domain

if TYPE_CHECKING:
    from webshop.config import MailSettings
    from webshop.db.models import OutboundEmail

logger = logging.getLogger("webshop.mail")


class PermanentFailure(Exception):
    """The server refused the message for good (an SMTP 5xx reply): retrying will not help."""


def build_message(row: OutboundEmail, mail: MailSettings) -> EmailMessage:
    """A ``multipart/alternative`` message (text, then HTML) for ``row``, from ``mail.from_address``.

    Carries ``Message-ID``, ``Date`` and ``Auto-Submitted: auto-generated`` (RFC 3834 §5: automatic
    mail, so auto-responders do not answer it).
    """
    message = EmailMessage()
    name, sender = parseaddr(mail.from_address)
    message["From"] = Address(display_name=name, addr_spec=ascii_domain(sender)) if sender else mail.from_address
    message["To"] = ascii_domain(row.to_address)
    message["Subject"] = row.subject
    message["Date"] = format_datetime(datetime.now(UTC))
    domain = ascii_domain(sender).rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=f"outbox-{row.id}", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.text_body)
    if row.html_body:
        message.add_alternative(row.html_body, subtype="html")
    return message


def needs_utf8(message: EmailMessage) -> bool:
    """Whether ``message`` must travel as SMTPUTF8 (RFC 6531): an address in its From or To is not ASCII
    (display names do not count: they travel as RFC 2047 encoded words). Its headers are then written in
    UTF-8 as they are (RFC 6532), not as encoded words, which are not allowed in an address."""
    return not all(
        address.addr_spec.isascii()
        for name in ("From", "To")
        for address in getattr(message.get(name), "addresses", ())
    )


class Transport(Protocol):
    """Delivers one message; returns where it went (for the log) or raises."""

    async def deliver(self, message: EmailMessage, row: OutboundEmail) -> str:
        """Send ``message``.

        Returns:
            A short description of where it went (``smtp://host:port`` or a file path).

        Raises:
            PermanentFailure: refused for good; any other exception is temporary (retried).
        """
        ...


@dataclass(frozen=True)
class SmtpTransport:
    """Send through an SMTP server with aiosmtplib: ``mail.smtp_host``/``smtp_port``, TLS mode
    (``smtp_tls``: ``tls``, ``starttls`` or ``none``), credentials and timeout (seconds)."""

    mail: MailSettings

    async def deliver(self, message: EmailMessage, row: OutboundEmail) -> str:
        """Send ``message`` in one SMTP conversation; a 5xx reply is a ``PermanentFailure``."""
        mail = self.mail
        try:
            await aiosmtplib.send(
                message,
                hostname=mail.smtp_host,
                port=mail.smtp_port,
                username=mail.smtp_username or None,
                password=mail.smtp_password or None,
                use_tls=mail.smtp_tls == "tls",
                start_tls=mail.smtp_tls == "starttls",
                timeout=mail.smtp_timeout,
            )
        except aiosmtplib.SMTPNotSupported as exc:  # an address needs SMTPUTF8, which the server lacks
            raise PermanentFailure(f"the server cannot take this address: {exc}") from exc
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [error.code for error in exc.recipients]
            if codes and all(500 <= code < 600 for code in codes):
                first = exc.recipients[0]
                raise PermanentFailure(f"recipient refused: {first.code} {first.message}") from exc
            raise
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600 and not isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                raise PermanentFailure(f"{exc.code} {exc.message}") from exc
            raise
        return f"smtp://{mail.smtp_host}:{mail.smtp_port}"


@dataclass(frozen=True)
class FileTransport:
    """Write each message as ``<time>-<id>-<kind>.eml`` into ``directory`` (development, no SMTP needed).

    The file appears whole or not at all (written to a temporary name, then renamed).
    """

    directory: Path

    async def deliver(self, message: EmailMessage, row: OutboundEmail) -> str:
        """Write ``message`` to a new file; returns its absolute path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory.resolve() / f"{stamp}-{row.id}-{row.kind or 'mail'}.eml"
        data = message.as_bytes(policy=policy.default.clone(utf8=True)) if needs_utf8(message) else bytes(message)
        await anyio.to_thread.run_sync(_write_atomically, path, data)
        return str(path)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".eml.part")
    partial.write_bytes(data)
    os.replace(partial, path)


def transport_for(mail: MailSettings) -> Transport:
    """SMTP when ``mail.smtp_host`` is set, else ``.eml`` files in ``mail.outbox_dir``."""
    if mail.smtp_host:
        return SmtpTransport(mail)
    return FileTransport(Path(mail.outbox_dir))
