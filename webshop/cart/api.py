"""Cart routes of the JSON API: the bearer token's user's cart and its line items."""

from typing import Any

from litestar import Controller, Request, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from webshop.api.responses import problems
from webshop.api.schemas import PathId
from webshop.cart.schemas import CartItemIn, CartItemPatch, CartOut, cart_out
from webshop.cart.service import CartOwner, CartService
from webshop.config import Settings
from webshop.db.models import User
from webshop.security.jwt import BEARER


class CartApiController(Controller):
    """The signed-in user's cart (the same cart the browser shows after sign-in)."""

    path = "/api/cart"
    tags = ["cart"]
    security = BEARER

    @get("", operation_id="getCart", responses=problems(401))
    async def get_cart(
        self,
        request: Request[User, Any, Any],
        carts_service: NamedDependency[CartService],
        settings: NamedDependency[Settings],
    ) -> CartOut:
        """The cart with current prices and totals."""
        return cart_out(await carts_service.view(CartOwner(user_id=request.user.id)), settings.shop.tax_rates_bp)

    @post("/items", operation_id="addCartItem", status_code=201, responses=problems(400, 401, 404, 409, 422))
    async def add_item(
        self,
        request: Request[User, Any, Any],
        data: JSONBody[CartItemIn],
        carts_service: NamedDependency[CartService],
        settings: NamedDependency[Settings],
    ) -> CartOut:
        """Add units of a variant by SKU (stock is checked: 409 with the shortfall)."""
        owner = CartOwner(user_id=request.user.id)
        await carts_service.add(owner, sku=data.sku, quantity=data.quantity)
        return cart_out(await carts_service.view(owner), settings.shop.tax_rates_bp)

    @patch("/items/{item_id:int}", operation_id="updateCartItem", responses=problems(400, 401, 404, 409, 422))
    async def update_item(
        self,
        request: Request[User, Any, Any],
        item_id: PathId,
        data: JSONBody[CartItemPatch],
        carts_service: NamedDependency[CartService],
        settings: NamedDependency[Settings],
    ) -> CartOut:
        """Change a line's quantity (0 removes it)."""
        owner = CartOwner(user_id=request.user.id)
        await carts_service.set_quantity(owner, item_id, data.quantity)
        return cart_out(await carts_service.view(owner), settings.shop.tax_rates_bp)

    @delete("/items/{item_id:int}", operation_id="deleteCartItem", status_code=200, responses=problems(400, 401, 404))
    async def delete_item(
        self,
        request: Request[User, Any, Any],
        item_id: PathId,
        carts_service: NamedDependency[CartService],
        settings: NamedDependency[Settings],
    ) -> CartOut:
        """Remove a line."""
        owner = CartOwner(user_id=request.user.id)
        await carts_service.remove(owner, item_id)
        return cart_out(await carts_service.view(owner), settings.shop.tax_rates_bp)

    @delete("", operation_id="clearCart", status_code=204, responses=problems(401))
    async def clear(self, request: Request[User, Any, Any], carts_service: NamedDependency[CartService]) -> None:
        """Empty the cart."""
        await carts_service.clear(CartOwner(user_id=request.user.id))
