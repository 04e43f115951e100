"""Cart rules: guest and signed-in carts, adding and changing lines against stock, merging at sign-in.

Stock is checked whenever a quantity goes up, so the shopper hears "only 3 left" at once; the
decisive check is still the conditional decrement at checkout (``webshop.stock.service``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.catalog.service import visible_products
from webshop.checkout.pricing import ShippingMethod, Totals, tax_amount
from webshop.db.models import Cart, CartLine, Product, Variant
from webshop.errors import InsufficientStock, NotFound, ValidationFailed

MAX_LINE_QUANTITY = 99


@dataclass(frozen=True)
class Shortfall:
    """A line that cannot be had in full: ``requested`` units of ``sku``, ``available`` on hand."""

    sku: str
    name: str
    requested: int
    available: int

    def message(self) -> str:
        """Say it as a shopper would want to hear it."""
        if self.available <= 0:
            return f"{self.name} ({self.sku}) is sold out."
        return f"Only {self.available} left of {self.name} ({self.sku}); you asked for {self.requested}."


@dataclass(frozen=True)
class LineView:
    """A cart line as shown: current unit price and line total in minor units, stock on hand."""

    id: int
    variant_id: int
    product_id: int
    sku: str
    product_name: str
    product_slug: str
    options: dict[str, str]
    unit_price: int
    currency: str
    quantity: int
    stock: int
    tax_category: str

    @property
    def line_total(self) -> int:
        """``unit_price × quantity``."""
        return self.unit_price * self.quantity

    @property
    def shortfall(self) -> Shortfall | None:
        """A ``Shortfall`` if there is not enough stock for this line right now."""
        if self.quantity > self.stock:
            return Shortfall(self.sku, self.product_name, self.quantity, max(self.stock, 0))
        return None


@dataclass(frozen=True)
class CartView:
    """The cart as shown: lines, item count and subtotal (minor units of ``currency``)."""

    id: int | None
    lines: list[LineView] = field(default_factory=list)
    currency: str = "USD"

    @property
    def count(self) -> int:
        """Number of units in the cart (what the header badge shows)."""
        return sum(line.quantity for line in self.lines)

    @property
    def subtotal(self) -> int:
        """Sum of line totals."""
        return sum(line.line_total for line in self.lines)

    @property
    def shortfalls(self) -> list[Shortfall]:
        """Every line that cannot be had in full right now."""
        return [s for line in self.lines if (s := line.shortfall)]

    def totals(self, shipping: ShippingMethod | None, tax_rates_bp: dict[str, int]) -> Totals:
        """Subtotal, shipping, tax (per line, rounded half up) for this cart."""
        tax = sum(tax_amount(line.line_total, tax_rates_bp.get(line.tax_category, 0)) for line in self.lines)
        return Totals(
            subtotal=self.subtotal, shipping=shipping.price if shipping else 0, tax=tax, currency=self.currency
        )

    def signature(self) -> str:
        """A fingerprint of what the shopper sees (variants, quantities, prices), to detect changes."""
        return ";".join(f"{ln.variant_id}x{ln.quantity}@{ln.unit_price}{ln.currency}" for ln in self.lines)


@dataclass(frozen=True)
class CartOwner:
    """Whose cart: a signed-in ``user_id``, or a guest's session ``token`` (either may be ``None``)."""

    user_id: int | None = None
    token: str | None = None


