"""All mapped models, imported here so Alembic and the app see one metadata."""

from webshop.db.models.accounts import AuthSession, User, UserRole
from webshop.db.models.api import IdempotencyRecord, RefreshToken, RevokedAccessToken, TokenFamily
from webshop.db.models.cart import Cart, CartLine
from webshop.db.models.catalog import Category, Product, ProductFacet, ProductImage, Variant
from webshop.db.models.operations import AccountToken, AuditEvent, OutboundEmail
from webshop.db.models.orders import Address, Order, OrderLine, OrderStatus
from webshop.db.models.stock import StockMovement, StockReason

__all__ = [
    "AccountToken",
    "Address",
    "AuditEvent",
    "AuthSession",
    "Cart",
    "CartLine",
    "Category",
    "IdempotencyRecord",
    "Order",
    "OrderLine",
    "OrderStatus",
    "OutboundEmail",
    "Product",
    "ProductFacet",
    "ProductImage",
    "RefreshToken",
    "RevokedAccessToken",
    "StockMovement",
    "StockReason",
    "TokenFamily",
    "User",
    "UserRole",
    "Variant",
]
