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

   Any failure rolls the whole step back: no order, stock untouched, cart kept. The order has
   ``payment_expires_at`` (``WEBSHOP_PAYMENT_TIMEOUT_MINUTES``): the stock is held that long at most.
2. **Payment intent**, with no transaction open: the provider makes the order's one intent (its key
   derives from the order number and checkout token, so a retry finds the same intent). An API client's
   token confirms it at once; otherwise ``payment_url`` is the provider's hosted payment page.
3. **Settle**: ``webshop.payments.service.PaymentService`` acts on what the provider says, exactly
   once whoever says it first (the shopper's return, the webhook, the background worker): paid (with
   the invoice number and the confirmation e-mail), or cancelled with its stock returned and its lines
   put back in the cart.

The order is never lost and never charged twice: if the process stops between the steps, the order
stays pending with its stock, and the same checkout token (the form resubmitted, the API's
Idempotency-Key retried) resumes at step 2, where the provider's idempotency returns the first intent;
an order nobody pays is cancelled by the background worker when its time runs out.

A form submitted several times at once (a double click, a reload) with two workers on PostgreSQL:
the second request's insert waits for the first to commit and then hits the unique token, or it
arrives after the first committed and finds the cart empty (or the stock gone); either way it looks
the token up again and lands on the first request's order.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.accounts.service import UserService
from webshop.audit.service import Audited
from webshop.cart.service import CartOwner, CartService, CartView, Shortfall
from webshop.catalog.summaries import refresh_product_summaries
from webshop.checkout.address_book import AddressBook
from webshop.checkout.addresses import AddressInput, clean_guest_email
from webshop.checkout.notes import clean_customer_note
from webshop.checkout.order_rows import fulfilments, order_lines, pending_order
from webshop.checkout.promotion_uses import take_promotion_uses
from webshop.checkout.quote import Pricer, Quote
from webshop.db.models import (
    Cart,
    Order,
    OrderStatus,
    PaymentStatus,
    Product,
    Shop,
    StockReason,
    User,
    Variant,
    postal,
)
from webshop.db.repository import repository_for
from webshop.errors import (
    CartChanged,
    Conflict,
    DomainError,
    EmailNotVerified,
    InsufficientStock,
    NotFound,
    PaymentDeclined,
    PaymentUnavailable,
    PromotionUnavailable,
    ValidationFailed,
)
from webshop.money import MAX_ORDER_TOTAL, format_money
from webshop.observability.metrics import counts_checkouts
from webshop.payments.provider import IntentRequest, PaymentProvider, ProviderUnavailable, intent_idempotency_key
from webshop.payments.service import PaymentService
from webshop.stock.service import take_stock
from webshop.text import readable_email
from webshop.webhooks.events import queue_order_change

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import InvoiceSettings, PaymentSettings, ShopSettings

TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.:]{16,100}$")
MAX_UNPAID_ORDERS = 3
"""Orders an account (or a guest's e-mail address) may have waiting for their payment at once.

An unpaid order holds its stock until its payment time runs out (``WEBSHOP_PAYMENT_TIMEOUT_MINUTES``),
so without a cap one account could hold a whole stock by placing orders it never pays: "denial of
inventory", OWASP Automated Threats to Web Applications, OAT-021. Three leave room for a shopper who
left the payment page and started again."""


class TooManyUnpaidOrders(Conflict):
    """The shopper has ``MAX_UNPAID_ORDERS`` orders waiting for their payment already (409): nothing placed."""


def check_orderable(view: CartView, quote: Quote) -> None:
    """Refuse a total no order can have: over ``MAX_ORDER_TOTAL`` (the order's amounts are PostgreSQL
    ``integer`` columns). ``place_order`` and the API's quote both ask, so no quote is given for a total
    placing refuses.

    Raises:
        ValidationFailed: the order would come to more than ``MAX_ORDER_TOTAL``.
    """
    if max(quote.subtotal, quote.total) > MAX_ORDER_TOTAL:
        raise ValidationFailed(
            f"An order can come to at most {format_money(MAX_ORDER_TOTAL, view.currency)}. Your order was not "
            "placed: take some items out of your cart (or place them as a second order)."
        )


def withdrawn_lines(view: CartView) -> list[Shortfall]:
    """The cart's lines whose product is no longer sold (switched off, deleted, its shop suspended), as
    shortfalls: ``place_order`` refuses them (with every other shortfall), the API's quote up front."""
    return [s for line in view.lines if line.withdrawn and (s := line.shortfall)]


