"""Checkout rules: the address book, and placing an order exactly once without overselling.

``CheckoutService.place_order`` is the heart of the shop. It works in three steps, so that no
transaction holds stock rows (or SQLite's write lock) while the payment provider works
(conventions: "one owner per unit of work"):

1. **Reserve**, one short transaction, committed:
   * find an order already placed with this checkout token and answer with it (idempotency);
   * insert the order row first, as *pending payment*, which claims the token under a unique
     constraint: a concurrent request with the same token waits on it (PostgreSQL) or on the write
     lock (SQLite) and then finds the first order;
   * take stock with one conditional ``UPDATE ... WHERE stock >= :n`` per variant, in variant-id
     order (no deadlocks), collecting every shortfall before failing;
   * write the order lines as a snapshot of what the shopper saw and take those lines out of the cart
     (a conditional ``DELETE`` each, so two checkouts of one cart cannot both order it).

   Any failure rolls the whole step back: no order, stock untouched, cart kept.
2. **Charge** the provider with no transaction open, the checkout token as its idempotency key.
3. **Settle**, one short transaction: the order becomes paid by a conditional
   ``UPDATE ... WHERE status = 'pending'`` and the confirmation e-mail joins the outbox; or, declined,
   the pending order is deleted, its stock returned (a ``cancellation`` movement) and its lines put
   back in the cart, so a declined card still leaves no order and the shopper can try another card.
   An order an admin cancelled while the provider was charging it keeps the charge on record as owed
   back and is refunded at once (``OrderService.settle_refund``: recorded, or pending for a retry).

The order is never lost and never charged twice: if the process stops between the steps, the order
stays pending with its stock, and the same checkout token (the form resubmitted, the API's
Idempotency-Key retried) resumes at step 2, where the provider's idempotency returns the first
charge. Cancelling abandoned pending orders after a time limit is the payment issue's work (#18).

A form submitted several times at once (a double click, a reload) with two workers on PostgreSQL:
the second request's insert waits for the first to commit and then hits the unique token, or it
arrives after the first committed and finds the cart empty (or the stock gone); either way it looks
the token up again and lands on the first request's order, paying it if it is still pending.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.cart.service import CartOwner, CartService, CartView, Shortfall
from webshop.catalog.summaries import refresh_product_summaries
from webshop.checkout.notes import clean_customer_note
from webshop.checkout.payments import PaymentProvider, normalize_card_number
from webshop.checkout.pricing import ShippingMethod, Totals, shipping_method, tax_amount
from webshop.db.models import (
    Address,
    Fulfilment,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    Shop,
    StockReason,
    User,
    Variant,
)
from webshop.errors import (
    CartChanged,
    DomainError,
    EmailNotVerified,
    InsufficientStock,
    NotFound,
    PaymentDeclined,
    ValidationFailed,
)
from webshop.mail.outbox import queue_order_email, queue_shop_order_emails
from webshop.observability.metrics import counts_checkouts
from webshop.orders.service import OrderService
from webshop.stock.service import return_stock, take_stock
from webshop.text import Line
from webshop.webhooks.events import queue_order_change, queue_stock_lows_of_sale

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import ShopSettings

ORDER_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.:]{16,100}$")


class AddressInput(msgspec.Struct, frozen=True, kw_only=True):
    """A shipping address as typed; ``country`` is an ISO 3166-1 alpha-2 code.

    Also the fields of the checkout's address form (``AddressForm`` extends it), so a posted form
    decodes into it; ``Line`` refuses control characters there (``webshop.text``)."""

    name: Line = ""
    line1: Line = ""
    line2: Line = ""
    city: Line = ""
    postal_code: Line = ""
    country: Line = ""

    def cleaned(self) -> AddressInput:
        """Trimmed copy with the country code upper-cased.

        Raises:
            ValidationFailed: a required field is empty, too long, or the country is not two letters.
        """
        values = {k: " ".join(str(getattr(self, k) or "").split()) for k in ADDRESS_FIELDS}
        values["country"] = values["country"].upper()
        errors: dict[str, str] = {}
        limits = {"name": 120, "line1": 200, "line2": 200, "city": 120, "postal_code": 20}
        labels = {
            "name": "the recipient's name",
            "line1": "the street address",
            "city": "the city",
            "postal_code": "the postal code",
        }
        for key, label in labels.items():
            if not values[key]:
                errors[key] = f"Enter {label}."
        for key, limit in limits.items():
            if len(values[key]) > limit:
                errors[key] = f"Use at most {limit} characters."
        if not COUNTRY_RE.match(values["country"]):
            errors["country"] = "Enter a two-letter country code, like US or DE."
        if errors:
            raise ValidationFailed("Please correct the address.", field_errors=errors)
        return AddressInput(**values)


ORDER_LINE_SNAPSHOT = (
    "variant_id",
    "product_id",
    "product_name",
    "product_slug",
    "sku",
    "options",
    "unit_price",
    "currency",
    "quantity",
    "tax_category",
    "line_total",
)
"""The cart line's values an order line keeps as they were at checkout (``LineView`` → ``OrderLine``): what
the shopper saw stays on the order when the product is renamed, repriced or deleted."""

ADDRESS_FIELDS = AddressInput.__struct_fields__
"""The fields of an address, in order: ``name``, ``line1``, ``line2``, ``city``, ``postal_code``, ``country``."""


def new_order_number() -> str:
    """A short, unambiguous, human-friendly order number like ``WS-7K3QX9MD`` (40 random bits)."""
    return "WS-" + "".join(secrets.choice(ORDER_NUMBER_ALPHABET) for _ in range(8))


def new_checkout_token() -> str:
    """A one-time token for a checkout form (stored with the order under a unique constraint)."""
    return secrets.token_urlsafe(24)


class CheckoutService(SQLAlchemyAsyncRepositoryService[Order]):
    """Address book and order placement."""

    class Repo(SQLAlchemyAsyncRepository[Order]):
        """Order repository (placement side)."""

        model_type = Order

    repository_type = Repo

    def __init__(self, session: AsyncSession, *, shop: ShopSettings, **repo_kwargs: Any) -> None:
        """A service on ``session`` that prices orders with ``shop.tax_rates_bp`` and, with
        ``shop.require_verified_email``, takes orders from confirmed addresses only; given at construction
        by the app's provider."""
        super().__init__(session=session, **repo_kwargs)
        self.shop = shop

    def totals(self, view: CartView, method: ShippingMethod) -> Totals:
        """What ``view`` costs with ``method`` at the shop's tax rates: the review page shows these figures
        and ``place_order`` charges them (``CartView.totals``; minor units)."""
        return view.totals(method, self.shop.tax_rates_bp)

    def needs_verified_email(self, user: User) -> bool:
        """True when the shop asks for a verified e-mail address before checkout (``WEBSHOP_REQUIRE_VERIFIED_EMAIL``)
        and ``user`` has not confirmed theirs yet."""
        return self.shop.require_verified_email and user.email_verified_at is None

    async def addresses(self, user_id: int) -> list[Address]:
        """The user's saved addresses, most recently used first."""
        rows = await self.repository.session.scalars(
            select(Address).where(Address.user_id == user_id).order_by(Address.updated_at.desc(), Address.id.desc())
        )
        return list(rows)

    async def address(self, user_id: int, address_id: int) -> Address:
        """One of the user's saved addresses.

        Raises:
            NotFound: no such address in this user's book.
        """
        address = await self.repository.session.scalar(
            select(Address).where(Address.id == address_id, Address.user_id == user_id)
        )
        if address is None:
            raise NotFound("That address is not in your address book.")
        return cast("Address", address)

    async def save_address(self, user_id: int, data: AddressInput) -> Address:
        """Validate ``data`` and keep it in the user's address book (an identical one is reused); committed.

        The same address sent twice at once (a double click) is kept once: the user's row is locked
        (``SELECT ... FOR NO KEY UPDATE`` on PostgreSQL; SQLite's writers hold the database lock from
        ``BEGIN IMMEDIATE``) before the book is searched, so the second request finds the first's.

        Raises:
            ValidationFailed: see ``AddressInput.cleaned``.
        """
        clean = data.cleaned()
        values = {k: getattr(clean, k) for k in ADDRESS_FIELDS}
        session = self.repository.session
        await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))
        existing = await session.scalar(
            select(Address)
            .where(Address.user_id == user_id, *(getattr(Address, k) == v for k, v in values.items()))
            .order_by(Address.id)
            .limit(1)
        )
        if existing is not None:
            existing.updated_at = datetime.now(UTC)
            address = existing
        else:
            address = Address(user_id=user_id, **values)
            session.add(address)
        await session.flush()
        await session.commit()
        return cast("Address", address)

    async def find_by_token(self, checkout_token: str) -> Order | None:
        """The order placed with ``checkout_token``, if any."""
        found: Order | None = await self.repository.session.scalar(
            select(Order)
            .where(Order.checkout_token == checkout_token)
            .options(selectinload(Order.lines), selectinload(Order.fulfilments))
            .execution_options(populate_existing=True)
        )
        return found

    @counts_checkouts
    async def place_order(
        self,
        *,
        user_id: int,
        address: AddressInput,
        shipping_code: str,
        card_number: str,
        checkout_token: str,
        provider: PaymentProvider,
        expected_signature: str | None = None,
        customer_note: str = "",
    ) -> tuple[Order, bool]:
        """Place the user's cart as a paid order, exactly once per ``checkout_token``.

        This method owns its transactions (reserve, then charge outside any transaction, then settle:
        see the module docstring); each is committed explicitly before it returns.

        Args:
            user_id: The signed-in shopper (their cart is the one ordered).
            address: Shipping address (validated here).
            shipping_code: A code from ``SHIPPING_METHODS``.
            card_number: Card number for the payment provider (never stored; the last 4 digits are).
            checkout_token: The form's one-time token or the API's Idempotency-Key (16-100 chars).
            provider: The payment provider to charge.
            expected_signature: ``CartView.signature()`` of the cart the shopper reviewed, if known.
            customer_note: The shopper's note for the seller (optional; ``clean_customer_note``), kept on
                the order in the reservation's transaction.

        Tax is charged at ``shop.tax_rates_bp``; with ``shop.require_verified_email``
        (``WEBSHOP_REQUIRE_VERIFIED_EMAIL``) an account whose e-mail address is not confirmed is refused
        (a replay of an order already placed still answers).

        Returns:
            ``(order, created)``; ``created`` is False when the token had already placed this order.

        Raises:
            EmailNotVerified: ``shop.require_verified_email`` and the address is not confirmed; nothing done.
            ValidationFailed: bad address, shipping method, card number, note or token; empty cart.
            NotFound: the token belongs to another user's order.
            CartChanged: the cart differs from ``expected_signature``.
            InsufficientStock: one or more lines cannot be had; ``shortfalls`` lists every one.
            PaymentDeclined: the provider declined; nothing was ordered.
        """
        try:
            if not TOKEN_RE.match(checkout_token or ""):
                raise ValidationFailed("This checkout form is no longer valid. Please review your order again.")
            card = normalize_card_number(card_number)
            existing = await self.find_by_token(checkout_token)
            if existing is None:
                if self.shop.require_verified_email:
                    await self._check_verified(user_id)
                if not card:
                    raise ValidationFailed("Enter a card number.", field_errors={"card_number": "Enter a card number."})
                reserved = await self._reserve(
                    user_id=user_id,
                    address=address.cleaned(),
                    note=clean_customer_note(customer_note),
                    method=shipping_method(shipping_code),
                    card=card,
                    checkout_token=checkout_token,
                    provider=provider,
                    expected_signature=expected_signature,
                )
                if reserved is not None:
                    return await self._pay(reserved, card, provider), True
                existing = await self.find_by_token(checkout_token)  # another request claimed the token first
                if existing is None:
                    raise ValidationFailed("This checkout form is no longer valid. Please review your order again.")
            order = self._replay(existing, user_id)
            if order.status == OrderStatus.PENDING.value and card:
                # Interrupted between reservation and settlement (a crash, a lost connection) or still being
                # paid by a concurrent request: the same idempotency key makes the provider charge it once.
                order = await self._pay(order, card, provider)
            return order, False
        except DomainError:
            # A request with the same token may have committed its order after this one looked the
            # token up (it emptied the cart or took the stock we then missed): land on that order.
            placed = await self.find_by_token(checkout_token) if TOKEN_RE.match(checkout_token or "") else None
            if placed is None or placed.user_id != user_id:
                raise
            return placed, False

    async def _check_verified(self, user_id: int) -> None:
        """Raises ``EmailNotVerified`` when the account's e-mail address is not confirmed."""
        user = await self.repository.session.get(User, user_id)
        if user is not None and user.email_verified_at is None:
            raise EmailNotVerified(
                "Confirm your e-mail address before you check out: follow the link we sent to "
                f"{user.email} (sign in on the website to have it sent again)."
            )

    async def _reserve(
        self,
        *,
        user_id: int,
        address: AddressInput,
        note: str,
        method: ShippingMethod,
        card: str,
        checkout_token: str,
        provider: PaymentProvider,
        expected_signature: str | None,
    ) -> Order | None:
        """Step 1, one short transaction, committed: the order as pending payment with its lines, the
        stock taken, the lines taken out of the cart. ``None`` when another request claimed
        ``checkout_token`` first (nothing written). Any error rolls it all back (see ``place_order``).
        """
        session = self.repository.session
        async with session.begin_nested():
            carts = CartService(session=session)
            cart = await carts.find(CartOwner(user_id=user_id))
            view = carts.view_of(cart)
            if cart is None or not view.lines:
                raise ValidationFailed("Your cart is empty.")
            if expected_signature is not None and expected_signature != view.signature():
                raise CartChanged("Your cart or its prices changed since you reviewed it. Please check it again.")
            order = self._new_order(user_id, view, self.totals(view, method), address, method, provider)
            order.checkout_token = checkout_token
            order.card_last4 = card[-4:]
            order.customer_note = note
            try:
                # Added inside the savepoint: ``begin_nested`` flushes pending objects before it starts,
                # and a unique violation there would roll back the outer savepoint instead.
                async with session.begin_nested():
                    session.add(order)
                    await session.flush()  # claims the checkout token (unique)
            except IntegrityError:
                # Another request claimed the token first (on PostgreSQL this one waited for its commit).
                # The savepoint's rollback has already taken ``order`` out of the session.
                if order in session:
                    session.expunge(order)
                return None
            await self._take_stock(view, order.number)
            sellers = await self._sellers(view)
            session.add_all(self._order_lines(order, view, self.shop.tax_rates_bp, sellers))
            session.add_all(self._fulfilments(order, view, method, sellers))
            await carts.take_lines(cart.id, [(line.variant_id, line.quantity) for line in view.lines])
            # Last before the commit (the products stay locked only that long): a sold-out variant can
            # turn its product's "in stock" flag off, which the catalog filters and caches by.
            await refresh_product_summaries(session, {line.product_id for line in view.lines})
        await session.commit()
        return order

    async def _pay(self, order: Order, card: str, provider: PaymentProvider) -> Order:
        """Steps 2 and 3: charge ``order.total`` with the checkout token as the idempotency key, with no
        transaction open, then settle in a short transaction of its own: paid and the confirmation
        e-mail queued, or, when declined, the order released (``_release``).

        Settling is a conditional ``UPDATE ... WHERE status = 'pending'``, so concurrent requests for one
        token (a double click, a retry) mark the order paid and queue its e-mail exactly once. A provider
        that cannot be reached raises; the order then stays pending with its stock, and a retry of the
        same checkout token resumes here.

        Raises:
            PaymentDeclined: the provider declined; the order is gone, its stock and cart lines back.
        """
        session = self.repository.session
        if session.in_transaction():
            await session.commit()  # never hold locks (or SQLite's write lock) while the provider works
        token = order.checkout_token or ""
        result = await provider.charge(
            amount=order.total, currency=order.currency, card_number=card, idempotency_key=token
        )
        if not result.ok:
            await self._release(order)
            raise PaymentDeclined(result.decline_reason or "The payment was declined.")
        settled = await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.status == OrderStatus.PENDING.value)
            .values(status=OrderStatus.PAID.value, paid_at=datetime.now(UTC), payment_reference=result.reference)
            .execution_options(synchronize_session=False)
        )
        placed = await self.find_by_token(token)
        if settled.rowcount == 1 and placed is not None:
            # The confirmation e-mail joins the outbox in this transaction: sent only if it commits.
            await queue_order_email(session, placed, "order_confirmation")
            await queue_shop_order_emails(session, placed)
            await queue_order_change(session, placed, OrderStatus.PENDING, OrderStatus.PAID)  # order.placed, .paid
            await queue_stock_lows_of_sale(session, placed)
        await session.commit()
        if placed is None:  # a concurrent request's payment was declined and released the order
            raise PaymentDeclined("The payment was declined.")
        if placed.status == OrderStatus.CANCELLED.value and not placed.payment_reference:
            return await self._refund_cancelled(placed, result.reference, provider)
        return placed

    async def _refund_cancelled(self, order: Order, payment_reference: str, provider: PaymentProvider) -> Order:
        """An order cancelled (by an admin) while the provider was charging it: record the charge and
        the whole total as owed back (committed), then refund it through ``OrderService.settle_refund``,
        which records the refund's reference and its audit event, or leaves it pending for the admin to
        retry when the provider fails; so money taken is never left unrecorded.

        Returns:
            The cancelled order, its refund recorded (or pending): what the shopper is shown.
        """
        session = self.repository.session
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.payment_reference == "", Order.refund_amount == 0)
            .values(payment_reference=payment_reference, refund_amount=Order.total, updated_at=datetime.now(UTC))
            .execution_options(synchronize_session=False)
        )
        await session.commit()
        return await OrderService(session=session).settle_refund(order.id, provider=provider)

    async def _release(self, order: Order) -> None:
        """Undo a reservation whose payment was declined, in one short committed transaction: the pending
        order and its lines deleted (a declined checkout is not an order), every line's stock returned
        (a ``cancellation`` movement in the ledger) and its units put back into the shopper's cart.
        A conditional ``DELETE ... WHERE status = 'pending'``: when requests race, only one releases.
        """
        session = self.repository.session
        lines = (
            await session.execute(
                select(OrderLine.variant_id, OrderLine.quantity, OrderLine.product_id).where(
                    OrderLine.order_id == order.id
                )
            )
        ).all()
        await session.execute(delete(OrderLine).where(OrderLine.order_id == order.id))
        deleted = await session.execute(
            delete(Order).where(Order.id == order.id, Order.status == OrderStatus.PENDING.value)
        )
        if deleted.rowcount != 1:
            await session.rollback()  # another request released or settled it
            return
        for variant_id, quantity, _product in sorted(lines):
            await return_stock(
                session, variant_id, quantity, reason=StockReason.CANCELLATION, reference=f"{order.number} declined"
            )
        await CartService(session=session).restore_lines(order.user_id, [(v, q) for v, q, _p in lines])
        await refresh_product_summaries(session, {product for _v, _q, product in lines})
        await session.commit()

    @staticmethod
    def _new_order(
        user_id: int,
        view: CartView,
        totals: Totals,
        address: AddressInput,
        method: ShippingMethod,
        provider: PaymentProvider,
    ) -> Order:
        """A pending order for ``view``'s lines (not added to the session)."""
        return Order(
            number=new_order_number(),
            user_id=user_id,
            status=OrderStatus.PENDING.value,
            currency=view.currency,
            subtotal=totals.subtotal,
            shipping_total=totals.shipping,
            tax_total=totals.tax,
            total=totals.total,
            shipping_method=method.code,
            shipping_method_name=method.name,
            ship_name=address.name,
            ship_line1=address.line1,
            ship_line2=address.line2,
            ship_city=address.city,
            ship_postal_code=address.postal_code,
            ship_country=address.country,
            payment_provider=provider.name,
        )

    async def _sellers(self, view: CartView) -> dict[int, tuple[int, str]]:
        """``{product_id: (shop_id, shop name)}`` of the cart's products: the shop that sells each line."""
        rows = await self.repository.session.execute(
            select(Product.id, Shop.id, Shop.name)
            .join(Shop, Shop.id == Product.shop_id)
            .where(Product.id.in_({line.product_id for line in view.lines}))
        )
        return {product_id: (shop_id, name) for product_id, shop_id, name in rows}

    @staticmethod
    def _fulfilments(
        order: Order, view: CartView, method: ShippingMethod, sellers: dict[int, tuple[int, str]]
    ) -> list[Fulfilment]:
        """One part per shop among the lines, each charged the method's rate (``CartView.totals``)."""
        names = {shop_id: name for shop_id, name in sellers.values()}
        return [
            Fulfilment(
                order_id=order.id,
                shop_id=shop_id,
                shop_name=names.get(shop_id, "") if shop_id else "",
                shipping_amount=method.price,
            )
            for shop_id in view.shop_ids
        ]

    @staticmethod
    def _order_lines(
        order: Order, view: CartView, tax_rates_bp: dict[str, int], sellers: dict[int, tuple[int, str]]
    ) -> list[OrderLine]:
        """The order's lines: a snapshot of what the shopper saw (name, SKU, unit price, tax rate) and of
        the shop that sold each one (``sellers``, see ``_sellers``; its name as it was then)."""
        lines = []
        for line in view.lines:
            rate = tax_rates_bp.get(line.tax_category, 0)
            snapshot = {name: getattr(line, name) for name in ORDER_LINE_SNAPSHOT}
            shop_id, shop_name = sellers.get(line.product_id, (None, ""))
            lines.append(
                OrderLine(
                    order_id=order.id,
                    **snapshot,
                    shop_id=shop_id,
                    shop_name=shop_name,
                    tax_rate_bp=rate,
                    tax_amount=tax_amount(line.line_total, rate),
                )
            )
        return lines

    async def _take_stock(self, view: CartView, reference: str) -> None:
        session = self.repository.session
        failed = []
        for line in sorted(view.lines, key=lambda ln: ln.variant_id):
            taken = await take_stock(
                session, line.variant_id, line.quantity, reason=StockReason.SALE, reference=reference, announce=False
            )
            if not taken:
                failed.append(line)
        if failed:
            stocks = dict(
                (
                    await session.execute(
                        select(Variant.id, Variant.stock).where(Variant.id.in_([ln.variant_id for ln in failed]))
                    )
                ).all()
            )
            shortfalls = [
                Shortfall(ln.sku, ln.product_name, ln.quantity, max(stocks.get(ln.variant_id, 0), 0)) for ln in failed
            ]
            raise InsufficientStock(
                " ".join(s.message() for s in shortfalls) + " Please update your cart.", shortfalls=shortfalls
            )

    @staticmethod
    def _replay(order: Order, user_id: int) -> Order:
        if order.user_id != user_id:
            raise NotFound("We could not find that order.")
        return order
