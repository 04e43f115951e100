"""The storefront's list of trading shops: what the shop facet, "Sold by" and the ``/shops`` link need.

Read once per catalog version (``webshop.catalog.browse.shop_directory``): every change to which
shops trade or what they are called moves the version (``ShopService``). With one trading shop (the
default) the storefront shows no shop chrome at all; ``ShopDirectory.several`` says when it does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from webshop.db.models import Shop


@dataclass(frozen=True)
class ShopLabel:
    """A trading shop as the storefront names and links it."""

    id: int
    slug: str
    name: str


@dataclass(frozen=True)
class ShopDirectory:
    """The trading shops (active, not deleted), by name.

    Attributes:
        shops: The shops, by name then id.
    """

    shops: tuple[ShopLabel, ...] = ()
    _by_id: dict[int, ShopLabel] = field(default_factory=dict, repr=False, compare=False)
    _by_slug: dict[str, ShopLabel] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._by_id.update((shop.id, shop) for shop in self.shops)
        self._by_slug.update((shop.slug, shop) for shop in self.shops)

    @property
    def several(self) -> bool:
        """True from two trading shops on: only then does the storefront show shop chrome."""
        return len(self.shops) > 1

    def by_id(self, shop_id: int | None) -> ShopLabel | None:
        """The trading shop with ``shop_id``, or ``None``."""
        return None if shop_id is None else self._by_id.get(shop_id)

    def by_slug(self, slug: str) -> ShopLabel | None:
        """The trading shop with ``slug``, or ``None``."""
        return self._by_slug.get(slug)

    def seller(self, shop_id: int | None) -> ShopLabel | None:
        """The shop to name as "Sold by": ``shop_id``'s, but only when several shops trade."""
        return self.by_id(shop_id) if self.several else None


_TRADING = (
    select(Shop.id, Shop.slug, Shop.name)
    .where(Shop.is_active == True, Shop.deleted_at.is_(None))  # noqa: E712
    .order_by(Shop.name, Shop.id)
)


async def read_directory(session: AsyncSession) -> ShopDirectory:
    """The trading shops, read now (one query); callers cache it per catalog version."""
    return ShopDirectory(tuple(ShopLabel(*row) for row in await session.execute(_TRADING)))
