"""Accounts over HTTP: register, sign in/out, CSRF, session rotation and revocation, profile, password."""

from __future__ import annotations

import re

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import select

from tests.factories import make_user
from tests.shopper import PASSWORD, text_of
from tests.shopper import csrf as csrf_token
from tests.shopper import post as post_form
from webshop.accounts.service import EMAIL_TAKEN
from webshop.db.models import OutboundEmail, User, UserRole


async def register(client, email="ada@example.com", name="Ada", password=PASSWORD, **extra):
    return await post_form(
        client,
        "/account/register",
        {"email": email, "name": name, "password": password, **extra},
        token_from="/account/register",
    )


async def sign_in(client, email="ada@example.com", password=PASSWORD, next_url=""):
    return await post_form(client, "/account/sign-in", {"email": email, "password": password, "next": next_url})


async def test_register_signs_in_and_shows_profile(client):
    response = await register(client)
    assert response.status_code == 303
    assert response.headers["location"] == "/account"
    profile = await client.get("/account")
    assert profile.status_code == 200
    assert "ada@example.com" in profile.text
    assert "Sign out" in profile.text


async def test_register_rerenders_form_with_errors(client):
    response = await register(client, email="not-an-email", name="", password="short")
    assert response.status_code == 422
    assert "Enter an e-mail address like name@example.com." in response.text
    assert "Enter your name." in response.text
    assert "Use at least 8 characters." in response.text
    assert 'value="not-an-email"' in response.text  # what was typed is kept


async def test_email_is_unique_regardless_of_case(client, alchemy):
    assert (await register(client)).status_code == 303
    other = AsyncTestClient(app=client.app, base_url="http://127.0.0.1:8000")
    async with other:
        response = await register(other, email="ADA@Example.com", name="Impostor")
    assert response.status_code == 422
    assert "already exists" in response.text


@pytest.mark.owasp_password_cost
async def test_password_is_argon2id_at_owasp_minimum(client, alchemy):
    await register(client)
    async with alchemy.get_session() as session:
        from sqlalchemy import select

        user = await session.scalar(select(User))
    assert user.password_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert PASSWORD not in user.password_hash


@pytest.mark.owasp_password_cost
async def test_weaker_hash_is_upgraded_at_sign_in(client, alchemy):
    """A hash made with older, cheaper parameters is replaced by one at today's parameters on sign-in."""
    from argon2 import PasswordHasher
    from sqlalchemy import select, update

    await register(client)
    await post_form(client, "/account/sign-out", {})
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with alchemy.get_session() as session:
        await session.execute(update(User).values(password_hash=weak))
        await session.commit()
    assert (await sign_in(client)).status_code == 303
    async with alchemy.get_session() as session:
        stored = await session.scalar(select(User.password_hash))
    assert stored != weak
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_sign_in_failures_share_one_message(client):
    await register(client)
    await post_form(client, "/account/sign-out", {})
    wrong_password = await sign_in(client, password="wrong password!")
    unknown_email = await sign_in(client, email="nobody@example.com")
    assert wrong_password.status_code == unknown_email.status_code == 400
    message = "The e-mail address or password is incorrect."
    assert message in wrong_password.text
    assert message in unknown_email.text
    assert 'value="ada@example.com"' in wrong_password.text


async def test_empty_fields_are_named_not_called_wrong(client):
    await register(client)
    deleting = await post_form(client, "/account/delete", {"password": ""}, token_from="/account")
    assert deleting.status_code == 422 and "Enter your password." in text_of(deleting.text)
    await post_form(client, "/account/sign-out", {})
    empty = await sign_in(client, password="")
    assert empty.status_code == 400 and "Enter your e-mail address and your password." in text_of(empty.text)
    odd = await post_form(client, "/account/forgot-password", {"email": "not-an-email"})
    assert odd.status_code == 422 and "like name@example.com" in text_of(odd.text)
    assert (await sign_in(client)).status_code == 303  # none of it counted as a failed sign-in


async def test_signing_out_says_so(client):
    await register(client)
    again = await client.get("/account/register", follow_redirects=False)  # signed in: their account instead
    assert again.status_code == 303 and again.headers["location"] == "/account"
    signed_out = await post_form(client, "/account/sign-out", {})
    assert signed_out.status_code == 303
    page = await client.get(signed_out.headers["location"])
    assert "You are signed out." in text_of(page.text) and 'tabindex="-1" autofocus>' in page.text


async def test_sign_in_redirects_to_a_local_next_only(client):
    await register(client)
    await post_form(client, "/account/sign-out", {})
    ok = await sign_in(client, next_url="/products/x")
    assert ok.headers["location"] == "/products/x"
    await post_form(client, "/account/sign-out", {})
    evil = await sign_in(client, next_url="https://evil.example/")
    assert evil.headers["location"] == "/"


async def test_pages_that_need_sign_in_redirect_there_and_back(client):
    response = await client.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/account/sign-in?next=/account"


