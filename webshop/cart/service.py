"""Cart rules: guest and signed-in carts, adding and changing lines against stock, merging at sign-in.

Stock is checked whenever a quantity goes up, so the shopper hears "only 3 left" at once; the
decisive check is still the conditional decrement at checkout (``webshop.stock.service``).

Every write is one atomic statement, safe with many workers on PostgreSQL (not only behind SQLite's
single writer): the cart is found or created by an upsert on its unique owner (``INSERT ... ON
CONFLICT``), an add is an upsert of the line whose ``quantity = quantity + :n`` only happens while
the total stays within the stock on hand, and a change or removal is a conditional ``UPDATE`` or
``DELETE`` whose row count says whether it happened. So 20 adds at once add 20 units, never fewer,
and never a server error. Each write verb commits before it returns.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, cast

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import and_, case, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from webshop.catalog.query import visible_products
from webshop.catalog.thumbnails import product_thumbnails
from webshop.db.models import Cart, CartLine, Product, Variant
from webshop.db.repository import repository_for
from webshop.errors import CartChanged, InsufficientStock, NotFound, ValidationFailed

MAX_LINE_QUANTITY = 99


@dataclass(frozen=True)
class Shortfall:
    """A line that cannot be had in full: ``requested`` units of ``sku``, ``available`` on hand;
    ``withdrawn``: the product is not sold any more (switched off, deleted, or its shop suspended or closed)."""

    sku: str
    name: str
    requested: int
    available: int
    withdrawn: bool = False

    def message(self) -> str:
        """Say it as a shopper would want to hear it."""
        if self.withdrawn:
            return f"{self.name} ({self.sku}) is no longer available; remove it from your cart."
        if self.available <= 0:
            return f"{self.name} ({self.sku}) is sold out."
        return f"Only {self.available} left of {self.name} ({self.sku}); you asked for {self.requested}."


@dataclass(frozen=True)
class LineView:
    """A cart line as shown: current unit price and line total in minor units, stock on hand, and the
    shop that sells the product (``shop_id``)."""

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
    image_key: str | None = None
    shop_id: int | None = None
    weight_grams: int = 0
    category_id: int | None = None
    withdrawn: bool = False
    """The product is not sold any more (``visible_products``): ``stock`` is then 0 and checkout refuses the line."""

    @property
    def line_total(self) -> int:
        """``unit_price × quantity``."""
        return self.unit_price * self.quantity

    @property
    def shortfall(self) -> Shortfall | None:
        """A ``Shortfall`` if there is not enough stock for this line right now."""
        if self.quantity > self.stock or self.withdrawn:
            return Shortfall(self.sku, self.product_name, self.quantity, max(self.stock, 0), self.withdrawn)
        return None


@dataclass(frozen=True)
class CartView:
    """The cart as shown: lines, item count and subtotal (minor units of ``currency``)."""

    id: int | None
    lines: list[LineView] = field(default_factory=list)
    currency: str = "USD"
    promotion_code: str | None = None

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

    @property
    def shop_ids(self) -> list[int | None]:
        """The shops that sell the cart's lines, in the order of their first line: one shipment each."""
        return list(dict.fromkeys(line.shop_id for line in self.lines))

    def on_sale(self) -> CartView:
        """The cart without the lines whose product is no longer sold (``LineView.withdrawn``): what its
        totals count. Those lines stay in the cart, marked, until the shopper removes them; checkout
        refuses them."""
        if not any(line.withdrawn for line in self.lines):
            return self
        return replace(self, lines=[line for line in self.lines if not line.withdrawn])

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

    repository_type = repository_for(Cart)

    async def find(self, owner: CartOwner) -> Cart | None:
        """Return the owner's cart with its lines and variants loaded, or ``None``."""
        if owner.user_id is not None:
            condition = Cart.user_id == owner.user_id
        elif owner.token:
            condition = Cart.token == owner.token
        else:
            return None
        found: Cart | None = await self.repository.session.scalar(
            select(Cart)
            .where(condition)
            .options(selectinload(Cart.lines).joinedload(CartLine.variant).joinedload(Variant.product))
            .execution_options(populate_existing=True)
        )
        return found

    async def units_in_cart(self, owner: CartOwner) -> int:
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
        """Return the owner's cart, creating it if there is none (an upsert: safe when requests race).

        Raises:
            ValidationFailed: neither a user nor a guest token was given.
        """
        await self._cart_id(owner)
        cart = await self.find(owner)
        if cart is None:  # deleted between the upsert and the read (a sign-in merged the guest cart)
            await self._cart_id(owner)
            cart = await self.find(owner)
        if cart is None:
            raise NotFound("Your cart is no longer there. Please try again.")
        return cart

    async def set_promotion_code(self, owner: CartOwner, code: str | None) -> None:
        """Keep ``code`` (normalised, ``webshop.pricing.codes``) on the owner's cart, or take it off with
        ``None``; the cart is created if missing. Committed. Whether it applies is decided each time the
        cart is priced (``webshop.checkout.quote``)."""
        cart_id = await self._cart_id(owner)
        await self.repository.session.execute(
            update(Cart)
            .where(Cart.id == cart_id)
            .values(promotion_code=code)
            .execution_options(synchronize_session=False)
        )
        await self.repository.session.commit()

    async def _cart_id(self, owner: CartOwner) -> int:
        """The id of the owner's cart, created if missing: one ``INSERT ... ON CONFLICT DO UPDATE``.

        Two requests creating the same shopper's first cart at once both get the one cart (on
        PostgreSQL the second waits for the first to commit, then takes the conflict branch).

        Raises:
            ValidationFailed: neither a user nor a guest token was given.
        """
        if owner.user_id is not None:
            values: dict[str, Any] = {"user_id": owner.user_id, "token": None}
            target: list[Any] = [Cart.user_id]
        elif owner.token:
            values = {"user_id": None, "token": owner.token}
            target = [Cart.token]
        else:
            raise ValidationFailed("A cart needs a shopper.")
        now = datetime.now(UTC)
        statement = _insert(self.repository.session, Cart).values(**values, created_at=now, updated_at=now)
        statement = statement.on_conflict_do_update(index_elements=target, set_={"updated_at": now})
        return int((await self.repository.session.execute(statement.returning(Cart.id))).scalar_one())

    async def view(self, owner: CartOwner) -> CartView:
        """The owner's cart as shown to them, with each product's photo (an empty view when there is none)."""
        cart = await self.find(owner)
        if cart is None or not cart.lines:
            return self.view_of(cart)
        thumbnails = await product_thumbnails(self.repository.session, (line.variant.product_id for line in cart.lines))
        return self.view_of(cart, {pid: t.image_key for pid, t in thumbnails.items() if t.image_key})

    @staticmethod
    def view_of(cart: Cart | None, image_keys: dict[int, str] | None = None) -> CartView:
        """Build a ``CartView`` from a loaded cart; ``image_keys`` maps product ids to their photo's key."""
        if cart is None:
            return CartView(id=None)
        image_keys = image_keys or {}
        lines = []
        for line in cart.lines:
            variant = line.variant
            product = variant.product
            on_sale = bool(product.is_active and product.shop_active and product.deleted_at is None)
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
                    stock=variant.stock if on_sale else 0,
                    tax_category=variant.tax_category,
                    image_key=image_keys.get(product.id),
                    shop_id=product.shop_id,
                    weight_grams=variant.weight_grams,
                    category_id=product.category_id,
                    withdrawn=not on_sale,
                )
            )
        currency = lines[0].currency if lines else "USD"
        return CartView(id=cart.id, lines=lines, currency=currency, promotion_code=cart.promotion_code)

    async def _variant(self, *, variant_id: int | None = None, sku: str | None = None) -> Variant:
        """The variant on sale by ``variant_id`` or else ``sku``, its product loaded.

        Raises:
            ValidationFailed: none on sale has it (unknown, or its product deleted, withdrawn or of a suspended
                shop); ``field_errors`` names ``variant_id`` or ``sku``: an unknown id in the body is bad
                input (422), as an unknown ``shop_id`` or promotion code.
        """
        condition = Variant.id == variant_id if variant_id is not None else Variant.sku == (sku or "").strip()
        variant = await self.repository.session.scalar(
            select(Variant).join(Product).where(condition, visible_products()).options(selectinload(Variant.product))
        )
        if variant is None:
            message = "That product is not available."
            raise ValidationFailed(message, field_errors={"variant_id" if variant_id is not None else "sku": message})
        return cast("Variant", variant)

    async def add(
        self, owner: CartOwner, *, quantity: int, variant_id: int | None = None, sku: str | None = None
    ) -> Cart:
        """Add ``quantity`` units of a variant (by id or SKU), merging with an existing line; committed.

        One upsert of the line (``ON CONFLICT (cart_id, variant_id) DO UPDATE SET quantity = quantity + :n``
        only while the total stays within the stock on hand and ``MAX_LINE_QUANTITY``), so concurrent
        adds each add their units or fail; none is lost.

        Returns:
            The owner's cart with its lines, as committed.

        Raises:
            ValidationFailed: quantity below 1 or above ``MAX_LINE_QUANTITY`` in total, or no variant on
                sale has that id/SKU (``field_errors`` names it).
            InsufficientStock: the line would exceed the stock on hand ("only 3 left").
        """
        _check_quantity(quantity)
        variant = await self._variant(variant_id=variant_id, sku=sku)
        session = self.repository.session
        stock = variant.stock
        for _attempt in range(3):
            cart_id = await self._cart_id(owner)
            if quantity <= stock and await self._add_units(cart_id, variant.id, quantity) is not None:
                break
            # Refused: say why, from the line and the stock as they are now.
            existing = await session.scalar(
                select(CartLine.quantity).where(CartLine.cart_id == cart_id, CartLine.variant_id == variant.id)
            )
            stock = int(await session.scalar(select(Variant.stock).where(Variant.id == variant.id)) or 0)
            wanted = quantity + int(existing or 0)
            if wanted > MAX_LINE_QUANTITY:
                message = (
                    f"You can have at most {MAX_LINE_QUANTITY} of one item in your cart; it already holds "
                    f"{int(existing or 0)} of {variant.product.name} ({variant.sku})."
                )
                raise ValidationFailed(message, field_errors={"quantity": message})
            if wanted > stock:
                shortfall = Shortfall(variant.sku, variant.product.name, wanted, max(stock, 0))
                raise InsufficientStock(shortfall.message(), shortfalls=[shortfall])
            # The stock or the line changed between the attempt and this check: try again.
        else:
            raise InsufficientStock(
                f"{variant.product.name} ({variant.sku}) is selling fast; please try again.", shortfalls=[]
            )
        cart = await self.find(owner)
        await session.commit()
        if cart is None:
            raise NotFound("Your cart is no longer there. Please try again.")
        return cart

    async def _add_units(self, cart_id: int, variant_id: int, quantity: int) -> int | None:
        """Add ``quantity`` units to the cart's line of ``variant_id`` (a new line if there is none).

        Returns:
            The line's new quantity, or ``None`` when the existing line plus ``quantity`` would exceed
            the variant's stock or ``MAX_LINE_QUANTITY`` (nothing changed then).
        """
        now = datetime.now(UTC)
        statement = _insert(self.repository.session, CartLine).values(
            cart_id=cart_id, variant_id=variant_id, quantity=quantity, created_at=now, updated_at=now
        )
        total = CartLine.quantity + statement.excluded.quantity
        stock = select(Variant.stock).where(Variant.id == variant_id).scalar_subquery()
        statement = statement.on_conflict_do_update(
            index_elements=[CartLine.cart_id, CartLine.variant_id],
            set_={"quantity": total, "updated_at": now},
            where=and_(total <= MAX_LINE_QUANTITY, total <= stock),
        )
        result = await self.repository.session.execute(statement.returning(CartLine.quantity))
        return cast("int | None", result.scalar_one_or_none())

    async def set_quantity(self, owner: CartOwner, line_id: int, quantity: int) -> Cart | None:
        """Set a line's quantity; 0 removes the line. Committed.

        One conditional ``UPDATE`` (the line must be in the owner's cart, and a quantity going up must
        fit the stock on hand); concurrent changes do not fail, the last one stays.

        Returns:
            The owner's cart with its lines, as committed.

        Raises:
            NotFound: the line is not in the owner's cart.
            ValidationFailed: quantity below 0 or above ``MAX_LINE_QUANTITY``.
            InsufficientStock: more than the stock on hand.
        """
        if quantity == 0:
            return await self.remove(owner, line_id)
        _check_quantity(quantity)
        session = self.repository.session
        stock = select(Variant.stock).where(Variant.id == CartLine.variant_id).scalar_subquery()
        result = await session.execute(
            update(CartLine)
            .where(
                CartLine.id == line_id,
                CartLine.cart_id.in_(_owned_cart_ids(owner)),
                or_(CartLine.quantity >= quantity, stock >= quantity),
            )
            .values(quantity=quantity, updated_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            row = (
                await session.execute(
                    select(Variant.sku, Product.name, Variant.stock)
                    .select_from(CartLine)
                    .join(Variant, Variant.id == CartLine.variant_id)
                    .join(Product, Product.id == Variant.product_id)
                    .where(CartLine.id == line_id, CartLine.cart_id.in_(_owned_cart_ids(owner)))
                )
            ).first()
            if row is None:
                raise NotFound("That item is no longer in your cart.")
            shortfall = Shortfall(row.sku, row.name, quantity, max(row.stock, 0))
            raise InsufficientStock(shortfall.message(), shortfalls=[shortfall])
        cart = await self.find(owner)
        await session.commit()
        return cart

    async def remove(self, owner: CartOwner, line_id: int) -> Cart | None:
        """Remove a line from the owner's cart (one conditional ``DELETE``); committed.

        Returns:
            The owner's cart with its remaining lines.

        Raises:
            NotFound: the line is not in the owner's cart (or was removed already).
        """
        session = self.repository.session
        result = await session.execute(
            delete(CartLine)
            .where(CartLine.id == line_id, CartLine.cart_id.in_(_owned_cart_ids(owner)))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:
            raise NotFound("That item is no longer in your cart.")
        cart = await self.find(owner)
        await session.commit()
        return cart

    async def clear(self, owner: CartOwner) -> None:
        """Remove every line from the owner's cart, and its promotion code: an emptied cart starts over (a
        code left on it, gone stale since, would refuse the next checkout)."""
        cart = await self.find(owner)
        if cart is not None:
            await self.repository.session.execute(delete(CartLine).where(CartLine.cart_id == cart.id))
            cart.promotion_code = None
            self.repository.session.expire(cart, ["lines"])

    async def take_lines(self, cart_id: int, lines: list[tuple[int, int]]) -> None:
        """Remove exactly these ``(variant_id, quantity)`` lines from cart ``cart_id`` (not committed:
        checkout's reservation does it in the transaction that takes the stock).

        One conditional ``DELETE`` per line, matching its quantity too: a line that changed or went
        since the cart was read (another tab checked out, an add-to-cart in between) is not removed.
        On PostgreSQL the deletes lock the lines, so a second checkout of the same cart waits for the
        first to commit and then finds nothing to take.

        Raises:
            CartChanged: a line is no longer in the cart with that quantity (the caller rolls back).
        """
        session = self.repository.session
        for variant_id, quantity in sorted(lines):
            result = await session.execute(
                delete(CartLine).where(
                    CartLine.cart_id == cart_id, CartLine.variant_id == variant_id, CartLine.quantity == quantity
                )
            )
            if result.rowcount != 1:
                raise CartChanged("Your cart changed while you were checking out. Please review it again.")

    async def restore_lines(
        self, owner: CartOwner, lines: list[tuple[int, int]], promotion_code: str | None = None
    ) -> None:
        """Put ``(variant_id, quantity)`` lines back into ``owner``'s cart (an account's, or a guest's by its
        session token): a declined or cancelled payment gives the shopper back the cart they checked out,
        with the discount code the order used (``promotion_code``) unless the cart has a code again by now.
        Quantities add to lines added meanwhile, capped at ``MAX_LINE_QUANTITY``. Not committed: it is part
        of the caller's transaction.

        Raises:
            ValidationFailed: ``owner`` has neither a user nor a token.
        """
        session = self.repository.session
        cart_id = await self._cart_id(owner)
        if promotion_code:
            await session.execute(
                update(Cart)
                .where(Cart.id == cart_id, Cart.promotion_code.is_(None))
                .values(promotion_code=promotion_code)
                .execution_options(synchronize_session=False)
            )
        now = datetime.now(UTC)
        for variant_id, quantity in sorted(lines):
            statement = _insert(session, CartLine).values(
                cart_id=cart_id, variant_id=variant_id, quantity=quantity, created_at=now, updated_at=now
            )
            summed = CartLine.quantity + statement.excluded.quantity
            total = case((summed > MAX_LINE_QUANTITY, MAX_LINE_QUANTITY), else_=summed)
            await session.execute(
                statement.on_conflict_do_update(
                    index_elements=[CartLine.cart_id, CartLine.variant_id], set_={"quantity": total, "updated_at": now}
                )
            )

    async def merge_guest_cart(self, guest_token: str, user_id: int) -> list[str]:
        """Move a guest cart's lines into the user's cart at sign-in, then delete the guest cart.

        Quantities of the same variant are summed and capped at the stock on hand (and at
        ``MAX_LINE_QUANTITY``). Returns messages telling the shopper what changed (empty if nothing
        had to be capped). Not committed: it is part of the sign-in's transaction.

        The guest cart is claimed by deleting it (a conditional ``DELETE`` with a row count): of two
        sign-ins racing with the same guest cookie only one moves its lines. Each line is moved by
        an upsert, so lines the user adds at the same moment elsewhere are summed, not overwritten.
        """
        session = self.repository.session
        guest = await self.find(CartOwner(token=guest_token))
        if guest is None or guest.user_id is not None:
            return []
        moving = [(line.variant_id, line.quantity, line.variant) for line in guest.lines]
        session.expunge(guest)
        claimed = await session.execute(
            delete(Cart).where(Cart.id == guest.id, Cart.user_id.is_(None)).execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1 or not moving:
            return []
        cart_id = await self._cart_id(CartOwner(user_id=user_id))
        ids = [variant_id for variant_id, _quantity, _variant in moving]
        stocks = dict((await session.execute(select(Variant.id, Variant.stock).where(Variant.id.in_(ids)))).all())
        before = dict(
            (
                await session.execute(
                    select(CartLine.variant_id, CartLine.quantity).where(
                        CartLine.cart_id == cart_id, CartLine.variant_id.in_(ids)
                    )
                )
            ).all()
        )
        messages: list[str] = []
        moved = 0
        for variant_id, quantity, variant in moving:
            cap = min(max(int(stocks.get(variant_id, 0)), 0), MAX_LINE_QUANTITY)
            wanted = quantity + int(before.get(variant_id, 0))
            label = f"{variant.product.name} ({variant.sku})"
            if cap <= 0:
                await session.execute(
                    delete(CartLine)
                    .where(CartLine.cart_id == cart_id, CartLine.variant_id == variant_id)
                    .execution_options(synchronize_session=False)
                )
                messages.append(f"{label} is sold out and was removed.")
                continue
            now = datetime.now(UTC)
            statement = _insert(session, CartLine).values(
                cart_id=cart_id, variant_id=variant_id, quantity=min(quantity, cap), created_at=now, updated_at=now
            )
            total = CartLine.quantity + statement.excluded.quantity
            statement = statement.on_conflict_do_update(
                index_elements=[CartLine.cart_id, CartLine.variant_id],
                set_={"quantity": case((total > cap, cap), else_=total), "updated_at": now},
            )
            allowed = (await session.execute(statement.returning(CartLine.quantity))).scalar_one()
            moved += 1
            if allowed < wanted and allowed == MAX_LINE_QUANTITY:
                messages.append(f"{label}: a cart holds at most {allowed} of one item, so your cart has {allowed}.")
            elif allowed < wanted:
                messages.append(f"{label}: only {allowed} available, so your cart has {allowed}.")
        if moved and not messages:
            messages.append("The items you added before signing in are in your cart.")
        return messages


def new_guest_token() -> str:
    """A random token identifying a guest's cart (kept in the encrypted session cookie)."""
    return secrets.token_urlsafe(24)


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    """An ``INSERT`` for ``model`` in the session's SQL dialect, which has ``on_conflict_do_update``."""
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(model)


def _owned_cart_ids(owner: CartOwner) -> Any:
    """``SELECT id FROM carts`` of ``owner`` (none for an owner without user or token)."""
    if owner.user_id is not None:
        return select(Cart.id).where(Cart.user_id == owner.user_id)
    return select(Cart.id).where(Cart.token == owner.token, Cart.token.is_not(None))


def _check_quantity(quantity: int) -> None:
    if quantity < 1 or quantity > MAX_LINE_QUANTITY:
        raise ValidationFailed(
            f"Choose a quantity from 1 to {MAX_LINE_QUANTITY}.",
            field_errors={"quantity": f"Choose a quantity from 1 to {MAX_LINE_QUANTITY}."},
        )
