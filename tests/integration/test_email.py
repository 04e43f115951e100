"""Account and order e-mails end to end, through a real SMTP server started by the test (aiosmtpd).

The app sends through its outbox sender to an aiosmtpd server on a free port of 127.0.0.1; each test
reads the messages that server received and follows their links through the app's HTTP client, as a
person would from their mail program. Every test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from litestar.testing import AsyncTestClient
from sqlalchemy import func, select, update

from tests.conftest import BASE_URL as BASE
from tests.conftest import SECRET, make_settings
from tests.factories import age_account_links
from tests.live import free_port
from tests.shopper import (
    DECLINED_CARD,
    PASSWORD,
    add_to_cart,
    choose_address_and_shipping,
    confirm_address,
    csrf,
    forged,
    place,
    post,
    ready_to_pay,
    register,
    review,
    sign_in,
    text_of,
)
from webshop.accounts.service import UserService
from webshop.db.engine import write_session
from webshop.db.models import AccountToken, Order, OutboundEmail, User, UserRole
from webshop.mail.sender import MailSender

LINK_RE = re.compile(r"http://127\.0\.0\.1:8000(/account/[A-Za-z0-9_\-./]+)")
NEW_PASSWORD = "a much better passphrase"


class Inbox:
    """An aiosmtpd handler that keeps every message it accepts; it can refuse or stall on purpose.

    ``fail_next``: how many next messages get ``451 4.3.0 Try again later`` (a temporary failure).
    ``hold``: when set, DATA waits until it is cleared (a slow server); ``holding`` tells it waits.
    """

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.fail_next = 0
        self.refusals = 0
        self.hold = threading.Event()
        self.holding = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.fail_next > 0:
            self.fail_next -= 1
            self.refusals += 1
            return "451 4.3.0 Try again later"
        if self.hold.is_set():
            self.holding.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 2.0.0 OK"

    def to(self, address: str) -> list[EmailMessage]:
        """Messages received for ``address``, oldest first."""
        return [m for m in self.messages if m["To"] == address]

    async def wait_for(self, address: str, subject: str, *, count: int = 1, timeout: float = 15) -> EmailMessage:
        """The ``count``-th message to ``address`` whose subject contains ``subject`` (waits for it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [m for m in self.to(address) if subject in m["Subject"]]
            if len(found) >= count:
                return found[count - 1]
            await asyncio.sleep(0.02)
        seen = [(m["To"], m["Subject"]) for m in self.messages]
        raise AssertionError(f"no e-mail #{count} to {address} about {subject!r} within {timeout} s; got {seen}")


@pytest.fixture
def inbox(request: pytest.FixtureRequest) -> Any:
    """A real SMTP server on a free port of 127.0.0.1 for this test; yields its ``Inbox``. Options of
    aiosmtpd's server may come with ``@pytest.mark.parametrize("inbox", [{...}], indirect=True)``."""
    handler = Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **getattr(request, "param", {}))
    controller.start()
    handler.port = controller.port  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        handler.release.set()
        controller.stop()


@pytest.fixture
def settings(request: pytest.FixtureRequest, db_url: str, tmp_path: Any, inbox: Inbox) -> Any:
    """Settings that send through the test's SMTP server, with a fast poll and short back-off.

    Tests may pass more overrides with ``@pytest.mark.parametrize("settings", [{...}], indirect=True)``.
    """
    overrides = getattr(request, "param", {})
    return make_settings(
        db_url,
        tmp_path / "media",
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,  # type: ignore[attr-defined]
        smtp_tls="none",
        smtp_timeout=5.0,
        mail_from="Test Shop <shop@example.com>",
        mail_poll_seconds=0.05,
        mail_retry_seconds=0.2,
        **overrides,
    )


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies of a ``multipart/alternative`` message."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def link_in(message: EmailMessage) -> str:
    """The path of the account link in a message (the same link in the text and the HTML part)."""
    text, html = parts(message)
    found = LINK_RE.search(text)
    assert found, text
    assert found.group(0) in html
    return found.group(1)


