"""Checkout routes of the JSON API: shipping methods, and placing the cart as an order, idempotently."""

import hashlib
from typing import Annotated, Any

import msgspec
from litestar import Controller, MediaType, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import JSONBody, QueryParameter, SkipValidation

from webshop.api.responses import PROBLEM_JSON, created_at, problems
from webshop.api.schemas import IdempotencyKey, money
from webshop.cart.service import CartOwner
from webshop.checkout.addresses import AddressInput, address_input
from webshop.checkout.idempotency import IdempotencyService, fingerprint
from webshop.checkout.quote import NoShippingZone, Pricer
from webshop.checkout.schemas import CheckoutIn, CheckoutQuoteOut, ShippingMethodOut, checkout_quote_out
from webshop.checkout.service import CheckoutService
from webshop.db.models import User, postal
from webshop.deps import CartsDep, SettingsDep, UserRequest
from webshop.errors import PaymentDeclined, ValidationFailed
from webshop.orders.schemas import OrderOut, order_out
from webshop.security.jwt import BEARER, PUBLIC
from webshop.tax.destination import RegionNeeded
from webshop.text import query_text
from webshop.web.errors import problem

SCOPE = "checkout"


def checkout_token(user_id: int, key: str) -> str:
    """The order's one-time token for an API ``Idempotency-Key`` (unique per user and key)."""
    return "api-" + hashlib.sha256(f"{user_id}:{key}".encode()).hexdigest()[:60]


async def _shipping_address(data: CheckoutIn, user_id: int, checkout_service: CheckoutService) -> AddressInput:
    """``CheckoutService.destination`` of the body, its address's errors named as the body names its
    fields (``shipping_address.city``, as the schema's 400 does)."""
    typed = address_input(data.shipping_address) if data.shipping_address is not None else None
    try:
        return await checkout_service.destination(user_id, address=typed, address_id=data.address_id)
    except ValidationFailed as exc:
        raise _as_named(exc, data) from None


def _as_named(exc: ValidationFailed, data: CheckoutIn) -> ValidationFailed:
    """``exc`` with the address's fields named as the body names them: ``shipping_address.region``, or a
    saved address's own fields under ``address_id``."""
    fields = {"shipping_address", "address_id"}
    where = "shipping_address" if data.shipping_address is not None else "address_id"
    errors = {(k if k in fields else f"{where}.{k}"): v for k, v in exc.field_errors.items()}
    return ValidationFailed(exc.detail, field_errors=errors)


