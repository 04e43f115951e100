"""HTML controllers for checkout: address, shipping method, review and payment, then the order.

The steps keep their choices in the browser session (``checkout``: address id and shipping code).
The review page carries a one-time checkout token and the cart's signature; placing the order with
the same token again (double click, refresh, back and resubmit) lands on the same order.
"""

from typing import Any, Literal

import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath
from litestar.response import Redirect, Template

from webshop.cart.service import CartOwner, CartService
from webshop.checkout.pricing import SHIPPING_METHODS, shipping_method
from webshop.checkout.service import ADDRESS_FIELDS, AddressInput, CheckoutService, new_checkout_token
from webshop.db.engine import WRITES_ON_GET
from webshop.db.models import Order, OrderStatus, User
from webshop.db.models.orders import ORDER_NOTE
from webshop.errors import DomainError, EmailNotVerified, NotFound, ValidationFailed
from webshop.orders.service import OrderService
from webshop.payments.service import PaymentService
from webshop.security.session import requires_user
from webshop.text import Line, Lines
from webshop.web.forms import FormFields, InvalidForm, form_again, read_form
from webshop.web.responses import route_url, see_other_to

CHECKOUT_KEY = "checkout"


class AddressForm(AddressInput, frozen=True, kw_only=True):
    """Address step: a saved address id, or a new address (``AddressInput``'s fields).

    The form Structs' text fields refuse control characters (``webshop.text``); ``read_form`` turns
    that into the form again with a message."""

    address_id: Line = ""


class ShippingForm(msgspec.Struct):
    """Shipping step."""

    shipping_method: Line = ""


class PlaceForm(msgspec.Struct):
    """Review and pay step, with the shopper's optional note for the seller (``customer_note``: checked
    by ``place_order``, as the browser sends it, with CR LF line breaks)."""

    checkout_token: Line = ""
    cart_signature: Line = ""
    customer_note: Lines = ""


def address_input(source: object) -> AddressInput:
    """The ``AddressInput`` of anything with its attributes (``name``, ``line1``, ``line2``, ``city``,
    ``postal_code``, ``country``): the address form, an address-book row, the API's ``AddressIn``."""
    return AddressInput(**{name: getattr(source, name) for name in ADDRESS_FIELDS})


def _to_verify(request: Request[Any, Any, Any], step: str) -> Redirect:
    """To the "confirm your e-mail address" page, coming back to the checkout step named ``step`` afterwards."""
    back = route_url(request, step)
    return Redirect(route_url(request, "verify_email.prompt", query={"next": back}), status_code=303)


def _to(request: Request[Any, Any, Any], route_name: str, status_code: Literal[302, 303] = 302) -> Redirect:
    """A redirect to the page of the route named ``route_name`` (a GET that cannot be shown yet: 302)."""
    return Redirect(route_url(request, route_name), status_code=status_code)


