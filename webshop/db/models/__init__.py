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
from webshop.db.models.shops import Shop, ShopMember, ShopRole
from webshop.db.models.stock import StockMovement, StockReason
from webshop.db.models.webhooks import DeliveryStatus, WebhookDelivery, WebhookEndpoint, WebhookEvent

__all__ = [
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
    "RefreshToken",
    "Refund",
    "RefundLine",
    "RefundStatus",
    "RevokedAccessToken",
    "SearchTerm",
    "Shop",
    "ShopMember",
    "ShopRole",
    "StockMovement",
    "StockReason",
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
