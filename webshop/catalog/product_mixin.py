"""``ProductMixin``, the base of ``ProductService``'s verb mixins (``ProductVariants`` in
``webshop.catalog.variants``, ``ProductImages`` in ``webshop.catalog.images``): what they use of the
service, stated once."""

from __future__ import annotations

from typing import TYPE_CHECKING

from webshop.audit.service import Audited

if TYPE_CHECKING:
    from webshop.db.models import Product


class ProductMixin(Audited):
    """A part of ``ProductService``: its repository and audit trail (``Audited``) and its admin read."""

    if TYPE_CHECKING:

        async def get_for_admin(self, product_id: int) -> Product:
            """``ProductService.get_for_admin``, which the mixins use."""
            ...
