"""Application factory: plugins, middleware, routes and exception handlers, top to bottom."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from litestar import Controller, Litestar, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins.flash import FlashConfig, FlashPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.static_files import create_static_files_router

from webshop.accounts.api import AuthApiController, MeApiController
from webshop.accounts.email_api import AccountEmailApiController, AccountLinkApiController
from webshop.accounts.links import AccountLinkService
from webshop.accounts.links_web import AccountLinkController
from webshop.accounts.service import UserService
from webshop.accounts.tokens import ApiTokenService
from webshop.accounts.users_api import UserAdminApiController
from webshop.accounts.web import AccountController
from webshop.admin.catalog_csv import AdminCatalogCsvController
from webshop.admin.categories import AdminCategoryController
from webshop.admin.orders import AdminOrderController
from webshop.admin.products import AdminProductController
from webshop.admin.promotions import AdminPromotionController
from webshop.admin.shipping import AdminShippingController, AdminTaxRateController
from webshop.admin.shops import AdminShopController
from webshop.admin.stock import AdminStockController
from webshop.admin.users import AdminUserController
from webshop.admin.web import AdminController
from webshop.api.json_guard import ShopRequest
from webshop.api.openapi import AllowHeaderMiddleware, StrictStructSchemaPlugin, openapi_config
from webshop.api.responses import declare_refused_media_types
from webshop.api.schemas import strict_json_body
from webshop.audit.service import AuditService
from webshop.cart.api import CartApiController
from webshop.cart.service import CartService
from webshop.cart.web import CartController, cart_badge_hook
from webshop.catalog.admin_api import (
    CategoryAdminApiController,
    ProductAdminApiController,
    VariantAdminApiController,
)
from webshop.catalog.api import CatalogApiController
from webshop.catalog.categories import CategoryService
from webshop.catalog.csv.api import CatalogCsvApiController
from webshop.catalog.products import ProductService
from webshop.catalog.version import attach_reader
from webshop.catalog.web import CatalogController
from webshop.checkout.address_book_web import AddressBookController
from webshop.checkout.addresses_api import AddressBookApiController
from webshop.checkout.api import CheckoutApiController
from webshop.checkout.guest_web import GuestAccountController, GuestOrderController
from webshop.checkout.idempotency import IdempotencyService
from webshop.checkout.service import CheckoutService
from webshop.checkout.web import CheckoutController
from webshop.config import Settings, get_settings
from webshop.db.engine import ShopAlchemyConfig, create_alchemy_config
from webshop.db.providers import service_provider
from webshop.invoices.admin import AdminInvoiceController
from webshop.invoices.api import InvoiceApiController
from webshop.invoices.service import InvoiceService
from webshop.invoices.web import InvoiceController
from webshop.mail.sender import MailSender
from webshop.observability.health import ready_handler
from webshop.observability.logging import configure_logging
from webshop.observability.metrics import metrics_handler
from webshop.observability.middleware import install as install_request_context
from webshop.orders.api import OrderApiController
from webshop.orders.fulfilment import FulfilmentService
from webshop.orders.refunds import RefundService
from webshop.orders.refunds_api import RefundApiController
from webshop.orders.refunds_web import AdminRefundController
from webshop.orders.service import OrderService
from webshop.orders.web import OrderController
from webshop.payments.api import PaymentWebhookController
from webshop.payments.provider import PaymentProvider
from webshop.payments.registry import build_provider
from webshop.payments.service import PaymentService
from webshop.payments.testing import TestProvider
from webshop.payments.testing_sender import TestPaymentSender
from webshop.payments.testing_web import TestPaymentPageController
from webshop.payments.worker import PaymentExpirer
from webshop.promotions.api import PromotionApiController
from webshop.promotions.service import PromotionService
from webshop.security.cors import install as install_api_cors
from webshop.security.headers import allowed_hosts_config
from webshop.security.jwt import api_auth, optional_bearer_user
from webshop.security.session import SessionUserMiddleware, session_config
from webshop.security.throttle import provide_sign_in_throttle, rate_limit_middleware, rate_limit_stores
from webshop.shipping.api import ShippingZoneApiController
from webshop.shipping.service import ShippingZoneService
from webshop.shops.api import ShopApiController, ShopStatusApiController
from webshop.shops.service import ShopService
from webshop.shops.web import ShopsController
from webshop.stock.api import StockApiController
from webshop.stock.service import StockService
from webshop.tax.api import TaxRateApiController
from webshop.tax.service import TaxRateService
from webshop.web.admission import AdmissionMiddleware
from webshop.web.caching import StaticAssets, compression_config
from webshop.web.caching import install as install_caching
from webshop.web.errors import handle_exception
from webshop.web.head import install as install_head
from webshop.web.history import install as install_history
from webshop.web.seo import SEO_HANDLERS
from webshop.web.templating import template_config
from webshop.webhooks.api import WebhookApiController
from webshop.webhooks.sender import WebhookSender
from webshop.webhooks.service import WebhookService
from webshop.webhooks.web import AdminWebhookController

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


@get("/health", include_in_schema=False, sync_to_thread=False)
def health() -> dict[str, str]:
    """Liveness: the process is up."""
    return {"status": "ok"}


def create_app(settings: Settings | None = None, *, alchemy: ShopAlchemyConfig | None = None) -> Litestar:
    """Build the Litestar application.

    Args:
        settings: Settings to use (default: read from the environment).
        alchemy: A prepared database config (tests pass one built on NullPool).
    """
    settings = settings or get_settings()
    configure_logging(settings.server)
    alchemy = alchemy or create_alchemy_config(settings)
    settings.shop.media_dir.mkdir(parents=True, exist_ok=True)
    assets = StaticAssets(STATIC_DIR)  # content hashes for fingerprinted /static URLs, computed once
    templates = template_config(settings, assets)
    bearer = api_auth(settings.security, alchemy)
    # The payment provider (WEBSHOP_PAYMENT_PROVIDER).
    payment_provider = build_provider(settings, alchemy)
    workers = _background_workers(settings, alchemy, payment_provider)
    # PostgreSQL: the catalog's per-request look-ups (version, stock) in one round trip each.
    catalog_reader = attach_reader(alchemy.get_engine(), settings.database.connect_timeout)
    app = Litestar(
        route_handlers=_route_handlers(settings, alchemy, bearer.middleware),
        dependencies=_dependencies(settings, alchemy, payment_provider, bearer),
        plugins=[
            SQLAlchemyPlugin(config=alchemy),
            HTMXPlugin(),
            FlashPlugin(FlashConfig(template_config=templates)),
            StrictStructSchemaPlugin(),
        ],
        middleware=[
            AdmissionMiddleware(settings.limits.max_active_requests, settings.limits.queue_timeout),
            *rate_limit_middleware(settings.limits),
            AllowHeaderMiddleware,
            session_config(settings.security).middleware,
            DefineMiddleware(SessionUserMiddleware, alchemy=alchemy, exclude=["^/static/", "^/media/", "^/api/"]),
        ],
        openapi_config=openapi_config(bearer, static_url=assets.url),
        compression_config=compression_config(),
        csrf_config=_csrf_config(settings),
        allowed_hosts=allowed_hosts_config(settings.security),
        stores=rate_limit_stores(settings.limits),
        logging_config=None,  # structlog and the root handler are set up by configure_logging
        request_class=ShopRequest,  # HTMXRequest with a nesting limit on JSON bodies
        template_config=templates,
        before_request=cart_badge_hook(alchemy),
        exception_handlers={Exception: handle_exception},
        debug=settings.server.debug,
        on_startup=[worker.start for worker in workers],
        # Litestar runs these after the plugins' lifespans, so the engine, which advanced-alchemy's
        # lifespan has disposed already, is disposed again once the mail sender's last look at the
        # outbox has given its connection back (else that connection is never closed).
        on_shutdown=[
            *(worker.stop for worker in workers),
            _close_provider(payment_provider),
            *([catalog_reader.dispose] if catalog_reader else []),
            _dispose_engine(alchemy),
        ],
    )
    app.state.payment_provider = payment_provider  # tests and the test provider's pages reach it here
    install_head(app)  # HEAD answered as GET without the body, on every route (RFC 9110 §9.3.2)
    install_history(app)  # an htmx post answered with its form again leaves the address bar alone
    install_api_cors(app, settings.security)  # /api only; around everything, so refusals carry it too
    install_caching(app, assets)  # Cache-Control and 304s on every response, errors included
    # Request id, timing, security headers, access log and metrics around every request, 404s included.
    return install_request_context(app, settings, engine=alchemy.get_engine())


def _background_workers(
    settings: Settings, alchemy: ShopAlchemyConfig, payment_provider: PaymentProvider
) -> list[BackgroundWorker]:
    """The loops this process runs beside the requests, started and stopped with the app: the e-mail
    outbox sender (``webshop/mail/sender.py``), the webhook sender (``webshop/webhooks/sender.py``),
    the worker that ends orders left unpaid, and, with the test provider only, its webhooks to the shop
    (``webshop/payments/testing_sender.py``)."""
    workers: list[BackgroundWorker] = [
        MailSender(settings.mail, alchemy),
        WebhookSender(settings.webhooks, alchemy, server=settings.server),
        PaymentExpirer(settings),
    ]
    if isinstance(payment_provider, TestProvider):
        workers.append(TestPaymentSender(payment_provider, alchemy, settings.webhooks))
    return workers


class BackgroundWorker(Protocol):
    """A background loop of the app (``_background_workers``)."""

    async def start(self) -> None:
        """Start the loop (``on_startup``)."""

    async def stop(self) -> None:
        """Stop it and wait for its last round (``on_shutdown``)."""


def _close_provider(provider: PaymentProvider) -> Callable[[], Awaitable[None]]:
    """An ``on_shutdown`` hook that closes the provider's HTTP connections, if it keeps any (Stripe)."""

    async def close() -> None:
        closer = getattr(provider, "aclose", None)
        if closer is not None:
            await closer()

    return close


