"""``MediaFolder``: the part of the services that store images (``ProductService``'s photos, ``ShopService``'s
logos) that says where they go, ``shop.media_dir`` of the shop's settings they were built with."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from pathlib import Path

    from webshop.config import ShopSettings


class MediaFolder:
    """Mixin: ``media_dir`` from the ``shop`` settings the service was given at construction."""

    shop: ShopSettings | None
    stored: ClassVar[str]
    """What the service stores there (``"photos"``, ``"logos"``), for the error without ``shop``."""

    @property
    def media_dir(self) -> Path:
        """Where the service's images are stored (``shop.media_dir``).

        Raises:
            RuntimeError: the service was built without ``shop`` (a programming error).
        """
        if self.shop is None:
            raise RuntimeError(f"{type(self).__name__} needs shop= (its media_dir) to store or remove {self.stored}")
        return self.shop.media_dir
