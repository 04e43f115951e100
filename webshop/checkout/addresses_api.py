"""The address book in the JSON API: a customer lists, adds, corrects and removes the shipping addresses the
pages' checkout keeps (``webshop.checkout.address_book``), and ``POST /api/checkout`` ships to one of them
by ``address_id`` (``CheckoutIn``). Another customer's address is 404."""

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import JSONBody

from webshop.api.responses import created_at, problems
from webshop.api.schemas import PathId
from webshop.checkout.addresses import address_input
from webshop.checkout.schemas import AddressIn
from webshop.checkout.service import CheckoutService
from webshop.db.models import Address
from webshop.deps import UserRequest
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
        self, request: UserRequest, checkout_service: NamedDependency[CheckoutService]
    ) -> list[SavedAddressOut]:
        """The caller's saved addresses, the most recently used first."""
        return [saved_address_out(address) for address in await checkout_service.addresses(request.user.id)]

    @post("", operation_id="saveAddress", **created_at("/api/addresses/{id}"), responses=problems(400, 401, 422))
    async def save_address(
        self,
        request: UserRequest,
        data: JSONBody[AddressIn],
        checkout_service: NamedDependency[CheckoutService],
    ) -> SavedAddressOut:
        """Keep an address in the caller's book; the same address sent again is the one kept before (same
        ``id``), not a second; a ``region`` that names one of the country's is kept as its ISO 3166-2 code.
        422: what the checkout refuses too (a postal code its country needs, a city without a letter, a
        country that is no ISO 3166-1 code)."""
        address = await checkout_service.save_address(request.user.id, address_input(data))
        return saved_address_out(address)

    @get("/{address_id:int}", operation_id="getAddress", responses=problems(400, 401, 404))
    async def get_address(
        self, request: UserRequest, address_id: PathId, checkout_service: NamedDependency[CheckoutService]
    ) -> SavedAddressOut:
        """One of the caller's saved addresses."""
        return saved_address_out(await checkout_service.address(request.user.id, address_id))

    @put("/{address_id:int}", operation_id="updateAddress", responses=problems(400, 401, 404, 422))
    async def update_address(
        self,
        request: UserRequest,
        address_id: PathId,
        data: JSONBody[AddressIn],
        checkout_service: NamedDependency[CheckoutService],
    ) -> SavedAddressOut:
        """Replace a saved address (orders shipped to it keep their copy); 422 as ``POST``. Should it now
        equal another saved address, that one is kept and this one removed: the answer is the one kept
        (its ``id``)."""
        address = await checkout_service.update_address(request.user.id, address_id, address_input(data))
        return saved_address_out(address)

    @delete("/{address_id:int}", operation_id="deleteAddress", responses=problems(400, 401, 404))
    async def delete_address(
        self, request: UserRequest, address_id: PathId, checkout_service: NamedDependency[CheckoutService]
    ) -> None:
        """Remove a saved address (orders shipped to it keep their copy)."""
        await checkout_service.remove_address(request.user.id, address_id)