def _dispose_engine(alchemy: ShopAlchemyConfig) -> Callable[[], Awaitable[None]]:
    """An ``on_shutdown`` hook that closes every pooled connection of the app's engine."""

    async def dispose() -> None:
        await alchemy.get_engine().dispose()

    return dispose


def _csrf_config(settings: Settings) -> CSRFConfig:
    """Litestar's CSRF protection for the pages (double-submit cookie, OWASP CSRF Prevention Cheat
    Sheet); the bearer-token API is excluded."""
    return CSRFConfig(
        secret=settings.security.secret_key,
        cookie_name="webshop_csrf",
        cookie_secure=settings.security.secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        exclude=["^/api/"],  # a regular expression searched in the path: anchored, or "/x/api" would match
    )


PAGE_CONTROLLERS: tuple[type[Controller], ...] = (
    CatalogController,
    ShopsController,
    AccountController,
    AddressBookController,
    AccountLinkController,
    CartController,
    CheckoutController,
    GuestOrderController,
    GuestAccountController,
    OrderController,
    InvoiceController,
    AdminController,
    AdminOrderController,
    AdminRefundController,
    AdminProductController,
    AdminUserController,
    AdminStockController,
    AdminCategoryController,
    AdminCatalogCsvController,
    AdminShopController,
    AdminWebhookController,
    AdminInvoiceController,
    AdminPromotionController,
    AdminShippingController,
    AdminTaxRateController,
)
"""The HTML pages' controllers (cookie sessions, CSRF), shoppers' then admins'."""

