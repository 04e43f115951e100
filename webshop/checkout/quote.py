"""What a cart costs, to the cent: promotions, shipping by zone and weight, tax by destination.

``Pricer.quote`` reads the rules an admin manages (``webshop.db.models.pricing``) and applies the pure
functions of ``webshop.pricing``; the cart page, the checkout review, ``place_order`` and the API all
price through it, so they show and charge the same figures.

The order of the steps, and the one rounding rule (``webshop.pricing.rounding``, half away from zero):

1. **Shipping** per parcel (one per shop among the lines, issue 16): the chosen method of the
   destination's zone, priced on the parcel's weight (grams) or goods subtotal (before discounts).
2. **Promotions**: the automatic ones whose conditions hold, plus the entered code; each one's amount
   is allocated over the lines it targets by largest remainder (``allocate``), so the lines' discounts
   always add up to the order's; ``best_combination`` decides which are used together.
3. **Tax** per line at the destination's rate for the line's tax category (its region's, else its
   country's, else the rest of the world's ``*`` rate), on the line after its discount, rounded per
   line; shipping is taxed at the destination's ``standard`` rate. In ``net`` mode tax is added; in
   ``gross`` mode (``WEBSHOP_PRICE_MODE``) it is taken out of the price (``split_gross``). The order's
   totals are plain sums of its lines.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, or_, select

from webshop.cart.service import CartOwner, CartService, CartView, LineView
from webshop.db.models import (
    Category,
    Promotion,
    PromotionUsage,
    ShippingMethod,
    ShippingZone,
    postal,
)
from webshop.errors import ValidationFailed
from webshop.pricing.codes import NotApplicable, normalise_code
from webshop.pricing.promotions import CartItem, Discount, PromotionKind, PromotionTerms, best_combination, evaluate
from webshop.pricing.shipping import Band, NoBand, RateKind, ShippingRate, rate_for
from webshop.pricing.tax import LineInput, OrderTax, PriceMode, price_order
from webshop.tax.destination import DestinationRates, rates_at
from webshop.text import without_accents

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from webshop.config import ShopSettings

SHIPPING_TAX_CATEGORY = "standard"
"""Shipping is taxed at the destination's rate of this tax category."""
UNKNOWN_CODE = "We do not know this code. Check it and try again."
WITHDRAWN_CODE = "This code is no longer valid."
"""Said of a code whose promotion the shop has switched off (inactive)."""


class NoShippingZone(ValidationFailed):
    """No shipping zone serves the destination country (HTTP 422, field ``country``)."""


@dataclass(frozen=True)
class ShippingOption:
    """A shipping method of the destination's zone, priced for one cart.

    Attributes:
        code: The method's code (what forms and the API send back).
        name: Its name.
        price: Minor units for the whole cart (every parcel), before promotions; 0 when free.
        currency: The shop's currency.
        description: The estimated delivery time.
        parcel_prices: The price of each parcel (one per shop among the lines, in ``CartView.shop_ids`` order).
        problem: Why the method cannot take this cart (too heavy...), or ``""`` when it can.
        free_over: Goods subtotal (minor units) from which it is free, or None.
    """

    code: str
    name: str
    price: int
    currency: str
    description: str
    parcel_prices: tuple[int, ...] = ()
    problem: str = ""
    free_over: int | None = None

    @property
    def available(self) -> bool:
        """True when the method can ship this cart."""
        return not self.problem


@dataclass(frozen=True)
class AppliedPromotion:
    """A promotion used on the cart: ``amount`` minor units off the goods, ``shipping`` off shipping."""

    id: int
    name: str
    code: str | None
    kind: str
    amount: int
    shipping: int

    def snapshot(self) -> dict[str, object]:
        """The order's record of it (``Order.promotions``)."""
        return {
            "id": self.id,
            "name": self.name,
            "code": self.code,
            "kind": self.kind,
            "amount": self.amount,
            "shipping": self.shipping,
        }