class CartService(SQLAlchemyAsyncRepositoryService[Cart]):
    """Carts and their lines."""

    class Repo(SQLAlchemyAsyncRepository[Cart]):
        """Cart repository."""

        model_type = Cart

    repository_type = Repo

    async def find(self, owner: CartOwner) -> Cart | None:
        """Return the owner's cart with its lines and variants loaded, or ``None``."""
        if owner.user_id is not None:
            condition = Cart.user_id == owner.user_id
        elif owner.token:
            condition = Cart.token == owner.token
        else:
            return None
        return await self.repository.session.scalar(
            select(Cart)
            .where(condition)
            .options(selectinload(Cart.lines).joinedload(CartLine.variant).joinedload(Variant.product))
            .execution_options(populate_existing=True)
        )

    async def count(self, owner: CartOwner) -> int:
        """Units in the owner's cart (one query; for the header badge)."""
        if owner.user_id is not None:
            condition = Cart.user_id == owner.user_id
        elif owner.token:
            condition = Cart.token == owner.token
        else:
            return 0
        total = await self.repository.session.scalar(
            select(func.coalesce(func.sum(CartLine.quantity), 0))
            .join(Cart, Cart.id == CartLine.cart_id)
            .where(condition)
        )
        return int(total or 0)

    async def get_or_create(self, owner: CartOwner) -> Cart:
        """Return the owner's cart, creating it (with a fresh guest token if needed).

        Raises:
            ValidationFailed: neither a user nor a guest token was given.
        """
        cart = await self.find(owner)
        if cart is not None:
            return cart
        if owner.user_id is None and not owner.token:
            raise ValidationFailed("A cart needs a shopper.")
        cart = Cart(user_id=owner.user_id, token=None if owner.user_id is not None else owner.token)
        self.repository.session.add(cart)
        try:
            async with self.repository.session.begin_nested():
                await self.repository.session.flush()
        except IntegrityError:
            # Another request created it at the same moment; use that one.
            found = await self.find(owner)
            if found is None:
                raise
            return found
        return await self.find(owner) or cart

    async def view(self, owner: CartOwner) -> CartView:
        """The owner's cart as shown to them (an empty view when there is none)."""
        cart = await self.find(owner)
        return self.view_of(cart)

    @staticmethod
    def view_of(cart: Cart | None) -> CartView:
        """Build a ``CartView`` from a loaded cart."""
        if cart is None:
            return CartView(id=None)
        lines = []
        for line in cart.lines:
            variant = line.variant
            product = variant.product
            lines.append(
                LineView(
                    id=line.id,
                    variant_id=variant.id,
                    product_id=product.id,
                    sku=variant.sku,
                    product_name=product.name,
                    product_slug=product.slug,
                    options=variant.options(product.option_groups or []),
                    unit_price=variant.price,
                    currency=variant.currency,
                    quantity=line.quantity,
                    stock=variant.stock if product.is_active and product.deleted_at is None else 0,
                    tax_category=variant.tax_category,
                )
            )
        currency = lines[0].currency if lines else "USD"
        return CartView(id=cart.id, lines=lines, currency=currency)

    async def _variant(self, *, variant_id: int | None = None, sku: str | None = None) -> Variant:
        condition = Variant.id == variant_id if variant_id is not None else Variant.sku == (sku or "").strip()
        variant = await self.repository.session.scalar(
            select(Variant).join(Product).where(condition, visible_products()).options(selectinload(Variant.product))
        )
        if variant is None:
            raise NotFound("That product is not available.")
        return variant

    async def add(
        self, owner: CartOwner, *, quantity: int, variant_id: int | None = None, sku: str | None = None
    ) -> Cart:
        """Add ``quantity`` units of a variant (by id or SKU), merging with an existing line.

        Raises:
            ValidationFailed: quantity below 1 or above ``MAX_LINE_QUANTITY`` in total.
            NotFound: no visible variant with that id/SKU.
            InsufficientStock: the line would exceed the stock on hand ("only 3 left").
        """
        _check_quantity(quantity)
        variant = await self._variant(variant_id=variant_id, sku=sku)
        cart = await self.get_or_create(owner)
        line = next((ln for ln in cart.lines if ln.variant_id == variant.id), None)
        wanted = quantity + (line.quantity if line else 0)
        _check_quantity(wanted)
        _check_stock(variant, wanted)
        if line is None:
            cart.lines.append(CartLine(variant_id=variant.id, quantity=wanted, variant=variant))
        else:
            line.quantity = wanted
        await self.repository.session.flush()
        return cart

    async def set_quantity(self, owner: CartOwner, line_id: int, quantity: int) -> Cart:
        """Set a line's quantity; 0 removes the line.

        Raises:
            NotFound: the line is not in the owner's cart.
            ValidationFailed: quantity below 0 or above ``MAX_LINE_QUANTITY``.
            InsufficientStock: more than the stock on hand.
        """
        if quantity == 0:
            return await self.remove(owner, line_id)
        _check_quantity(quantity)
        cart = await self.find(owner)
        line = next((ln for ln in cart.lines if ln.id == line_id), None) if cart else None
        if cart is None or line is None:
            raise NotFound("That item is no longer in your cart.")
        if quantity > line.quantity:
            _check_stock(line.variant, quantity)
        line.quantity = quantity
        await self.repository.session.flush()
        return cart

    async def remove(self, owner: CartOwner, line_id: int) -> Cart:
        """Remove a line from the owner's cart.

        Raises:
            NotFound: the line is not in the owner's cart.
        """
        cart = await self.find(owner)
        line = next((ln for ln in cart.lines if ln.id == line_id), None) if cart else None
        if cart is None or line is None:
            raise NotFound("That item is no longer in your cart.")
        cart.lines.remove(line)
        await self.repository.session.flush()
        return cart

    async def clear(self, owner: CartOwner) -> None:
        """Remove every line from the owner's cart."""
        cart = await self.find(owner)
        if cart is not None:
            await self.repository.session.execute(delete(CartLine).where(CartLine.cart_id == cart.id))
            self.repository.session.expire(cart, ["lines"])

    async def merge_guest_cart(self, guest_token: str, user_id: int) -> list[str]:
        """Move a guest cart's lines into the user's cart at sign-in, then delete the guest cart.

        Quantities of the same variant are summed and capped at the stock on hand (and at
        ``MAX_LINE_QUANTITY``). Returns messages telling the shopper what changed (empty if nothing
        had to be capped).
        """
        guest = await self.find(CartOwner(token=guest_token))
        if guest is None or guest.user_id is not None:
            return []
        if not guest.lines:
            await self.repository.session.delete(guest)
            await self.repository.session.flush()
            return []
        cart = await self.get_or_create(CartOwner(user_id=user_id))
        messages: list[str] = []
        moved = 0
        for guest_line in guest.lines:
            variant = guest_line.variant
            line = next((ln for ln in cart.lines if ln.variant_id == variant.id), None)
            wanted = guest_line.quantity + (line.quantity if line else 0)
            allowed = min(wanted, max(variant.stock, 0), MAX_LINE_QUANTITY)
            if allowed < wanted:
                messages.append(
                    f"{variant.product.name} ({variant.sku}): only {allowed} available, so your cart has {allowed}."
                    if allowed
                    else f"{variant.product.name} ({variant.sku}) is sold out and was removed."
                )
            if allowed <= 0:
                if line is not None:
                    cart.lines.remove(line)
                continue
            moved += 1
            if line is None:
                cart.lines.append(CartLine(variant_id=variant.id, quantity=allowed, variant=variant))
            else:
                line.quantity = allowed
        await self.repository.session.delete(guest)
        await self.repository.session.flush()
        if moved and not messages:
            messages.append("The items you added before signing in are in your cart.")
        return messages


def new_guest_token() -> str:
    """A random token identifying a guest's cart (kept in the encrypted session cookie)."""
    return secrets.token_urlsafe(24)


def _check_quantity(quantity: int) -> None:
    if quantity < 1 or quantity > MAX_LINE_QUANTITY:
        raise ValidationFailed(
            f"Choose a quantity from 1 to {MAX_LINE_QUANTITY}.",
            field_errors={"quantity": f"Choose a quantity from 1 to {MAX_LINE_QUANTITY}."},
        )


def _check_stock(variant: Variant, wanted: int) -> None:
    if wanted > variant.stock:
        shortfall = Shortfall(variant.sku, variant.product.name, wanted, max(variant.stock, 0))
        raise InsufficientStock(shortfall.message(), shortfalls=[shortfall])
