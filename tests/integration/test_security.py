"""Abuse resistance and security headers over HTTP, on both engines.

Sign-in throttling per account (a failure counter in the database, back-off, a longer lock), the same
answers for addresses without an account, per-address rate limits (429 with ``Retry-After``, a page
for browsers and problem+json for the API, never a 5xx), forwarded addresses believed only from
trusted proxies, limits shared by several app instances through Redis, security headers on every
kind of response, HSTS only over https, and allowed hosts.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import update

from tests.conftest import app_client, unavailable
from tests.factories import account, expire_lock, make_user
from tests.live import free_port
from tests.shopper import PASSWORD, csrf, sign_in
from webshop.accounts.service import SIGN_IN_FAILED
from webshop.app import create_app
from webshop.db.engine import write_session
from webshop.db.models import User
from webshop.security.headers import DOCS_CSP, HSTS, PAGE_CSP

EMAIL = "ada@example.com"
TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
COMMON_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def seconds_of(response: httpx.Response) -> int:
    return int(response.headers["retry-after"])


def assert_problem_429(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert seconds_of(response) >= 1
    body = response.json()
    assert body["status"] == 429 and body["detail"]
    return body


# --- per account ---------------------------------------------------------------------------------


async def test_failed_sign_ins_back_off_then_lock_and_success_resets(client, alchemy):
    await make_user(alchemy, EMAIL, name="Ada")
    for attempt in range(1, 5):
        response = await sign_in(client, EMAIL, "wrong password")
        assert response.status_code == 400 and SIGN_IN_FAILED in response.text
        user = await account(alchemy)
        assert (user.failed_sign_ins, user.locked_until) == (attempt, None)

    # The fifth failure locks the account for a minute; even the right password is refused meanwhile.
    assert (await sign_in(client, EMAIL, "wrong password")).status_code == 400
    user = await account(alchemy)
    assert user.failed_sign_ins == 5 and user.locked_until is not None
    locked = await sign_in(client, EMAIL, PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts. Try again in 1 minute." in locked.text
    assert 50 <= seconds_of(locked) <= 60
    assert 'name="email"' in locked.text  # the form is shown again, with the message
    assert (await account(alchemy)).failed_sign_ins == 5  # attempts while locked are not counted

    # Each further failure doubles the back-off: 2 minutes after the sixth.
    await expire_lock(alchemy)
    assert (await sign_in(client, EMAIL, "wrong password")).status_code == 400
    relocked = await sign_in(client, EMAIL, PASSWORD)
    assert relocked.status_code == 429 and "Try again in 2 minutes." in relocked.text
    assert 110 <= seconds_of(relocked) <= 120

    # Once the lock has run out, the right password signs in and resets the count.
    await expire_lock(alchemy)
    assert (await sign_in(client, EMAIL, PASSWORD)).status_code == 303
    user = await account(alchemy)
    assert (user.failed_sign_ins, user.locked_until) == (0, None)


async def test_repeated_failures_lock_for_an_hour(client, alchemy):
    await make_user(alchemy, EMAIL, name="Ada")
    async with write_session(alchemy) as session:
        await session.execute(update(User).where(User.email == EMAIL).values(failed_sign_ins=9))
        await session.commit()
    assert (await sign_in(client, EMAIL, "wrong password")).status_code == 400
    locked = await sign_in(client, EMAIL, PASSWORD)
    assert locked.status_code == 429 and "Try again in 60 minutes." in locked.text
    assert 3590 <= seconds_of(locked) <= 3600


async def test_api_token_endpoint_counts_failures_and_answers_429_problem(client, alchemy):
    await make_user(alchemy, EMAIL, name="Ada")
    for _ in range(5):
        response = await client.post("/api/auth/token", data={"username": EMAIL, "password": "wrong password"})
        assert response.status_code == 401
    body = assert_problem_429(await client.post("/api/auth/token", data={"username": EMAIL, "password": PASSWORD}))
    assert "Try again in 1 minute" in str(body["detail"])
    # The page and the API share the account's counter.
    assert (await sign_in(client, EMAIL, PASSWORD)).status_code == 429


async def test_concurrent_failures_are_all_counted(client, alchemy):
    """One ``UPDATE ... SET failed_sign_ins = failed_sign_ins + 1`` per failure: none is lost in a race."""
    await make_user(alchemy, EMAIL, name="Ada")
    responses = await asyncio.gather(
        *(client.post("/api/auth/token", data={"username": EMAIL, "password": f"guess {i}"}) for i in range(4))
    )
    assert [r.status_code for r in responses] == [401] * 4
    assert (await account(alchemy)).failed_sign_ins == 4


async def test_an_address_without_account_is_locked_the_same_way(client, alchemy):
    """A locked-out answer must not tell whether an account exists (OWASP Authentication Cheat Sheet)."""
    await make_user(alchemy, EMAIL, name="Ada")
    answers = {}
    for email in (EMAIL, "nobody@example.com"):
        statuses, messages = [], []
        for _ in range(6):
            response = await sign_in(client, email, "wrong password")
            statuses.append(response.status_code)
            messages.append(re.search(r"(The e-mail address[^<]*|Too many[^<]*)", response.text).group(1))
        answers[email] = (statuses, messages)
    assert answers[EMAIL] == answers["nobody@example.com"]
    assert answers[EMAIL][0] == [400] * 5 + [429]


# --- per client address --------------------------------------------------------------------------


async def test_auth_limit_per_address_answers_429_page_and_problem(settings, alchemy):
    async with app_client(settings, alchemy, rate_limit_auth="3/minute") as client:
        for _ in range(3):
            assert (await sign_in(client, "someone@example.com", "wrong password")).status_code == 400
        page = await sign_in(client, "someone@example.com", "wrong password")
        assert page.status_code == 429
        assert page.headers["content-type"].startswith("text/html")
        assert "Too many requests" in page.text and "Please wait" in page.text
        assert 1 <= seconds_of(page) <= 60
        # The API's sign-up and token endpoints share the address's auth bucket.
        assert_problem_429(await client.post("/api/auth/token", data={"username": "x@example.com", "password": "y"}))
        body = {"email": "new@example.com", "password": PASSWORD, "name": "New"}
        assert_problem_429(await client.post("/api/auth/register", json=body))
        # Other requests are not in that bucket.
        assert (await client.get("/account/sign-in")).status_code == 200


async def test_refresh_has_a_limit_of_its_own(settings, alchemy):
    async with app_client(settings, alchemy, rate_limit_refresh="2/minute") as client:
        for _ in range(2):
            response = await client.post("/api/auth/refresh", json={"refresh_token": "not-a-real-token"})
            assert response.status_code == 401
        assert_problem_429(await client.post("/api/auth/refresh", json={"refresh_token": "not-a-real-token"}))


async def test_general_limit_spares_static_files_and_probes(settings, alchemy):
    async with app_client(settings, alchemy, rate_limit_general="3/minute") as client:
        assert [(await client.get("/account/sign-in")).status_code for _ in range(3)] == [200] * 3
        limited = await client.get("/account/sign-in")
        assert limited.status_code == 429 and seconds_of(limited) >= 1
        assert_problem_429(await client.get("/api/products"))
        for path in ("/static/css/site.css", "/health", "/ready", "/metrics"):
            assert (await client.get(path)).status_code == 200, path


async def test_a_burst_of_sign_ins_gets_429s_and_never_a_5xx(client, alchemy):
    token = await csrf(client)
    responses = await asyncio.gather(
        *(
            client.post(
                "/account/sign-in",
                data={"email": f"guess{i}@example.com", "password": "wrong password", "_csrf_token": token},
                follow_redirects=False,
            )
            for i in range(40)
        )
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(400) == 20  # WEBSHOP_RATE_LIMIT_AUTH's default: 20 a minute per address
    assert statuses.count(429) == 20
    assert all("retry-after" in r.headers for r in responses if r.status_code == 429)


async def test_forwarded_for_is_believed_only_from_a_trusted_proxy(settings, alchemy):
    app = create_app(
        settings.with_values(trusted_proxies=("10.0.0.0/24",), rate_limit_auth="2/minute"), alchemy=alchemy
    )

    def via(peer: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(peer, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000")

    attempts = iter(range(100))

    async def token(client: httpx.AsyncClient, forwarded: str | None) -> int:
        headers = {"X-Forwarded-For": forwarded} if forwarded else {}
        form = {"username": f"x{next(attempts)}@example.com", "password": "wrong password"}
        return (await client.post("/api/auth/token", data=form, headers=headers)).status_code

    async with AsyncTestClient(app=app), via("10.0.0.7") as proxy, via("198.51.100.7") as direct:
        # Behind the trusted proxy each client has its own bucket: the right-most untrusted hop.
        assert [await token(proxy, "203.0.113.5") for _ in range(3)] == [401, 401, 429]
        assert await token(proxy, "192.0.2.1, 203.0.113.6, 10.0.0.3") == 401
        assert await token(proxy, "203.0.113.6") == 401
        assert await token(proxy, "203.0.113.6") == 429
        # A client that is not a proxy cannot pick a new address with the header.
        assert await token(direct, "203.0.113.50") == 401
        assert await token(direct, "203.0.113.51") == 401
        assert await token(direct, "203.0.113.52") == 429


# --- Redis: several app instances (workers) share the counts --------------------------------------


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    """A Redis server of the test's own (``redis-server`` on a free port, no persistence)."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_workers_share_limits_and_locks_through_redis(settings, alchemy, redis_url):
    shared = {"redis_url": redis_url, "rate_limit_auth": "4/minute"}
    async with app_client(settings, alchemy, **shared) as one, app_client(settings, alchemy, **shared) as two:
        # Per-address limit: four requests in all, whichever worker gets them.
        statuses = []
        for client in (one, two, one, two, one):
            response = await client.post("/api/auth/token", data={"username": "x@example.com", "password": "nope"})
            statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 401, 429]
    async with (
        app_client(settings, alchemy, redis_url=redis_url, rate_limit_auth="off") as one,
        app_client(settings, alchemy, redis_url=redis_url, rate_limit_auth="off") as two,
    ):
        # An address without an account is locked for both workers after five failures between them.
        for client in (one, two, one, two, one):
            response = await client.post("/api/auth/token", data={"username": "ghost@example.com", "password": "no"})
            assert response.status_code == 401
        assert_problem_429(await two.post("/api/auth/token", data={"username": "ghost@example.com", "password": "n"}))


