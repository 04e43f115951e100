"""Application factory: plugins, middleware, routes and exception handlers, top to bottom."""

from __future__ import annotations

from pathlib import Path

from advanced_alchemy.extensions.litestar import SQLAlchemyPlugin
from advanced_alchemy.extensions.litestar.providers import create_service_provider
from litestar import Litestar, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.plugins.flash import FlashConfig, FlashPlugin
from litestar.plugins.htmx import HTMXPlugin, HTMXRequest
from litestar.static_files import create_static_files_router

from webshop.accounts.api import AuthApiController, MeApiController
from webshop.accounts.service import UserService
from webshop.accounts.tokens import ApiTokenService
from webshop.accounts.web import AccountController
from webshop.api.openapi import openapi_config
from webshop.audit.service import AuditService
from webshop.cart.api import CartApiController
from webshop.cart.service import CartService
from webshop.cart.web import CartController, cart_badge_hook
from webshop.catalog.api import CatalogApiController
from webshop.catalog.service import CategoryService, ProductService
from webshop.catalog.web import CatalogController
from webshop.checkout.api import CheckoutApiController
from webshop.checkout.idempotency import IdempotencyService
from webshop.checkout.service import CheckoutService
from webshop.checkout.web import CheckoutController
from webshop.config import Settings, get_settings
from webshop.db.engine import ShopAlchemyConfig, create_alchemy_config
from webshop.orders.api import OrderApiController
from webshop.orders.service import OrderService
from webshop.orders.web import OrderController
from webshop.security.jwt import api_auth
from webshop.security.session import SessionUserMiddleware, session_config
from webshop.web.errors import handle_exception
from webshop.web.templating import template_config

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
    alchemy = alchemy or create_alchemy_config(settings)
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    csrf = CSRFConfig(
        secret=settings.secret_key,
        cookie_name="webshop_csrf",
        cookie_secure=settings.secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
        header_name="x-csrftoken",
        exclude=["/api"],
    )
    templates = template_config()
    bearer = api_auth(settings, alchemy)
    return Litestar(
        route_handlers=[
            CatalogController,
            AccountController,
            CartController,
            CheckoutController,
            OrderController,
            Router(
                path="/",
                route_handlers=[
                    AuthApiController,
                    MeApiController,
                    CatalogApiController,
                    CartApiController,
                    CheckoutApiController,
                    OrderApiController,
                ],
                middleware=[bearer.middleware],
            ),
            health,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
            create_static_files_router(
                path="/media", directories=[settings.media_dir], include_in_schema=False, name="media"
            ),
        ],
        dependencies={
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "products_service": create_service_provider(ProductService),
            "categories_service": create_service_provider(CategoryService),
            "users_service": create_service_provider(UserService),
            "carts_service": create_service_provider(CartService),
            "checkout_service": create_service_provider(CheckoutService),
            "orders_service": create_service_provider(OrderService),
            "api_tokens_service": create_service_provider(ApiTokenService),
            "idempotency_service": create_service_provider(IdempotencyService),
            "audit_service": create_service_provider(AuditService),
        },
        plugins=[SQLAlchemyPlugin(config=alchemy), HTMXPlugin(), FlashPlugin(FlashConfig(template_config=templates))],
        middleware=[
            session_config(settings).middleware,
            DefineMiddleware(SessionUserMiddleware, alchemy=alchemy, exclude=["^/static/", "^/media/", "^/api/"]),
        ],
        openapi_config=openapi_config(bearer),
        csrf_config=csrf,
        request_class=HTMXRequest,
        template_config=templates,
        before_request=cart_badge_hook(alchemy),
        exception_handlers={Exception: handle_exception},
        debug=settings.debug,
    )
