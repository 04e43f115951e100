"""Account e-mail flows of the JSON API: forgotten password, reset, verification and e-mail change.

The same one-time links as the pages (``webshop.accounts.links``): the same tokens, lifetimes, single use
and "a newer link supersedes older ones", the same rules and the same per-address ``auth`` rate limit
(``webshop.security.throttle.AUTH_PATHS``: the pages and these routes share one budget per address).

An API client gets a link's token from the e-mail: the link is ``<shop>/account/reset-password/<token>``
(or ``/account/verify-email/<token>``, ``/account/email/confirm/<token>``), and the token is its last path
segment. A token the API refuses (tampered, expired, used, superseded) is a 400 problem whose ``detail``
says which; the pages answer the same link with 410 or 400 and a page.
"""

from typing import Any

from litestar import Controller, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import JSONBody

from webshop.accounts.links import AccountLinkError, request_reset_in_background
from webshop.accounts.schemas import (
    AcceptedOut,
    EmailChangeIn,
    EmailOut,
    ForgotPasswordIn,
    LinkTokenIn,
    ResetPasswordIn,
)
from webshop.api.responses import problems
from webshop.deps import AccountLinksDep, SettingsDep, SignInThrottleDep, TokenRequest
from webshop.security.jwt import BEARER, PUBLIC
from webshop.text import readable_email
from webshop.web import AnyRequest
from webshop.web.errors import problem

RESET_REQUESTED = (
    "If an account uses this address, we have sent it a link to choose a new password. "
    "The link works once and for a short time."
)
"""The answer to every ``POST /api/auth/forgot-password``, whether or not the address has an account."""


def link_problem(request: AnyRequest, exc: AccountLinkError) -> Response[Any]:
    """A refused link token as a 400 problem (``detail``: invalid, expired, used or superseded)."""
    return problem(400, exc.detail, title=exc.title)


class AccountLinkApiController(Controller):
    """The e-mailed links, no token needed (the link's token is the proof): ask for a reset link, and
    follow a reset, verification or e-mail change link."""

    path = "/api/auth"
    tags = ["auth"]
    opt = PUBLIC
    exception_handlers = {AccountLinkError: link_problem}

    @post("/forgot-password", operation_id="forgotPassword", status_code=202, responses=problems(400, 422))
    async def forgot_password(
        self,
        data: JSONBody[ForgotPasswordIn],
        alchemy: NamedDependency[Any],  # a ShopAlchemyConfig (Any: not a type to validate)
        settings: SettingsDep,
    ) -> Response[AcceptedOut]:
        """Send a password reset link if an account uses ``email``: the same 202, just as fast, either way.

        The e-mail's link is ``…/account/reset-password/<token>``; send ``<token>`` to ``POST
        /api/auth/reset-password``. A newer request makes older links stop working."""
        return Response(
            AcceptedOut(RESET_REQUESTED),
            status_code=202,
            background=BackgroundTask(request_reset_in_background, alchemy, data.email, settings),
        )

    @post("/reset-password", operation_id="resetPassword", status_code=204, responses=problems(400, 422))
    async def reset_password(self, data: JSONBody[ResetPasswordIn], account_links_service: AccountLinksDep) -> None:
        """Set a new password with a reset link's token (the last path segment of the e-mailed link).

        Every sign-in of the account ends: browser sessions, access and refresh tokens. The token works
        once; a refused token is a 400 whose ``detail`` says why."""
        await account_links_service.reset_password(data.token, data.password)

    @post("/verify-email", operation_id="verifyEmail", status_code=200, responses=problems(400, 422))
    async def verify_email(self, data: JSONBody[LinkTokenIn], account_links_service: AccountLinksDep) -> EmailOut:
        """Confirm an e-mail address with a verification link's token (``…/account/verify-email/<token>``)."""
        user = await account_links_service.verify_email(data.token)
        return EmailOut(email=user.email, email_verified=True)

    @post(
        "/confirm-email-change", operation_id="confirmEmailChange", status_code=200, responses=problems(400, 409, 422)
    )
    async def confirm_email_change(
        self, data: JSONBody[LinkTokenIn], account_links_service: AccountLinksDep
    ) -> EmailOut:
        """Change the account's address with an e-mail change link's token (``…/account/email/confirm/<token>``).

        409 when another account took the address since the link was sent; the old address gets a notice."""
        user = await account_links_service.confirm_email_change(data.token)
        return EmailOut(email=user.email, email_verified=True)


class AccountEmailApiController(Controller):
    """The signed-in account's e-mail flows (bearer token): a new verification link, a new address."""

    path = "/api"
    security = BEARER
    exception_handlers = {AccountLinkError: link_problem}

    @post(
        "/auth/verification-email",
        tags=["auth"],
        operation_id="sendVerificationEmail",
        status_code=202,
        responses=problems(401, 409, 429),
    )
    async def send_verification(self, request: TokenRequest, account_links_service: AccountLinksDep) -> AcceptedOut:
        """Send a new link that confirms the account's e-mail address (older links stop working).

        409 when the address is confirmed already (nothing is sent; ``GET /api/users/me`` tells by
        ``email_verified``); 429 with ``Retry-After`` when a link went out less than a minute ago."""
        user = request.user
        await account_links_service.resend_verification(user)
        return AcceptedOut(f"We sent a new link to {readable_email(user.email)}. Only the newest link works.")

    @post(
        "/users/me/email-change",
        tags=["users"],
        operation_id="requestEmailChange",
        status_code=202,
        responses=problems(400, 401, 422, 429),
    )
    async def request_email_change(
        self,
        request: TokenRequest,
        data: JSONBody[EmailChangeIn],
        account_links_service: AccountLinksDep,
        sign_in_throttle: SignInThrottleDep,
    ) -> AcceptedOut:
        """Send a link that confirms ``new_email`` to that address; the address changes when it is followed.

        ``password`` is the current one: a wrong one counts as a failed sign-in (too many lock the
        account: 429 with ``Retry-After``). 422 for a wrong password, the current address or one another
        account uses. Confirm with the link's page or ``POST /api/auth/confirm-email-change``."""
        user = request.user
        new_email = await account_links_service.request_email_change(
            user, new_email=data.new_email, password=data.password, throttle=sign_in_throttle
        )
        return AcceptedOut(
            f"We sent a link to {readable_email(new_email)}. Your address changes when you follow it; "
            f"until then it stays {readable_email(user.email)}."
        )