async def test_an_unreachable_redis_lets_requests_through(settings, alchemy):
    await make_user(alchemy, EMAIL, name="Ada")
    dead = f"redis://127.0.0.1:{free_port()}/0"
    async with app_client(settings, alchemy, redis_url=dead, rate_limit_auth="1/minute") as client:
        for _ in range(3):
            response = await client.post("/api/auth/token", data={"username": "x@example.com", "password": "no"})
            assert response.status_code == 401
        assert (await sign_in(client, EMAIL, PASSWORD)).status_code == 303


# --- security headers and hosts ------------------------------------------------------------------


def assert_security_headers(response: httpx.Response, csp: str = PAGE_CSP) -> None:
    for name, value in COMMON_HEADERS.items():
        assert response.headers.get(name) == value, (response.url, name)
    assert response.headers.get("content-security-policy") == csp, response.url
    assert "camera=()" in response.headers.get("permissions-policy", "")


async def test_security_headers_on_pages_api_static_and_errors(settings, alchemy):
    async with app_client(settings, alchemy, rate_limit_general="12/minute") as client:
        responses = [
            await client.get("/"),
            await client.get("/account/sign-in"),
            await client.get("/api/products"),
            await client.get("/api/openapi.json"),
            await client.get("/static/css/site.css"),
            await client.get("/no-such-page"),
            await client.get("/api/no-such-thing"),
            await client.post("/account/sign-in", data={"email": "x", "password": "y"}),  # no CSRF token: 403
            await client.get("/health"),
        ]
        assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 404, 404, 403, 200]
        for _ in range(12):
            limited = await client.get("/")
        assert limited.status_code == 429
        for response in [*responses, limited]:
            assert_security_headers(response)
            assert "strict-transport-security" not in response.headers  # plain http: no HSTS
        # The error page for an unknown path is the shop's page, rendered signed out.
        assert "We could not find that page." in responses[5].text


