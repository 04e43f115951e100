"""Photos of a product: upload (verified, EXIF stripped, WebP sizes), order, removal; ``ProductImages``
is a mixin of ``ProductService`` (``webshop.catalog.products``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import anyio
from sqlalchemy import func, select

from webshop.catalog.product_mixin import ProductMixin
from webshop.catalog.rules import (
    _clean_text,
)
from webshop.catalog.summaries import mark_catalog_changed
from webshop.db.models import ProductImage, User
from webshop.errors import NotFound, ValidationFailed
from webshop.media import MAX_UPLOAD_BYTES, ImageTooLarge, new_image_key, remove_image_files, store_image


class ProductImages(ProductMixin):
    """``ProductService``'s photo verbs (a mixin: it uses the service's repository and reads)."""

    async def add_image(
        self,
        product_id: int,
        data: bytes,
        *,
        alt: str = "",
        source_name: str = "",
        actor: User | None,
    ) -> ProductImage:
        """Store an uploaded photo (verified, EXIF stripped, WebP derivatives) as the product's last; committed.

        The bytes are decoded with Pillow in a worker thread (``webshop.media.store_image``: JPEG, PNG
        or WebP only, decompression-bomb guard, metadata dropped) under a random key, so file names
        say nothing about the upload. If anything fails after the files were written (the database
        insert or the commit), the files are removed again: nothing is half-stored.

        Args:
            product_id: The product.
            data: The file's bytes (at most ``MAX_UPLOAD_BYTES``).
            alt: Alternative text (default: the product name); cut to 255 characters.
            source_name: The uploaded file's name, kept for the admin only; cut to 255 characters.
            actor: The admin.

        Returns:
            The new ``ProductImage``.

        Raises:
            NotFound: no such product.
            ImageTooLarge: more than ``MAX_UPLOAD_BYTES`` (status 413; ``field_errors["image"]``).
            ImageRejected: not an image, not JPEG/PNG/WebP, truncated, damaged or too many pixels
                (``field_errors["image"]``).
        """
        if len(data) > MAX_UPLOAD_BYTES:
            raise ImageTooLarge()
        product = await self.get_for_admin(product_id, actor=actor)
        key = new_image_key()
        stored = await anyio.to_thread.run_sync(functools.partial(store_image, data, self.media_dir, key=key))
        session = self.repository.session
        try:
            async with session.begin_nested():
                image = ProductImage(
                    product_id=product.id,
                    key=stored.key,
                    ext=stored.ext,
                    # NUL cannot be stored by PostgreSQL; a browser-sent file name may carry anything.
                    source_name=_clean_text(source_name).replace("\x00", "")[:255],
                    alt=(_clean_text(alt).replace("\x00", "") or product.name)[:255],
                    width=stored.width,
                    height=stored.height,
                    position=max((i.position for i in product.images), default=-1) + 1,
                )
                session.add(image)
                await session.flush()
                self.audit.record(
                    actor,
                    "product",
                    product.id,
                    "image-add",
                    summary=f"Added photo {image.source_name or image.key}.",
                    changes={"photos": [len(product.images), len(product.images) + 1]},
                )
                mark_catalog_changed(session)  # cards and product pages show the photos
            await session.commit()
        except BaseException:
            remove_image_files(self.media_dir, stored.key)
            raise
        return image

    async def reorder_images(
        self, product_id: int, image_ids: Sequence[int], *, actor: User | None
    ) -> list[ProductImage]:
        """Put the product's photos in the order of ``image_ids`` (every photo id exactly once); committed.

        The first photo is the one the catalog shows. Audit: ``product``/``image-order``.

        Raises:
            NotFound: no such product.
            ValidationFailed: ``image_ids`` is not exactly the product's photo ids (``field_errors["image_ids"]``).
        """
        product = await self.get_for_admin(product_id, actor=actor)
        images = {image.id: image for image in product.images}
        if sorted(image_ids) != sorted(images) or len(set(image_ids)) != len(image_ids):
            message = "List every photo of this product exactly once."
            raise ValidationFailed(message, field_errors={"image_ids": message})
        before = [image.id for image in product.images]
        if list(image_ids) != before:
            session = self.repository.session
            for position, image_id in enumerate(image_ids):
                images[image_id].position = position
            self.audit.record(
                actor,
                "product",
                product.id,
                "image-order",
                summary="Reordered photos.",
                changes={"photos": [before, list(image_ids)]},
            )
            await session.flush()
            mark_catalog_changed(session)  # a card shows the first photo
            await session.commit()
        return list((await self.get_for_admin(product_id)).images)

    async def move_image(self, product_id: int, image_id: int, offset: int, *, actor: User | None) -> None:
        """Move one photo ``offset`` places (``-1`` up/earlier, ``1`` down/later); at an end nothing moves.

        Raises:
            NotFound: no such product, or the photo is not one of its photos.
        """
        product = await self.get_for_admin(product_id, actor=actor)
        ids = [image.id for image in product.images]
        if image_id not in ids:
            raise NotFound("There is no such photo.")
        index = ids.index(image_id)
        target = min(max(index + offset, 0), len(ids) - 1)
        if target != index:
            ids.insert(target, ids.pop(index))
            await self.reorder_images(product_id, ids, actor=actor)

    async def remove_image(self, product_id: int, image_id: int, *, actor: User | None) -> None:
        """Remove a photo from the product; committed, then its files are deleted if no other photo uses them.

        Imported photos are content-addressed and may be shared between products, hence the check.

        Raises:
            NotFound: no such product, or the photo is not one of its photos.
        """
        product = await self.get_for_admin(product_id, actor=actor)
        image = next((i for i in product.images if i.id == image_id), None)
        if image is None:
            raise NotFound("There is no such photo.")
        session = self.repository.session
        key = image.key
        self.audit.record(
            actor,
            "product",
            product.id,
            "image-remove",
            summary=f"Removed photo {image.source_name or image.key}.",
            changes={"photos": [len(product.images), len(product.images) - 1]},
        )
        product.images.remove(image)
        for position, other in enumerate(product.images):
            other.position = position
        await session.flush()
        mark_catalog_changed(session)
        await session.commit()
        still_used = await session.scalar(select(func.count()).where(ProductImage.key == key)) or 0
        if not still_used:
            remove_image_files(self.media_dir, key)
