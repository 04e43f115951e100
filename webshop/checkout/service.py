"""Checkout rules: the address book, and placing an order exactly once without overselling.

``CheckoutService.place_order`` is the heart of the shop. In one transaction it:

1. finds an order already placed with this checkout token and returns it (idempotency);
2. inserts the order row first, which claims the token under a unique constraint: a concurrent
   request with the same token waits on it (PostgreSQL) or on the write lock (SQLite) and then finds
   the first order, so the card is never charged twice;
3. takes stock with one conditional ``UPDATE ... WHERE stock >= :n`` per variant, in variant-id
   order (no deadlocks), collecting every shortfall before failing;
4. writes the order lines as a snapshot of what the shopper saw, charges the payment provider, marks
   the order paid, empties the cart, queues the confirmation e-mail (outbox) and commits explicitly.

Any failure rolls the whole transaction back: no order, stock untouched, cart kept.

A form submitted several times at once (a double click, a reload) with two workers on PostgreSQL:
the second request's insert waits for the first to commit and then hits the unique token, or it
arrives after the first committed and finds the cart empty (or the stock gone); either way it looks
the token up again and returns the first request's order, so every answer leads to that one order.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from advanced_alchemy.service import SQLAlchemyAsyncRepositoryService
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from webshop.cart.service import CartOwner, CartService, CartView, Shortfall
from webshop.catalog.summaries import refresh_product_summaries
from webshop.checkout.payments import PaymentProvider, normalize_card_number
from webshop.checkout.pricing import shipping_method, tax_amount
from webshop.db.models import Address, CartLine, Order, OrderLine, OrderStatus, StockReason, User, Variant
from webshop.errors import (
    CartChanged,
    DomainError,
    EmailNotVerified,
    InsufficientStock,
    NotFound,
    PaymentDeclined,
    ValidationFailed,
)
from webshop.mail.outbox import queue_order_email
from webshop.observability.metrics import counts_checkouts

if TYPE_CHECKING:
    from webshop.config import Settings
from webshop.stock.service import take_stock

ORDER_NUMBER_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
TOKEN_RE = re.compile(r"^[A-Za-z0-9_\-.:]{16,100}$")


@dataclass(frozen=True)
class AddressInput:
    """A shipping address as typed; ``country`` is an ISO 3166-1 alpha-2 code."""

    name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    postal_code: str = ""
    country: str = ""

    def cleaned(self) -> AddressInput:
        """Trimmed copy with the country code upper-cased.

        Raises:
            ValidationFailed: a required field is empty, too long, or the country is not two letters.
        """
        values = {k: " ".join(str(getattr(self, k) or "").split()) for k in self.__dataclass_fields__}
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


def needs_verified_email(user: User, settings: Settings) -> bool:
    """True when the shop asks for a verified e-mail address before checkout (``WEBSHOP_REQUIRE_VERIFIED_EMAIL``)
    and ``user`` has not confirmed theirs yet."""
    return settings.require_verified_email and user.email_verified_at is None


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
        values = {k: getattr(clean, k) for k in clean.__dataclass_fields__}
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
            .options(selectinload(Order.lines))
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
        tax_rates_bp: dict[str, int],
        expected_signature: str | None = None,
        require_verified_email: bool = False,
    ) -> tuple[Order, bool]:
        """Place the user's cart as a paid order, exactly once per ``checkout_token``.

        This method owns the transaction: the work runs in a savepoint that any failure rolls back
        (no order, no stock taken, cart kept), and success is committed explicitly before returning.

        Args:
            user_id: The signed-in shopper (their cart is the one ordered).
            address: Shipping address (validated here).
            shipping_code: A code from ``SHIPPING_METHODS``.
            card_number: Card number for the payment provider (never stored; the last 4 digits are).
            checkout_token: The form's one-time token or the API's Idempotency-Key (16-100 chars).
            provider: The payment provider to charge.
            tax_rates_bp: Tax rate per tax category, basis points.
            expected_signature: ``CartView.signature()`` of the cart the shopper reviewed, if known.
            require_verified_email: ``WEBSHOP_REQUIRE_VERIFIED_EMAIL``: refuse an account whose
                e-mail address is not confirmed (a replay of an order already placed still answers).

        Returns:
            ``(order, created)``; ``created`` is False when the token had already placed this order.

        Raises:
            EmailNotVerified: ``require_verified_email`` and the address is not confirmed; nothing done.
            ValidationFailed: bad address, shipping method, card number or token; empty cart.
            NotFound: the token belongs to another user's order.
            CartChanged: the cart differs from ``expected_signature``.
            InsufficientStock: one or more lines cannot be had; ``shortfalls`` lists every one.
            PaymentDeclined: the provider declined; nothing was ordered.
        """
        try:
            return await self._place(
                user_id=user_id,
                address=address,
                shipping_code=shipping_code,
                card_number=card_number,
                checkout_token=checkout_token,
                provider=provider,
                tax_rates_bp=tax_rates_bp,
                expected_signature=expected_signature,
                require_verified_email=require_verified_email,
            )
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

    async def _place(
        self,
        *,
        user_id: int,
        address: AddressInput,
        shipping_code: str,
        card_number: str,
        checkout_token: str,
        provider: PaymentProvider,
        tax_rates_bp: dict[str, int],
        expected_signature: str | None,
        require_verified_email: bool,
    ) -> tuple[Order, bool]:
        """``place_order`` without the second look-up of the token after a domain error."""
        session = self.repository.session
        async with session.begin_nested():
            if not TOKEN_RE.match(checkout_token or ""):
                raise ValidationFailed("This checkout form is no longer valid. Please review your order again.")
            existing = await self.find_by_token(checkout_token)
            if existing is not None:
                return self._replay(existing, user_id), False
            if require_verified_email:
                await self._check_verified(user_id)
            clean = address.cleaned()
            method = shipping_method(shipping_code)
            card = normalize_card_number(card_number)
            if not card:
                raise ValidationFailed("Enter a card number.", field_errors={"card_number": "Enter a card number."})
            carts = CartService(session=session)
            cart = await carts.find(CartOwner(user_id=user_id))
            view = carts.view_of(cart)
            if not view.lines:
                raise ValidationFailed("Your cart is empty.")
            if expected_signature is not None and expected_signature != view.signature():
                raise CartChanged("Your cart or its prices changed since you reviewed it. Please check it again.")
            totals = view.totals(method, tax_rates_bp)
            order = Order(
                number=new_order_number(),
                user_id=user_id,
                checkout_token=checkout_token,
                status=OrderStatus.PENDING.value,
                currency=view.currency,
                subtotal=totals.subtotal,
                shipping_total=totals.shipping,
                tax_total=totals.tax,
                total=totals.total,
                shipping_method=method.code,
                shipping_method_name=method.name,
                ship_name=clean.name,
                ship_line1=clean.line1,
                ship_line2=clean.line2,
                ship_city=clean.city,
                ship_postal_code=clean.postal_code,
                ship_country=clean.country,
                payment_provider=provider.name,
                card_last4=card[-4:],
            )
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
                existing = await self.find_by_token(checkout_token)
                if existing is None:
                    raise
                return self._replay(existing, user_id), False

            await self._take_stock(view, order.number)
            for line in view.lines:
                rate = tax_rates_bp.get(line.tax_category, 0)
                session.add(
                    OrderLine(
                        order_id=order.id,
                        variant_id=line.variant_id,
                        product_id=line.product_id,
                        product_name=line.product_name,
                        product_slug=line.product_slug,
                        sku=line.sku,
                        options=line.options,
                        unit_price=line.unit_price,
                        currency=line.currency,
                        quantity=line.quantity,
                        tax_category=line.tax_category,
                        tax_rate_bp=rate,
                        line_total=line.line_total,
                        tax_amount=tax_amount(line.line_total, rate),
                    )
                )
            result = await provider.charge(
                amount=totals.total, currency=view.currency, card_number=card, idempotency_key=checkout_token
            )
            if not result.ok:
                raise PaymentDeclined(result.decline_reason or "The payment was declined.")
            order.status = OrderStatus.PAID.value
            order.paid_at = datetime.now(UTC)
            order.payment_reference = result.reference
            if cart is not None:
                await session.execute(delete(CartLine).where(CartLine.cart_id == cart.id))
            # The confirmation e-mail joins the outbox in this transaction: sent only if the order commits.
            await queue_order_email(session, order, "order_confirmation")
            # Last before the commit (the products stay locked only that long): a sold-out variant can
            # turn its product's "in stock" flag off, which the catalog filters and caches by.
            await refresh_product_summaries(session, {line.product_id for line in view.lines})
        # Any exception above rolled the savepoint back: no order, no stock taken, cart kept, no e-mail.
        await session.commit()
        placed = await self.find_by_token(checkout_token)
        return placed or order, True

    async def _take_stock(self, view: CartView, reference: str) -> None:
        session = self.repository.session
        failed = []
        for line in sorted(view.lines, key=lambda ln: ln.variant_id):
            taken = await take_stock(
                session, line.variant_id, line.quantity, reason=StockReason.SALE, reference=reference
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
