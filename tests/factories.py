"""Test data written through the ORM: a small catalog whose counts the tests can assert exactly."""

from __future__ import annotations

from dataclasses import dataclass

from webshop.db.engine import ShopAlchemyConfig, write_session
from webshop.db.models import Category, Product, ProductFacet, StockMovement, StockReason, Variant


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
        await session.commit()
        return {sku: v.id for sku, v in variants.items()}
