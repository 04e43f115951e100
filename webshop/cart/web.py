"""HTML controllers for the cart: view it, add, change quantities, remove, empty, apply a promotion code.

With htmx each action answers with the cart fragment (or a small confirmation) plus the header
badge swapped out of band; without JavaScript each is a form post answered by a 303 redirect, or the
page re-rendered with the error next to the line when the stock is short.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, get, post
from litestar.di import NamedDependency, Provide
from litestar.plugins.flash import flash
from litestar.response import Template
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.api.schemas import PathId
from webshop.cart.service import CartOwner, CartService, CartView, new_guest_token
from webshop.catalog.browse import shop_directory
from webshop.catalog.products import ProductService
from webshop.catalog.web import render_product
from webshop.checkout.quote import Pricer, apply_code
from webshop.config import Settings
from webshop.db.engine import ShopAlchemyConfig
from webshop.db.models import User
from webshop.deps import CartsDep, ProductsDep, SettingsDep
from webshop.errors import DomainError, InsufficientStock, NotFound, ValidationFailed
from webshop.web import AnyRequest
from webshop.web.forms import Form
from webshop.web.responses import see_other_to, wants_fragment

CART_KEY = "cart"


class AddForm(msgspec.Struct):
    """Add-to-cart form: a variant (by id or SKU) and a quantity."""

    variant_id: int | None = None
    sku: str = ""
    quantity: int = 1


class CodeForm(msgspec.Struct):
    """The cart's promotion code form."""

    code: str = ""


class QuantityForm(msgspec.Struct):
    """Quantity form of one cart line."""

    quantity: int = 1


def cart_owner(request: AnyRequest, *, create: bool = False) -> CartOwner:
    """Whose cart this request works on: the signed-in user's, else the guest's (token in the session).

    With ``create``, a guest without a cart token gets one (stored in the encrypted session cookie).
    """
    if request.user is not None:
        return CartOwner(user_id=request.user.id)
    token = (request.session or {}).get(CART_KEY) if request.scope.get("session") is not None else None
    if not token and create:
        token = new_guest_token()
        request.set_session({**(request.session or {}), CART_KEY: token})
    return CartOwner(token=token if isinstance(token, str) else None)


NOT_PAGES = (
    "/api",
    "/static",
    "/media",
    "/health",
    "/ready",
    "/metrics",
    "/sitemap.xml",
    "/robots.txt",
    "/favicon.ico",
)
"""Paths that show no page header: the hook reads nothing for them (``/ready`` must answer even when the
database is down, without a query of the hook's)."""


def cart_badge_hook(alchemy: ShopAlchemyConfig) -> Callable[[AnyRequest], Awaitable[None]]:
    """A ``before_request`` hook putting what every page's header shows in ``request.state``: the cart's
    unit count (``cart_count``) and the trading shops (``shop_directory``, for the link to ``/shops``;
    left to the handlers of routes whose ``opt`` has ``shop_directory``, which read it anyway)."""

    async def load_cart_count(request: AnyRequest) -> None:
        if request.url.path.startswith(NOT_PAGES):
            return
        if not request.route_handler.opt.get("shop_directory"):
            session = alchemy.provide_session(request.app.state, request.scope)
            request.state.shop_directory = await shop_directory(session)
        owner = cart_owner(request)
        if owner.user_id is None and not owner.token:
            request.state.cart_count = 0
            return
        session = alchemy.provide_session(request.app.state, request.scope)
        request.state.cart_count = await CartService(session=session).units_in_cart(owner)

    return load_cart_count


async def cart_context(
    view: CartView, settings: Settings, session: AsyncSession, user: User | None = None, **extra: Any
) -> dict[str, Any]:
    """Template context for the cart page and fragment: lines, and the figures (``Quote``) at the shop's
    default country with the cheapest shipping method there, its promotions and the entered code."""
    quote = await Pricer(session, settings.shop).quote(view, user_id=user.id if user else None)
    return {"cart": view, "totals": quote, "line_errors": {}, "code_error": None, "code_typed": "", **extra}


class ShopperCart:
    """The cart this request works on (``owner``: see ``cart_owner``) with what its page needs: the ``cart``
    of the handlers that show it or change its lines (Litestar makes one per request from the
    dependencies ``__init__`` names)."""

    def __init__(
        self,
        request: AnyRequest,
        carts_service: CartsDep,
        settings: SettingsDep,
    ) -> None:
        self.request, self.service, self.settings = request, carts_service, settings
        self.owner = cart_owner(request)

    async def page(self, template: str = "cart/index.html", status_code: int = 200, **extra: Any) -> Template:
        """``template`` (the cart page, or the cart fragment) with the cart as it is now and ``extra`` context."""
        view = await self.service.view(self.owner)
        user = self.request.user if isinstance(self.request.user, User) else None
        context = await cart_context(view, self.settings, self.service.repository.session, user, **extra)
        return Template(template, context=context, status_code=status_code)

    async def changed(self) -> Any:
        """The answer to a change of the lines: the cart fragment and the badge for htmx, else the cart page."""
        if wants_fragment(self.request):  # the message takes the focus the swapped-out button had
            return await self.page("cart/_cart.html", oob_badge=True, cart_status="Your cart was updated.")
        return see_other_to(self.request, "cart")


