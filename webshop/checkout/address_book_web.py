"""The address book's pages, ``/account/addresses`` (signed-in customers): the saved addresses, each with
"Change" (its own form) and "Remove" (a button), and a form to add one. The rules are the address book's
(``webshop.checkout.address_book``); a refused form comes back as typed with the messages beside its
fields (422), and another customer's address is 404. Every page works without JavaScript.
"""

from typing import Any

from litestar import Controller, MediaType, get, post
from litestar.di import NamedDependency
from litestar.plugins.flash import flash
from litestar.response import Template

from webshop.api.schemas import PathId
from webshop.checkout.addresses import AddressInput
from webshop.checkout.service import CheckoutService
from webshop.db.models import Address
from webshop.deps import UserRequest
from webshop.errors import NotFound
from webshop.security.session import requires_user
from webshop.web.forms import FormFields, FormProblems, InvalidForm, form_again
from webshop.web.responses import see_other_to


async def _read(data: FormFields, book: CheckoutService) -> AddressInput:
    """The posted address, checked with every problem at once: characters the form refuses, then the
    address's own rules and its region (``checked_address``), the form's message winning on a field two
    of them name.

    Raises:
        InvalidForm: anything to correct, with what was typed (``form``) to show again.
    """
    problems = FormProblems(AddressInput, data)
    with problems.check():
        await book.checked_address(problems.form)
    problems.raise_any()
    return problems.form


AddressPages = NamedDependency[CheckoutService]
"""The ``checkout_service`` the pages read and write the book with."""


async def _book(request: UserRequest, book: CheckoutService, **context: Any) -> dict[str, Any]:
    """The list page's context: the saved addresses and an empty add form (``context`` overrides)."""
    return {"addresses": await book.addresses(request.user.id), "form": AddressInput(), "errors": {}, **context}


class AddressBookController(Controller):
    """``/account/addresses``: see, add, change and remove saved addresses."""

    path = "/account/addresses"
    include_in_schema = False
    guards = [requires_user]

    @get("", name="account.addresses", media_type=MediaType.HTML)
    async def index(self, request: UserRequest, checkout_service: AddressPages) -> Template:
        """The saved addresses, most recently used first, and the add form."""
        return Template("accounts/addresses.html", context=await _book(request, checkout_service))

    @post("", name="account.addresses.add", media_type=MediaType.HTML)
    async def add(self, request: UserRequest, data: FormFields, checkout_service: AddressPages) -> Any:
        """Save a new address (the same one again is kept once); refused: the page again, as typed."""
        try:
            await checkout_service.save_address(request.user.id, await _read(data, checkout_service))
        except InvalidForm as exc:
            return form_again("accounts/addresses.html", exc, await _book(request, checkout_service, form=exc.form))
        flash(request, "The address was saved.", "success")
        return see_other_to(request, "account.addresses")

    @get("/{address_id:int}", name="account.address", media_type=MediaType.HTML)
    async def edit(self, request: UserRequest, address_id: PathId, checkout_service: AddressPages) -> Template:
        """One saved address's form (another customer's: 404)."""
        address = await checkout_service.address(request.user.id, address_id)
        return Template("accounts/address.html", context={"address": address, "form": address, "errors": {}})

    @post("/{address_id:int}", name="account.address.update", media_type=MediaType.HTML)
    async def update(
        self, request: UserRequest, address_id: PathId, data: FormFields, checkout_service: AddressPages
    ) -> Any:
        """Save the changed address (orders shipped to it keep their copy); refused: the form again."""
        address: Address = await checkout_service.address(request.user.id, address_id)
        try:
            await checkout_service.update_address(request.user.id, address_id, await _read(data, checkout_service))
        except InvalidForm as exc:
            return form_again("accounts/address.html", exc, {"address": address, "form": exc.form})
        flash(request, "The address was changed.", "success")
        return see_other_to(request, "account.addresses")

    @post("/{address_id:int}/delete", name="account.address.delete", media_type=MediaType.HTML)
    async def delete(self, request: UserRequest, address_id: PathId, checkout_service: AddressPages) -> Any:
        """Remove a saved address (orders shipped to it keep their copy). One not in the book (the button
        pressed twice: the first press removed it) leads back to the list saying so, not to a 404 page."""
        try:
            await checkout_service.remove_address(request.user.id, address_id)
        except NotFound:
            flash(request, "That address is not in your address book (any more).", "info")
            return see_other_to(request, "account.addresses")
        flash(request, "The address was removed.", "success")
        return see_other_to(request, "account.addresses")
