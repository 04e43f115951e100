"""HTML controllers for accounts: register, sign in, sign out, profile, password, and deleting one's account."""

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Controller, MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromQuery
from litestar.plugins.flash import flash
from litestar.response import Redirect, Template

from webshop.accounts.service import UserService
from webshop.cart.service import CartService
from webshop.cart.web import CART_KEY
from webshop.db.models import User
from webshop.deps import AccountLinksDep, SignInThrottleDep, UserRequest, UsersDep
from webshop.errors import (
    AuthenticationFailed,
    Conflict,
    DomainError,
    TooManyAttempts,
    ValidationFailed,
)
from webshop.security.session import AUTH_KEY, requires_user
from webshop.text import Line
from webshop.web import AnyRequest
from webshop.web.forms import FormFields, InvalidForm, form_again, read_form
from webshop.web.responses import route_url, see_other, see_other_to


class SignInForm(msgspec.Struct):
    """Sign-in form fields (all optional so a missing field re-renders the form with a message).

    The form Structs' text fields refuse control characters (``webshop.text``); ``read_form`` turns
    that into the form again with a message."""

    email: Line = ""
    password: Line = ""
    next: Line = ""


class RegisterForm(SignInForm):
    """Registration form fields: the sign-in form's and the display name."""

    name: Line = ""


class ProfileForm(msgspec.Struct):
    """Profile form fields."""

    name: Line = ""


class PasswordForm(msgspec.Struct):
    """Password change form fields."""

    current_password: Line = ""
    new_password: Line = ""


class DeleteAccountForm(msgspec.Struct):
    """The "delete my account" form: the password, typed again to confirm."""

    password: Line = ""


def safe_next(target: str | None, default: str) -> str:
    """Return ``target`` if it is a local path (no scheme, no host), else ``default``.

    Prevents open redirects through ``?next=`` (OWASP Unvalidated Redirects Cheat Sheet).
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    parts = urlsplit(target)
    return default if parts.scheme or parts.netloc else target


async def sign_in_browser(request: AnyRequest, users: UserService, user: User) -> None:
    """Start a sign-in session for ``user`` and give the browser a brand-new session cookie.

    A guest cart is merged into the account's cart (the shopper is told what changed); the rest of
    the guest session (checkout choices, messages) is carried over.
    """
    token = await users.start_session(user, user_agent=request.headers.get("user-agent", ""))
    carried = {k: v for k, v in (request.session or {}).items() if k not in {AUTH_KEY, CART_KEY}}
    guest_cart = (request.session or {}).get(CART_KEY)
    request.set_session({**carried, AUTH_KEY: token})
    if isinstance(guest_cart, str):
        for message in await CartService(session=users.repository.session).merge_guest_cart(guest_cart, user.id):
            flash(request, message, "info")


async def signed_in_account(request: UserRequest, users_service: UsersDep) -> User:
    """The ``account`` of the signed-in pages that change it: the signed-in user's row, read in this
    request's session (the one the change is written in)."""
    return await users_service.get(request.user.id)


def lock_headers(error: DomainError) -> dict[str, str] | None:
    """``Retry-After`` (seconds) for a locked account (``TooManyAttempts``, 429), else no extra headers."""
    return {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyAttempts) else None


@dataclass(frozen=True)
class ProfileForms:
    """What the profile page's forms change the account with: ``account`` (``signed_in_account``), the
    user service and the sign-in throttle (a password typed here counts as one typed at sign-in); the
    ``profile`` of their handlers (Litestar makes one per request from the dependencies the fields name).
    """

    request: UserRequest
    account: NamedDependency[User]
    users_service: UsersDep
    sign_in_throttle: SignInThrottleDep

    def again(self, error: DomainError, message_key: str = "message") -> Template:
        """The profile page again in ``error``'s status, its message beside the form ``message_key`` names
        (a lock: 429 with ``Retry-After``, as at sign-in); nothing was changed."""
        return form_again(
            "accounts/profile.html",
            error,
            {},
            status_code=error.status_code,
            message_key=message_key,
            headers=lock_headers(error),
        )