class CheckoutApiController(Controller):
    """Checkout for API consumers: the same ``place_order`` as the pages, with ``Idempotency-Key``."""

    path = "/api"
    tags = ["checkout"]

    @get("/shipping-methods", opt=PUBLIC, operation_id="listShippingMethods", responses=problems(400, 401, 422))
    async def shipping_methods(
        self,
        api_user: NamedDependency[SkipValidation[User | None]],
        carts_service: CartsDep,
        settings: SettingsDep,
        country: Annotated[
            str | None,
            QueryParameter(
                name="country",
                pattern=r"^[A-Za-z]{2}\Z",
                schema_extra={"pattern": "^[A-Za-z]{2}$"},  # the same rule in JSON Schema's dialect (no \Z)
                description="ISO 3166-1 alpha-2 destination (default: WEBSHOP_DEFAULT_COUNTRY)",
                examples=[Example(value="FR")],
            ),
        ] = None,
    ) -> list[ShippingMethodOut]:
        """The shipping methods of the destination's zone, priced for the caller's cart (with a bearer
        token; without one, for an empty cart). 422 when the country is not one of ISO 3166-1 or no zone
        serves it."""
        owner = CartOwner(user_id=api_user.id) if api_user is not None else CartOwner()
        view = await carts_service.view(owner)
        pricer = Pricer(carts_service.repository.session, settings.shop)
        destination = AddressInput(country=country).cleaned_country() if country else settings.shop.default_country
        options = await pricer.options(view, destination.upper())
        return [
            ShippingMethodOut(
                code=option.code,
                name=option.name,
                price=money(option.price, option.currency),
                description=option.description,
                available=option.available,
                problem=option.problem or None,
                free_over=money(option.free_over, option.currency) if option.free_over is not None else None,
            )
            for option in options
        ]

    @get("/checkout/quote", operation_id="quoteCheckout", security=BEARER, responses=problems(400, 401, 409, 422))
    async def quote(
        self,
        request: UserRequest,
        carts_service: CartsDep,
        checkout_service: NamedDependency[CheckoutService],
        country: Annotated[
            str,
            QueryParameter(
                pattern=r"^[A-Za-z]{2}\Z",
                schema_extra={"pattern": "^[A-Za-z]{2}$"},  # the same rule in JSON Schema's dialect (no \Z)
                description="ISO 3166-1 alpha-2 destination",
                examples=[Example(value="FR")],
            ),
        ],
        shipping_method: Annotated[
            str,
            QueryParameter(
                pattern=r"^[a-z0-9_-]{1,40}\Z",
                schema_extra={"pattern": "^[a-z0-9_-]{1,40}$"},
                description="A method of the destination's zone (GET /api/shipping-methods?country=...)",
                examples=[Example(value="standard")],
            ),
        ],
        region: Annotated[
            str,
            query_text(
                max_length=postal.REGION,
                description="The address's state, province or region, as the address's `region` (ISO 3166-2,"
                " its own part, or its name); 422 without one where the shop taxes the country by region",
                examples=[Example(value="US-CA")],
            ),
        ] = "",
    ) -> CheckoutQuoteOut:
        """What ``POST /api/checkout`` would charge for the cart shipped to ``country`` by ``shipping_method``
        (promotions, shipping, tax), with the ``signature`` to send as its ``expected_signature``: the order
        is then placed at this price or not at all (409 when anything changed). 409: an item no longer
        sold (``shortfalls``); 422: an empty cart, a country ISO 3166-1 does not have or no zone serves, a
        method it does not have or that cannot take the cart, a total over the largest an order can have, a
        region the country does not have, or none where the shop taxes the country by region."""
        user_id = request.user.id
        view = await carts_service.view(CartOwner(user_id=user_id))
        destination = AddressInput(country=country, region=region)
        quote = await checkout_service.quote_to_place(
            view,
            country=destination.cleaned_country(),
            region=destination.cleaned_region(),
            method_code=shipping_method,
            user_id=user_id,
        )
        return checkout_quote_out(view, quote)

    @post(
        "/checkout",
        operation_id="checkout",
        **created_at("/api/orders/{id}"),
        security=BEARER,
        responses=problems(400, 401, 402, 403, 404, 409, 422, 503),
    )
    async def checkout(
        self,
        request: UserRequest,
        data: JSONBody[CheckoutIn],
        idempotency_key: IdempotencyKey,
        checkout_service: NamedDependency[CheckoutService],
        idempotency_service: NamedDependency[IdempotencyService],
    ) -> Response[OrderOut]:
        """Place the cart as an order and pay it. Every line is re-checked; stock is taken or nothing is.

        With ``payment.token`` (a provider-issued token such as ``tok_visa``) the payment is confirmed at
        once: 201 with the order paid, or 402 when the payment failed (the order is cancelled, its stock
        and cart lines back). Without a token: 201 with the order pending and ``payment.redirect_url``,
        the provider's hosted payment page; the order is paid when the provider says so (see
        ``GET /api/orders/{id}``) or cancelled after ``WEBSHOP_PAYMENT_TIMEOUT_MINUTES``. A
        ``card_number`` is refused (422): card numbers go to the payment provider only. 503 when the
        provider cannot be reached (the order waits; retry with the same Idempotency-Key).

        With ``expected_signature`` (from ``GET /api/checkout/quote``) the order is placed only at the price
        quoted: 409 when the cart, its prices, promotions, shipping or total changed since (nothing is
        charged; quote again). With ``WEBSHOP_REQUIRE_VERIFIED_EMAIL`` on, an account whose e-mail address is
        not confirmed gets 403.
        """
        if data.payment.card_number is not None:
            message = "This shop takes no card numbers: pay with a token from the payment provider, or leave "
            message += "payment out and send the shopper to payment.redirect_url (the provider's payment page)."
            raise ValidationFailed(message, field_errors={"payment.card_number": message})
        user_id = request.user.id
        address = await _shipping_address(data, user_id, checkout_service)
        body = msgspec.to_builtins(data)
        claim: dict[str, Any] = {"user_id": user_id, "scope": SCOPE, "key": idempotency_key}
        replay = await idempotency_service.claim(**claim, request_fingerprint=fingerprint(body))
        if replay is not None:
            media = PROBLEM_JSON if replay.status >= 400 else MediaType.JSON  # a declined attempt's 402
            return Response(replay.body, status_code=replay.status, media_type=media)  # type: ignore[arg-type]
        try:
            order, _ = await checkout_service.place_order(
                user_id=user_id,
                address=address,
                shipping_code=data.shipping_method,
                checkout_token=checkout_token(user_id, idempotency_key),
                return_url=checkout_service.shop.base_url.rstrip("/") + "/checkout/return/{number}",
                payment_token=data.payment.token,
                customer_note=data.customer_note,
                expected_signature=data.expected_signature,
            )
        except PaymentDeclined as exc:
            # The attempt is on record (its order cancelled, stock and cart back): the key answers it from
            # now on, the same body with this 402, another body (another card) with 422; a new attempt
            # takes a new key (draft-ietf-httpapi-idempotency-key-header: the first response is replayed).
            declined = problem(exc.status_code, exc.detail, title=exc.title).content
            await idempotency_service.complete(**claim, status=exc.status_code, body=declined)
            raise
        # Nothing placed: the address's fault (named as the body names it); the key is free again.
        except (RegionNeeded, NoShippingZone) as exc:
            await idempotency_service.release(**claim)
            raise _as_named(exc, data) from None
        except Exception:  # nothing placed: the client may correct the request and retry with the key
            await idempotency_service.release(**claim)
            raise
        result = order_out(order)
        await idempotency_service.complete(**claim, status=201, body=msgspec.to_builtins(result))
        return Response(result, status_code=201)