async def test_csp_of_pages_forbids_inline_code_and_framing():
    for directive in ("script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'"):
        assert directive in PAGE_CSP
    assert "unsafe" not in PAGE_CSP


async def test_api_docs_pages_get_their_own_policy(client):
    for path in ("/api/docs", "/api/redoc", "/api/scalar"):
        response = await client.get(path)
        assert response.status_code == 200
        assert_security_headers(response, DOCS_CSP)
    assert_security_headers(await client.get("/api/openapi.json"))


async def test_hsts_only_when_served_over_https(settings, alchemy):
    async with app_client(settings, alchemy, base_url="https://shop.example.com") as client:
        for path in ("/", "/api/products", "/no-such-page"):
            assert (await client.get(path)).headers.get("strict-transport-security") == HSTS


async def test_allowed_hosts_refuse_another_host(settings, alchemy):
    async with app_client(settings, alchemy, allowed_hosts=("shop.example.com", "127.0.0.1:8000")) as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/", headers={"Host": "shop.example.com"})).status_code == 200
        bad = await client.get("/", headers={"Host": "evil.example.net"})
        assert bad.status_code == 400
        assert_security_headers(bad)
        bad_api = await client.get("/api/products", headers={"Host": "evil.example.net"})
        assert bad_api.status_code == 400
        # Probes and scrapers use an IP address as the host.
        for path in ("/health", "/ready", "/metrics"):
            assert (await client.get(path, headers={"Host": "10.1.2.3:8000"})).status_code == 200, path


async def test_production_allows_only_the_base_url_host_by_default(settings, alchemy):
    async with app_client(settings, alchemy, env="production", base_url="http://127.0.0.1:8000") as client:
        assert (await client.get("/")).status_code == 200
        assert (await client.get("/", headers={"Host": "evil.example.net"})).status_code == 400
    async with app_client(settings, alchemy) as client:  # development: any host
        assert (await client.get("/", headers={"Host": "anything.example"})).status_code == 200


def test_templates_have_no_inline_script_or_style():
    """What the page CSP forbids must not be in a page template: style attributes, inline code, handlers.

    E-mail templates (``templates/email``) are exempt: a mail client shows them, not the shop, and mail
    clients only keep inline styles.
    """
    forbidden = re.compile(r"""\sstyle\s*=|<style|<script(?![^>]*\bsrc=)|\son[a-z]+\s*=|javascript:|hx-on""", re.I)
    offenders = [
        f"{path.relative_to(TEMPLATES)}:{number}: {line.strip()}"
        for path in sorted(TEMPLATES.rglob("*.html"))
        if path.relative_to(TEMPLATES).parts[0] != "email"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if forbidden.search(line)
    ]
    assert offenders == []