class AccountController(Controller):
    """Account pages."""

    path = "/account"
    include_in_schema = False
    dependencies = {
        "account": Provide(signed_in_account),
        "profile": Provide(ProfileForms, sync_to_thread=False),
    }

    @get("/register", name="register", media_type=MediaType.HTML)
    async def register_form(self, request: AnyRequest, next: FromQuery[str | None] = None) -> Any:
        """The registration form; a signed-in shopper has an account already and goes to it."""
        if request.user is not None:
            return see_other_to(request, "account")
        return Template("accounts/register.html", context={"form": {}, "errors": {}, "next": safe_next(next, "")})

    @post("/register", name="register.submit", media_type=MediaType.HTML)
    async def register(
        self,
        request: AnyRequest,
        users_service: UsersDep,
        account_links_service: AccountLinksDep,
        data: FormFields,
    ) -> Any:
        """Create the account, send the verification link and sign in, or re-render the form with the errors."""
        form = RegisterForm()
        try:
            form = read_form(RegisterForm, data)
            user = await account_links_service.sign_up(email=form.email, name=form.name, password=form.password)
        except ValidationFailed as exc:
            form = exc.form if isinstance(exc, InvalidForm) else form
            context = {"form": {"email": form.email, "name": form.name}, "next": safe_next(form.next, "")}
            return form_again("accounts/register.html", exc, context)
        await sign_in_browser(request, users_service, user)
        return see_other(request, safe_next(form.next, route_url(request, "account")))

    @get("/sign-in", name="sign_in", media_type=MediaType.HTML)
    async def sign_in_form(self, request: AnyRequest, next: FromQuery[str | None] = None) -> Any:
        """The sign-in form (a signed-in user goes straight on)."""
        if request.user is not None:
            return Redirect(safe_next(next, route_url(request, "account")))
        return Template("accounts/sign_in.html", context={"form": {}, "next": safe_next(next, "")})

    @post("/sign-in", name="sign_in.submit", media_type=MediaType.HTML)
    async def sign_in(
        self,
        request: AnyRequest,
        users_service: UsersDep,
        sign_in_throttle: SignInThrottleDep,
        data: FormFields,
    ) -> Any:
        """Check the credentials and sign in, or re-render the form with one message for every failure
        (429 with ``Retry-After`` while the account is locked after too many failures)."""
        form = SignInForm()
        try:
            form = read_form(SignInForm, data)
            user = await users_service.authenticate(email=form.email, password=form.password, throttle=sign_in_throttle)
        except (AuthenticationFailed, TooManyAttempts, InvalidForm) as exc:
            locked = isinstance(exc, TooManyAttempts)
            if isinstance(exc, InvalidForm):
                form, message = exc.form, " ".join(dict.fromkeys(exc.field_errors.values()))
            else:
                message = exc.detail
            return Template(
                "accounts/sign_in.html",
                context={"form": {"email": form.email}, "message": message, "next": safe_next(form.next, "")},
                status_code=429 if locked else 400,
                headers=lock_headers(exc),
            )
        await sign_in_browser(request, users_service, user)
        return see_other(request, safe_next(form.next, route_url(request, "catalog")))

    @post("/sign-out", name="sign_out", media_type=MediaType.HTML)
    async def sign_out(self, request: AnyRequest, users_service: UsersDep) -> Any:
        """End the sign-in session (server side too) and clear the cookie."""
        token = (request.session or {}).get(AUTH_KEY)
        if isinstance(token, str):
            await users_service.end_session(token)
        request.set_session({})  # everything of the signed-in session goes (a new, empty one carries the message)
        flash(request, "You are signed out.", "info")
        return see_other_to(request, "catalog")

    @get("", name="account", media_type=MediaType.HTML, guards=[requires_user])
    async def profile(self, request: UserRequest, saved: FromQuery[str | None] = None) -> Template:
        """The profile page."""
        return Template("accounts/profile.html", context={"errors": {}, "saved": saved})

    @post("/profile", name="account.profile", media_type=MediaType.HTML, guards=[requires_user])
    async def update_profile(self, profile: NamedDependency[ProfileForms], data: FormFields) -> Any:
        """Change the display name."""
        try:
            await profile.users_service.update_profile(profile.account, name=read_form(ProfileForm, data).name)
        except ValidationFailed as exc:
            return profile.again(exc)
        return see_other_to(profile.request, "account", query={"saved": "profile"})

    @post("/password", name="account.password", media_type=MediaType.HTML, guards=[requires_user])
    async def change_password(self, profile: NamedDependency[ProfileForms], data: FormFields) -> Any:
        """Change the password; every other session of the account is signed out (429 with ``Retry-After``
        while the account is locked after too many wrong passwords, as at sign-in)."""
        try:
            form = read_form(PasswordForm, data)
            await profile.users_service.change_password(
                profile.account, current=form.current_password, new=form.new_password, throttle=profile.sign_in_throttle
            )
        except (TooManyAttempts, ValidationFailed) as exc:
            return profile.again(exc, "password_message")
        await sign_in_browser(profile.request, profile.users_service, profile.account)
        return see_other_to(profile.request, "account", query={"saved": "password"})

    @post("/delete", name="account.delete", media_type=MediaType.HTML, guards=[requires_user])
    async def delete_account(self, profile: NamedDependency[ProfileForms], data: FormFields) -> Any:
        """Erase the account (GDPR art. 17: personal data gone, orders kept) once the password confirms it,
        then sign out with a message; a wrong password (422), the last admin (409) or a lock (429) shows the
        page again with the reason and changes nothing."""
        try:
            form = read_form(DeleteAccountForm, data)
            await profile.users_service.erase_self(
                profile.account, password=form.password, throttle=profile.sign_in_throttle
            )
        except (TooManyAttempts, Conflict, ValidationFailed) as exc:
            return profile.again(exc, "delete_message")
        request = profile.request
        request.set_session({})  # signed out: the sign-in session's row went with the erasure
        flash(request, "Your account was deleted and you are signed out. Your orders are kept for our records.", "info")
        return see_other_to(request, "catalog")