async def test_post_without_csrf_token_is_rejected(client):
    response = await client.post(
        "/account/register", data={"email": "x@example.com", "name": "X", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert "Reload the page and try again" in response.text
    # Nothing was created: the e-mail is still free.
    assert (await register(client, email="x@example.com")).status_code == 303


async def test_csrf_token_is_accepted_from_the_htmx_header(client):
    token = await csrf_token(client, "/account/register")
    response = await client.post(
        "/account/register",
        data={"email": "h@example.com", "name": "H", "password": PASSWORD},
        headers={"x-csrftoken": token},
        follow_redirects=False,
    )
    assert response.status_code == 303


def session_cookie(client) -> str:
    return client.cookies.get("webshop_session")


async def test_session_cookie_is_httponly_lax_and_rotated_at_sign_in(client):
    await client.get("/")
    await register(client)
    await post_form(client, "/account/sign-out", {})
    await client.get("/")
    before = session_cookie(client)
    response = await sign_in(client)
    header = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and "webshop_session=" in v)
    assert "HttpOnly" in header
    assert "SameSite=Lax" in header or "samesite=lax" in header.lower()
    assert session_cookie(client) != before


async def test_sign_out_makes_copies_of_the_old_cookie_useless(client, app):
    await register(client)
    stolen = dict(client.cookies)
    await post_form(client, "/account/sign-out", {})
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as thief:
        thief.cookies.update(stolen)
        response = await thief.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert "/account/sign-in" in response.headers["location"]


async def test_password_change_signs_out_other_copies_but_keeps_this_browser(client, app):
    await register(client)
    other_device = dict(client.cookies)
    response = await post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a new long password"},
        token_from="/account",
    )
    assert response.status_code == 303
    assert "Your password was changed" in (await client.get("/account?saved=password")).text
    async with AsyncTestClient(app=app, base_url="http://127.0.0.1:8000") as old:
        old.cookies.update(other_device)
        assert (await old.get("/account", follow_redirects=False)).status_code == 303
    # The new password works; the old one does not.
    await post_form(client, "/account/sign-out", {})
    assert (await sign_in(client)).status_code == 400
    assert (await sign_in(client, password="a new long password")).status_code == 303


async def test_password_change_requires_current_password(client):
    await register(client)
    for form, field, message in (
        ({"current_password": "nope nope", "new_password": "another password"}, "current", "This is not your current"),
        ({"current_password": "", "new_password": "another password"}, "current", "Enter your current password."),
        ({"current_password": PASSWORD, "new_password": PASSWORD}, "new", "Choose a new password, not the one you"),
        ({"current_password": PASSWORD, "new_password": " " * 9}, "new", "Use something other than spaces."),
    ):
        response = await post_form(client, "/account/password", form, token_from="/account")
        assert response.status_code == 422, form
        assert message in text_of(response.text), (field, form)


async def test_a_password_change_is_mailed_and_ends_the_reset_links_asked_for_before(client, alchemy):
    await register(client, "ada@example.com")
    await post_form(client, "/account/forgot-password", {"email": "ada@example.com"})
    async with alchemy.get_session() as session:
        reset = await session.scalar(select(OutboundEmail.text_body).where(OutboundEmail.kind == "reset_password"))
    link = re.search(r"https?://[^/\s]+(/account/reset-password/\S+)", reset).group(1)
    changed = await post_form(
        client,
        "/account/password",
        {"current_password": PASSWORD, "new_password": "a new long password"},
        token_from="/account",
    )
    assert changed.status_code == 303
    async with alchemy.get_session() as session:
        [mail] = await session.scalars(select(OutboundEmail.text_body).where(OutboundEmail.kind == "password_changed"))
    assert "was just changed, and every device" in mail  # not "with a reset link": it was the account page
    stale = await client.get(link)
    assert stale.status_code == 410 and "This link has expired." in text_of(stale.text)


async def test_profile_name_change(client):
    await register(client)
    response = await post_form(client, "/account/profile", {"name": "Ada Lovelace"}, token_from="/account")
    assert response.status_code == 303
    assert "Ada Lovelace" in (await client.get("/account")).text
    bad = await post_form(client, "/account/profile", {"name": "  "}, token_from="/account")
    assert bad.status_code == 422


async def test_deactivated_user_cannot_sign_in_and_is_signed_out(client, alchemy):
    await register(client)
    from sqlalchemy import update

    from webshop.db.engine import write_session

    async with write_session(alchemy) as session:
        await session.execute(update(User).values(is_active=False))
        await session.commit()
    assert (await client.get("/account", follow_redirects=False)).status_code == 303
    assert (await sign_in(client)).status_code == 400


@pytest.mark.parametrize("path", ["/account/register", "/account/sign-in"])
async def test_forms_have_labels_for_every_input(client, path):
    import re

    html = (await client.get(path)).text
    ids = re.findall(r'<input id="([^"]+)"', html)
    assert ids
    for input_id in ids:
        assert re.search(rf'<label[^>]* for="{input_id}"', html), input_id


