"""All mapped models, imported here so Alembic and the app see one metadata."""

from webshop.db.models.accounts import AuthSession, User, UserRole
from webshop.db.models.api import IdempotencyRecord, RefreshToken, RevokedAccessToken, TokenFamily
from webshop.db.models.cart import Cart, CartLine
from webshop.db.models.catalog import (
    CatalogState,
    Category,
    Product,
    ProductFacet,
    ProductImage,
    ProductSearch,
    SearchTerm,
    Variant,
)
from webshop.db.models.operations import AccountToken, AuditEvent, OutboundEmail
from webshop.db.models.orders import Address, Fulfilment, FulfilmentStatus, Order, OrderLine, OrderStatus
from webshop.db.models.payments import (
    Invoice,
    InvoiceCounter,
    InvoiceKind,
    PaymentEvent,
    PaymentStatus,
    Refund,
    RefundLine,
    RefundStatus,
    TestPaymentEvent,
    TestPaymentIntent,
    TestPaymentRefund,
)
from webshop.db.models.pricing import (
    REST_OF_WORLD,
    Promotion,
    PromotionUsage,
    ShippingMethod,
    ShippingZone,
    TaxRate,
)
from webshop.db.models.shops import Shop, ShopMember, ShopRole
from webshop.db.models.stock import StockMovement, StockReason
from webshop.db.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
    "REST_OF_WORLD",
    "AccountToken",
    "Address",
    "AuditEvent",
    "AuthSession",
    "Cart",
    "CartLine",
    "CatalogState",
    "Category",
    "DeliveryStatus",
    "Fulfilment",
    "FulfilmentStatus",
    "IdempotencyRecord",
    "Invoice",
    "InvoiceCounter",
    "InvoiceKind",
    "Order",
    "OrderLine",
    "OrderStatus",
    "OutboundEmail",
    "PaymentEvent",
    "PaymentStatus",
    "Product",
    "ProductFacet",
    "ProductImage",
    "ProductSearch",
    "Promotion",
    "PromotionUsage",
    "RefreshToken",
    "Refund",
    "RefundLine",
    "RefundStatus",
    "RevokedAccessToken",
    "SearchTerm",
    "ShippingMethod",
    "ShippingZone",
    "Shop",
    "ShopMember",
    "ShopRole",
    "StockMovement",
    "StockReason",
    "TaxRate",
    "TestPaymentEvent",
    "TestPaymentIntent",
    "TestPaymentRefund",
    "TokenFamily",
    "User",
    "UserRole",
    "Variant",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WebhookEvent",
]
