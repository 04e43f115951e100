"""Test data written through the ORM and the services: a small catalog whose counts the tests can assert
exactly, users, orders as checkout writes them, and read-backs of the ledger and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from tests.shopper import PASSWORD
from webshop.accounts.service import UserService
from webshop.catalog.summaries import catalog_changed
from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import (
    AccountToken,
    AuditEvent,
    Category,
    Fulfilment,
    Order,
    OrderLine,
    OrderStatus,
    Product,
    ProductFacet,
    StockMovement,
    StockReason,
    User,
    UserRole,
    Variant,
)
from webshop.shops.schemas import MemberWrite, ShopWrite
from webshop.shops.service import ShopService
from webshop.stock.service import find_ledger_mismatches, take_stock


@dataclass(frozen=True)
class P:
    """A product to create: name, category slug, brand, colours and variants as (sku, options, price, stock)."""

    name: str
    category: str
    brand: str | None
    colors: tuple[str, ...]
    variants: tuple[tuple[str, tuple[str, ...], int, int], ...]
    option_groups: tuple[str, ...] = ()
    description: str = "A fine product."


SMALL_CATALOG = (
    P(
        "Alpha Laptop",
        "computers",
        "Apple",
        ("silver",),
        (("AL-13", ("13 inch",), 129900, 5), ("AL-15", ("15 inch",), 149900, 0)),
        ("screen size",),
    ),
    P("Beta Camera", "photo", "Nikon", ("black",), (("BC-1", (), 45000, 3),)),
    P("Gamma Camera", "photo", "Canon", ("black", "red"), (("GC-1", (), 39900, 0),)),
    P("Delta Chair", "furniture", None, ("red",), (("DC-1", (), 8900, 12),)),
    P(
        "Epsilon Plant",
        "plants",
        None,
        ("green",),
        (("EP-1", (), 1999, 40),),
        description="Easy to keep; likes 100% shade.",
    ),
    P(
        "Zeta Shoe",
        "footwear",
        "Nike",
        ("white",),
        (("ZS-40", ("Size 40",), 9999, 2), ("ZS-42", ("Size 42",), 9999, 7)),
        ("size",),
    ),
)
TREE = {
    "electronics": ("Electronics", None),
    "computers": ("Computers", "electronics"),
    "photo": ("Photo", "electronics"),
    "home-garden": ("Home & Garden", None),
    "furniture": ("Furniture", "home-garden"),
    "plants": ("Plants", "home-garden"),
    "sports": ("Sports & Outdoor", None),
    "footwear": ("Footwear", "sports"),
}


async def seed_catalog(alchemy: ShopAlchemyConfig, products: tuple[P, ...] = SMALL_CATALOG) -> dict[str, int]:
    """Create the category tree and ``products``; returns ``{sku: variant id}``."""
    async with write_session(alchemy) as session:
        categories: dict[str, Category] = {}
        for slug, (name, parent) in TREE.items():
            category = Category(name=name, slug=slug, parent=categories.get(parent) if parent else None)
            session.add(category)
            categories[slug] = category
        variants: dict[str, Variant] = {}
        for item in products:
            product = Product(
                name=item.name,
                slug=item.name.lower().replace(" ", "-"),
                description=item.description,
                category=categories[item.category],
                option_groups=list(item.option_groups),
            )
            if item.brand:
                product.facets.append(ProductFacet(facet="brand", value=item.brand))
            for color in item.colors:
                product.facets.append(ProductFacet(facet="color", value=color))
            for position, (sku, options, price, stock) in enumerate(item.variants):
                variant = Variant(
                    sku=sku, option_values=list(options), price=price, currency="USD", stock=stock, position=position
                )
                product.variants.append(variant)
                variants[sku] = variant
            session.add(product)
        await session.flush()
        for variant in variants.values():
            session.add(
                StockMovement(
                    variant_id=variant.id, delta=variant.stock, reason=StockReason.IMPORT.value, reference="test seed"
                )
            )
        # Summaries, search index and catalog version, as every catalog write keeps them.
        await catalog_changed(session, {variant.product_id for variant in variants.values()})
        await session.commit()
        return {sku: v.id for sku, v in variants.items()}


async def make_user(
    alchemy: ShopAlchemyConfig, email: str, role: UserRole = UserRole.CUSTOMER, *, name: str = "Shopper"
) -> int:
    """Register a user through ``UserService`` (password ``tests.shopper.PASSWORD``); return the id."""
    async with write_session(alchemy) as session:
        user = await UserService(session=session).register(email=email, name=name, password=PASSWORD, role=role)
        await session.commit()
        return user.id


async def account(alchemy: ShopAlchemyConfig, email: str = "ada@example.com") -> User:
    """The user with ``email``, read afresh from the database (failure counts, lock, role)."""
    async with alchemy.get_session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        return user


async def expire_lock(alchemy: ShopAlchemyConfig, email: str = "ada@example.com") -> None:
    """Let the account's sign-in lock run out (as if its minutes had passed)."""
    async with write_session(alchemy) as session:
        past = datetime.now(UTC) - timedelta(seconds=1)
        await session.execute(update(User).where(User.email == email).values(locked_until=past))
        await session.commit()


