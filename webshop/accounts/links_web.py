"""HTML controllers for the e-mail flows: verify the address, reset the password, change the address.

Links from e-mails land here. A link that no longer works (``AccountLinkError``, from any handler here)
shows ``accounts/link_error.html`` (what went wrong, and a way to get a new link). Every link opens a
page with a form first (a new password; one button to confirm an address), and only the form's POST
changes anything: mail scanners that fetch links (Microsoft Defender's Safe Links, for one) must not
confirm an address for whoever registered it, who would then be given the guest orders placed with it
(the "pre-hijacked account": OWASP Authentication Cheat Sheet, and Sudhodanan and Paverd, "Pre-hijacked
accounts", USENIX Security 2022).
"""

from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, get, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.accounts.links import AccountLinkError, LinkPurpose, request_reset_in_background
from webshop.accounts.service import EMAIL_RE, normalize_email
from webshop.accounts.web import safe_next, signed_in_account
from webshop.db.models import User
from webshop.deps import AccountLinksDep, SettingsDep, UserRequest
from webshop.errors import Conflict, TooManyAttempts, ValidationFailed
from webshop.security.session import requires_user
from webshop.text import readable_email
from webshop.web import AnyRequest
from webshop.web.forms import Form, form_again
from webshop.web.responses import route_url, see_other, see_other_to

NO_STORE = {"Cache-Control": "no-store"}


class NextForm(msgspec.Struct):
    """A form whose only field says where to go afterwards."""

    next: str = ""


class EmailForm(msgspec.Struct):
    """The "forgot your password?" form."""

    email: str = ""


class NewPasswordForm(msgspec.Struct):
    """The new password on a reset link's page."""

    password: str = ""


class ChangeEmailForm(msgspec.Struct):
    """The e-mail change form: the new address and the current password."""

    new_email: str = ""
    password: str = ""


def link_error_page(request: AnyRequest, exc: AccountLinkError) -> Template:
    """``accounts/link_error.html`` for a refused link (410 Gone, or 400 for a bad signature): the
    controller's handler of ``AccountLinkError``."""
    return Template(
        "accounts/link_error.html",
        context={"problem": exc.problem.value, "purpose": exc.purpose.value, "message": exc.detail},
        status_code=exc.status_code,
        media_type=MediaType.HTML,
        headers=NO_STORE,
    )


def done_page(title: str, message: str, *, next_url: str, next_label: str) -> Template:
    """``accounts/link_done.html``: a link did its work."""
    return Template(
        "accounts/link_done.html",
        context={"title": title, "message": message, "next_url": next_url, "next_label": next_label},
        media_type=MediaType.HTML,
        headers=NO_STORE,
    )


class AccountLinks:
    """The request and the account link service, which the pages here work with: the ``links`` of their
    handlers (Litestar makes one per request from the dependencies ``__init__`` names)."""

    def __init__(self, request: AnyRequest, account_links_service: AccountLinksDep) -> None:
        self.request, self.service = request, account_links_service

    async def ask_first(self, token: str, purpose: LinkPurpose, template: str) -> Template:
        """A link's page, which changes nothing: ``template`` with the ``token`` (for its form's action)
        and the address the link was sent to (``email``), once the link is checked (not used).

        Raises:
            AccountLinkError: the link does not work (the controller shows ``link_error_page``).
        """
        row = await self.service.check(token, purpose)
        context: dict[str, Any] = {"token": token, "email": row.new_email, "errors": {}}
        return Template(template, context=context, headers=NO_STORE)


