"""Short names for what handlers take (the JSON API's, the admin pages' and the shoppers' pages'): the
signed-in request and the services.

Litestar injects a dependency by its parameter's name (``products_service`` gets the app's
``ProductService`` provider, ``webshop.app._dependencies``), so a handler still names each parameter
as before; these aliases only shorten the annotations, in the manner of FastAPI's ``SessionDep``:
``products_service: ProductsDep`` is ``products_service: NamedDependency[ProductService]``.
A dependency is not a request parameter: none of them appears in the OpenAPI document.

``UserRequest`` is Litestar's ``Request`` of a route behind a sign-in (``request.user`` is the ``User``).
It is a plain type alias, not a dependency: ``request`` is one of Litestar's own handler arguments, so
taking it costs nothing. (On the hot read paths, an extra dependency that does not depend on the others
makes Litestar resolve them concurrently in a task group, about 64 µs a request; the page bundles of
the admin and account pages depend on the services they hold, so they are resolved in turn.)
"""

from typing import Any, TypeAlias

from litestar import Request
from litestar.di import NamedDependency
from litestar.security.jwt import Token

from webshop.accounts.links import AccountLinkService
from webshop.accounts.service import UserService
from webshop.accounts.tokens import ApiTokenService
from webshop.audit.service import AuditService
from webshop.cart.service import CartService
from webshop.catalog.categories import CategoryService
from webshop.catalog.products import ProductService
from webshop.config import Settings
from webshop.db.models import User
from webshop.invoices.service import InvoiceService
from webshop.orders.fulfilment import FulfilmentService
from webshop.orders.service import OrderService
from webshop.promotions.service import PromotionService
from webshop.security.throttle import SignInThrottle
from webshop.shipping.service import ShippingZoneService
from webshop.shops.service import ShopService
from webshop.stock.service import StockService
from webshop.tax.service import TaxRateService
from webshop.webhooks.service import WebhookService

UserRequest: TypeAlias = Request[User, Any, Any]
"""A request behind a sign-in (a bearer token, or the session on the admin pages): ``request.user`` is the
signed-in ``User``."""
TokenRequest: TypeAlias = Request[User, Token, Any]
"""``UserRequest`` with its decoded access token as ``request.auth`` (signing out revokes it)."""

SettingsDep: TypeAlias = NamedDependency[Settings]
"""``settings``: the app's ``Settings``."""
SignInThrottleDep: TypeAlias = NamedDependency[SignInThrottle]
"""``sign_in_throttle``: failed sign-ins per account."""

AccountLinksDep: TypeAlias = NamedDependency[AccountLinkService]
"""``account_links_service``."""
ApiTokensDep: TypeAlias = NamedDependency[ApiTokenService]
"""``api_tokens_service``."""
AuditDep: TypeAlias = NamedDependency[AuditService]
"""``audit_service``: the audit trail."""
CartsDep: TypeAlias = NamedDependency[CartService]
"""``carts_service``."""
CategoriesDep: TypeAlias = NamedDependency[CategoryService]
"""``categories_service``."""
FulfilmentDep: TypeAlias = NamedDependency[FulfilmentService]
"""``fulfilment_service``."""
InvoicesDep: TypeAlias = NamedDependency[InvoiceService]
"""``invoices_service``."""
OrdersDep: TypeAlias = NamedDependency[OrderService]
"""``orders_service``."""
ProductsDep: TypeAlias = NamedDependency[ProductService]
"""``products_service``."""
PromotionsDep: TypeAlias = NamedDependency[PromotionService]
"""``promotions_service``."""
ShippingZonesDep: TypeAlias = NamedDependency[ShippingZoneService]
"""``shipping_zones_service``."""
ShopsDep: TypeAlias = NamedDependency[ShopService]
"""``shops_service``."""
StockDep: TypeAlias = NamedDependency[StockService]
"""``stock_service``: stock health and adjustments."""
TaxRatesDep: TypeAlias = NamedDependency[TaxRateService]
"""``tax_rates_service``."""
UsersDep: TypeAlias = NamedDependency[UserService]
"""``users_service``."""
WebhooksDep: TypeAlias = NamedDependency[WebhookService]
"""``webhooks_service``."""