@dataclass(frozen=True)
class QuotedLine:
    """A cart line priced: its ``discount``, ``net``, ``tax`` and ``gross`` (minor units) at ``rate_bp``."""

    line: LineView
    rate_bp: int
    discount: int
    net: int
    tax: int
    gross: int


@dataclass(frozen=True)
class Quote:
    """A cart priced for a destination and shipping method; amounts in minor units of ``currency``.

    ``subtotal`` is the lines as entered (net or gross per ``mode``); ``discount`` what promotions took
    off them (the sum of the lines' discounts); ``shipping`` is charged after ``shipping_discount``;
    ``tax`` includes ``shipping_tax``; ``total = subtotal - discount + shipping (+ tax in net mode)``.

    Attributes:
        currency: The shop's currency.
        mode: Whether prices exclude or include tax.
        country: The destination (ISO 3166-1 alpha-2) taxes and shipping are for.
        region: The destination's ISO 3166-2 region whose own tax rates were charged; ``""`` when none
            were (none given, or the shop has none for it).
        region_decides_tax: An estimate (no address yet) in a country the shop taxes by region, for a tax
            category the cart pays: its tax is at the country's rates, and the address's region may change it.
        lines: The priced lines, in cart order.
        subtotal / discount / shipping / shipping_discount / shipping_tax / tax / total: As above.
        tax_by_rate: ``(rate_bp, net, tax)`` per rate, shipping included, lowest rate first.
        promotions: The promotions used.
        code: The code the shopper entered, or None.
        code_problem: Why that code gives nothing, for the shopper, or ``""``.
        displaced: The automatic promotions the cart would get without the code, left out because the
            code's promotion cannot be combined with them and takes off more (``best_combination``).
        method: The chosen shipping method, or the cheapest one for an estimate, or None.
        parcels: Shipping charged per parcel (after promotions), in ``CartView.shop_ids`` order.
        parcel_taxes: Shipping tax per parcel, same order.
    """

    currency: str
    mode: PriceMode
    country: str
    lines: tuple[QuotedLine, ...]
    subtotal: int
    discount: int
    shipping: int
    shipping_discount: int
    shipping_tax: int
    tax: int
    total: int
    tax_by_rate: tuple[tuple[int, int, int], ...]
    promotions: tuple[AppliedPromotion, ...] = ()
    code: str | None = None
    code_problem: str = ""
    displaced: tuple[str, ...] = ()
    method: ShippingOption | None = None
    parcels: tuple[int, ...] = ()
    parcel_taxes: tuple[int, ...] = field(default=())
    region: str = ""
    region_decides_tax: bool = False

    @property
    def effective_promotions(self) -> tuple[AppliedPromotion, ...]:
        """The promotions that take something off (a free-shipping one on a free method does not)."""
        return tuple(p for p in self.promotions if p.amount or p.shipping)

    @property
    def prices_include_tax(self) -> bool:
        """True in gross mode: shown prices include tax ("incl. VAT")."""
        return self.mode is PriceMode.GROSS

    def signature(self, view: CartView) -> str:
        """A fingerprint of what the shopper reviewed (64 hex digits: SHA-256): the lines and prices, the
        destination, the method and every total; ``place_order`` refuses a cart whose quote no longer
        matches (``CartChanged``). The review page and ``GET /api/checkout/quote`` hand it out."""
        method = self.method.code if self.method else "-"
        codes = ",".join(f"{p.id}:{p.amount}:{p.shipping}" for p in self.effective_promotions)
        reviewed = f"{view.signature()}|{self.country}|{self.region}|{method}|{codes}|{self.total}"
        return hashlib.sha256(reviewed.encode()).hexdigest()


