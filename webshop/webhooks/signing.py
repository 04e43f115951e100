"""Webhook signatures in the style of the Standard Webhooks specification (https://www.standardwebhooks.com/).

Every delivery carries three headers:

- ``webhook-id``: the event's id (``evt_...``), the same on every retry, so a receiver de-duplicates;
- ``webhook-timestamp``: when this attempt was signed, in Unix seconds;
- ``Webhook-Signature``: ``v1,<signature>``, where ``<signature>`` is the standard base64 encoding of
  HMAC-SHA256(key, ``"{webhook-id}.{webhook-timestamp}.{body}"``) over the exact body bytes sent.

The key is the endpoint's secret: for a secret of the specification's form, ``whsec_`` followed by
base64, the decoded bytes after the prefix (so the receivers' Standard Webhooks libraries verify our
deliveries as they are); for any other secret, its UTF-8 bytes. The shop generates ``whsec_`` secrets;
an admin may give their own (at least ``MIN_SECRET_LENGTH`` characters).

A receiver checks the signature in constant time and refuses a timestamp outside its tolerance
(``verify``; five minutes, as the specification suggests), which stops replays of old deliveries.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

SECRET_PREFIX = "whsec_"  # noqa: S105 (the prefix of Standard Webhooks secrets)
MIN_SECRET_LENGTH = 24
"""A given secret's minimum length in characters (a generated one has 50)."""
MIN_KEY_BYTES = 24
"""A ``whsec_`` secret's decoded key must have at least this many bytes (the specification's minimum)."""
GENERATED_KEY_BYTES = 32
DEFAULT_TOLERANCE = 300
"""Seconds a receiver accepts between a delivery's timestamp and its own clock (either way)."""
SIGNATURE_VERSION = "v1"
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "Webhook-Signature"


class InvalidSignature(Exception):
    """A delivery failed verification: a missing header, a stale timestamp, or no matching signature."""


def generate_secret() -> str:
    """A new endpoint secret: ``whsec_`` and the base64 of 32 random bytes (``secrets``, a CSPRNG)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(GENERATED_KEY_BYTES)).decode("ascii")


def secret_problem(secret: str) -> str | None:
    """Why ``secret`` cannot sign deliveries, or ``None`` when it can.

    A secret has at least ``MIN_SECRET_LENGTH`` printable ASCII characters and no spaces; one that
    starts with ``whsec_`` must be base64 after the prefix, of at least ``MIN_KEY_BYTES`` bytes.
    """
    if len(secret) < MIN_SECRET_LENGTH:
        return f"Use a secret of at least {MIN_SECRET_LENGTH} characters, or leave it empty to have one made."
    if not all("!" <= ch <= "~" for ch in secret):
        return "Use printable ASCII characters without spaces in the secret."
    if secret.startswith(SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            return "A secret starting with whsec_ must be base64 after the prefix (Standard Webhooks)."
        if len(key) < MIN_KEY_BYTES:
            return f"A whsec_ secret must decode to at least {MIN_KEY_BYTES} bytes."
    return None


def signing_key(secret: str) -> bytes:
    """The HMAC key of ``secret``: the decoded base64 after ``whsec_``, else the secret's UTF-8 bytes."""
    if secret.startswith(SECRET_PREFIX):
        try:
            return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            pass  # not a Standard Webhooks secret after all: sign with its bytes, as for any other
    return secret.encode("utf-8")


def signature(secret: str, event_id: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` value: ``v1,`` + base64(HMAC-SHA256(key, ``"{id}.{timestamp}.{body}"``)).

    Args:
        secret: The endpoint's secret (see ``signing_key``).
        event_id: The ``webhook-id``.
        timestamp: The ``webhook-timestamp``, Unix seconds.
        body: The request body exactly as sent.
    """
    message = f"{event_id}.{timestamp}.".encode() + body
    digest = hmac.new(signing_key(secret), message, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def sign(secret: str, event_id: str, body: bytes, *, timestamp: int | None = None) -> dict[str, str]:
    """The three signature headers of one delivery attempt (``timestamp``: now, unless given)."""
    moment = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(moment),
        SIGNATURE_HEADER: signature(secret, event_id, moment, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> str:
    """Check a received delivery as its receiver should; returns its event id.

    Args:
        secret: The endpoint's secret, as the shop showed it.
        headers: The request's headers (looked up case-insensitively).
        body: The raw request body (verify before parsing the JSON).
        tolerance: Seconds the timestamp may differ from ``now``.
        now: The receiver's clock, Unix seconds (default: ``time.time()``).

    Raises:
        InvalidSignature: a header is missing, the timestamp is not a number or outside the tolerance,
            or no ``v1`` signature in the (space-separated) header matches.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    event_id = lower.get(ID_HEADER, "")
    stamp = lower.get(TIMESTAMP_HEADER, "")
    given = lower.get(SIGNATURE_HEADER.lower(), "")
    if not (event_id and stamp and given):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature header")
    try:
        timestamp = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a whole number of seconds") from None
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        raise InvalidSignature("webhook-timestamp is outside the tolerance: too old or in the future")
    expected = signature(secret, event_id, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in given.split()):
        raise InvalidSignature("no signature matches")
    return event_id
