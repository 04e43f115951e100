"""``ProductMixin``, the base of ``ProductService``'s verb mixins (``ProductVariants`` in
``webshop.catalog.variants``, ``ProductImages`` in ``webshop.catalog.images``): what they use of the
service, stated once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webshop.audit.service import Audited

if TYPE_CHECKING:
    from collections.abc import Collection
    from pathlib import Path

    from webshop.config import ShopSettings
    from webshop.db.models import Product


class ProductMixin(Audited):
    """A part of ``ProductService``: its repository and audit trail (``Audited``), the shop's settings it
    was built with, and its admin read."""

    shop: ShopSettings | None
    """Given at construction (``ProductService(session=..., shop=settings.shop)``); ``None`` in tools and
    tests that neither check tax categories nor store photos."""

    @property
    def tax_categories(self) -> Collection[str] | None:
        """The tax categories a variant may name (``shop.tax_rates_bp``'s keys); ``None``: any well-formed one."""
        return None if self.shop is None else self.shop.tax_rates_bp

    @property
    def media_dir(self) -> Path:
        """Where photos are stored (``shop.media_dir``).

        Raises:
            RuntimeError: the service was built without ``shop`` (a programming error).
        """
        if self.shop is None:
            raise RuntimeError("ProductService needs shop= (its media_dir) to store or remove photos")
        return self.shop.media_dir

    if TYPE_CHECKING:

        async def get_for_admin(self, product_id: int) -> Product:
            """``ProductService.get_for_admin``, which the mixins use."""
            ...
