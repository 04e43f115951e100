"""The address book: a signed-in customer's saved shipping addresses, which the checkout offers and ships
to (``CheckoutService`` is one), and which the customer sees, corrects and removes on ``/account/addresses``
and through ``/api/addresses``.

An address is kept once per book (the same address saved twice is one row), and every write locks the
book first, so that two at once (a double click) cannot make two. Orders keep a copy of the address they
were shipped to: changing or removing a saved one never changes an order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import select

from webshop.checkout.addresses import ADDRESS_FIELDS, AddressInput, address_input
from webshop.db.models import Address, User
from webshop.errors import NotFound, ValidationFailed


class AddressBook:
    """The address-book verbs of a service whose ``repository`` is on the request's session."""

    repository: Any
    check_destination: Callable[[AddressInput], Awaitable[None]]
    """Refuses an address whose order's tax cannot be known (``CheckoutService.check_destination``)."""

    async def checked_address(self, address: AddressInput) -> AddressInput:
        """``address`` checked in one round: its own rules (``AddressInput.cleaned``) and its region where
        the shop taxes its country by region (``check_destination``), a field keeping the first message.

        Returns:
            The address as kept (``cleaned``).

        Raises:
            ValidationFailed: every problem at once (``RegionNeeded`` when the region is the only one).
        """
        errors: dict[str, str] = {}
        refused: ValidationFailed | None = None
        clean = address
        try:
            clean = address.cleaned()
        except ValidationFailed as exc:
            refused, errors = exc, dict(exc.field_errors)
        try:
            await self.check_destination(address)
        except ValidationFailed as exc:
            if refused is None:
                raise
            for key, message in exc.field_errors.items():
                errors.setdefault(key, message)
        if refused is not None:
            raise ValidationFailed(refused.detail, field_errors=errors)
        return clean

    async def addresses(self, user_id: int) -> list[Address]:
        """The user's saved addresses, most recently used first."""
        rows = await self.repository.session.scalars(
            select(Address).where(Address.user_id == user_id).order_by(Address.updated_at.desc(), Address.id.desc())
        )
        return list(rows)

    async def address(self, user_id: int, address_id: int) -> Address:
        """One of the user's saved addresses.

        Raises:
            NotFound: no such address in this user's book.
        """
        address = await self.repository.session.scalar(
            select(Address).where(Address.id == address_id, Address.user_id == user_id)
        )
        if address is None:
            raise NotFound("That address is not in your address book.")
        return cast("Address", address)

    async def destination(
        self, user_id: int, *, address: AddressInput | None = None, address_id: int | None = None
    ) -> AddressInput:
        """Where an order of ``user_id`` ships: ``address`` as typed, or the saved address ``address_id``
        names; exactly one of the two. Returned checked (``AddressInput.cleaned``).

        Raises:
            ValidationFailed: neither or both given (field ``shipping_address``); an ``address_id`` not in
                this user's book (field ``address_id``); the address's own rules (its fields' names), with
                a typed address's missing region where the shop taxes by region.
        """
        if address is not None and address_id is None:
            try:
                return address.cleaned()
            except ValidationFailed:
                # Refused anyway: its region's problem comes in the same round. (A valid address has its region
                # checked while placing, after the API's idempotency claim: a retry still gets its order.)
                await self.checked_address(address)
                raise
        if address is None and address_id is not None:
            try:
                return address_input(await self.address(user_id, address_id)).cleaned()
            except NotFound as exc:
                raise ValidationFailed(exc.detail, field_errors={"address_id": exc.detail}) from None
        message = "Send a shipping_address, or the address_id of a saved address (GET /api/addresses): one of them."
        raise ValidationFailed(message, field_errors={"shipping_address": message})

    async def save_address(self, user_id: int, data: AddressInput) -> Address:
        """Validate ``data`` and keep it in the user's address book (an identical one is reused, and one that
        differs only by naming no region gets ``data``'s); committed.

        The same address sent twice at once (a double click) is kept once: the user's row is locked
        (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL; SQLite's writers hold the database lock from
        ``BEGIN IMMEDIATE``) before the book is searched, so the second request finds the first's.

        Raises:
            ValidationFailed: see ``AddressInput.cleaned``.
        """
        values = await self._checked_and_locked(user_id, data)
        session = self.repository.session
        existing = await self._same_address(user_id, values)
        if existing is None and values["region"]:  # the same address saved before it named its region
            existing = await self._same_address(user_id, {**values, "region": ""})
        if existing is not None:
            existing.region = values["region"]
            existing.updated_at = datetime.now(UTC)
            address = existing
        else:
            address = Address(user_id=user_id, **values)
            session.add(address)
        await session.flush()
        await session.commit()
        return address

    async def update_address(self, user_id: int, address_id: int, data: AddressInput) -> Address:
        """Replace a saved address with ``data`` (checked as ``save_address``); committed. Orders shipped to
        it keep their own copy. Should it now equal another saved address, that one is kept and this one
        removed (the book holds an address once), and the one kept is returned.

        Raises:
            NotFound: no such address in this user's book.
            ValidationFailed: see ``AddressInput.cleaned``.
        """
        values = await self._checked_and_locked(user_id, data)
        session = self.repository.session
        address = await self.address(user_id, address_id)
        same = await self._same_address(user_id, values, other_than=address.id)
        if same is not None:
            await session.delete(address)
            same.updated_at = datetime.now(UTC)
            address = same
        else:
            for key, value in values.items():
                setattr(address, key, value)
            address.updated_at = datetime.now(UTC)
        await session.flush()
        await session.commit()
        return address

    async def remove_address(self, user_id: int, address_id: int) -> None:
        """Take a saved address out of the user's book; committed. Orders shipped to it keep their own copy.

        Raises:
            NotFound: no such address in this user's book.
        """
        session = self.repository.session
        await self._lock_book(user_id)
        await session.delete(await self.address(user_id, address_id))
        await session.commit()

    async def _checked_and_locked(self, user_id: int, data: AddressInput) -> dict[str, str]:
        """``data``'s fields, checked (``AddressInput.cleaned``, and its region where the shop taxes its
        country by region), once the user's book is the caller's to write: the user's row is locked (``FOR
        NO KEY UPDATE`` on PostgreSQL; SQLite's writers hold the database lock from ``BEGIN IMMEDIATE``),
        so two writes of one book happen one after the other.

        Raises:
            ValidationFailed: see ``AddressInput.cleaned``; ``RegionNeeded``.
        """
        clean = await self.checked_address(data)  # an address the checkout would refuse is not kept for it
        await self._lock_book(user_id)
        return {key: getattr(clean, key) for key in ADDRESS_FIELDS}

    async def _lock_book(self, user_id: int) -> None:
        """Lock the user's row (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite's writers hold the database
        lock already): the book's writers, removals included, run one after the other."""
        await self.repository.session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))

    async def _same_address(
        self, user_id: int, values: dict[str, str], *, other_than: int | None = None
    ) -> Address | None:
        """The user's saved address equal to ``values`` field by field (the oldest), if any."""
        statement = select(Address).where(
            Address.user_id == user_id, *(getattr(Address, k) == v for k, v in values.items())
        )
        if other_than is not None:
            statement = statement.where(Address.id != other_than)
        found: Address | None = await self.repository.session.scalar(statement.order_by(Address.id).limit(1))
        return found