class Pricer:
    """Prices carts with the shop's rules, on ``session`` (reads only)."""

    def __init__(self, session: AsyncSession, shop: ShopSettings) -> None:
        """``shop`` gives the currency, the price mode and the default country."""
        self.session = session
        self.shop = shop

    @property
    def mode(self) -> PriceMode:
        """The shop's price mode (``WEBSHOP_PRICE_MODE``)."""
        return PriceMode(self.shop.price_mode)

    async def zone_for(self, country: str) -> ShippingZone | None:
        """The zone that names ``country``, else the rest-of-the-world zone, else None."""
        zones = list(await self.session.scalars(select(ShippingZone).order_by(ShippingZone.id)))
        named = next((zone for zone in zones if country in (zone.countries or [])), None)
        return named or next((zone for zone in zones if zone.rest_of_world), None)

    async def options(self, view: CartView, country: str) -> list[ShippingOption]:
        """The active methods of ``country``'s zone, priced for ``view`` (unavailable ones say why).

        Raises:
            NoShippingZone: no zone serves ``country``.
        """
        zone = await self.zone_for(country)
        if zone is None:
            raise NoShippingZone(
                f"Sorry, we do not ship to {postal.country_in_text(country)} yet.",
                field_errors={"country": "We do not ship to this country yet. Choose another one."},
            )
        methods = await self.session.scalars(
            select(ShippingMethod)
            .where(ShippingMethod.zone_id == zone.id, ShippingMethod.active.is_(True))
            .order_by(ShippingMethod.position, ShippingMethod.id)
        )
        return [self._option(method, view) for method in methods]

    def _option(self, method: ShippingMethod, view: CartView) -> ShippingOption:
        rate = ShippingRate(
            kind=RateKind(method.kind),
            price=method.price,
            bands=tuple(Band(up_to, price) for up_to, price in method.bands or ()),
            free_over=method.free_over,
        )
        prices: list[int] = []
        problem = ""
        for shop_id in view.shop_ids or [None]:
            parcel = [line for line in view.lines if line.shop_id == shop_id]
            weight = sum(line.weight_grams * line.quantity for line in parcel)
            subtotal = sum(line.line_total for line in parcel)
            try:
                prices.append(rate_for(rate, weight=weight, subtotal=subtotal, currency=self.shop.currency))
            except NoBand as exc:
                problem = str(exc)
        return ShippingOption(
            code=method.code,
            name=method.name,
            price=sum(prices),
            currency=self.shop.currency,
            description=method.delivery_estimate,
            parcel_prices=tuple(prices),
            problem=problem,
            free_over=method.free_over,
        )

    async def rates(
        self, country: str, region: str | None = None, categories: Iterable[str] | None = None
    ) -> DestinationRates:
        """The tax rates at ``country`` and ``region`` (``webshop.tax.destination.rates_at``), for the tax
        ``categories`` charged (``None``: any).

        Raises:
            RegionNeeded: as ``rates_at``.
        """
        return await rates_at(self.session, country, region, categories)

    async def quote(
        self,
        view: CartView,
        *,
        country: str | None = None,
        region: str | None = None,
        method_code: str | None = None,
        user_id: int | None = None,
        email: str = "",
        now: datetime | None = None,
        with_shipping: bool = True,
    ) -> Quote:
        """Price ``view`` for ``country`` (default: ``WEBSHOP_DEFAULT_COUNTRY``) and ``region`` (an
        address's ISO 3166-2 region, ``""`` for an address without one; None for an estimate) with the method
        ``method_code`` (None: the cheapest available, as an estimate; no shipping when the cart is
        empty or nothing ships there), its automatic promotions and its entered code
        (``view.promotion_code``); ``user_id``/``email`` count this customer's earlier uses. Without
        ``with_shipping`` the goods alone are priced (the API's cart: shipping is chosen at checkout).
        Lines whose product is no longer sold (``CartView.on_sale``) are in the quote at 0 and count
        nowhere (subtotal, promotions, parcels, tax): checkout refuses them until they are removed.

        Raises:
            ValidationFailed: ``method_code`` is not a method of the destination's zone, or cannot ship
                this cart (field ``shipping_method``).
            NoShippingZone: a ``method_code`` was given and no zone serves ``country``.
            RegionNeeded: as ``rates``.
        """
        country = (country or self.shop.default_country).upper()
        now = now or datetime.now(UTC)
        shown, view = view, view.on_sale()
        method = await self._method(view, country, method_code) if with_shipping else None
        parcel_prices = method.parcel_prices if method else ()
        shipping = sum(parcel_prices)
        discounts, code_problem, displaced = await self._promotions(view, shipping, user_id, email, now)
        charged = {line.tax_category for line in view.lines} | ({SHIPPING_TAX_CATEGORY} if shipping else set())
        rates, taxed_region, _, region_decides = await self.rates(country, region, charged)
        line_off: dict[str, int] = defaultdict(int)
        for _, discount in discounts:
            for key, off in discount.lines:
                line_off[key] += off
        shipping_off = min(sum(discount.shipping for _, discount in discounts), shipping)
        priced = price_order(
            [
                LineInput(
                    str(line.id),
                    line.quantity,
                    line.unit_price,
                    rates.get(line.tax_category, 0),
                    line_off[str(line.id)],
                )
                for line in view.lines
            ],
            self.mode,
            shipping=shipping,
            shipping_rate_bp=rates.get(SHIPPING_TAX_CATEGORY, 0),
            shipping_discount=shipping_off,
        )
        quote = self._quote(shown, view, country, method, priced, discounts, (code_problem, displaced), parcel_prices)
        decides = region_decides and region is None
        return replace(quote, region=taxed_region, region_decides_tax=decides) if taxed_region or decides else quote

    def _quote(
        self,
        shown: CartView,
        view: CartView,
        country: str,
        method: ShippingOption | None,
        priced: OrderTax,
        discounts: Sequence[tuple[Promotion, Discount]],
        code_notes: tuple[str, tuple[str, ...]],
        parcel_prices: Sequence[int],
    ) -> Quote:
        from webshop.pricing.rounding import allocate

        shipping_line = priced.shipping
        shipping_off = shipping_line.discount if shipping_line else 0
        charged = sum(parcel_prices) - shipping_off
        parcels = allocate(charged, list(parcel_prices)) if charged else [0] * len(parcel_prices)
        shipping_tax = shipping_line.tax if shipping_line else 0
        parcel_taxes = allocate(shipping_tax, parcels) if shipping_tax else [0] * len(parcels)
        code_problem, displaced = code_notes
        taxed_lines = iter(priced.lines)  # ``view``'s: ``shown``'s lines but those no longer sold
        quoted: list[QuotedLine] = []
        for line in shown.lines:
            if line.withdrawn:
                quoted.append(QuotedLine(line, 0, 0, 0, 0, 0))  # shown, not counted
            else:
                taxed = next(taxed_lines)
                quoted.append(QuotedLine(line, taxed.rate_bp, taxed.discount, taxed.net, taxed.tax, taxed.gross))
        lines = tuple(quoted)
        applied = tuple(
            AppliedPromotion(
                id=promotion.id,
                name=promotion.name,
                code=promotion.code,
                kind=promotion.kind,
                amount=sum(off for _, off in discount.lines),
                shipping=min(discount.shipping, shipping_off),
            )
            for promotion, discount in discounts
        )
        return Quote(
            currency=self.shop.currency,
            mode=self.mode,
            country=country,
            lines=lines,
            subtotal=view.subtotal,
            discount=sum(line.discount for line in lines),
            shipping=charged,
            shipping_discount=shipping_off,
            shipping_tax=shipping_tax,
            tax=priced.tax_total,
            total=priced.gross_total,
            tax_by_rate=priced.tax_by_rate,
            promotions=applied,
            code=view.promotion_code,
            code_problem=code_problem,
            displaced=displaced,
            method=method,
            parcels=tuple(parcels),
            parcel_taxes=tuple(parcel_taxes),
        )

    async def _method(self, view: CartView, country: str, code: str | None) -> ShippingOption | None:
        if code is None:
            if not view.lines:
                return None
            try:
                options = await self.options(view, country)
            except NoShippingZone:
                return None
            usable = [option for option in options if option.available]
            return min(usable, key=lambda option: option.price, default=None)
        for option in await self.options(view, country):
            if option.code == code:
                if not option.available:
                    raise ValidationFailed(option.problem, field_errors={"shipping_method": option.problem})
                return option
        raise ValidationFailed(
            "Choose a shipping method.", field_errors={"shipping_method": "Choose one of the shipping methods."}
        )

    async def _promotions(
        self, view: CartView, shipping: int, user_id: int | None, email: str, now: datetime
    ) -> tuple[list[tuple[Promotion, Discount]], str, tuple[str, ...]]:
        """The promotions used on ``view`` (with what each takes off), why its code gives nothing, and
        the automatic promotions its code's promotion displaced (``Quote.displaced``)."""
        code = view.promotion_code
        if not view.lines:
            return [], "", ()
        condition = Promotion.code.is_(None) if code is None else or_(Promotion.code.is_(None), Promotion.code == code)
        promotions = list(
            await self.session.scalars(
                select(Promotion).where(Promotion.active.is_(True), condition).order_by(Promotion.id)
            )
        )
        problem = ""
        if code is not None and not any(p.code == code for p in promotions):
            withdrawn = await self.session.scalar(select(Promotion.id).where(Promotion.code == code).limit(1))
            problem = UNKNOWN_CODE if withdrawn is None else WITHDRAWN_CODE
        if not promotions:
            return [], problem, ()
        items = await self._items(view)
        uses = await self._customer_uses([p.id for p in promotions if p.per_customer_limit], user_id, email)
        usable: list[tuple[PromotionTerms, Discount]] = []
        by_key: dict[str, Promotion] = {}
        for promotion in promotions:
            terms = terms_of(promotion, customer_uses=uses.get(promotion.id, 0))
            try:
                discount = evaluate(
                    terms, items, subtotal=view.subtotal, shipping=shipping, now=now, currency=self.shop.currency
                )
            except NotApplicable as exc:
                if promotion.code is not None:
                    problem = exc.message
                continue
            by_key[terms.name] = promotion
            usable.append((terms, discount))
        chosen = best_combination(usable)
        used = [
            (by_key[discount.name], discount)
            for discount in chosen
            if discount.total > 0 or discount.kind is PromotionKind.FREE_SHIPPING
        ]
        if code is not None and not problem and not any(p.code == code for p, _ in used):
            problem = "This code cannot be combined with the promotion already applied to your cart."
        displaced: tuple[str, ...] = ()
        if code is not None and not problem:  # what the cart would get without the code, and does not now
            kept = {p.id for p, _ in used}
            without = best_combination([(terms, discount) for terms, discount in usable if terms.code is None])
            displaced = tuple(
                by_key[discount.name].name
                for discount in without
                if discount.total > 0 and by_key[discount.name].id not in kept
            )
        return used, problem, displaced

    async def _items(self, view: CartView) -> list[CartItem]:
        """The cart's lines as promotions see them; a product's categories are its own and its ancestors."""
        parents = dict((await self.session.execute(select(Category.id, Category.parent_id))).all())
        items = []
        for line in view.lines:
            categories: set[int] = set()
            node = line.category_id
            while node is not None and node not in categories:
                categories.add(node)
                node = parents.get(node)
            items.append(
                CartItem(
                    key=str(line.id),
                    variant_id=line.variant_id,
                    product_id=line.product_id,
                    category_ids=frozenset(categories),
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                )
            )
        return items

    async def _customer_uses(self, promotion_ids: list[int], user_id: int | None, email: str) -> dict[int, int]:
        """``{promotion id: uses}`` by this customer (account or e-mail) of orders still standing."""
        if not promotion_ids or (user_id is None and not email):
            return {}
        who = []
        if user_id is not None:
            who.append(PromotionUsage.user_id == user_id)
        if email:
            who.append(PromotionUsage.email == email)
        rows = await self.session.execute(
            select(PromotionUsage.promotion_id, func.count())
            .where(PromotionUsage.promotion_id.in_(promotion_ids), PromotionUsage.released_at.is_(None), or_(*who))
            .group_by(PromotionUsage.promotion_id)
        )
        return {promotion_id: int(count) for promotion_id, count in rows}


