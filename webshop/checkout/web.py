"""HTML controllers for checkout: address, shipping method, review and payment, then the order.

The steps keep their choices in the browser session (``checkout``: address id and shipping code).
The review page carries a one-time checkout token and the cart's signature; placing the order with
the same token again (double click, refresh, back and resubmit) lands on the same order.

A guest (signed out, having chosen "Check out as a guest": ``guest`` in the state) goes through the
same steps and the same ``place_order``; their e-mail address and shipping address are kept in the
session instead of an address book (``webshop.checkout.guest``), and their order is shown through its
signed link (``webshop.checkout.guest_web``).
"""

from typing import Any, Literal

import msgspec
from litestar import Controller, MediaType, Request, get, post
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath
from litestar.plugins.flash import flash
from litestar.plugins.htmx import HXLocation
from litestar.response import Redirect, Template

from webshop.cart.service import CartOwner, CartView
from webshop.cart.web import cart_owner
from webshop.checkout.addresses import ADDRESS_FIELDS, AddressInput, address_input
from webshop.checkout.guest import GuestAddress, placed_here, remember_placed
from webshop.checkout.guest_links import guest_order_token
from webshop.checkout.quote import NoShippingZone
from webshop.checkout.service import CheckoutService, new_checkout_token
from webshop.config import Settings
from webshop.db.engine import WRITES_ON_GET
from webshop.db.models import Address, Order, OrderStatus, User, postal
from webshop.db.models.orders import ORDER_NOTE
from webshop.deps import CartsDep, OrdersDep, SettingsDep, UserRequest
from webshop.errors import DomainError, EmailNotVerified, NotFound, ValidationFailed
from webshop.payments.service import PaymentService
from webshop.pricing.promotions import PromotionKind
from webshop.tax.destination import RegionNeeded
from webshop.text import Line, Lines, whole_number_text
from webshop.web import AnyRequest
from webshop.web.forms import FormFields, FormProblems, InvalidForm, form_again, read_form
from webshop.web.responses import route_url, see_other, see_other_to

CHECKOUT_KEY = "checkout"


class AddressForm(AddressInput, frozen=True, kw_only=True):
    """Address step: a saved address id, or a new address (``AddressInput``'s fields).

    The form Structs' text fields refuse control characters (``webshop.text``); ``read_form`` turns
    that into the form again with a message."""

    address_id: Line = ""
    chosen_by_page: Line = ""
    """The choice the page made (``address_id`` as it was checked when the page was shown)."""


class GuestAddressForm(AddressInput, frozen=True, kw_only=True):
    """A guest's address step: their e-mail address (``clean_guest_email``) and the address."""

    email: Line = ""


class ShippingForm(msgspec.Struct):
    """Shipping step."""

    shipping_method: Line = ""


class PlaceForm(msgspec.Struct):
    """Review and pay step, with the shopper's optional note for the seller (``customer_note``: checked
    by ``place_order``, as the browser sends it, with CR LF line breaks)."""

    checkout_token: Line = ""
    cart_signature: Line = ""
    customer_note: Lines = ""


def _to_verify(request: AnyRequest, step: str) -> Redirect:
    """To the "confirm your e-mail address" page, coming back to the checkout step named ``step`` afterwards."""
    back = route_url(request, step)
    return Redirect(route_url(request, "verify_email.prompt", query={"next": back}), status_code=303)


def _to(request: AnyRequest, route_name: str, status_code: Literal[302, 303] = 302) -> Redirect:
    """A redirect to the page of the route named ``route_name`` (a GET that cannot be shown yet: 302)."""
    return Redirect(route_url(request, route_name), status_code=status_code)


def _state(request: AnyRequest) -> dict[str, Any]:
    state = (request.session or {}).get(CHECKOUT_KEY)
    return dict(state) if isinstance(state, dict) else {}


def _save_state(request: AnyRequest, **changes: Any) -> None:
    request.set_session({**(request.session or {}), CHECKOUT_KEY: {**_state(request), **changes}})