def _state(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state = (request.session or {}).get(CHECKOUT_KEY)
    return dict(state) if isinstance(state, dict) else {}


def _save_state(request: Request[Any, Any, Any], **changes: Any) -> None:
    request.set_session({**(request.session or {}), CHECKOUT_KEY: {**_state(request), **changes}})


class CheckoutSteps:
    """This request's checkout: the signed-in shopper, the choices kept so far (``state``) and the services
    the steps use (the ``steps`` of the handlers that show the review page or check the address; Litestar
    makes one per request from the dependencies ``__init__`` names).
    """

    def __init__(
        self,
        request: Request[User, Any, Any],
        checkout_service: NamedDependency[CheckoutService],
        carts_service: NamedDependency[CartService],
    ) -> None:
        self.request, self.checkout, self.carts = request, checkout_service, carts_service

    def verify_first(self, step: str) -> Redirect | None:
        """With ``WEBSHOP_REQUIRE_VERIFIED_EMAIL``, an unverified shopper is sent to confirm the address
        first, coming back to the step named ``step``; ``None`` when the shopper may go on."""
        return _to_verify(self.request, step) if self.checkout.needs_verified_email(self.request.user) else None

    async def review_page(self, *, error: DomainError | None = None, token: str | None = None, note: str = "") -> Any:
        """Step 3: lines, shipping, tax, total and the payment form, with ``error`` (and its status code),
        the checkout ``token`` to keep (default: a new one) and the ``note`` for the seller typed so far;
        the step still to do, or the cart when it is empty, instead."""
        request = self.request
        state = _state(request)
        if not state.get("address_id"):
            return _to(request, "checkout.address")
        if not state.get("shipping"):
            return _to(request, "checkout.shipping")
        view = await self.carts.view(CartOwner(user_id=request.user.id))
        if not view.lines:
            return _to(request, "cart")
        method = shipping_method(state["shipping"])
        address = await self.checkout.address(request.user.id, state["address_id"])
        return Template(
            "checkout/review.html",
            context={
                "cart": view,
                "totals": self.checkout.totals(view, method),
                "method": method,
                "address": address,
                "checkout_token": token or new_checkout_token(),
                "error": error,
                "provider_name": self.checkout.provider.name,
                "note": note,
                "note_limit": ORDER_NOTE,
            },
            status_code=error.status_code if error else 200,
        )


class CheckoutController(Controller):
    """Checkout steps (sign-in required; the guest cart was merged at sign-in)."""

    path = "/checkout"
    guards = [requires_user]
    include_in_schema = False
    dependencies = {"steps": Provide(CheckoutSteps, sync_to_thread=False)}

    @get("", name="checkout", media_type=MediaType.HTML)
    async def start(self, request: Request[User, Any, Any]) -> Redirect:
        """Checkout starts with the address."""
        return _to(request, "checkout.address")

    @get("/address", name="checkout.address", media_type=MediaType.HTML)
    async def address_form(self, request: Request[User, Any, Any], steps: NamedDependency[CheckoutSteps]) -> Any:
        """Step 1: choose a saved address or enter a new one."""
        if redirect := steps.verify_first("checkout.address"):
            return redirect
        if not (await steps.carts.view(CartOwner(user_id=request.user.id))).lines:
            return _to(request, "cart")
        addresses = await steps.checkout.addresses(request.user.id)
        chosen = _state(request).get("address_id") or (addresses[0].id if addresses else None)
        return Template(
            "checkout/address.html",
            context={"addresses": addresses, "chosen": chosen, "form": {"name": request.user.name}, "errors": {}},
        )

    @post("/address", name="checkout.address.submit", media_type=MediaType.HTML)
    async def address_submit(
        self,
        request: Request[User, Any, Any],
        checkout_service: NamedDependency[CheckoutService],
        data: FormFields,
    ) -> Any:
        """Keep the chosen address (a new one is saved to the address book)."""
        user_id = request.user.id
        form = AddressForm()
        try:
            form = read_form(AddressForm, data)
            if form.address_id and form.address_id != "new":
                address = await checkout_service.address(user_id, int(form.address_id))
            else:
                address = await checkout_service.save_address(user_id, form)
        except (ValidationFailed, NotFound, ValueError) as exc:
            form = exc.form if isinstance(exc, InvalidForm) else form
            refusal = exc if isinstance(exc, DomainError) else ValidationFailed("Choose an address.")
            addresses = await checkout_service.addresses(user_id)
            context = {"addresses": addresses, "chosen": "new", "form": msgspec.structs.asdict(form)}
            return form_again("checkout/address.html", refusal, context)
        _save_state(request, address_id=address.id)
        return see_other_to(request, "checkout.shipping")

    @get("/shipping", name="checkout.shipping", media_type=MediaType.HTML)
    async def shipping_form(self, request: Request[User, Any, Any]) -> Any:
        """Step 2: choose a shipping method."""
        state = _state(request)
        if not state.get("address_id"):
            return _to(request, "checkout.address")
        return Template(
            "checkout/shipping.html",
            context={"methods": SHIPPING_METHODS, "chosen": state.get("shipping") or SHIPPING_METHODS[0].code},
        )

    @post("/shipping", name="checkout.shipping.submit", media_type=MediaType.HTML)
    async def shipping_submit(self, request: Request[User, Any, Any], data: FormFields) -> Any:
        """Keep the chosen shipping method."""
        try:
            method = shipping_method(read_form(ShippingForm, data).shipping_method)
        except ValidationFailed as exc:
            return form_again("checkout/shipping.html", exc, {"methods": SHIPPING_METHODS, "chosen": None})
        _save_state(request, shipping=method.code)
        return see_other_to(request, "checkout.review")

    @get("/review", name="checkout.review", media_type=MediaType.HTML)
    async def review(self, steps: NamedDependency[CheckoutSteps]) -> Any:
        """Step 3: review lines, shipping, tax and total; pay."""
        return steps.verify_first("checkout.review") or await steps.review_page()

    @post("/place", name="checkout.place", media_type=MediaType.HTML)
    async def place(
        self, request: Request[User, Any, Any], steps: NamedDependency[CheckoutSteps], data: FormFields
    ) -> Any:
        """Place the order (exactly once per checkout token) and show it."""
        try:
            form = read_form(PlaceForm, data)
        except InvalidForm as exc:
            return await steps.review_page(error=exc, note=exc.form.customer_note)
        state = _state(request)
        # place_order replays a token too, but only once this handler's own checks let the post through:
        # an order already placed must answer even when the shop now asks this shopper to confirm their
        # address first, or when the session lost the checkout's choices (signed out and in again).
        replay = await steps.checkout.find_by_token(form.checkout_token) if form.checkout_token else None
        settled = replay is not None and (replay.status != OrderStatus.PENDING.value or replay.payment_url)
        if replay is not None and settled and replay.user_id == request.user.id:
            return _after_placing(request, replay)
        if redirect := steps.verify_first("checkout.review"):
            return redirect  # the service refuses too (EmailNotVerified); this keeps the shopper's way
        if not state.get("address_id") or not state.get("shipping"):
            return _to(request, "checkout.address", status_code=303)
        try:
            address = await steps.checkout.address(request.user.id, state["address_id"])
            order, _created = await steps.checkout.place_order(
                user_id=request.user.id,
                address=address_input(address),
                shipping_code=state["shipping"],
                checkout_token=form.checkout_token,
                return_url=return_url(request, steps.checkout.shop.base_url),
                expected_signature=form.cart_signature or None,
                customer_note=form.customer_note,
            )
        except EmailNotVerified:
            return _to_verify(request, "checkout.review")
        except DomainError as exc:
            return await steps.review_page(error=exc, token=form.checkout_token or None, note=form.customer_note)
        return _after_placing(request, order)

    # Writes on a GET (the payment's outcome): a write session, so SQLite takes the writer's turn up front.
    @get("/return/{number:str}", name="checkout.return", media_type=MediaType.HTML, opt={WRITES_ON_GET: True})
    async def payment_return(
        self,
        request: Request[User, Any, Any],
        number: FromPath[str],
        orders_service: NamedDependency[OrderService],
        payment_service: NamedDependency[PaymentService],
    ) -> Any:
        """Back from the provider's hosted payment page: ask the provider how the payment went (server
        to server, ``PaymentService.sync``: the shop trusts no query parameter) and show the order;
        paid, it is the confirmation."""
        order = await orders_service.get_by_number(number, user_id=request.user.id)
        order = await payment_service.sync(order)
        query = {"placed": "1"} if order.status == OrderStatus.PAID.value else None
        return see_other_to(request, "order", number=order.number, **({"query": query} if query else {}))


def return_url(request: Request[Any, Any, Any], base_url: str) -> str:
    """The absolute URL the hosted payment page sends the shopper back to: ``checkout.return``, with
    ``{number}`` for the order number, which ``place_order`` fills in (it is not known yet)."""
    return base_url.rstrip("/") + route_url(request, "checkout.return", number="{number}")


def _after_placing(request: Request[Any, Any, Any], order: Order) -> Any:
    """Where a placed order sends the shopper: its hosted payment page while it waits for payment
    (a full-page navigation, the page may be the provider's own site), else the order's page."""
    if order.status == OrderStatus.PENDING.value and order.payment_url:
        return Redirect(order.payment_url, status_code=303)
    query = {"placed": "1"} if order.status == OrderStatus.PAID.value else None
    return see_other_to(request, "order", number=order.number, **({"query": query} if query else {}))