async def apply_code(
    pricer: Pricer, carts: CartService, owner: CartOwner, raw: str, *, user_id: int | None = None, email: str = ""
) -> Quote:
    """Put the promotion code ``raw`` on ``owner``'s cart when it gives something now; committed.

    Returns:
        The cart's quote with the code (at the default country, the cheapest shipping).

    Raises:
        ValidationFailed: the code is malformed, unknown, or does not apply to this cart; the message
            (field ``code``) says why (expired, not yet valid, minimum not reached, used up, not for
            these items). Nothing is stored then.
    """
    code = clean_code(raw)
    view = await carts.view(owner)
    if not view.lines:
        raise ValidationFailed("Add something to your cart first.", field_errors={"code": "Your cart is empty."})
    quote = await pricer.quote(replace(view, promotion_code=code), user_id=user_id, email=email)
    if quote.code_problem:
        raise ValidationFailed(quote.code_problem, field_errors={"code": quote.code_problem})
    await carts.set_promotion_code(owner, code)
    return quote


def terms_of(promotion: Promotion, *, customer_uses: int = 0) -> PromotionTerms:
    """The pure rules of ``promotion``; its ``name`` is its id, so ``best_combination``'s choice maps back."""
    return PromotionTerms(
        name=str(promotion.id),
        code=promotion.code,
        kind=PromotionKind(promotion.kind),
        value=promotion.value if promotion.kind != PromotionKind.FREE_SHIPPING else max(promotion.value, 0),
        starts_at=promotion.starts_at,
        ends_at=promotion.ends_at,
        min_subtotal=promotion.min_subtotal,
        usage_limit=promotion.usage_limit,
        times_used=promotion.times_used,
        per_customer_limit=promotion.per_customer_limit,
        customer_uses=customer_uses,
        combinable=promotion.combinable,
        category_ids=frozenset(promotion.category_ids or ()),
        product_ids=frozenset(promotion.product_ids or ()),
        variant_ids=frozenset(promotion.variant_ids or ()),
    )


def clean_code(raw: str) -> str:
    """A promotion code as typed, normalised (``normalise_code``).

    Raises:
        ValidationFailed: empty, too long, or a character a code cannot have (field ``code``).
    """
    try:
        return normalise_code(raw or "")
    except ValueError as exc:
        raise ValidationFailed(str(exc), field_errors={"code": str(exc)}) from exc


def country_name(code: str) -> str:
    """The English short name of an ISO 3166-1 alpha-2 ``code`` (``pycountry``), or the code itself
    (``postal.country_line``, an address's last line)."""
    return postal.country_line(code)


def countries() -> list[tuple[str, str]]:
    """Every ISO 3166-1 country as ``(alpha-2 code, name)``, sorted by name as a reader sorts it, accents
    aside ("Côte d'Ivoire" between "Costa Rica" and "Croatia", "Åland Islands" with the A's): the address
    form's list."""
    import pycountry

    return sorted(
        ((c.alpha_2, str(getattr(c, "common_name", None) or c.name)) for c in pycountry.countries),
        key=lambda pair: without_accents(pair[1]),
    )