def _has_address(request: AnyRequest) -> bool:
    """True once the address step is done: a saved address chosen, or a guest's e-mail and address kept."""
    state = _state(request)
    if request.user is None:
        return bool(state.get("email")) and GuestAddress.of(state.get("guest_address")) is not None
    return bool(state.get("address_id"))


def requires_shopper(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """Guard of the checkout steps: a signed-in shopper, or a guest who chose "Check out as a guest".

    Raises:
        NotAuthorizedException: neither (pages redirect to the sign-in form, coming back here).
    """
    if connection.scope.get("user") is not None:
        return
    session = connection.scope.get("session")
    state = session.get(CHECKOUT_KEY) if isinstance(session, dict) else None
    if not (isinstance(state, dict) and state.get("guest")):
        raise NotAuthorizedException("Please sign in to continue.")


def guest_order_url(request: AnyRequest, settings: Settings, number: str, *, placed: bool = False) -> str:
    """The path of guest order ``number``'s page (its signed link), with ``?placed=1`` for the confirmation."""
    token = guest_order_token(settings.security.secret_key, number)
    return route_url(request, "order.guest", token=token, query={"placed": "1"} if placed else None)


class CheckoutSteps:
    """This request's checkout: the signed-in shopper, the choices kept so far (``state``) and the services
    the steps use (the ``steps`` of the handlers that show the review page or check the address; Litestar
    makes one per request from the dependencies ``__init__`` names).
    """

    def __init__(
        self,
        request: Request[User | None, Any, Any],
        checkout_service: NamedDependency[CheckoutService],
        carts_service: CartsDep,
        settings: SettingsDep,
    ) -> None:
        self.request, self.checkout, self.carts, self.settings = request, checkout_service, carts_service, settings
        self.guest = request.user is None
        """True for a guest's checkout (signed out): no address book, the e-mail address asked for."""

    @property
    def owner(self) -> CartOwner:
        """Whose cart is checked out: the account's, or the guest's (the session's cart token)."""
        return cart_owner(self.request)

    def verify_first(self, step: str) -> Redirect | None:
        """With ``WEBSHOP_REQUIRE_VERIFIED_EMAIL``, an unverified shopper is sent to confirm the address
        first, coming back to the step named ``step``; ``None`` when the shopper may go on (a guest does:
        the order's e-mails are their only use of the address)."""
        user = self.request.user
        return _to_verify(self.request, step) if user and self.checkout.needs_verified_email(user) else None

    async def shipping_address(self) -> Any | None:
        """The address the order ships to: the guest's from the session, else the chosen saved address;
        ``None`` when that one has left the address book since it was chosen (removed or merged on
        ``/account/addresses``): the caller answers ``address_gone``."""
        state = _state(self.request)
        if self.request.user is None:
            return GuestAddress.of(state.get("guest_address"))
        try:
            return await self.checkout.address(self.request.user.id, state["address_id"])
        except NotFound:
            return None

    def address_gone(self) -> Redirect:
        """Back to the address step (303), the chosen address forgotten, saying why."""
        _save_state(self.request, address_id=None)
        message = "The address you chose is no longer in your address book: choose where to send the order."
        flash(self.request, message, "error")
        return _to(self.request, "checkout.address", status_code=303)

    def after_placing(self, order: Order) -> Any:
        """``_after_placing``, a guest's order shown through its signed link."""
        if order.user_id is None:
            remember_placed(self.request, order.number)
            if not (order.status == OrderStatus.PENDING.value and order.payment_url):
                paid = order.status == OrderStatus.PAID.value
                return see_other(self.request, guest_order_url(self.request, self.settings, order.number, placed=paid))
        return _after_placing(self.request, order)

    def back_to_cart(self, view: CartView) -> Redirect | None:
        """The cart when there is nothing to check out: an empty cart (a step opened again after paying,
        or in another tab), or, with the reason flashed, a line whose product is no longer sold (switched
        off, deleted, its shop suspended): checkout goes no further until the shopper has removed it,
        rather than showing a total and a pay button that ``place_order`` would refuse. ``None``: go on."""
        if not view.lines:
            return _to(self.request, "cart")
        if not any(line.withdrawn for line in view.lines):
            return None
        message = "Some items in your cart are no longer sold: remove them to check out."
        flash(self.request, message, "error")
        return _to(self.request, "cart")

    async def shipping_page(self, *, chosen: str | None = None, error: DomainError | None = None) -> Any:
        """Step 2's page: the methods of the address's zone with their prices for this cart (those that
        cannot take it say why), ``chosen`` checked (default: the first available), with ``error``; a
        clear message and the way back to the address when no zone serves its country."""
        view = await self.carts.view(self.owner)
        if back := self.back_to_cart(view):
            return back
        if (address := await self.shipping_address()) is None:
            return self.address_gone()
        try:
            methods = await self.checkout.pricer().options(view, address.country)
        except NoShippingZone as exc:
            methods, error = [], exc
        usable = [m.code for m in methods if m.available]
        if chosen not in usable:
            chosen = usable[0] if usable else None
        free = None
        if usable:  # a free-shipping promotion this cart gets makes every method free: say so here already
            user = self.request.user
            estimate = await self.checkout.pricer().quote(
                view,
                country=address.country,
                user_id=user.id if user else None,
                email=_state(self.request).get("email") or "",
            )
            free = next((p.name for p in estimate.promotions if p.kind == PromotionKind.FREE_SHIPPING), None)
        context = {
            "methods": methods,
            "chosen": chosen,
            "free": free,
            "message": error.detail if error else "",  # no field is marked on this page: the message says it all
            "parcels": len(view.shop_ids),  # no line here is withdrawn (back_to_cart above)
        }
        return Template("checkout/shipping.html", context=context, status_code=error.status_code if error else 200)

    async def review_page(self, *, error: DomainError | None = None, token: str | None = None, note: str = "") -> Any:
        """Step 3: lines, shipping, tax, total and the payment form, with ``error`` (and its status code),
        the checkout ``token`` to keep (default: a new one) and the ``note`` for the seller typed so far;
        the step still to do, or the cart when it is empty, instead."""
        request = self.request
        state = _state(request)
        if not _has_address(request):
            return _to(request, "checkout.address")
        if not state.get("shipping"):
            return _to(request, "checkout.shipping")
        view = await self.carts.view(self.owner)
        if back := self.back_to_cart(view):
            return back
        if (address := await self.shipping_address()) is None:
            return self.address_gone()
        user = self.request.user
        try:
            quote = await self.checkout.quote(
                view,
                country=address.country,
                region=address.region,
                method_code=state["shipping"],
                user_id=user.id if user else None,
                email=state.get("email") or "",
            )
        except RegionNeeded:  # the shop began taxing the country by region after the address step
            flash(request, _no_region(address), "error")
            return _to(request, "checkout.address")
        except ValidationFailed:
            return _to(request, "checkout.shipping")  # the method no longer serves this address or cart
        return Template(
            "checkout/review.html",
            context={
                "cart": view,
                "totals": quote,
                "signature": quote.signature(view),
                "method": quote.method,
                "address": address,
                "checkout_token": token or new_checkout_token(),
                "error": error,
                "provider_name": self.checkout.provider.name,
                "note": note,
                "note_limit": ORDER_NOTE,
                "guest_email": state.get("email") if self.guest else None,
            },
            status_code=error.status_code if error else 200,
        )


class CheckoutController(Controller):
    """Checkout steps: a signed-in shopper (the guest cart was merged at sign-in) or a guest who chose
    "Check out as a guest" (``requires_shopper``)."""

    path = "/checkout"
    include_in_schema = False
    dependencies = {"steps": Provide(CheckoutSteps, sync_to_thread=False)}

    @get("", name="checkout", media_type=MediaType.HTML, guards=[requires_shopper])
    async def start(self, request: UserRequest) -> Redirect:
        """Checkout starts with the address."""
        return _to(request, "checkout.address")

    @get("/guest", name="checkout.guest", media_type=MediaType.HTML)
    async def start_as_guest(self, request: Request[User | None, Any, Any]) -> Redirect:
        """Check out without an account: the steps let this session through as a guest (a signed-in
        shopper just goes on)."""
        if request.user is None:
            _save_state(request, guest=True)
        return _to(request, "checkout.address", status_code=303)

    @get("/address", name="checkout.address", media_type=MediaType.HTML, guards=[requires_shopper])
    async def address_form(self, request: UserRequest, steps: NamedDependency[CheckoutSteps]) -> Any:
        """Step 1: choose a saved address or enter a new one (a guest: their e-mail address and the address)."""
        if redirect := steps.verify_first("checkout.address"):
            return redirect
        view = await steps.carts.view(steps.owner)
        if back := steps.back_to_cart(view):  # not an address for a cart that cannot be paid
            return back
        if steps.guest:
            state = _state(request)
            form = {**(state.get("guest_address") or {}), "email": state.get("email") or ""}
            context: dict[str, Any] = {"addresses": [], "chosen": None, "form": form, "errors": {}, "guest": True}
            return Template("checkout/address.html", context=context)
        addresses = await steps.checkout.addresses(request.user.id)
        chosen = _state(request).get("address_id") or (addresses[0].id if addresses else None)
        return Template(
            "checkout/address.html",
            context={"addresses": addresses, "chosen": chosen, "form": {"name": request.user.name}, "errors": {}},
        )

    @post("/address", name="checkout.address.submit", media_type=MediaType.HTML, guards=[requires_shopper])
    async def address_submit(
        self,
        request: UserRequest,
        checkout_service: NamedDependency[CheckoutService],
        data: FormFields,
    ) -> Any:
        """Keep the chosen address (a new one is saved to the address book; a guest's in the session)."""
        if request.user is None:
            return await _guest_address_submit(request, data, checkout_service)
        user_id = request.user.id
        problems = FormProblems(AddressForm, data)
        form = problems.form
        try:
            # A new address typed below the saved ones wins over the saved one the page had chosen and the
            # shopper left as it was (they typed it to be used); a saved one they chose themselves wins.
            typed = any(getattr(form, key).strip() for key in ("line1", "line2", "city", "postal_code", "region"))
            left_as_shown = form.address_id == form.chosen_by_page
            if form.address_id and form.address_id != "new" and not (typed and left_as_shown):
                problems.raise_any()
                if (address_id := whole_number_text(form.address_id)) is None:
                    raise ValidationFailed("Choose an address.")
                address = await checkout_service.address(user_id, address_id)
                await _saved_address_usable(checkout_service, address)
            else:  # one round: what the form refuses, the address's rules and its region
                with problems.check():
                    await checkout_service.checked_address(form)
                problems.raise_any()
                address = await checkout_service.save_address(user_id, form)
        except (ValidationFailed, NotFound) as exc:
            form = exc.form if isinstance(exc, InvalidForm) else form
            refusal = exc if isinstance(exc, DomainError) else ValidationFailed("Choose an address.")
            addresses = await checkout_service.addresses(user_id)
            context = {"addresses": addresses, "chosen": "new", "form": msgspec.structs.asdict(form)}
            return form_again("checkout/address.html", refusal, context)
        _save_state(request, address_id=address.id)
        return see_other_to(request, "checkout.shipping")

    @get("/shipping", name="checkout.shipping", media_type=MediaType.HTML, guards=[requires_shopper])
    async def shipping_form(self, request: UserRequest, steps: NamedDependency[CheckoutSteps]) -> Any:
        """Step 2: choose one of the shipping methods of the address's zone, priced for this cart."""
        if not _has_address(request):
            return _to(request, "checkout.address")
        return await steps.shipping_page(chosen=_state(request).get("shipping"))

    @post("/shipping", name="checkout.shipping.submit", media_type=MediaType.HTML, guards=[requires_shopper])
    async def shipping_submit(
        self, request: UserRequest, steps: NamedDependency[CheckoutSteps], data: FormFields
    ) -> Any:
        """Keep the chosen shipping method (one the address's zone offers and that can take this cart)."""
        if not _has_address(request):
            return _to(request, "checkout.address", status_code=303)
        try:
            code = read_form(ShippingForm, data).shipping_method
            if (address := await steps.shipping_address()) is None:
                return steps.address_gone()
            view = await steps.carts.view(steps.owner)
            await steps.checkout.quote(view, country=address.country, method_code=code)
        except ValidationFailed as exc:
            return await steps.shipping_page(error=exc)
        _save_state(request, shipping=code)
        return see_other_to(request, "checkout.review")

    @get("/review", name="checkout.review", media_type=MediaType.HTML, guards=[requires_shopper])
    async def review(self, steps: NamedDependency[CheckoutSteps]) -> Any:
        """Step 3: review lines, shipping, tax and total; pay."""
        return steps.verify_first("checkout.review") or await steps.review_page()

    @post("/promotion-code/remove", name="checkout.code.remove", media_type=MediaType.HTML, guards=[requires_shopper])
    async def remove_code(self, request: AnyRequest, steps: NamedDependency[CheckoutSteps]) -> Any:
        """Take off the cart a code that stopped working since it was applied, and review again."""
        if steps.owner.user_id is not None or steps.owner.token:  # no cart is made to hold "no code"
            await steps.carts.set_promotion_code(steps.owner, None)
        return see_other_to(request, "checkout.review")

    @get("/place", name="checkout.place_again", media_type=MediaType.HTML)
    async def place_address(self, request: AnyRequest) -> Redirect | HXLocation:
        """A refused order leaves ``/checkout/place`` in the address bar (the review page is the answer to
        the post); Back, a reload or the history asks for it with GET, which leads to the review (303)."""
        return see_other_to(request, "checkout.review")

    @post("/place", name="checkout.place", media_type=MediaType.HTML, guards=[requires_shopper])
    async def place(self, request: UserRequest, steps: NamedDependency[CheckoutSteps], data: FormFields) -> Any:
        """Place the order (exactly once per checkout token) and show it."""
        try:
            form = read_form(PlaceForm, data)
        except InvalidForm as exc:
            return await steps.review_page(error=exc, note=exc.form.customer_note)
        state = _state(request)
        # place_order replays a token too, but only once this handler's own checks let the post through:
        # an order already placed must answer even when the shop now asks this shopper to confirm their
        # address first, or when the session lost the checkout's choices (signed out and in again).
        # A guest's token is theirs as an account's is: the one-time token came from this browser's review page.
        user_id = request.user.id if request.user is not None else None
        replay = await steps.checkout.find_by_token(form.checkout_token) if form.checkout_token else None
        settled = replay is not None and (replay.status != OrderStatus.PENDING.value or replay.payment_url)
        if replay is not None and settled and replay.user_id == user_id:
            return steps.after_placing(replay)
        if redirect := steps.verify_first("checkout.review"):
            return redirect  # the service refuses too (EmailNotVerified); this keeps the shopper's way
        if not _has_address(request) or not state.get("shipping"):
            return _to(request, "checkout.address", status_code=303)
        if (address := await steps.shipping_address()) is None:
            return steps.address_gone()
        try:
            order, _created = await steps.checkout.place_order(
                user_id=user_id,
                address=address_input(address),
                shipping_code=state["shipping"],
                checkout_token=form.checkout_token,
                return_url=return_url(request, steps.checkout.shop.base_url),
                expected_signature=form.cart_signature or None,
                customer_note=form.customer_note,
                cart_token=steps.owner.token if user_id is None else None,
                email=(state.get("email") or "") if user_id is None else "",
            )
        except EmailNotVerified:
            return _to_verify(request, "checkout.review")
        except DomainError as exc:
            number = exc.extra.get("order_number")
            if user_id is None and isinstance(number, str):
                remember_placed(request, number)  # declined or waiting: the return from the payment page finds it
            return await steps.review_page(error=exc, token=form.checkout_token or None, note=form.customer_note)
        return steps.after_placing(order)

    # Writes on a GET (the payment's outcome): a write session, so SQLite takes the writer's turn up front.
    @get("/return/{number:str}", name="checkout.return", media_type=MediaType.HTML, opt={WRITES_ON_GET: True})
    async def payment_return(
        self,
        request: Request[User | None, Any, Any],
        number: FromPath[str],
        orders_service: OrdersDep,
        payment_service: NamedDependency[PaymentService],
        settings: SettingsDep,
    ) -> Any:
        """Back from the provider's hosted payment page: ask the provider how the payment went (server
        to server, ``PaymentService.sync``: the shop trusts no query parameter) and show the order;
        paid, it is the confirmation. A guest's order is found when this session placed it, and shown
        through its signed link; anyone else signed out is asked to sign in."""
        guest = number in placed_here(request)
        if request.user is None and not guest:
            raise NotAuthorizedException("Please sign in to continue.")
        if guest:
            order = await orders_service.get_by_number(number)
            if order.user_id is not None and (request.user is None or order.user_id != request.user.id):
                raise NotFound("We could not find that order.")
        else:
            order = await orders_service.get_by_number(number, user_id=request.user.id)  # type: ignore[union-attr]
        order = await payment_service.sync(order)
        paid = order.status == OrderStatus.PAID.value
        if order.user_id is None:
            return see_other(request, guest_order_url(request, settings, order.number, placed=paid))
        query = {"placed": "1"} if paid else None
        return see_other_to(request, "order", number=order.number, **({"query": query} if query else {}))


async def _guest_address_submit(request: Request[None, Any, Any], data: FormFields, checkout: CheckoutService) -> Any:
    """A guest's address step: check the e-mail address and the address together (every message at
    once), then keep both in the session; no address book row is written."""
    problems = FormProblems(GuestAddressForm, data)
    email, address = "", None
    with problems.check():
        email = await checkout.guest_email(problems.form.email)
    with problems.check():
        clean = await checkout.checked_address(address_input(problems.form))
        address = GuestAddress(**msgspec.structs.asdict(clean))
    if problems.failed or address is None:
        refusal = InvalidForm(problems.form, problems.errors, problems.detail)
        form = msgspec.structs.asdict(problems.form)
        context: dict[str, Any] = {"addresses": [], "chosen": None, "form": form, "guest": True}
        return form_again("checkout/address.html", refusal, context)
    _save_state(request, guest=True, email=email, guest_address=address.as_dict())
    return see_other_to(request, "checkout.shipping")


async def _saved_address_usable(checkout: CheckoutService, address: Address) -> None:
    """A saved address the address step chose, checked as a typed one (``checked_address``): one saved
    before a rule it breaks (a region the shop now taxes by, a region the post does not know) is caught
    here, where it can be mended, not at "Place order", whose page has no address fields.

    Raises:
        InvalidForm: the new-address form filled in with it and its problems marked, to mend it there
            (saved, it is the same address).
    """
    try:
        await checkout.checked_address(address_input(address))
    except ValidationFailed as exc:
        form = AddressForm(**{key: getattr(address, key) for key in ADDRESS_FIELDS}, address_id="new")
        detail = _no_region(address) if isinstance(exc, RegionNeeded) else "This saved address needs a correction."
        raise InvalidForm(form, dict(exc.field_errors), detail) from None


def _no_region(address: Address | GuestAddress) -> str:
    """Why an address the shopper chose earlier cannot be taxed now, and what to do."""
    where = f"Tax in {postal.country_in_text(address.country)} depends on the state, province or region"
    return f"{where}, and {postal.one_line(address)} names none we know: add it to the address."


def return_url(request: AnyRequest, base_url: str) -> str:
    """The absolute URL the hosted payment page sends the shopper back to: ``checkout.return``, with
    ``{number}`` for the order number, which ``place_order`` fills in (it is not known yet)."""
    return base_url.rstrip("/") + route_url(request, "checkout.return", number="{number}")


def _after_placing(request: AnyRequest, order: Order) -> Any:
    """Where a placed order sends the shopper: its hosted payment page while it waits for payment
    (a full-page navigation, the page may be the provider's own site), else the order's page."""
    if order.status == OrderStatus.PENDING.value and order.payment_url:
        return Redirect(order.payment_url, status_code=303)
    query = {"placed": "1"} if order.status == OrderStatus.PAID.value else None
    return see_other_to(request, "order", number=order.number, **({"query": query} if query else {}))