async def make_order(
    alchemy: ShopAlchemyConfig,
    user_id: int,
    number: str,
    lines: dict[str, int],
    *,
    status: OrderStatus = OrderStatus.PAID,
    created_at: datetime | None = None,
) -> int:
    """An order as checkout writes it, ``lines`` mapping SKU to quantity: stock taken through
    ``take_stock`` (with its ledger rows), product names copied onto the lines, 5.00 shipping."""
    async with write_session(alchemy) as session:
        order = Order(
            number=number,
            user_id=user_id,
            checkout_token=f"token-{number}",
            status=status.value,
            currency="USD",
            subtotal=0,
            shipping_total=500,
            tax_total=0,
            total=0,
            shipping_method="standard",
            shipping_method_name="Standard shipping",
            ship_name="Ada Lovelace",
            ship_line1="12 Analytical Way",
            ship_city="London",
            ship_postal_code="N1 9GU",
            ship_country="GB",
            card_last4="4242",
        )
        if created_at is not None:
            order.created_at = created_at
        for sku, quantity in lines.items():
            variant = await session.scalar(select(Variant).where(Variant.sku == sku))
            assert variant is not None, sku
            product = await session.get(Product, variant.product_id)
            assert product is not None
            assert await take_stock(session, variant.id, quantity, reason=StockReason.SALE, reference=number)
            order.lines.append(
                OrderLine(
                    variant_id=variant.id,
                    product_id=product.id,
                    product_name=product.name,
                    product_slug=product.slug,
                    sku=sku,
                    unit_price=variant.price,
                    currency="USD",
                    quantity=quantity,
                    tax_category="standard",
                    tax_rate_bp=0,
                    line_total=variant.price * quantity,
                    net_amount=variant.price * quantity,
                    tax_amount=0,
                    shop_id=product.shop_id,
                )
            )
            order.subtotal += variant.price * quantity
        shops = list(dict.fromkeys(line.shop_id for line in order.lines))
        for index, shop_id in enumerate(shops):  # one part per shop; the first carries the 5.00 shipping
            order.fulfilments.append(
                Fulfilment(shop_id=shop_id, shop_name="", shipping_amount=500 if index == 0 else 0)
            )
        order.total = order.subtotal + order.shipping_total
        session.add(order)
        await session.commit()
        return order.id


async def stock(alchemy: ShopAlchemyConfig, sku: str) -> int:
    """The stock level of the variant ``sku`` now."""
    async with alchemy.get_session() as session:
        level = await session.scalar(select(Variant.stock).where(Variant.sku == sku))
        assert level is not None, sku
        return level


async def ledger_ok(alchemy: ShopAlchemyConfig) -> bool:
    """Every variant's stock equals the sum of its ledger movements."""
    async with alchemy.get_session() as session:
        return await find_ledger_mismatches(session) == []


async def audit_events(alchemy: ShopAlchemyConfig, entity_type: str, entity_id: int) -> list[AuditEvent]:
    """The audit trail of one item, oldest first."""
    async with alchemy.get_session() as session:
        rows = await session.scalars(
            select(AuditEvent)
            .where(AuditEvent.entity_type == entity_type, AuditEvent.entity_id == entity_id)
            .order_by(AuditEvent.id)
        )
        return list(rows)


async def age_account_links(alchemy: Any, email: str, seconds: int = 120) -> None:
    """Make the e-mailed links of the account ``email`` ``seconds`` older, as if that time had passed
    (a verification link may be asked for again only a minute after the last: ``RESEND_WAIT``)."""
    async with write_session(alchemy) as session:
        user_id = select(User.id).where(User.email == email).scalar_subquery()
        for link in await session.scalars(select(AccountToken).where(AccountToken.user_id == user_id)):
            link.created_at -= timedelta(seconds=seconds)
        await session.commit()


async def shop_selling(
    alchemy: ShopAlchemyConfig, owner_email: str, product_slug: str, *, name: str = "Ann's Kitchen"
) -> tuple[int, int]:
    """A shop called ``name`` owned by a new account ``owner_email``, selling the product ``product_slug``
    (moved there from its shop): ``(shop id, owner id)``."""
    owner = await make_user(alchemy, owner_email)
    async with write_session(alchemy) as session:
        shops = ShopService(session=session)
        shop = await shops.create_shop(None, ShopWrite(name=name))
        await shops.add_member(None, shop.id, MemberWrite(user_id=owner, role="owner"))
        product = await session.scalar(select(Product).where(Product.slug == product_slug))
        assert product is not None, product_slug
        product.shop_id = shop.id
        await catalog_changed(session, [product.id])
        await session.commit()
    return shop.id, owner
