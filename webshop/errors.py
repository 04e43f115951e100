"""Domain errors raised by services; one exception handler turns them into pages or problem+json.

Services never raise HTTP exceptions: the same rule must read the same through the pages and the API.
Each error carries the HTTP status it maps to (RFC 9110 semantics) and a message fit for a shopper.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

BUSY_DETAIL = "The shop is very busy right now. Please try again in a moment."
"""What a 503 says when the database or the worker is overloaded (pages and problem+json alike)."""


class DomainError(Exception):
    """Base of all domain errors.

    Attributes:
        status_code: HTTP status the error maps to.
        title: Short, stable summary (RFC 9457 ``title``).
        detail: Message for the person who made the request.
        field_errors: ``{field: message}`` for input that failed validation.
        retry_after: Seconds after which the same request may well succeed, sent as ``Retry-After``
            (RFC 9110 §10.2.3); ``None``: not said.
    """

    status_code = 400
    title = "Bad request"
    retry_after: int | None = None

    def __init_subclass__(cls, *, status_code: int | None = None, title: str | None = None, **kwargs: Any) -> None:
        """A subclass states its HTTP status and title in its header (``class X(DomainError, status_code=404,
        title="Not found")``); one that states neither keeps its parent's."""
        super().__init_subclass__(**kwargs)
        if status_code is not None:
            cls.status_code = status_code
        if title is not None:
            cls.title = title

    def __init__(self, detail: str, *, field_errors: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field_errors = field_errors or {}
        self.extra = extra


@contextmanager
def fields_named(names: Mapping[str, str]) -> Iterator[None]:
    """Rename the ``field_errors`` of a domain error the block raises by ``names`` (``{service's field:
    request's field}``; others keep theirs), so that an API client is told the field as its request names
    it (a form's flat ``country`` is the JSON body's ``address.country``; an image is the multipart ``file``).

    Raises:
        DomainError: whatever the block raised, its field errors renamed.
    """
    try:
        yield
    except DomainError as exc:
        exc.field_errors = {names.get(key, key): value for key, value in exc.field_errors.items()}
        raise


class ValidationFailed(DomainError, status_code=422, title="Invalid input"):
    """Input is malformed or breaks a rule; ``field_errors`` says which field and why."""


class NotFound(DomainError, status_code=404, title="Not found"):
    """The thing does not exist, or the caller may not know that it does."""


class Conflict(DomainError, status_code=409, title="Conflict"):
    """The request conflicts with the resource's current state (RFC 9110 §15.5.10): a product's last variant,
    stock that would go below zero, a change made meanwhile by someone else. Input the shop cannot take
    (a name or slug already used, an unknown id in the body) is ``ValidationFailed``."""


class AuthenticationFailed(DomainError, status_code=401, title="Authentication failed"):
    """Credentials are wrong, or the account cannot sign in (one message for both)."""


class PermissionDenied(DomainError, status_code=403, title="Forbidden"):
    """The caller is known but may not do this."""


class EmailNotVerified(PermissionDenied):
    """The shop asks for a confirmed e-mail address before checkout (``WEBSHOP_REQUIRE_VERIFIED_EMAIL``)
    and this account's is not; pages send the shopper to confirm it, the API answers 403."""


class InsufficientStock(DomainError, status_code=409, title="Insufficient stock"):
    """Not enough stock for one or more lines; ``shortfalls`` lists every one of them at once.

    Each shortfall is a ``Shortfall`` (sku, name, requested, available).
    """

    def __init__(self, detail: str, *, shortfalls: list[Any]) -> None:
        super().__init__(detail)
        self.shortfalls = shortfalls


class PaymentDeclined(DomainError, status_code=402, title="Payment declined"):
    """The payment provider declined the payment for good: the order is cancelled, its stock returned and
    its lines put back in the cart."""


class PaymentUnavailable(DomainError, status_code=503, title="Payment service unavailable"):
    """The payment provider could not be reached; the order waits, pending, and the same checkout (form
    token or Idempotency-Key) resumes it."""


class InvalidTransition(DomainError, status_code=409, title="Invalid status change"):
    """An order cannot move from its current status to the requested one."""


class CartChanged(DomainError, status_code=409, title="Cart changed"):
    """The cart or its prices changed between review and placing the order; review it again."""


class PromotionUnavailable(DomainError, status_code=409, title="Promotion unavailable"):
    """A promotion the cart was priced with was used up (or withdrawn) while the order was placed."""


class TooManyAttempts(DomainError, status_code=429, title="Too many attempts"):
    """Too many failed sign-ins for this account (or e-mail address): it is locked for a while.

    ``retry_after`` is the number of seconds until the next attempt is accepted; the response carries
    it as ``Retry-After`` (RFC 9110 §10.2.3, RFC 6585 §4).
    """

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