async def new_client(app: Any) -> AsyncTestClient[Any]:
    client = AsyncTestClient(app=app, base_url=BASE)
    await client.__aenter__()
    return client


async def outbox_rows(alchemy: Any, **where: Any) -> list[OutboundEmail]:
    async with alchemy.get_session() as session:
        statement = select(OutboundEmail).order_by(OutboundEmail.id)
        for key, value in where.items():
            statement = statement.where(getattr(OutboundEmail, key) == value)
        return list(await session.scalars(statement))


async def settled(alchemy: Any, timeout: float = 15) -> list[OutboundEmail]:
    """The outbox once every message is ``sent`` or ``failed`` (waits for the sender to record it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await outbox_rows(alchemy)
        if rows and all(row.status in {"sent", "failed"} for row in rows):
            return rows
        await asyncio.sleep(0.02)
    raise AssertionError(f"the outbox did not settle: {[(r.id, r.status) for r in await outbox_rows(alchemy)]}")


# --- verification ------------------------------------------------------------------------------


async def test_sign_up_sends_a_link_that_verifies_the_address_once(client, inbox):
    await register(client, "ada@example.com", "Ada")
    page = (await client.get("/account")).text
    assert 'id="verify-banner"' in page and "Send the link again" in page
    assert "is not confirmed yet" in page
    message = await inbox.wait_for("ada@example.com", "Confirm your e-mail address")
    assert message["From"] == "Test Shop <shop@example.com>"
    assert message["Message-ID"] and message["Auto-Submitted"] == "auto-generated"
    text, html = parts(message)
    assert "Hello Ada" in text and "Hello Ada" in html
    path = link_in(message)
    assert path.startswith("/account/verify-email/")

    # Opening the link (as a mail scanner does) confirms nothing: its page asks first.
    opened = text_of((await client.get(path)).text)
    assert "Is ada@example.com your address?" in opened and "Yes, confirm ada@example.com" in opened
    assert 'id="verify-banner"' in (await client.get("/account")).text
    confirmed = await confirm_address(client, path)
    assert confirmed.status_code == 200
    assert "Thank you: ada@example.com is confirmed." in confirmed.text
    page = (await client.get("/account")).text
    assert 'id="verify-banner"' not in page and "Your e-mail address is confirmed." in page

    again = await client.get(path)
    assert again.status_code == 410
    assert "This link has already been used." in again.text
    assert "is already confirmed" in again.text


async def test_a_scanner_opening_the_link_confirms_nothing_and_the_owner_confirms_from_another_browser(
    client, app, alchemy, inbox
):
    """A mail scanner fetches the link without cookies: nothing changes. The owner, signed out in
    another browser, presses the button: confirmed, and told to sign in. Posting the used link again
    shows the used-link page."""
    await register(client, "ada@example.com")
    path = link_in(await inbox.wait_for("ada@example.com", "Confirm"))
    async with AsyncTestClient(app=app, base_url=BASE) as scanner, AsyncTestClient(app=app, base_url=BASE) as elsewhere:
        assert (await scanner.get(path)).status_code == 200
        async with alchemy.get_session() as session:
            verified = await session.scalar(select(User.email_verified_at).where(User.email == "ada@example.com"))
            assert verified is None and await session.scalar(select(AccountToken.used_at)) is None
        confirmed = await confirm_address(elsewhere, path)
        assert confirmed.status_code == 200
        assert "Thank you: ada@example.com is confirmed." in text_of(confirmed.text) and ">Sign in<" in confirmed.text
        again = await post(elsewhere, path, token_from="/account/sign-in")
        assert again.status_code == 410 and "This link has already been used." in again.text
    assert 'id="verify-banner"' not in (await client.get("/account")).text


async def test_a_newer_link_supersedes_the_older_one(client, alchemy, inbox):
    await register(client, "ada@example.com")
    first = link_in(await inbox.wait_for("ada@example.com", "Confirm"))
    at_once = await post(client, "/account/verify-email", {"next": "/cart"}, token_from="/account")
    assert at_once.status_code == 303  # a link went out a moment ago: none sent, the shopper is told why
    assert "We sent a link to ada@example.com less than a minute ago" in text_of((await client.get("/cart")).text)
    await age_account_links(alchemy, "ada@example.com")
    resent = await post(client, "/account/verify-email", {"next": "/cart"}, token_from="/account")
    assert resent.status_code == 303 and resent.headers["location"] == "/cart"
    assert "We sent a new link to ada@example.com" in (await client.get("/cart")).text
    second = link_in(await inbox.wait_for("ada@example.com", "Confirm", count=2))
    assert first != second

    old = await client.get(first)
    assert old.status_code == 410
    assert "A newer link was sent after this one" in old.text
    assert "Send me a new link" in old.text  # the page offers a new one
    assert 'id="verify-banner"' in (await client.get("/account")).text
    assert (await confirm_address(client, second)).status_code == 200
    assert 'id="verify-banner"' not in (await client.get("/account")).text


async def test_expired_and_tampered_links_are_refused_with_a_clear_page(client, alchemy, inbox):
    await register(client, "ada@example.com")
    path = link_in(await inbox.wait_for("ada@example.com", "Confirm"))
    token = path.rsplit("/", 1)[1]
    salt = "webshop.account-link.verify_email"
    nonce = URLSafeTimedSerializer(SECRET, salt=salt).loads(token)

    class TwoDaysAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 48 * 3600

    old_token = URLSafeTimedSerializer(SECRET, salt=salt, signer=TwoDaysAgo).dumps(nonce)
    expired = await client.get(f"/account/verify-email/{old_token}")
    assert expired.status_code == 410 and "This link has expired." in expired.text

    tampered = await client.get(f"/account/verify-email/{forged(token)}")
    assert tampered.status_code == 400 and "This link is not valid." in tampered.text
    # A link of one purpose never works for another (the salt differs).
    assert (await client.get(f"/account/reset-password/{token}")).status_code == 400

    # The row's own expiry counts too (a link signed "now" for a row that has run out).
    async with write_session(alchemy) as session:
        await session.execute(update(AccountToken).values(expires_at=func.now()))
        await session.commit()
    late = await client.get(path)
    assert late.status_code == 410 and "This link has expired." in late.text
    assert 'id="verify-banner"' in (await client.get("/account")).text


# --- password reset ----------------------------------------------------------------------------


async def test_reset_request_answers_the_same_for_unknown_addresses_and_sends_nothing(client, app, alchemy, inbox):
    await register(client, "ada@example.com")
    await inbox.wait_for("ada@example.com", "Confirm")
    stranger = await new_client(app)
    try:
        page = await stranger.get("/account/sign-in")
        assert 'href="/account/forgot-password"' in page.text and "Forgot your password?" in page.text

        def normal(text: str, email: str) -> str:
            return re.sub(r'(value="|"x-csrftoken": ")[^"]+"', "", text).replace(email, "EMAIL")

        answers = {}
        for email in ("ada@example.com", "nobody@example.com"):
            started = time.perf_counter()
            response = await post(stranger, "/account/forgot-password", {"email": email}, token_from="/account/sign-in")
            answers[email] = (response.status_code, normal(response.text, email), time.perf_counter() - started)
        known, unknown = answers["ada@example.com"], answers["nobody@example.com"]
        assert known[0] == unknown[0] == 200
        assert known[1] == unknown[1]
        assert "If an account uses <strong>EMAIL</strong>, we have sent it a link" in known[1]
        await inbox.wait_for("ada@example.com", "Reset your password")
        await settled(alchemy)  # the sender sends only outbox rows, and it has finished every one
        assert inbox.to("nobody@example.com") == []
        assert await outbox_rows(alchemy, to_address="nobody@example.com") == []
        assert len(await outbox_rows(alchemy, kind="reset_password")) == 1
    finally:
        await stranger.__aexit__(None, None, None)


async def test_reset_sets_a_new_password_and_signs_out_everywhere(client, app, alchemy, inbox):
    await register(client, "ada@example.com")
    await inbox.wait_for("ada@example.com", "Confirm")
    laptop = await new_client(app)
    try:
        assert (await sign_in(laptop, "ada@example.com")).status_code == 303
        tokens = (
            await laptop.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})
        ).json()
        api = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert (await laptop.get("/api/users/me", headers=api)).status_code == 200

        # Someone who forgot the password, in a browser that is not signed in.
        phone = await new_client(app)
        try:
            await post(phone, "/account/forgot-password", {"email": "ada@example.com"})
            path = link_in(await inbox.wait_for("ada@example.com", "Reset your password"))
            form = await phone.get(path)
            assert form.status_code == 200 and "Choose a new password" in form.text
            assert form.headers["cache-control"] == "no-store"
            short = await post(phone, path, {"password": "short"}, token_from=path)
            assert short.status_code == 422 and "Use at least 8 characters." in short.text
            done = await post(phone, path, {"password": NEW_PASSWORD}, token_from=path)
            assert done.status_code == 303 and done.headers["location"] == "/account/sign-in"
            assert "Your password was changed" in (await phone.get("/account/sign-in")).text
            reused = await phone.get(path)
            assert reused.status_code == 410 and "already been used" in reused.text
            assert "Ask for a new reset link" in reused.text

            # Every other sign-in ended: both browsers, and the API tokens (access and refresh).
            for browser in (client, laptop):
                response = await browser.get("/account", follow_redirects=False)
                assert response.status_code == 303 and response.headers["location"].startswith("/account/sign-in")
            assert (await laptop.get("/api/users/me", headers=api)).status_code == 401
            refreshed = await laptop.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
            assert refreshed.status_code == 401

            assert (await sign_in(phone, "ada@example.com", PASSWORD)).status_code == 400
            assert (await sign_in(phone, "ada@example.com", NEW_PASSWORD)).status_code == 303
            page = (await phone.get("/account")).text
            assert "Your e-mail address is confirmed." in page  # the link reached the mailbox
            notice = await inbox.wait_for("ada@example.com", "Your password was changed")
            assert "signed out" in parts(notice)[0]
        finally:
            await phone.__aexit__(None, None, None)
    finally:
        await laptop.__aexit__(None, None, None)


# --- e-mail change -----------------------------------------------------------------------------


async def test_email_change_is_confirmed_at_the_new_address_and_noticed_at_the_old(client, app, inbox):
    other = await new_client(app)
    try:
        await register(other, "bob@example.com", "Bob")
    finally:
        await other.__aexit__(None, None, None)
    await register(client, "ada@example.com", "Ada")
    form = await client.get("/account/email")
    assert form.status_code == 200 and "Change your e-mail address" in form.text
    assert 'href="/account/email"' in (await client.get("/account")).text

    wrong = await post(
        client, "/account/email", {"new_email": "ada@new.example", "password": "nope"}, token_from="/account/email"
    )
    assert wrong.status_code == 422 and "This is not your current password." in wrong.text
    taken = await post(
        client, "/account/email", {"new_email": "BOB@example.com", "password": PASSWORD}, token_from="/account/email"
    )
    assert taken.status_code == 422 and "Another account already uses this e-mail address." in taken.text

    asked = await post(
        client, "/account/email", {"new_email": "ada@new.example", "password": PASSWORD}, token_from="/account/email"
    )
    assert asked.status_code == 303
    page = (await client.get("/account")).text
    assert "We sent a link to ada@new.example" in page
    assert "Signed in as <strong>ada@example.com</strong>" in page  # nothing changed yet

    message = await inbox.wait_for("ada@new.example", "Confirm your new e-mail address")
    path = link_in(message)
    confirm = await client.get(path)
    assert confirm.status_code == 200 and "Yes, use ada@new.example" in confirm.text
    done = await post(client, path, {}, token_from=path)
    assert done.status_code == 200 and "address is now ada@new.example." in done.text
    page = (await client.get("/account")).text
    assert "Signed in as <strong>ada@new.example</strong>" in page
    assert "Your e-mail address is confirmed." in page

    notice = await inbox.wait_for("ada@example.com", "Your e-mail address was changed")
    text, html = parts(notice)
    assert "from ada@example.com to ada@new.example" in text and "ada@new.example" in html
    assert (await client.get(path)).status_code == 410
    fresh = await new_client(app)
    try:
        assert (await sign_in(fresh, "ada@example.com")).status_code == 400
        assert (await sign_in(fresh, "ada@new.example")).status_code == 303
    finally:
        await fresh.__aexit__(None, None, None)


async def test_email_change_checks_the_address_is_still_free_when_confirmed(client, app, inbox):
    await register(client, "ada@example.com")
    await post(
        client, "/account/email", {"new_email": "zed@example.com", "password": PASSWORD}, token_from="/account/email"
    )
    path = link_in(await inbox.wait_for("zed@example.com", "Confirm your new e-mail address"))
    other = await new_client(app)
    try:
        await register(other, "ZED@example.com", "Zed")  # takes the address before Ada confirms
    finally:
        await other.__aexit__(None, None, None)
    clash = await post(client, path, {}, token_from=path)
    assert clash.status_code == 409 and "Another account uses this e-mail address by now" in clash.text
    assert "Signed in as <strong>ada@example.com</strong>" in (await client.get("/account")).text


# --- order e-mails -----------------------------------------------------------------------------


async def test_order_confirmation_and_shipping_notification(client, alchemy, inbox, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["DC-1"], 2)
    placed = await place(client, form)
    assert placed.status_code == 303
    number = re.search(r"WS-[0-9A-Z]{8}", placed.headers["location"]).group(0)

    confirmation = await inbox.wait_for("buyer@example.com", f"Order {number} is confirmed")
    text, html = parts(confirmation)
    for body in (text, html):
        assert number in body and "Delta Chair" in body and "DC-1" in body
        assert "$178.00" in body  # subtotal of 2 × $89.00
        assert f"{BASE}/orders/{number}" in body
    assert "Ada Lovelace" in text and "12 Analytical Way" in html
    # One tax rate: one line that names it (goods and $5.00 shipping at 20 %), not that line and "Tax" again.
    assert "Tax 20% on $183.00: $36.60" in text and "\nTax: " not in text, text
    assert html.count("$36.60") == 1 and ">Tax<" not in html, html

    async with write_session(alchemy) as session:
        await UserService(session=session).register(
            email="boss@example.com", name="Boss", password=PASSWORD, role=UserRole.ADMIN
        )
        await session.commit()
        order_id = await session.scalar(select(Order.id).where(Order.number == number))
    token = (await client.post("/api/auth/token", data={"username": "boss@example.com", "password": PASSWORD})).json()
    shipped = await client.patch(
        f"/api/orders/{order_id}",
        json={"status": "shipped"},
        headers={"Authorization": f"Bearer {token['access_token']}"},
    )
    assert shipped.status_code == 200, shipped.text
    notification = await inbox.wait_for("buyer@example.com", f"Order {number} has shipped")
    text, html = parts(notification)
    assert "on its way" in text and number in html and "Delta Chair" in html


async def test_api_checkout_sends_the_confirmation_too(client, inbox, skus):
    await client.post("/api/auth/register", json={"email": "api@example.com", "password": PASSWORD, "name": "Api"})
    await inbox.wait_for("api@example.com", "Confirm your e-mail address")
    token = (await client.post("/api/auth/token", data={"username": "api@example.com", "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {token['access_token']}", "Idempotency-Key": "mail-1"}
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    response = await client.post("/api/checkout", json=api_checkout_body(), headers=headers)
    assert response.status_code == 201, response.text
    number = response.json()["number"]
    text, _ = parts(await inbox.wait_for("api@example.com", f"Order {number} is confirmed"))
    assert "Epsilon Plant" in text


async def test_a_declined_card_sends_no_mail(client, alchemy, inbox, skus):
    form = await ready_to_pay(client, "buyer@example.com", skus["DC-1"])
    await inbox.wait_for("buyer@example.com", "Confirm")
    declined = await place(client, form, DECLINED_CARD)
    assert declined.status_code == 422  # the payment page again: the order waits for another card
    async with alchemy.get_session() as session:
        assert list(await session.scalars(select(Order.status))) == ["pending"]
    await settled(alchemy)  # the sender sends only outbox rows, and it has finished every one
    assert [row.kind for row in await outbox_rows(alchemy)] == ["verify_email"]
    assert [m["Subject"] for m in inbox.to("buyer@example.com")] == ["Confirm your e-mail address"]


# --- a slow or failing mail server -------------------------------------------------------------


async def test_a_failing_server_is_retried_and_never_breaks_a_request(client, alchemy, inbox, caplog):
    caplog.set_level(logging.INFO, logger="webshop.mail")
    inbox.fail_next = 2
    started = time.perf_counter()
    await register(client, "ada@example.com")
    assert time.perf_counter() - started < 5
    message = await inbox.wait_for("ada@example.com", "Confirm your e-mail address")
    assert inbox.refusals == 2
    assert link_in(message).startswith("/account/verify-email/")
    [row] = await settled(alchemy)
    assert (row.status, row.attempts, row.sent_at is not None) == ("sent", 3, True)
    assert row.last_error == ""  # cleared once sent; the failures are in the log
    logged = "\n".join(caplog.messages)
    assert "attempt 1 of 8 failed" in logged and "attempt 2 of 8 failed" in logged and "451" in logged
    assert f"to ada@example.com sent via smtp://127.0.0.1:{inbox.port}" in logged
    assert PASSWORD not in logged


async def test_a_slow_server_does_not_hold_up_requests(client, alchemy, inbox):
    inbox.hold.set()
    await register(client, "ada@example.com")
    await age_account_links(alchemy, "ada@example.com")
    for _ in range(500):  # the sender is now stuck inside the SMTP conversation
        if inbox.holding.is_set():
            break
        await asyncio.sleep(0.01)
    assert inbox.holding.is_set()
    started = time.perf_counter()
    resent = await post(client, "/account/verify-email", {"next": "/account"}, token_from="/account")
    page = await client.get("/account")
    assert resent.status_code == 303 and page.status_code == 200
    assert time.perf_counter() - started < 5
    assert inbox.messages == []
    inbox.release.set()
    await inbox.wait_for("ada@example.com", "Confirm", count=2)


async def test_permanent_refusal_is_not_retried(client, alchemy, inbox, caplog):
    caplog.set_level(logging.INFO, logger="webshop.mail")

    async def refuse(server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        if address.endswith("@nowhere.example"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    inbox.handle_RCPT = refuse  # type: ignore[attr-defined]
    await register(client, "ghost@nowhere.example")
    rows = await settled(alchemy)
    assert (rows[0].status, rows[0].attempts) == ("failed", 1)
    assert "550" in rows[0].last_error
    assert "failed for good after 1 attempt(s)" in "\n".join(caplog.messages)


@pytest.mark.parametrize("inbox", [{"enable_SMTPUTF8": False}], indirect=True)
async def test_an_internationalised_domain_is_sent_in_ascii_and_a_utf8_mailbox_needs_smtputf8(client, alchemy, inbox):
    """RFC 5891: a domain in another script travels as its IDNA "xn--" form, which any server takes. A
    local part in another script needs SMTPUTF8 (RFC 6531); this server lacks it, so that message fails
    for good at once, with the reason, instead of being retried for days."""
    await register(client, "ann@bücher.example")
    message = await inbox.wait_for("ann@xn--bcher-kva.example", "Confirm your e-mail address")
    assert link_in(message).startswith("/account/verify-email/")
    client.cookies.clear()  # a second visitor
    await register(client, "zoë@example.com")
    rows = {row.to_address: row for row in await settled(alchemy)}
    assert rows["zoë@example.com"].status == "failed" and rows["zoë@example.com"].attempts == 1
    assert "SMTPUTF8" in rows["zoë@example.com"].last_error


@pytest.mark.parametrize("inbox", [{"enable_SMTPUTF8": True}], indirect=True)
async def test_a_mailbox_in_another_script_is_sent_with_smtputf8_and_reads_as_written(client, inbox):
    """RFC 6531/6532: with a server that offers SMTPUTF8 the address is sent as it is, in UTF-8, not as
    RFC 2047 encoded words (which are not allowed in an address and bounce)."""
    await register(client, "zoë@example.com", "Zoë")
    message = await inbox.wait_for("zoë@example.com", "Confirm your e-mail address")
    assert "Hello Zoë" in parts(message)[0]


async def test_two_senders_never_send_one_message_twice(settings, alchemy, inbox):
    async with write_session(alchemy) as session:
        user = await UserService(session=session).register(email="ada@example.com", name="Ada", password=PASSWORD)
        await session.flush()
        for n in range(12):
            session.add(
                OutboundEmail(to_address=f"reader{n}@example.com", subject=f"Note {n}", text_body="Hi", kind="note")
            )
        await session.commit()
        assert user.id
    first, second = MailSender(settings.mail, alchemy), MailSender(settings.mail, alchemy)
    await asyncio.gather(first.send_due(), second.send_due(), first.send_due(), second.send_due())
    assert sorted(m["To"] for m in inbox.messages) == sorted(f"reader{n}@example.com" for n in range(12))
    rows = await outbox_rows(alchemy, kind="note")
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}


# --- checkout may require a verified address ---------------------------------------------------


def api_checkout_body(card: str = "tok_visa") -> dict[str, Any]:
    address = {"name": "Ada", "line1": "1 Way", "city": "London", "postal_code": "N1", "country": "GB"}
    return {"shipping_address": address, "shipping_method": "standard", "payment": {"token": card}}


@pytest.mark.parametrize("settings", [{"require_verified_email": True}], indirect=True)
async def test_required_verification_blocks_checkout_until_verified(client, alchemy, inbox, skus):
    await register(client, "ada@example.com")
    await add_to_cart(client, skus["DC-1"])
    blocked = await client.get("/checkout/address", follow_redirects=False)
    assert blocked.status_code == 303
    assert blocked.headers["location"] == "/account/verify-email?next=/checkout/address"
    prompt = await client.get(blocked.headers["location"])
    assert "Before you can check out, please confirm your e-mail address." in prompt.text
    assert "Send the link again" in prompt.text
    token = await csrf(client, "/cart")
    placing = await client.post(
        "/checkout/place",
        data={"checkout_token": "x" * 24, "card_number": "4242424242424242", "_csrf_token": token},
        follow_redirects=False,
    )
    assert placing.status_code == 303 and placing.headers["location"].startswith("/account/verify-email")

    pair = (await client.post("/api/auth/token", data={"username": "ada@example.com", "password": PASSWORD})).json()
    headers = {"Authorization": f"Bearer {pair['access_token']}", "Idempotency-Key": "verify-first-1"}
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    refused = await client.post("/api/checkout", json=api_checkout_body(), headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert "Confirm your e-mail address" in refused.json()["detail"]
    async with alchemy.get_session() as session:
        assert await session.scalar(select(func.count()).select_from(Order)) == 0

    assert (
        await confirm_address(client, link_in(await inbox.wait_for("ada@example.com", "Confirm")))
    ).status_code == 200
    await choose_address_and_shipping(client)
    placed = await place(client, await review(client))
    assert placed.status_code == 303 and placed.headers["location"].startswith("/orders/WS-")
    await client.post("/api/cart/items", json={"sku": "EP-1", "quantity": 1}, headers=headers)
    again = await client.post(
        "/api/checkout", json=api_checkout_body(), headers={**headers, "Idempotency-Key": "verify-first-2"}
    )
    assert again.status_code == 201, again.text
    async with alchemy.get_session() as session:
        verified = await session.scalar(select(User.email_verified_at).where(User.email == "ada@example.com"))
    assert verified is not None
