"""The address book in the JSON API: a customer lists and adds the shipping addresses the pages' checkout
keeps, and ``POST /api/checkout`` ships to one of them by ``address_id`` (``CheckoutIn``)."""

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from webshop.api.responses import problems
from webshop.checkout.addresses import address_input
from webshop.checkout.schemas import AddressIn
from webshop.checkout.service import CheckoutService
from webshop.db.models import Address, User
from webshop.orders.schemas import AddressOut
from webshop.security.jwt import BEARER


class SavedAddressOut(AddressOut):
    """An address of the caller's book: ``id`` is what ``POST /api/checkout`` takes as ``address_id``."""

    id: int


def saved_address_out(address: Address) -> SavedAddressOut:
    """``SavedAddressOut`` of an address-book row."""
    return SavedAddressOut(
        id=address.id,
        **{field: getattr(address, field) for field in AddressOut.__struct_fields__},
    )


class AddressBookApiController(Controller):
    """The signed-in customer's saved shipping addresses (the same book the checkout pages offer)."""

    path = "/api/addresses"
    tags = ["checkout"]
    security = BEARER

    @get("", operation_id="listAddresses", responses=problems(401))
    async def list_addresses(
        self, request: Request[User, Any, Any], checkout_service: NamedDependency[CheckoutService]
    ) -> list[SavedAddressOut]:
        """The caller's saved addresses, the most recently used first."""
        return [saved_address_out(address) for address in await checkout_service.addresses(request.user.id)]

    @post("", operation_id="saveAddress", status_code=201, responses=problems(400, 401, 422))
    async def save_address(
        self,
        request: Request[User, Any, Any],
        data: JSONBody[AddressIn],
        checkout_service: NamedDependency[CheckoutService],
    ) -> SavedAddressOut:
        """Keep an address in the caller's book; the same address sent again is the one kept before (same
        ``id``), not a second. 422: what the checkout refuses too (a postal code its country needs, a
        city without a letter, a country that is no ISO 3166-1 code)."""
        address = await checkout_service.save_address(request.user.id, address_input(data))
        return saved_address_out(address)
