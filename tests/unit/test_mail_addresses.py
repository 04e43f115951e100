"""Addresses beyond ASCII in outgoing mail: the domain as IDNA (RFC 5891), the rest as UTF-8 (RFC 6532)."""

from __future__ import annotations

from email import message_from_bytes, policy
from pathlib import Path

import pytest

from tests.conftest import make_settings
from webshop.db.models import OutboundEmail
from webshop.mail.transport import FileTransport, build_message, needs_utf8
from webshop.text import address_search_forms, ascii_domain, readable_email


@pytest.mark.parametrize(
    ("address", "sent_as"),
    [
        ("ann@example.com", "ann@example.com"),
        ("ann@bücher.example", "ann@xn--bcher-kva.example"),
        ("zoë@bücher.example", "zoë@xn--bcher-kva.example"),
        ("zoë@example.com", "zoë@example.com"),
        ("ann@straße.de", "ann@xn--strae-oqa.de"),  # IDNA 2008: not IDNA 2003's strasse.de, another domain
        ("ann@" + "ü" * 70 + ".example", "ann@" + "ü" * 70 + ".example"),  # too long a label for IDNA: as it is
    ],
)
def test_the_domain_is_sent_in_ascii(address: str, sent_as: str) -> None:
    assert ascii_domain(address) == sent_as


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("ann@xn--bcher-kva.example", "ann@bücher.example"),
        ("ann@xn--strae-oqa.de", "ann@straße.de"),
        ("ann@example.com", "ann@example.com"),
        ("ann@bücher.example", "ann@bücher.example"),  # stored readable (an older account): as it is
        ("ann@xn--zz.example", "ann@xn--zz.example"),  # not valid IDNA: as it is
        ("not an address", "not an address"),
        ("x@xn--e1afmkfd.xn--p1ai", "x@пример.рф"),
        ("x@xn--fiq228c.com", "x@中文.com"),
        # Could pass for another domain: shown as stored (Unicode TS #39, as browsers do).
        ("a@xn--80ak6aa92e.com", "a@xn--80ak6aa92e.com"),  # Cyrillic "аррӏе": reads as apple.com
        ("a@xn--pypal-4ve.com", "a@xn--pypal-4ve.com"),  # "pаypal" with a Cyrillic а among Latin letters
    ],
)
def test_a_stored_ascii_domain_is_shown_as_people_read_it(stored: str, shown: str) -> None:
    assert readable_email(stored) == shown


def test_a_search_for_a_readable_domain_looks_for_its_stored_form_too() -> None:
    assert address_search_forms(" Ann@Bücher.example ") == ["ann@bücher.example", "ann@xn--bcher-kva.example"]
    assert address_search_forms("bücher.example") == ["bücher.example", "xn--bcher-kva.example"]
    assert address_search_forms("Ann Bücher") == ["ann bücher"]  # a name: as typed
    assert address_search_forms("ann@example") == ["ann@example"]
    assert address_search_forms("bücher") == ["bücher", "xn--bcher-kva"]  # one label of a domain


def test_the_shops_own_address_is_sent_in_ascii_and_a_display_name_needs_no_smtputf8(tmp_path: Path) -> None:
    """The From address's domain goes as IDNA too (and names the Message-ID); a display name beyond ASCII
    travels as RFC 2047 encoded words, which any server takes, so it does not call for SMTPUTF8."""
    settings = make_settings(
        f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}",
        tmp_path / "media",
        mail_from="Café Bücher <shop@bücher.example>",
    )
    row = OutboundEmail(id=8, to_address="ann@example.com", subject="Hello", text_body="Hi", kind="test")
    message = build_message(row, settings.mail)
    assert str(message["From"]) == "Café Bücher <shop@xn--bcher-kva.example>"
    assert message["Message-ID"].endswith("@xn--bcher-kva.example>")
    assert not needs_utf8(message)
    assert b"From: =?utf-8?" in bytes(message)


async def test_the_outbox_file_keeps_a_mailbox_in_another_script_readable(tmp_path: Path) -> None:
    """The development outbox writes such a message in UTF-8; with encoded words the address was garbled."""
    mail = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}", tmp_path / "media").mail
    row = OutboundEmail(id=7, to_address="zoë@bücher.example", subject="Grüße", text_body="Hallo", kind="test")
    message = build_message(row, mail)
    assert needs_utf8(message)
    path = Path(await FileTransport(tmp_path).deliver(message, row))
    written = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert written["To"] == "zoë@xn--bcher-kva.example"
    assert written["Subject"] == "Grüße"
    assert written.get_content().strip() == "Hallo"