API_CONTROLLERS: tuple[type[Controller], ...] = (
    AuthApiController,
    MeApiController,
    UserAdminApiController,
    AccountEmailApiController,
    AccountLinkApiController,
    CatalogApiController,
    CategoryAdminApiController,
    ProductAdminApiController,
    VariantAdminApiController,
    CatalogCsvApiController,
    CartApiController,
    CheckoutApiController,
    AddressBookApiController,
    OrderApiController,
    InvoiceApiController,
    RefundApiController,
    ShopApiController,
    ShopStatusApiController,
    StockApiController,
    WebhookApiController,
    PromotionApiController,
    ShippingZoneApiController,
    TaxRateApiController,
    PaymentWebhookController,
)
"""The JSON API's controllers (``/api/...``, bearer tokens, no CSRF), in the OpenAPI document's order."""


def _route_handlers(settings: Settings, alchemy: ShopAlchemyConfig, api_auth_middleware: Any) -> list[Any]:
    """The pages, the JSON API (behind its bearer-token middleware), the probes, SEO files and assets."""
    declare_refused_media_types(API_CONTROLLERS)
    return [
        *PAGE_CONTROLLERS,
        # The test payment service's hosted pages (webshop/payments/testing_web.py), with it only.
        *([TestPaymentPageController] if settings.payments.provider == "test" else []),
        Router(
            path="/",
            route_handlers=list(API_CONTROLLERS),
            middleware=[api_auth_middleware],
            before_request=strict_json_body,  # JSON bodies by msgspec's strict rules: 0 is not a boolean
        ),
        health,
        ready_handler(alchemy.get_engine()),
        metrics_handler(settings.security.metrics_token),
        *SEO_HANDLERS,
        create_static_files_router(
            path="/static", directories=[STATIC_DIR], include_in_schema=False, opt={"exclude_from_csrf": True}
        ),
        create_static_files_router(
            path="/media",
            directories=[settings.shop.media_dir],
            include_in_schema=False,
            name="media",
            opt={"exclude_from_csrf": True},
        ),
    ]


