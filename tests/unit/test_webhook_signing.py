"""Webhook signatures (Standard Webhooks style), secrets, and the addresses a webhook may not reach."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress

import pytest

from webshop.webhooks.sender import pinned
from webshop.webhooks.service import blocked_address
from webshop.webhooks.signing import InvalidSignature, generate_secret, secret_problem, sign, verify

BODY = b'{"id":"evt_1","type":"order.placed","data":{"total":{"amount":1250,"currency":"EUR"}}}'


def test_a_signature_is_the_standard_webhooks_hmac_and_verifies_within_the_tolerance():
    secret = generate_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    headers = sign(secret, "evt_1", BODY, timestamp=1_700_000_000)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, b"evt_1.1700000000." + BODY, hashlib.sha256).digest()
    assert headers == {
        "webhook-id": "evt_1",
        "webhook-timestamp": "1700000000",
        "Webhook-Signature": "v1," + base64.b64encode(digest).decode(),
    }
    assert verify(secret, {k.upper(): v for k, v in headers.items()}, BODY, now=1_700_000_299) == "evt_1"
    # While a receiver rotates secrets, the header may carry several signatures.
    rotated = {**headers, "Webhook-Signature": "v1,b2xk " + headers["Webhook-Signature"]}
    assert verify(secret, rotated, BODY, now=1_700_000_000) == "evt_1"

    for tampered, now in ((BODY + b" ", 1_700_000_000), (BODY, 1_700_000_301), (BODY, 1_699_999_000)):
        with pytest.raises(InvalidSignature):
            verify(secret, headers, tampered, now=now)
    with pytest.raises(InvalidSignature):
        verify(generate_secret(), headers, BODY, now=1_700_000_000)
    with pytest.raises(InvalidSignature):
        verify(secret, {"webhook-id": "evt_1"}, BODY)


def test_a_plain_secret_signs_with_its_own_bytes():
    secret = "a-shared-secret-of-enough-length"
    headers = sign(secret, "evt_2", BODY, timestamp=5)
    digest = hmac.new(secret.encode(), b"evt_2.5." + BODY, hashlib.sha256).digest()
    assert headers["Webhook-Signature"] == "v1," + base64.b64encode(digest).decode()


@pytest.mark.parametrize(
    ("secret", "problem"),
    [
        ("short", "at least 24 characters"),
        ("has spaces in the middle of it ok", "without spaces"),
        ("whsec_" + "!" * 30, "base64"),
        ("whsec_" + base64.b64encode(b"x" * 18).decode(), "at least 24 bytes"),
    ],
)
def test_secrets_that_cannot_sign_are_explained(secret, problem):
    assert problem in (secret_problem(secret) or "")


def test_generated_and_long_enough_secrets_are_fine():
    assert secret_problem(generate_secret()) is None
    assert secret_problem("x" * 24) is None


@pytest.mark.parametrize(
    ("address", "blocked"),
    [
        ("127.0.0.1", True),
        ("10.1.2.3", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
        ("169.254.169.254", True),  # cloud metadata
        ("100.64.0.1", True),  # shared (carrier-grade NAT)
        ("0.0.0.0", True),  # noqa: S104 (an address checked, not bound)
        ("224.0.0.1", True),
        ("::1", True),
        ("fe80::1", True),
        ("fd00::1", True),
        ("::ffff:127.0.0.1", True),
        ("::127.0.0.1", True),  # IPv4-compatible
        ("64:ff9b::a9fe:a9fe", True),  # NAT64 to 169.254.169.254
        ("64:ff9b:1::a00:1", True),  # local-use NAT64 to 10.0.0.1
        ("2002:a9fe:a9fe::1", True),  # 6to4 of 169.254.169.254
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", True),  # Teredo to 10.0.0.1
        ("64:ff9b::5db8:d822", False),  # NAT64 to a public address
        ("93.184.216.34", False),
        ("2606:4700:4700::1111", False),
    ],
)
def test_only_public_addresses_are_reachable(address, blocked):
    assert blocked_address(ipaddress.ip_address(address)) is blocked


def test_a_pinned_request_goes_to_the_checked_address_with_the_original_host_and_tls_name():
    url, headers, extensions = pinned("https://hooks.example.com:8443/in?x=1", ipaddress.ip_address("2001:db8::5"))
    assert url == "https://[2001:db8::5]:8443/in?x=1"
    assert headers == {"host": "hooks.example.com:8443"}
    assert extensions == {"sni_hostname": "hooks.example.com"}
    url, headers, extensions = pinned("http://hooks.example.com/in", ipaddress.ip_address("93.184.216.34"))
    assert (url, headers, extensions) == ("http://93.184.216.34/in", {"host": "hooks.example.com"}, {})