class CartController(Controller):
    """The shopper's cart."""

    path = "/cart"
    include_in_schema = False
    dependencies = {"cart": Provide(ShopperCart, sync_to_thread=False)}

    @get("", name="cart", media_type=MediaType.HTML)
    async def show(self, cart: NamedDependency[ShopperCart]) -> Template:
        """The cart page."""
        return await cart.page()

    @post("/items", name="cart.add", media_type=MediaType.HTML)
    async def add(
        self,
        request: AnyRequest,
        carts_service: CartsDep,
        products_service: ProductsDep,
        data: Annotated[AddForm, Form],
    ) -> Any:
        """Add a variant to the cart."""
        owner = cart_owner(request, create=True)
        try:
            cart = await carts_service.add(owner, quantity=data.quantity, variant_id=data.variant_id, sku=data.sku)
        except (InsufficientStock, ValidationFailed, NotFound) as exc:
            return await self._add_failed(request, exc, data, products_service)
        view = carts_service.view_of(cart)
        added = next((ln for ln in view.lines if ln.variant_id == data.variant_id or ln.sku == data.sku), None)
        if wants_fragment(request):
            return Template(
                "cart/_added.html", context={"count": view.count, "line": added, "error": None, "oob_badge": True}
            )
        if added:
            flash(request, f"Added {added.product_name} to your cart.", "success")
        return see_other_to(request, "cart")

    async def _add_failed(
        self,
        request: AnyRequest,
        exc: DomainError,
        data: AddForm,
        products: ProductService,
    ) -> Template:
        if wants_fragment(request):
            return Template(
                "cart/_added.html",
                context={"error": exc.detail, "line": None, "oob_badge": False},
                status_code=exc.status_code,
            )
        variant = await products.variant_with_product(variant_id=data.variant_id, sku=data.sku)
        if variant is None:
            raise exc
        return await render_product(
            request,
            products,
            variant.product.slug,
            sku=variant.sku,
            error=exc.detail,
            quantity=data.quantity,
            status_code=exc.status_code,
        )

    @post("/lines/{line_id:int}", name="cart.update", media_type=MediaType.HTML)
    async def update(
        self, line_id: PathId, cart: NamedDependency[ShopperCart], data: Annotated[QuantityForm, Form]
    ) -> Any:
        """Change a line's quantity (0 removes it)."""
        try:
            await cart.service.set_quantity(cart.owner, line_id, data.quantity)
        except (InsufficientStock, ValidationFailed) as exc:
            fragment = wants_fragment(cart.request)  # the badge swaps out of band with a fragment only (QA)
            template = "cart/_cart.html" if fragment else "cart/index.html"
            return await cart.page(template, exc.status_code, line_errors={line_id: exc.detail}, oob_badge=fragment)
        return await cart.changed()

    @post("/lines/{line_id:int}/remove", name="cart.remove", media_type=MediaType.HTML)
    async def remove(self, line_id: PathId, cart: NamedDependency[ShopperCart]) -> Any:
        """Remove a line."""
        await cart.service.remove(cart.owner, line_id)
        return await cart.changed()

    @post("/promotion-code", name="cart.code.apply", media_type=MediaType.HTML)
    async def apply_code(self, cart: NamedDependency[ShopperCart], data: Annotated[CodeForm, Form]) -> Any:
        """Apply a promotion code (htmx: the cart fragment; else the cart page). A code that does not
        apply is not kept, and the cart says why."""
        owner = cart_owner(cart.request, create=True)
        user = cart.request.user if isinstance(cart.request.user, User) else None
        pricer = Pricer(cart.service.repository.session, cart.settings.shop)
        try:
            await apply_code(pricer, cart.service, owner, data.code, user_id=user.id if user else None)
        except ValidationFailed as exc:
            template = "cart/_cart.html" if wants_fragment(cart.request) else "cart/index.html"
            return await cart.page(template, exc.status_code, code_error=exc.detail, code_typed=data.code)
        return await cart.changed()

    @post("/promotion-code/remove", name="cart.code.remove", media_type=MediaType.HTML)
    async def remove_code(self, cart: NamedDependency[ShopperCart]) -> Any:
        """Take the promotion code off the cart."""
        if cart.owner.user_id is not None or cart.owner.token:
            await cart.service.set_promotion_code(cart.owner, None)
        return await cart.changed()

    @post("/clear", name="cart.clear", media_type=MediaType.HTML)
    async def clear(self, cart: NamedDependency[ShopperCart]) -> Any:
        """Empty the cart."""
        await cart.service.clear(cart.owner)
        return await cart.changed()
