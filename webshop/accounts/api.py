"""Account routes of the JSON API: register, OAuth2 password-flow tokens, refresh, logout, ``/users/me``."""

from typing import Annotated

from litestar import Controller, get, patch, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, JSONBody

from webshop.accounts.schemas import (
    LogoutIn,
    PasswordForm,
    RefreshIn,
    RegisterIn,
    TokenOut,
    UserOut,
    UserPatch,
    user_out,
)
from webshop.accounts.tokens import TokenPair
from webshop.api.openapi import OptionalBodyOperation
from webshop.api.responses import created_at, problems
from webshop.deps import AccountLinksDep, ApiTokensDep, SignInThrottleDep, TokenRequest, UsersDep
from webshop.errors import ValidationFailed
from webshop.security.jwt import BEARER, PUBLIC


def _token_out(pair: TokenPair) -> TokenOut:
    return TokenOut(pair.access_token, pair.token_type, pair.expires_in, pair.refresh_token)


class AuthApiController(Controller):
    """Sign-up and tokens."""

    path = "/api/auth"
    tags = ["auth"]

    @post(
        "/register",
        opt=PUBLIC,
        operation_id="register",
        **created_at("/api/users/me"),
        responses=problems(400, 422, 429),
    )
    async def register(
        self, data: JSONBody[RegisterIn], users_service: UsersDep, account_links_service: AccountLinksDep
    ) -> UserOut:
        """Create a customer account; a link to confirm the e-mail address is sent to it."""
        user = await account_links_service.sign_up(email=data.email, name=data.name, password=data.password)
        return user_out(user)

    @post("/token", opt=PUBLIC, operation_id="createToken", status_code=200, responses=problems(400, 401, 422, 429))
    async def token(
        self,
        data: Annotated[PasswordForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
        users_service: UsersDep,
        api_tokens_service: ApiTokensDep,
        sign_in_throttle: SignInThrottleDep,
    ) -> TokenOut:
        """OAuth2 password flow: form fields ``username`` (e-mail) and ``password``.

        Too many failures lock the account for a while: 429 with ``Retry-After``."""
        if data.grant_type not in {"", "password"}:
            message = "Only the password grant is supported."
            raise ValidationFailed(message, field_errors={"grant_type": message})
        user = await users_service.authenticate(email=data.username, password=data.password, throttle=sign_in_throttle)
        return _token_out(await api_tokens_service.issue(user))

    @post("/refresh", opt=PUBLIC, operation_id="refreshToken", status_code=200, responses=problems(400, 401, 429))
    async def refresh(self, data: JSONBody[RefreshIn], api_tokens_service: ApiTokensDep) -> TokenOut:
        """Exchange a refresh token (single use) for a new access and refresh token."""
        return _token_out(await api_tokens_service.refresh(data.refresh_token))

    @post(
        "/logout",
        operation_id="logout",
        status_code=204,
        security=BEARER,
        responses=problems(400, 401),
        operation_class=OptionalBodyOperation,
    )
    async def logout(
        self, request: TokenRequest, api_tokens_service: ApiTokensDep, data: JSONBody[LogoutIn | None] = None
    ) -> None:
        """End this sign-in: its refresh tokens and this access token stop working."""
        await api_tokens_service.logout(request.auth)  # type: ignore[arg-type]


class MeApiController(Controller):
    """The signed-in user's own account."""

    path = "/api/users/me"
    tags = ["users"]
    security = BEARER

    @get("", operation_id="getMe", responses=problems(401))
    async def me(self, request: TokenRequest) -> UserOut:
        """The user the bearer token belongs to."""
        return user_out(request.user)

    @patch("", operation_id="updateMe", responses=problems(400, 401, 422, 429))
    async def update_me(
        self,
        request: TokenRequest,
        data: JSONBody[UserPatch],
        users_service: UsersDep,
        sign_in_throttle: SignInThrottleDep,
    ) -> UserOut:
        """Change the name, or the password (``current_password`` required; every sign-in, this one too, ends).

        Wrong current passwords count as failed sign-ins: too many lock the account (429, ``Retry-After``)."""
        user = await users_service.update_account(
            request.user,
            name=data.name,
            current_password=data.current_password,
            new_password=data.password,
            throttle=sign_in_throttle,
        )
        return user_out(user)