@pytest.mark.parametrize("path", ["/", "/account/register", "/account/sign-in", "/cart"])
async def test_pages_are_served_as_html(client, path):
    """A browser renders the page instead of showing its source (the bug: sign-in came back as JSON)."""
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"


async def test_one_mailbox_is_one_account_however_its_address_is_typed(client, alchemy) -> None:
    """A browser's e-mail field sends a domain in its IDNA ASCII form, a JSON client as typed, and an
    accented letter may come as one character or two: all reach one account, and none makes a second."""
    api = "/api/auth/register"
    created = await client.post(api, json={"email": "ann@bücher.example", "password": PASSWORD, "name": "Ann"})
    assert created.status_code == 201, created.text
    assert created.json()["email"] == "ann@xn--bcher-kva.example"  # stored as mail servers take it
    for again in ("ann@xn--bcher-kva.example", "ann@BÜCHER.example", "ann@bu\u0308cher.example"):
        refused = await client.post(api, json={"email": again, "password": PASSWORD, "name": "Ann"})
        assert refused.status_code == 422, (again, refused.text)
    assert (await client.post(api, json={"email": "zoë@example.com", "password": PASSWORD, "name": "Zoë"})).is_success
    twin = await client.post(api, json={"email": "zoe\u0308@example.com", "password": PASSWORD, "name": "Zoë"})
    assert twin.status_code == 422, twin.text
    for typed in ("ann@bücher.example", "ann@XN--BCHER-KVA.example", "zoe\u0308@example.com"):
        token = await client.post("/api/auth/token", data={"username": typed, "password": PASSWORD})
        assert token.status_code == 200, (typed, token.text)
    async with alchemy.get_session() as session:
        assert sorted(await session.scalars(select(User.email))) == ["ann@xn--bcher-kva.example", "zoë@example.com"]
    # The pages show the address as Ann typed it, not its ASCII form.
    assert (await sign_in(client, "ann@xn--bcher-kva.example")).status_code in (200, 303)
    profile = text_of((await client.get("/account")).text)
    assert "Signed in as ann@bücher.example" in profile and "xn--" not in profile
    # An admin finds the account by the address as it reads.
    await make_user(alchemy, "boss@example.com", UserRole.ADMIN)
    assert (await sign_in(client, "boss@example.com")).status_code in (200, 303)
    for typed in ("ann@bücher.example", "BÜCHER.example"):
        found = text_of((await client.get("/admin/users", params={"q": typed})).text)
        assert "ann@bücher.example" in found and "zoë@example.com" not in found, typed


async def test_one_mailbox_is_one_account_in_any_width_case_or_trailing_dot(client) -> None:
    """Full-width letters (an input method's other width), the DNS root's trailing dot and accented
    capitals name the same mailbox as their plain forms, so they reach the same account."""
    api = "/api/auth/register"
    assert (
        await client.post(api, json={"email": "ann@bücher.example", "password": PASSWORD, "name": "Ann"})
    ).is_success
    assert (await client.post(api, json={"email": "zoë@example.com", "password": PASSWORD, "name": "Zoë"})).is_success
    for again in ("ａｎｎ@ｂüｃｈｅｒ.example", "ann@bücher.example.", "ＺＯË@example.com"):
        refused = await client.post(api, json={"email": again, "password": PASSWORD, "name": "Ann"})
        assert refused.status_code == 422, (again, refused.text)
        assert refused.json()["errors"]["email"] == EMAIL_TAKEN, (again, refused.text)
    # A domain with an empty label is no address (only the root's one trailing dot is left out).
    for bad in ("ann@bücher.example..", "ann@bücher..example", "ann@.bücher.example"):
        refused = await client.post(api, json={"email": bad, "password": PASSWORD, "name": "Ann"})
        assert refused.status_code == 422 and "like name@example.com" in refused.json()["errors"]["email"], bad
    # An accented capital in the local part is the same letter too (SQLite's own lower() folds A-Z only).
    body = {"email": "ÉLODIE@example.com", "password": PASSWORD, "name": "Élodie"}
    assert (await client.post(api, json=body)).status_code == 201
    twin = await client.post(api, json=body | {"email": "élodie@example.com"})
    assert twin.status_code == 422 and twin.json()["errors"]["email"] == EMAIL_TAKEN, twin.text
    assert (
        await client.post("/api/auth/token", data={"username": "élodie@Example.com", "password": PASSWORD})
    ).is_success
    token = await client.post("/api/auth/token", data={"username": "ａｎｎ@bücher.example.", "password": PASSWORD})
    assert token.status_code == 200, token.text


async def test_an_account_stored_with_a_readable_domain_is_still_found(client, alchemy) -> None:
    """Accounts made before addresses were stored in ASCII keep their readable domain; they are found by
    either form, and no second account can take the address."""
    async with alchemy.get_session() as session:
        session.add(User(email="bob@bücher.example", name="Bob", password_hash="x"))
        await session.commit()
    body = {"email": "bob@xn--bcher-kva.example", "password": PASSWORD, "name": "Bob"}
    assert (await client.post("/api/auth/register", json=body)).status_code == 422
