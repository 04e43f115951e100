"""What the API's image uploads share (a product's photo, a shop's logo): the bound of their request body,
reading the file, and naming the image's problems after the request's own field.

The image rules themselves (formats, size, pixels) are ``webshop.media``'s, for the pages and the API alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from webshop.errors import fields_named
from webshop.media import MAX_UPLOAD_BYTES

if TYPE_CHECKING:
    from litestar.datastructures import UploadFile


async def read_upload(file: UploadFile) -> bytes:
    """The uploaded file's bytes, at most one more than ``MAX_UPLOAD_BYTES`` (enough for the service to
    refuse a larger file with 413 without reading all of it)."""
    return await file.read(MAX_UPLOAD_BYTES + 1)


@contextmanager
def image_errors_named(field: str) -> Iterator[None]:
    """Name an image's problems (``field_errors["image"]`` of ``webshop.media``'s errors) after the request's
    ``field`` (the API's multipart field ``file``), so a client is told which of its fields was wrong.

    Raises:
        DomainError: whatever the block raised, its field errors renamed.
    """
    with fields_named({"image": field}):
        yield
