"""``ProductMixin``, the base of ``ProductService``'s verb mixins (``ProductVariants`` in
``webshop.catalog.variants``, ``ProductImages`` in ``webshop.catalog.images``): what they use of the
service, stated once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advanced_alchemy.exceptions import NotFoundError
from sqlalchemy import select

from webshop.audit.service import Audited
from webshop.db.models import Shop, ShopMember
from webshop.media import MediaFolder

if TYPE_CHECKING:
    from collections.abc import Collection

    from webshop.config import ShopSettings
    from webshop.db.models import Product


class ProductMixin(Audited, MediaFolder):
    """A part of ``ProductService``: its repository and audit trail (``Audited``), the shop's settings it
    was built with, and its admin read."""

    media_kind = "photos"
    shop: ShopSettings | None
    """Given at construction (``ProductService(session=..., shop=settings.shop)``); ``None`` in tools and
    tests that neither check tax categories nor store photos."""

    @property
    def tax_categories(self) -> Collection[str] | None:
        """The tax categories a variant may name (``shop.tax_rates_bp``'s keys); ``None``: any well-formed one."""
        return None if self.shop is None else self.shop.tax_rates_bp

    async def check_runs(self, actor: Any | None, shop_id: int, missing: str = "There is no such product.") -> None:
        """Refuse ``actor`` a product of shop ``shop_id`` unless they run that shop (issue 16).

        Platform admins and the command line (``actor`` ``None``) run every shop; a shop's owners and
        staff run theirs. To anyone else another shop's product is not found (404, not 403), so its
        ids tell nothing.

        Raises:
            NotFoundError: (advanced-alchemy's, answered as 404) ``actor`` does not run the shop.
        """
        if actor is None or actor.is_admin:
            return
        member = await self.repository.session.scalar(
            select(ShopMember.id)
            .join(Shop, Shop.id == ShopMember.shop_id)
            .where(ShopMember.shop_id == shop_id, ShopMember.user_id == actor.id, Shop.deleted_at.is_(None))
        )
        if member is None:
            raise NotFoundError(missing)

    if TYPE_CHECKING:

        async def get_for_admin(self, product_id: int, *, actor: Any | None = None) -> Product:
            """``ProductService.get_for_admin``, which the mixins use."""
            ...