class AccountLinkController(Controller):
    """Pages for account links sent by e-mail."""

    path = "/account"
    include_in_schema = False
    exception_handlers = {AccountLinkError: link_error_page}
    dependencies = {
        "account": Provide(signed_in_account),
        "links": Provide(AccountLinks, sync_to_thread=False),
    }

    # -- verify the address ----------------------------------------------------------------------

    @get("/verify-email", name="verify_email.prompt", media_type=MediaType.HTML, guards=[requires_user])
    async def verify_prompt(self, request: UserRequest, next: FromQuery[str | None] = None) -> Template:
        """Asks for a verified address (checkout sends unverified shoppers here when it must)."""
        return Template("accounts/verify_email.html", context={"next": safe_next(next, route_url(request, "account"))})

    @post("/verify-email", name="verify_email.resend", media_type=MediaType.HTML, guards=[requires_user])
    async def resend_verification(
        self, links: NamedDependency[AccountLinks], account: NamedDependency[User], data: Annotated[NextForm, Form]
    ) -> Any:
        """Send a new verification link (older ones stop working) and go back."""
        request = links.request
        try:
            await links.service.resend_verification(account)
            flash(
                request, f"We sent a new link to {readable_email(account.email)}. Only the newest link works.", "info"
            )
        except (Conflict, TooManyAttempts) as exc:  # confirmed already; a link went out a moment ago
            flash(request, exc.detail, "info")
        return see_other(request, safe_next(data.next, route_url(request, "account")))

    @get("/verify-email/{token:str}", name="verify_email", media_type=MediaType.HTML)
    async def verify_form(self, links: NamedDependency[AccountLinks], token: FromPath[str]) -> Template:
        """A verification link's page: confirm the address with one button (the link is used by the POST)."""
        return await links.ask_first(token, LinkPurpose.VERIFY_EMAIL, "accounts/verify_email_confirm.html")

    @post("/verify-email/{token:str}", name="verify_email.confirm", media_type=MediaType.HTML)
    async def verify(self, links: NamedDependency[AccountLinks], token: FromPath[str]) -> Template:
        """Confirm the address: it becomes verified and its guest orders the account's."""
        user = await links.service.verify_email(token)
        signed_in = links.request.user is not None and links.request.user.id == user.id  # not another account
        return done_page(
            "Your e-mail address is confirmed",
            f"Thank you: {readable_email(user.email)} is confirmed.",
            next_url=route_url(links.request, "catalog" if signed_in else "sign_in"),
            next_label="Continue shopping" if signed_in else "Sign in",
        )

    # -- reset the password ----------------------------------------------------------------------

    @get("/forgot-password", name="forgot_password", media_type=MediaType.HTML)
    async def forgot_form(self) -> Template:
        """The "forgot your password?" form."""
        return Template("accounts/forgot_password.html", context={"form": {}, "errors": {}, "sent": False})

    @post("/forgot-password", name="forgot_password.submit", media_type=MediaType.HTML)
    async def forgot(
        self,
        alchemy: NamedDependency[Any],  # a ShopAlchemyConfig (Any: not a type to validate)
        settings: SettingsDep,
        data: Annotated[EmailForm, Form],
    ) -> Template:
        """The same answer for every address; the lookup and the e-mail happen after the response."""
        email = " ".join(data.email.split())[:320]
        if not email or not EMAIL_RE.match(normalize_email(email)):  # what no account can have (none told apart)
            message = "Enter the e-mail address of your account, like name@example.com."
            return Template(
                "accounts/forgot_password.html",
                context={"form": {"email": email}, "errors": {"email": message}, "message": message, "sent": False},
                status_code=422,
            )
        return Template(
            "accounts/forgot_password.html",
            context={"form": {"email": email}, "errors": {}, "sent": True},
            background=BackgroundTask(request_reset_in_background, alchemy, email, settings),
        )

    @get("/reset-password/{token:str}", name="reset_password", media_type=MediaType.HTML)
    async def reset_form(self, links: NamedDependency[AccountLinks], token: FromPath[str]) -> Template:
        """A reset link's page: choose a new password (the link is used when the form is sent)."""
        return await links.ask_first(token, LinkPurpose.RESET_PASSWORD, "accounts/reset_password.html")

    @post("/reset-password/{token:str}", name="reset_password.submit", media_type=MediaType.HTML)
    async def reset(
        self, links: NamedDependency[AccountLinks], token: FromPath[str], data: Annotated[NewPasswordForm, Form]
    ) -> Any:
        """Set the new password; every sign-in of the account ends; then sign in again."""
        try:
            await links.service.reset_password(token, data.password)
        except ValidationFailed as exc:
            return form_again("accounts/reset_password.html", exc, {"token": token}, headers=NO_STORE)
        flash(links.request, "Your password was changed and every device was signed out. Sign in with it now.", "info")
        return see_other_to(links.request, "sign_in")

    # -- change the address ----------------------------------------------------------------------

    @get("/email", name="change_email", media_type=MediaType.HTML, guards=[requires_user])
    async def change_email_form(self, request: UserRequest) -> Template:
        """The e-mail change form."""
        return Template("accounts/change_email.html", context={"form": {}, "errors": {}})

    @post("/email", name="change_email.submit", media_type=MediaType.HTML, guards=[requires_user])
    async def change_email(
        self,
        links: NamedDependency[AccountLinks],
        account: NamedDependency[User],
        data: Annotated[ChangeEmailForm, Form],
    ) -> Any:
        """Check the password and send a confirmation link to the new address; nothing changes yet."""
        try:
            new_email = await links.service.request_email_change(
                account, new_email=data.new_email, password=data.password
            )
        except ValidationFailed as exc:
            return form_again("accounts/change_email.html", exc, {"form": {"new_email": data.new_email}})
        flash(
            links.request,
            f"We sent a link to {readable_email(new_email)}. Your address changes when you follow it; "
            f"until then it stays {readable_email(account.email)}.",
            "info",
        )
        return see_other_to(links.request, "account")

    @get("/email/confirm/{token:str}", name="change_email.confirm", media_type=MediaType.HTML)
    async def confirm_email_form(self, links: NamedDependency[AccountLinks], token: FromPath[str]) -> Template:
        """An e-mail change link's page: confirm the new address with one button."""
        return await links.ask_first(token, LinkPurpose.CHANGE_EMAIL, "accounts/confirm_email_change.html")

    @post("/email/confirm/{token:str}", name="change_email.confirm.submit", media_type=MediaType.HTML)
    async def confirm_email(self, links: NamedDependency[AccountLinks], token: FromPath[str]) -> Template:
        """Change the address now (checked for uniqueness again); the old address gets a notice."""
        user = await links.service.confirm_email_change(token)
        return done_page(
            "Your e-mail address is changed",
            f"Your account's address is now {readable_email(user.email)}. Sign in with it from now on.",
            next_url=route_url(links.request, "account"),
            next_label="Your account",
        )