def _dependencies(
    settings: Settings, alchemy: ShopAlchemyConfig, payment_provider: PaymentProvider, bearer: Any
) -> dict[str, Provide]:
    """What handlers get by name: the settings, the database config and one provider per service
    (each wrapped in ``Provide`` once per app: parsing them per route cost a second of start-up)."""
    return {
        "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
        "sign_in_throttle": Provide(provide_sign_in_throttle, sync_to_thread=False),
        "api_user": Provide(optional_bearer_user(bearer.middleware)),
        "alchemy": Provide(lambda: alchemy, use_cache=True, sync_to_thread=False),
        "account_links_service": service_provider(AccountLinkService, security=settings.security, shop=settings.shop),
        "products_service": service_provider(ProductService, shop=settings.shop),
        "categories_service": service_provider(CategoryService),
        "users_service": service_provider(UserService),
        "carts_service": service_provider(CartService),
        "payment_provider": Provide(lambda: payment_provider, use_cache=True, sync_to_thread=False),
        "checkout_service": service_provider(
            CheckoutService,
            shop=settings.shop,
            provider=payment_provider,
            payments=settings.payments,
            invoices=settings.invoices,
        ),
        "payment_service": service_provider(
            PaymentService, provider=payment_provider, payments=settings.payments, invoices=settings.invoices
        ),
        "orders_service": service_provider(OrderService, provider=payment_provider, invoices=settings.invoices),
        "api_tokens_service": service_provider(ApiTokenService, security=settings.security),
        "idempotency_service": service_provider(IdempotencyService),
        "audit_service": service_provider(AuditService),
        "stock_service": service_provider(StockService),
        "shops_service": service_provider(ShopService, shop=settings.shop),
        "fulfilment_service": service_provider(FulfilmentService),
        "invoices_service": service_provider(InvoiceService, settings=settings),
        "refunds_service": service_provider(RefundService, provider=payment_provider, invoices=settings.invoices),
        "promotions_service": service_provider(PromotionService),
        "shipping_zones_service": service_provider(ShippingZoneService),
        "tax_rates_service": service_provider(TaxRateService, shop=settings.shop),
        "webhooks_service": service_provider(WebhookService, webhooks=settings.webhooks, server=settings.server),
    }
