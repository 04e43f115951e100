"""The account e-mail flows through the JSON API (``webshop/accounts/email_api.py``), on both engines.

An API client gets the same e-mails as the pages' users and takes the token from the link in them;
these tests read the link from the e-mail outbox (the rendered message) as that client would from
its mailbox, and check the tokens obey the pages' rules: single use, superseded by a newer link.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from sqlalchemy import select

from tests.api_user import assert_problem, register, token_pair
from tests.conftest import app_client
from tests.factories import age_account_links
from tests.shopper import PASSWORD, forged, post, sign_in
from webshop.db.models import OutboundEmail

LINK_RE = re.compile(r"http://127\.0\.0\.1:8000(/account/[A-Za-z0-9_\-./]+/([A-Za-z0-9_\-.]+))")
NEW_PASSWORD = "a much better passphrase"


async def mails(alchemy: Any, kind: str, *, count: int = 1, timeout: float = 5) -> list[OutboundEmail]:
    """The outbox's ``kind`` messages, oldest first, once there are ``count`` (the reset mail is queued
    after the response, so it may take a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        async with alchemy.get_session() as session:
            rows = list(
                await session.scalars(
                    select(OutboundEmail).where(OutboundEmail.kind == kind).order_by(OutboundEmail.id)
                )
            )
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.02)


def link(message: OutboundEmail) -> tuple[str, str]:
    """``(path, token)`` of the account link in ``message``: the token is the link's last path segment."""
    found = LINK_RE.search(message.text_body)
    assert found, message.text_body
    return found.group(1), found.group(2)


