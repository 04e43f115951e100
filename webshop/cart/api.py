"""Cart routes of the JSON API: the bearer token's user's cart, its line items and its promotion code."""

from litestar import Controller, delete, get, patch, post
from litestar.params import JSONBody

from webshop.api.responses import problems
from webshop.api.schemas import PathId
from webshop.cart.schemas import CartItemIn, CartItemPatch, CartOut, PromotionCodeIn, cart_out
from webshop.cart.service import CartOwner, CartService
from webshop.checkout.quote import Pricer, apply_code
from webshop.config import Settings
from webshop.deps import CartsDep, SettingsDep, UserRequest
from webshop.security.jwt import BEARER


async def priced_cart(carts: CartService, settings: Settings, owner: CartOwner) -> CartOut:
    """The owner's cart with its promotions and tax at the shop's default country (``Pricer.quote``,
    without shipping: that is chosen at checkout)."""
    view = await carts.view(owner)
    quote = await Pricer(carts.repository.session, settings.shop).quote(
        view, user_id=owner.user_id, with_shipping=False
    )
    return cart_out(view, quote)


class CartApiController(Controller):
    """The signed-in user's cart (the same cart the browser shows after sign-in)."""

    path = "/api/cart"
    tags = ["cart"]
    security = BEARER

    @get("", operation_id="getCart", responses=problems(401))
    async def get_cart(self, request: UserRequest, carts_service: CartsDep, settings: SettingsDep) -> CartOut:
        """The cart with current prices, its promotions and totals."""
        return await priced_cart(carts_service, settings, CartOwner(user_id=request.user.id))

    @post("/items", operation_id="addCartItem", status_code=201, responses=problems(400, 401, 404, 409, 422))
    async def add_item(
        self, request: UserRequest, data: JSONBody[CartItemIn], carts_service: CartsDep, settings: SettingsDep
    ) -> CartOut:
        """Add units of a variant by SKU (stock is checked: 409 with the shortfall; 422: no variant on sale has the
        SKU)."""
        owner = CartOwner(user_id=request.user.id)
        await carts_service.add(owner, sku=data.sku, quantity=data.quantity)
        return await priced_cart(carts_service, settings, owner)

    @patch("/items/{item_id:int}", operation_id="updateCartItem", responses=problems(400, 401, 404, 409, 422))
    async def update_item(
        self,
        request: UserRequest,
        item_id: PathId,
        data: JSONBody[CartItemPatch],
        carts_service: CartsDep,
        settings: SettingsDep,
    ) -> CartOut:
        """Change a line's quantity (0 removes it)."""
        owner = CartOwner(user_id=request.user.id)
        await carts_service.set_quantity(owner, item_id, data.quantity)
        return await priced_cart(carts_service, settings, owner)

    @delete("/items/{item_id:int}", operation_id="deleteCartItem", status_code=200, responses=problems(400, 401, 404))
    async def delete_item(
        self, request: UserRequest, item_id: PathId, carts_service: CartsDep, settings: SettingsDep
    ) -> CartOut:
        """Remove a line."""
        owner = CartOwner(user_id=request.user.id)
        await carts_service.remove(owner, item_id)
        return await priced_cart(carts_service, settings, owner)

    @post("/promotion-code", operation_id="applyPromotionCode", status_code=200, responses=problems(400, 401, 422))
    async def apply_promotion_code(
        self, request: UserRequest, data: JSONBody[PromotionCodeIn], carts_service: CartsDep, settings: SettingsDep
    ) -> CartOut:
        """Apply a promotion code to the cart (case-insensitive). A code that does not apply now is not
        kept: 422, and the problem's ``detail`` says why (unknown, expired, not yet valid, minimum not
        reached, used up, not for these items)."""
        owner = CartOwner(user_id=request.user.id)
        pricer = Pricer(carts_service.repository.session, settings.shop)
        await apply_code(pricer, carts_service, owner, data.code, user_id=request.user.id)
        return await priced_cart(carts_service, settings, owner)

    @delete("/promotion-code", operation_id="removePromotionCode", status_code=200, responses=problems(401))
    async def remove_promotion_code(
        self, request: UserRequest, carts_service: CartsDep, settings: SettingsDep
    ) -> CartOut:
        """Take the promotion code off the cart."""
        owner = CartOwner(user_id=request.user.id)
        await carts_service.set_promotion_code(owner, None)
        return await priced_cart(carts_service, settings, owner)

    @delete("", operation_id="clearCart", status_code=204, responses=problems(401))
    async def clear(self, request: UserRequest, carts_service: CartsDep) -> None:
        """Empty the cart."""
        await carts_service.clear(CartOwner(user_id=request.user.id))
