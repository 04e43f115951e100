"""Guest checkout: what a shopper without an account keeps in the browser session, and the account they
may create from their order afterwards.

A guest checks out through the same steps and the same ``CheckoutService.place_order`` as an account
(stock, idempotency through the checkout token, limits: all the same); what differs is kept in the
encrypted session cookie, never in the database before the order: the e-mail address and the shipping
address (a guest has no address book), and the numbers of the orders this browser placed
(``GUEST_ORDERS_KEY``), which is what lets the return from the payment page show the order.

After paying, a guest may create an account with one field, the password (``create_account_for_order``):
the account takes the order's e-mail address and shipping name, and adopts the order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import select, update

from webshop.accounts.service import EMAIL_TAKEN, UserService
from webshop.checkout.addresses import ADDRESS_FIELDS, AddressInput
from webshop.db.folding import fold, folded
from webshop.db.models import Order, User, postal
from webshop.errors import Conflict, NotFound, ValidationFailed
from webshop.web import AnyRequest

if TYPE_CHECKING:
    from webshop.accounts.links import AccountLinkService

GUEST_ORDERS_KEY = "guest_orders"
"""Session key: the numbers of the orders this browser session placed as a guest, newest last."""
GUEST_ORDERS_KEPT = 10
"""How many of those numbers the session keeps (the cookie stays small)."""
ALREADY_ADOPTED = "This order already belongs to an account: sign in to see it."


class AccountExists(Conflict):
    """Creating an account from a guest's order: an account with the order's e-mail address exists
    already (409); the shopper should sign in instead."""


def placed_here(request: AnyRequest) -> list[str]:
    """The numbers of the orders this browser session placed as a guest (oldest first)."""
    numbers = (request.session or {}).get(GUEST_ORDERS_KEY) if request.scope.get("session") is not None else None
    return [n for n in numbers if isinstance(n, str)] if isinstance(numbers, list) else []


def remember_placed(request: AnyRequest, number: str) -> None:
    """Keep ``number`` among the orders this session placed (the last ``GUEST_ORDERS_KEPT``)."""
    numbers = [n for n in placed_here(request) if n != number] + [number]
    request.set_session({**(request.session or {}), GUEST_ORDERS_KEY: numbers[-GUEST_ORDERS_KEPT:]})


class GuestAddress(AddressInput, frozen=True, kw_only=True):
    """A guest's shipping address as kept in the session (an ``AddressInput``, cleaned), with the
    ``one_line`` the review page shows (as ``Address.one_line``)."""

    @classmethod
    def of(cls, values: object) -> GuestAddress | None:
        """The address of a session value (a dict of the fields), or ``None`` when it is not one."""
        if not isinstance(values, dict):
            return None
        values = {"region": "", **values}  # kept by a session from before addresses had regions
        if not all(isinstance(values.get(k), str) for k in ADDRESS_FIELDS):
            return None
        return cls(**{k: values[k] for k in ADDRESS_FIELDS})

    def as_dict(self) -> dict[str, str]:
        """The fields, for the session."""
        return {k: getattr(self, k) for k in ADDRESS_FIELDS}

    def one_line(self) -> str:
        """The address on one line."""
        return postal.one_line(self)


async def create_account_for_order(links: AccountLinkService, number: str, password: str) -> tuple[User, Order]:
    """Create a customer account from guest order ``number`` and give it the order; committed together.

    The account's e-mail address is the order's and its name the shipping name; the password follows the
    registration rules (``UserService.register``: 8-256 characters, hashed with argon2id in a worker
    thread before any database work). The order is adopted by one conditional ``UPDATE`` (``user_id``
    still NULL and the e-mail address unchanged), so two requests racing cannot both take it. As at
    registration, the link that confirms the address is queued (``AccountLinkService.send_verification``):
    holding the order's link does not prove the address is the shopper's (they typed it at checkout).

    Args:
        links: The account-link service, on the request's session (the transaction's owner here).
        number: The guest order's number, from its signed link.
        password: The password typed.

    Returns:
        ``(user, order)``: the new account (not signed in yet) and its order.

    Raises:
        NotFound: no such order.
        Conflict: the order belongs to an account already (``ALREADY_ADOPTED``).
        AccountExists: an account with the order's e-mail address exists; nothing is saved.
        ValidationFailed: the password breaks a rule (``field_errors["password"]``); nothing is saved.
    """
    session = links.repository.session
    order = await session.scalar(select(Order).where(Order.number == number))
    if order is None:
        raise NotFound("We could not find that order.")
    if order.user_id is not None or not order.email:
        raise Conflict(ALREADY_ADOPTED)
    users = UserService(session=session)
    if await users.get_by_email(order.email) is not None:
        raise AccountExists(EMAIL_TAKEN)
    try:
        user = await users.register(email=order.email, name=order.ship_name, password=password)
        adopted = await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.user_id.is_(None), folded(Order.email) == fold(user.email))
            .values(user_id=user.id)
            .execution_options(synchronize_session=False)
        )
        if adopted.rowcount != 1:
            raise Conflict(ALREADY_ADOPTED)
        await links.send_verification(user)
        await session.commit()
    except ValidationFailed as exc:
        await session.rollback()
        if exc.field_errors.get("email") == EMAIL_TAKEN:  # registered at the same moment by another request
            raise AccountExists(EMAIL_TAKEN) from None
        raise
    except BaseException:
        await session.rollback()
        raise
    await session.refresh(order)
    return user, order