async def test_forgot_and_reset_password(client, alchemy):
    await register(client, "ada@example.com")
    tokens = await token_pair(client, "ada@example.com")
    api = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await sign_in(client, "ada@example.com")).status_code == 303  # a browser is signed in too

    # The same answer for an account, an unknown address, and nothing sent to the unknown one.
    answers = [
        await client.post("/api/auth/forgot-password", json={"email": e})
        for e in ("ada@example.com", "nobody@example.com")
    ]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json() and "If an account uses this address" in answers[0].json()["detail"]
    sent = await mails(alchemy, "reset_password")
    assert [m.to_address for m in sent] == ["ada@example.com"]
    path, first = link(sent[0])
    assert path == f"/account/reset-password/{first}"

    weak = assert_problem(
        await client.post("/api/auth/reset-password", json={"token": first, "password": "short"}), 422
    )
    assert weak["errors"] == {"password": "Use at least 8 characters."}  # the page's rule and message

    # A second request supersedes the first link; the address may be typed as registration reads it.
    assert (await client.post("/api/auth/forgot-password", json={"email": "ADA@example.com."})).status_code == 202
    second = link((await mails(alchemy, "reset_password", count=2))[1])[1]
    old = assert_problem(
        await client.post("/api/auth/reset-password", json={"token": first, "password": NEW_PASSWORD}), 400
    )
    assert "A newer link was sent" in old["detail"]
    tampered = await client.post("/api/auth/reset-password", json={"token": forged(second), "password": NEW_PASSWORD})
    assert "not valid" in assert_problem(tampered, 400)["detail"]

    done = await client.post("/api/auth/reset-password", json={"token": second, "password": NEW_PASSWORD})
    assert done.status_code == 204, done.text
    reused = await client.post("/api/auth/reset-password", json={"token": second, "password": "yet another passphrase"})
    assert "already been used" in assert_problem(reused, 400)["detail"]

    # Every sign-in ended: the access token, the refresh token and the browser session.
    assert_problem(await client.get("/api/users/me", headers=api), 401)
    assert_problem(await client.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]}), 401)
    signed_out = await client.get("/account", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/account/sign-in")
    # Only the new password works now.
    wrong = await client.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
    assert wrong.status_code == 401
    await token_pair(client, "ada@example.com", NEW_PASSWORD)
    assert [m.kind for m in await mails(alchemy, "password_changed")] == ["password_changed"]


async def test_the_api_and_the_pages_share_the_auth_rate_limit(settings, alchemy):
    async with app_client(settings, alchemy, rate_limit_auth="2/minute") as client:
        page = await post(client, "/account/forgot-password", {"email": "ada@example.com"})
        assert page.status_code == 200
        assert (await client.post("/api/auth/forgot-password", json={"email": "ada@example.com"})).status_code == 202
        for path, body in (
            ("/api/auth/forgot-password", {"email": "ada@example.com"}),
            ("/api/auth/reset-password", {"token": "x", "password": NEW_PASSWORD}),
        ):
            limited = assert_problem(await client.post(path, json=body), 429)
            assert "Please wait" in limited["detail"]
        limited = await client.post("/api/auth/forgot-password", json={"email": "ada@example.com"})
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        assert (await post(client, "/account/forgot-password", {"email": "ada@example.com"})).status_code == 429


async def test_verification_and_email_change(client, alchemy):
    await register(client, "bob@example.com")
    await register(client, "ada@example.com")
    api = {"Authorization": f"Bearer {(await token_pair(client, 'ada@example.com'))['access_token']}"}
    assert_problem(await client.post("/api/auth/verification-email"), 401)

    # Resend the verification e-mail: the sign-up's link stops working, the new one confirms.
    too_soon = assert_problem(await client.post("/api/auth/verification-email", headers=api), 429)
    assert "less than a minute ago" in too_soon["detail"]
    await age_account_links(alchemy, "ada@example.com")
    sent = await client.post("/api/auth/verification-email", headers=api)
    assert sent.status_code == 202 and "ada@example.com" in sent.json()["detail"]
    signup, resent = [m for m in await mails(alchemy, "verify_email", count=3) if m.to_address == "ada@example.com"]
    stale = await client.post("/api/auth/verify-email", json={"token": link(signup)[1]})
    assert "A newer link was sent" in assert_problem(stale, 400)["detail"]
    verified = await client.post("/api/auth/verify-email", json={"token": link(resent)[1]})
    assert verified.status_code == 200 and verified.json() == {"email": "ada@example.com", "email_verified": True}
    assert (await client.get("/api/users/me", headers=api)).json()["email_verified"] is True
    again = assert_problem(await client.post("/api/auth/verification-email", headers=api), 409)
    assert again["detail"] == "Your e-mail address is already confirmed."

    # Change the address: the page's rules (current password, a free address), a link to the new one.
    change = "/api/users/me/email-change"
    wrong = await client.post(change, json={"new_email": "ada@new.example", "password": "not my password"}, headers=api)
    assert assert_problem(wrong, 422)["errors"] == {"password": "This is not your current password."}
    taken = await client.post(change, json={"new_email": "BOB@example.com", "password": PASSWORD}, headers=api)
    assert "Another account already uses" in assert_problem(taken, 422)["errors"]["new_email"]
    asked = await client.post(change, json={"new_email": "ada@new.example", "password": PASSWORD}, headers=api)
    assert asked.status_code == 202 and "until then it stays ada@example.com" in asked.json()["detail"]
    [message] = await mails(alchemy, "change_email")
    assert message.to_address == "ada@new.example"
    assert (await client.get("/api/users/me", headers=api)).json()["email"] == "ada@example.com"

    # The e-mailed link's page confirms it (no sign-in needed); the token is then used up for the API too.
    path, token = link(message)
    confirmed = await post(client, path, {}, token_from=path)
    assert confirmed.status_code == 200 and "address is now ada@new.example" in confirmed.text
    assert (await client.get("/api/users/me", headers=api)).json()["email"] == "ada@new.example"
    used = await client.post("/api/auth/confirm-email-change", json={"token": token})
    assert "already been used" in assert_problem(used, 400)["detail"]

    # And through the API: a second change confirmed with the token alone.
    asked = await client.post(change, json={"new_email": "ada@third.example", "password": PASSWORD}, headers=api)
    assert asked.status_code == 202
    token = link((await mails(alchemy, "change_email", count=2))[1])[1]
    changed = await client.post("/api/auth/confirm-email-change", json={"token": token})
    assert changed.status_code == 200 and changed.json() == {"email": "ada@third.example", "email_verified": True}