def new_checkout_token() -> str:
    """A one-time token for a checkout form (stored with the order under a unique constraint)."""
    return secrets.token_urlsafe(24)


class CheckoutService(AddressBook, Audited, SQLAlchemyAsyncRepositoryService[Order]):
    """Address book (``AddressBook``) and order placement."""

    repository_type = repository_for(Order)

    def __init__(
        self,
        session: AsyncSession,
        *,
        shop: ShopSettings,
        provider: PaymentProvider,
        payments: PaymentSettings,
        invoices: InvoiceSettings,
        **repo_kwargs: Any,
    ) -> None:
        """A service on ``session`` that prices orders with the shop's rules (``Pricer``), with
        ``shop.require_verified_email`` takes orders from confirmed addresses only, and takes payments
        through ``provider`` (``payments``: the time limit; ``invoices``: the invoice numbers); given at
        construction by the app's dependency provider."""
        super().__init__(session=session, **repo_kwargs)
        self.shop = shop
        self.provider = provider
        self.payments = payments
        self.invoices = invoices

    def pricer(self) -> Pricer:
        """The shop's pricing rules on this service's session (``webshop.checkout.quote``)."""
        return Pricer(self.repository.session, self.shop)

    async def quote(
        self,
        view: CartView,
        *,
        country: str,
        method_code: str,
        region: str | None = None,
        user_id: int | None = None,
        email: str = "",
    ) -> Quote:
        """What ``view`` costs shipped to ``country`` (and ``region``, see ``Pricer.quote``) by
        ``method_code``: the review page shows these figures and ``place_order`` charges them (minor units).

        Raises:
            ValidationFailed: the method is not offered there or cannot take this cart; no zone serves
                ``country`` (``NoShippingZone``); the address needs its region (``RegionNeeded``).
        """
        pricer = self.pricer()
        return await pricer.quote(
            view, country=country, region=region, method_code=method_code, user_id=user_id, email=email
        )

    async def check_destination(self, address: AddressInput) -> None:
        """Refuse an address whose order's tax cannot be known: one without a region in a country the
        shop taxes by region. The address step asks for it there, before the shipping and review steps.
        ``address`` may be as typed (its region read as ``AddressInput.cleaned`` reads it).

        Raises:
            RegionNeeded: as ``Pricer.rates``.
        """
        country = address.country.strip().upper()
        region = " ".join(address.region.split())
        await self.pricer().rates(country, postal.region_code(country, region) or region)

    async def quote_to_place(
        self, view: CartView, *, country: str, region: str, method_code: str, user_id: int
    ) -> Quote:
        """What placing an account's order for ``view`` would charge (``GET /api/checkout/quote``): priced as
        ``place_order`` prices it (the account, no e-mail), so the quote's signature is the one placing
        checks; refused when placing would refuse the cart itself.

        Raises:
            ValidationFailed: an empty cart; as ``quote``; a total over ``MAX_ORDER_TOTAL``.
            InsufficientStock: a line's product is no longer sold (``withdrawn_lines``).
        """
        if not view.lines:
            raise ValidationFailed("Your cart is empty.")
        if withdrawn := withdrawn_lines(view):
            detail = " ".join(s.message() for s in withdrawn) + " Please update your cart."
            raise InsufficientStock(detail, shortfalls=withdrawn)
        quote = await self.quote(view, country=country, region=region, method_code=method_code, user_id=user_id)
        check_orderable(view, quote)
        return quote

    async def guest_email(self, raw: str) -> str:
        """A guest's e-mail address, cleaned (``clean_guest_email``), when no account uses it: the owner of
        that address signs in to check out with it, so their orders stay in their account (and a stranger
        cannot place orders that an account's owner would then be offered).

        Raises:
            ValidationFailed: as ``clean_guest_email``; or an account uses the address (on ``email``).
        """
        email = clean_guest_email(raw)
        if await UserService(session=self.repository.session).get_by_email(email) is not None:
            message = "An account uses this e-mail address: sign in to check out with it, or use another address."
            raise ValidationFailed(message, field_errors={"email": message})
        return email

    def needs_verified_email(self, user: User) -> bool:
        """True when the shop asks for a verified e-mail address before checkout (``WEBSHOP_REQUIRE_VERIFIED_EMAIL``)
        and ``user`` has not confirmed theirs yet."""
        return self.shop.require_verified_email and user.email_verified_at is None

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
        user_id: int | None,
        address: AddressInput,
        shipping_code: str,
        checkout_token: str,
        return_url: str,
        payment_token: str | None = None,
        expected_signature: str | None = None,
        customer_note: str = "",
        cart_token: str | None = None,
        email: str = "",
    ) -> tuple[Order, bool]:
        """Place the cart as an order waiting for its payment, exactly once per ``checkout_token``, and
        start the payment.

        This method owns its transactions (reserve, then the provider outside any transaction, then
        ``PaymentService`` settles: see the module docstring); each is committed before it returns.

        Args:
            user_id: The signed-in shopper whose cart is ordered, or ``None`` for a guest.
            address: Shipping address (validated here).
            shipping_code: A method of the destination's shipping zone (``Pricer.options``).
            checkout_token: The form's one-time token or the API's Idempotency-Key (16-100 chars).
            return_url: Where the provider's hosted page sends the shopper back (absolute URL; ``{number}``
                in it becomes the order number).
            payment_token: A provider-issued token (API clients, ``tok_visa``): the payment is confirmed
                at once. ``None``: the order waits, ``payment_url`` is the hosted payment page.
            expected_signature: ``CartView.signature()`` of the cart the shopper reviewed, if known.
            customer_note: The shopper's note for the seller (optional; ``clean_customer_note``).
            cart_token: A guest's cart (the session's cart token); with ``user_id`` ``None`` only.
            email: A guest's e-mail address (required for guests, where the order's messages go).

        The order is priced by ``Pricer.quote`` (promotions, shipping by zone, tax by destination) and
        takes one use of each promotion it gets (``take_promotion_uses``); with
        ``shop.require_verified_email`` an account whose e-mail address is not confirmed is refused (a
        replay of an order already placed still answers).

        Returns:
            ``(order, created)``: the order as it stands (paid, or pending with ``payment_url``);
            ``created`` is False when the token had already placed it.

        Raises:
            EmailNotVerified: ``shop.require_verified_email`` and the address is not confirmed; nothing done.
            TooManyUnpaidOrders: ``MAX_UNPAID_ORDERS`` orders of the shopper wait for their payment; nothing done.
            PromotionUnavailable: a promotion of the cart was used up meanwhile; nothing done.
            ValidationFailed: bad address, shipping method, e-mail, note or token; empty cart.
            NotFound: the token belongs to another shopper's order.
            CartChanged: the cart differs from ``expected_signature``.
            InsufficientStock: one or more lines cannot be had; ``shortfalls`` lists every one.
            PaymentDeclined: the token's payment failed: the order is cancelled, stock and cart back.
            PaymentUnavailable: the provider could not be reached: the order waits (pending, stock
                held until ``WEBSHOP_PAYMENT_TIMEOUT_MINUTES``); the same token resumes it.
        """
        try:
            if not TOKEN_RE.match(checkout_token or ""):
                raise ValidationFailed("This checkout form is no longer valid. Please review your order again.")
            existing = await self.find_by_token(checkout_token)
            created = False
            if existing is None:
                if user_id is not None and self.shop.require_verified_email:
                    await self._check_verified(user_id)
                guest_email = "" if user_id is not None else await self.guest_email(email)
                await self._check_unpaid(user_id, guest_email)
                reserved = await self._reserve(
                    owner=CartOwner(user_id=user_id) if user_id is not None else CartOwner(token=cart_token),
                    email=guest_email,
                    address=address.cleaned(),
                    note=clean_customer_note(customer_note),
                    shipping_code=shipping_code,
                    checkout_token=checkout_token,
                    expected_signature=expected_signature,
                )
                if reserved is not None:
                    existing, created = reserved, True
                else:
                    existing = await self.find_by_token(checkout_token)  # another request claimed the token first
                    if existing is None:
                        raise ValidationFailed("This checkout form is no longer valid. Please review your order again.")
            order = self._replay(existing, user_id)
            order = await self._start_payment(order, payment_token, return_url)
        except DomainError:
            # A request with the same token may have committed its order after this one looked the
            # token up (it emptied the cart or took the stock we then missed): land on that order.
            placed = await self.find_by_token(checkout_token) if TOKEN_RE.match(checkout_token or "") else None
            if placed is None or placed.user_id != user_id:
                raise
            # Its payment intent may not be recorded yet (that request is still asking the provider):
            # the same key finds the same intent, so this answer also leads to the payment page.
            order, created = await self._start_payment(placed, payment_token, return_url), False
        if order.status == OrderStatus.CANCELLED.value and order.payment_status == PaymentStatus.FAILED.value:
            raise PaymentDeclined(order.payment_failure or "The payment was declined.", order_number=order.number)
        return order, created

    def payment_service(self) -> PaymentService:
        """The payment settle on this service's session, provider and settings."""
        return PaymentService(
            session=self.repository.session, provider=self.provider, payments=self.payments, invoices=self.invoices
        )

    async def _start_payment(self, order: Order, payment_token: str | None, return_url: str) -> Order:
        """Ask the provider for the order's payment intent (its one idempotency key, so a retry finds the
        first intent), with no transaction open, and record what it says (``PaymentService``).

        An order that is no longer pending, or whose intent exists and no token is given (the form sent
        again), is returned as it is.

        Raises:
            PaymentUnavailable: the provider could not be reached; the order stays pending.
        """
        if order.status != OrderStatus.PENDING.value:
            return order
        if order.payment_reference and payment_token is None:
            return order
        session = self.repository.session
        if session.in_transaction():
            await session.commit()  # never hold locks (or SQLite's write lock) while the provider works
        try:
            intent = await self.provider.create_intent(
                IntentRequest(
                    amount=order.total,
                    currency=order.currency,
                    order_number=order.number,
                    return_url=return_url.replace("{number}", order.number),
                    idempotency_key=intent_idempotency_key(order.number, order.checkout_token),
                    token=payment_token,
                    email=order.email,
                )
            )
        except ProviderUnavailable as exc:
            raise PaymentUnavailable(
                "The payment service cannot be reached right now. Your order is kept for you: please try again "
                "in a moment.",
                order_number=order.number,
            ) from exc
        return await self.payment_service().record_intent(order, intent)

    async def _check_unpaid(self, user_id: int | None, guest_email: str) -> None:
        """Raises ``TooManyUnpaidOrders`` when the account (or, for a guest, the e-mail address) has
        ``MAX_UNPAID_ORDERS`` orders waiting for a payment whose time has not run out."""
        whose = Order.user_id == user_id if user_id is not None else Order.email == guest_email
        waiting = await self.repository.session.scalar(
            select(func.count(Order.id)).where(
                whose, Order.status == OrderStatus.PENDING.value, Order.payment_expires_at > datetime.now(UTC)
            )
        )
        if (waiting or 0) >= MAX_UNPAID_ORDERS:
            raise TooManyUnpaidOrders(
                f"You have {MAX_UNPAID_ORDERS} orders waiting for their payment: pay for one of them or cancel it "
                "(under Your orders) before you place another."
            )

    async def _check_verified(self, user_id: int) -> None:
        """Raises ``EmailNotVerified`` when the account's e-mail address is not confirmed."""
        user = await self.repository.session.get(User, user_id)
        if user is not None and user.email_verified_at is None:
            raise EmailNotVerified(
                "Confirm your e-mail address before you check out: follow the link we sent to "
                f"{readable_email(user.email)} (sign in on the website to have it sent again)."
            )

    async def _reserve(
        self,
        *,
        owner: CartOwner,
        email: str,
        address: AddressInput,
        note: str,
        shipping_code: str,
        checkout_token: str,
        expected_signature: str | None,
    ) -> Order | None:
        """Step 1, one short transaction, committed: the order as pending payment with its lines, the
        stock taken, the lines taken out of the cart, ``order.placed`` queued. ``None`` when another
        request claimed ``checkout_token`` first (nothing written). Any error rolls it all back.
        """
        session = self.repository.session
        async with session.begin_nested():
            carts = CartService(session=session)
            cart = await carts.find(owner)
            view = carts.view_of(cart)
            if cart is None or not view.lines:
                raise ValidationFailed("Your cart is empty.")
            quote = await self._agreed_quote(view, owner, address, shipping_code, email, expected_signature)
            order = pending_order(owner.user_id, view, quote, address, self.provider.name)
            order.email = email
            order.guest_cart_token = owner.token  # None for an account's cart
            order.checkout_token = checkout_token
            order.customer_note = note
            order.payment_expires_at = self.payment_service().expires_at()
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
            session.add_all(order_lines(order, quote, sellers))
            session.add_all(fulfilments(order, view, quote, sellers))
            await take_promotion_uses(session, order, quote)
            await carts.take_lines(cart.id, [(line.variant_id, line.quantity) for line in view.lines])
            if view.promotion_code is not None:  # the code went with this order
                await session.execute(
                    update(Cart)
                    .where(Cart.id == cart.id)
                    .values(promotion_code=None)
                    .execution_options(synchronize_session=False)
                )
            # Last before the commit (the products stay locked only that long): a sold-out variant can
            # turn its product's "in stock" flag off, which the catalog filters and caches by.
            await refresh_product_summaries(session, {line.product_id for line in view.lines})
            await session.flush()
            placed = await self.find_by_token(checkout_token)
            if placed is not None:
                customer = await session.get(User, owner.user_id) if owner.user_id is not None else None
                what = f"placed{'' if customer else ' by a guest'}, {format_money(placed.total, placed.currency)}"
                # The first line of the order's trail (a guest has no account to name).
                self.audit.on_order(
                    customer, placed, "placed", f"{what}, waiting for the payment", {"status": [None, placed.status]}
                )
                await queue_order_change(session, placed, None, OrderStatus.PENDING)  # order.placed
        await session.commit()
        return placed

    async def _agreed_quote(
        self,
        view: CartView,
        owner: CartOwner,
        address: AddressInput,
        shipping_code: str,
        email: str,
        expected_signature: str | None,
    ) -> Quote:
        """The cart's price as ``quote`` gives it, when it is the price the shopper agreed to.

        Raises:
            PromotionUnavailable: the shopper entered a code that cannot be used now: the order is never
                placed at a price without it, unannounced.
            CartChanged: what would be charged differs from ``expected_signature`` (what was reviewed: the cart, prices,
                promotions, destination, method).
            ValidationFailed: as ``quote`` (shipping method, address); an order over ``MAX_ORDER_TOTAL``.
        """
        quote = await self.quote(
            view,
            country=address.country,
            region=address.region,
            method_code=shipping_code,
            user_id=owner.user_id,
            email=email,
        )
        if view.promotion_code is not None and quote.code_problem:
            raise PromotionUnavailable(
                f"The code {view.promotion_code} cannot be used: {quote.code_problem} Your order was not "
                "placed: remove the code or try another one, then check out again."
            )
        if expected_signature is not None and expected_signature != quote.signature(view):
            raise CartChanged(
                "Your order changed since you reviewed it (its items, a price, a promotion, the address or the"
                " shipping method). Please check it again."
            )
        check_orderable(view, quote)
        return quote

    async def _sellers(self, view: CartView) -> dict[int, tuple[int, str]]:
        """``{product_id: (shop_id, shop name)}`` of the cart's products: the shop that sells each line."""
        rows = await self.repository.session.execute(
            select(Product.id, Shop.id, Shop.name)
            .join(Shop, Shop.id == Product.shop_id)
            .where(Product.id.in_({line.product_id for line in view.lines}))
        )
        return {product_id: (shop_id, name) for product_id, shop_id, name in rows}

    async def _take_stock(self, view: CartView, reference: str) -> None:
        """Take each line's units from stock (the conditional decrement of ``take_stock``).

        Raises:
            InsufficientStock: a line's product is no longer sold (``LineView.withdrawn``), or not enough
                stock is left for a line; ``shortfalls`` lists every one.
        """
        withdrawn = withdrawn_lines(view)
        session = self.repository.session
        failed = []
        for line in sorted((ln for ln in view.lines if not ln.withdrawn), key=lambda ln: ln.variant_id):
            taken = await take_stock(
                session, line.variant_id, line.quantity, reason=StockReason.SALE, reference=reference, announce=False
            )
            if not taken:
                failed.append(line)
        if failed or withdrawn:  # every line that cannot be had, in one answer
            stocks = dict(
                (
                    await session.execute(
                        select(Variant.id, Variant.stock).where(Variant.id.in_([ln.variant_id for ln in failed]))
                    )
                ).all()
            )
            shortfalls = withdrawn + [
                Shortfall(ln.sku, ln.product_name, ln.quantity, max(stocks.get(ln.variant_id, 0), 0)) for ln in failed
            ]
            raise InsufficientStock(
                " ".join(s.message() for s in shortfalls) + " Please update your cart.", shortfalls=shortfalls
            )

    @staticmethod
    def _replay(order: Order, user_id: int | None) -> Order:
        if order.user_id != user_id:
            raise NotFound("We could not find that order.")
        return order
