"""The signed, expiring link to a guest's order: ``/orders/guest/{token}``.

A guest has no account to sign in to, so their order is reached through a link that carries the order
number signed with the shop's secret key (itsdangerous ``URLSafeTimedSerializer``: HMAC-SHA1 over the
payload and a timestamp, a salt of its own so no other signed value of the shop works here). The link
is sent in the order's e-mails and shown on the confirmation page; it works for
``GUEST_LINK_LIFETIME`` from when it was made (each e-mail and each visit of the page makes a fresh one).
A link whose signature does not check (altered, cut off) is unknown (404); an old one has expired (410).

Nothing is stored: whoever holds a valid link may see the order (as Shopify's and Saleor's order-status
links work), which is why the page is never cached and tells no referrer.
"""

from __future__ import annotations

import enum
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from webshop.errors import DomainError

if TYPE_CHECKING:
    from webshop.config import Settings
    from webshop.db.models import Order

GUEST_LINK_LIFETIME = timedelta(days=30)
"""How long a guest's order link works after it was made (``templates/email/order_confirmation.*`` say so)."""
SALT = "webshop.guest-order-link"
GUEST_LINK_PATH = "/orders/guest/"
"""Where the link points (``webshop.checkout.guest_web.GuestOrderController``), followed by the token."""


class GuestLinkProblem(enum.StrEnum):
    """Why a guest's order link was refused."""

    INVALID = "invalid"
    EXPIRED = "expired"


class GuestLinkError(DomainError, title="Link not valid"):
    """A guest's order link was refused: 404 when it never worked (altered, cut off), 410 when it expired.

    ``problem`` says which; the pages show ``orders/guest_link_error.html``."""

    def __init__(self, problem: GuestLinkProblem) -> None:
        if problem == GuestLinkProblem.EXPIRED:
            detail = (
                f"This link to your order has expired: order links work for {GUEST_LINK_LIFETIME.days} days. "
                "The newest e-mail about your order has a fresh link; or write to us with your order number."
            )
        else:
            detail = (
                "This link to an order is not valid. It may have been cut off or mistyped: "
                "copy it from the e-mail again."
            )
        super().__init__(detail)
        self.problem = problem
        self.status_code = 410 if problem == GuestLinkProblem.EXPIRED else 404


class _SignerAt(TimestampSigner):
    """A timestamp signer whose clock is fixed at ``issued_at`` (a link made at a given time)."""

    def __init__(self, *args: Any, issued_at: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued_at = issued_at

    def get_timestamp(self) -> int:
        return self.issued_at


def _serializer(secret_key: str, issued_at: int | None = None) -> URLSafeTimedSerializer:
    if issued_at is None:
        return URLSafeTimedSerializer(secret_key, salt=SALT)
    return URLSafeTimedSerializer(secret_key, salt=SALT, signer=_SignerAt, signer_kwargs={"issued_at": issued_at})


def guest_order_token(secret_key: str, number: str, *, issued_at: float | None = None) -> str:
    """The token of the link to order ``number`` (URL-safe, about 50 characters).

    Args:
        secret_key: ``settings.security.secret_key``.
        number: The order number (``WS-...``).
        issued_at: When the link counts as made (Unix seconds); default now. Older than
            ``GUEST_LINK_LIFETIME``, it is refused as expired.
    """
    return str(_serializer(secret_key, None if issued_at is None else int(issued_at)).dumps(number))


def guest_order_number(secret_key: str, token: str) -> str:
    """The order number a link's token names, if the link is genuine and not expired.

    Raises:
        GuestLinkError: ``INVALID`` (bad signature or payload, 404) or ``EXPIRED`` (410).
    """
    try:
        number = _serializer(secret_key).loads(token, max_age=int(GUEST_LINK_LIFETIME.total_seconds()))
    except SignatureExpired as exc:
        raise GuestLinkError(GuestLinkProblem.EXPIRED) from exc
    except BadSignature as exc:
        raise GuestLinkError(GuestLinkProblem.INVALID) from exc
    if not isinstance(number, str) or not number:
        raise GuestLinkError(GuestLinkProblem.INVALID)
    return number


def order_link(settings: Settings, order: Order) -> str:
    """The absolute URL the customer's e-mails give for ``order``: its page under ``/orders/{number}``
    (sign-in needed) for an account's order, a fresh signed link for a guest's (``user_id`` NULL)."""
    base = settings.shop.base_url.rstrip("/")
    if order.user_id is None:
        return base + GUEST_LINK_PATH + guest_order_token(settings.security.secret_key, order.number)
    return f"{base}/orders/{order.number}"
