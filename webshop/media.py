"""Product image storage: verify untrusted bytes, strip metadata, write WebP derivatives.

Layout of the media directory (served under ``/media``)::

    {key}.{ext}          the original, re-encoded without metadata (ext: jpg, png or webp)
    {key}-{width}.webp   one derivative per width in IMAGE_WIDTHS, never upscaled

Every derivative width is always written, so templates can reference all three: for an image 800 px
wide, ``{key}-1200.webp`` holds the 800 px version.

Images are decoded with Pillow, which parses untrusted input: only JPEG, PNG and WebP parsers are
offered the bytes (recognised by their signature first), and a decompression-bomb guard rejects
anything above ``MAX_IMAGE_PIXELS`` before it is decoded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import re
import secrets
import tempfile
import textwrap
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from webshop.errors import ValidationFailed

if TYPE_CHECKING:
    from webshop.config import ShopSettings

IMAGE_WIDTHS = (320, 640, 1200)
MAX_IMAGE_PIXELS = 40_000_000

# Pillow format name -> file extension of the stored original. Cameras and phones write JPEGs with
# a second "multi-picture" frame, which Pillow reports as MPO: it is still a JPEG.
_EXTENSIONS = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp"}
_OPEN_FORMATS = ("JPEG", "PNG", "WEBP")
# Signatures of image formats we recognise but do not accept, to say so instead of "not an image".
_OTHER_IMAGE_SIGNATURES = (
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x01\x00",
    b"8BPS",
    b"%!PS",
    b"<svg",
    b"<?xml",
)
_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_JPEG_OPTIONS = {"quality": 90, "optimize": True, "progressive": True}
_WEBP_QUALITY = 82
# warnings.catch_warnings() swaps process-wide state; only the (fast) header parse runs under it.
_OPEN_LOCK = threading.Lock()


class ImageRejected(ValidationFailed):
    """The bytes are not an image we store; ``detail`` says why in words fit for the uploader.

    Reasons: "not an image", "only JPEG, PNG or WebP", "image is truncated", "image is damaged",
    "too many pixels (...)". ``field_errors`` is ``{"image": detail}``.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason, field_errors={"image": reason})
        self.reason = reason


MAX_UPLOAD_BYTES = 5 * 1024 * 1024
"""Largest photo an admin may upload (5 MB), checked on the request body and again by the service."""
MAX_UPLOAD_MB = MAX_UPLOAD_BYTES // (1024 * 1024)
"""``MAX_UPLOAD_BYTES`` in whole MB, as the upload forms and their messages give it."""
UPLOAD_BODY_LIMIT = MAX_UPLOAD_BYTES + 64 * 1024
"""The largest request body carrying one upload (pages and API): the multipart framing around a 5 MB file
(boundaries, headers, the CSRF field) is well under 64 KB; the service checks the file itself against
``MAX_UPLOAD_BYTES``. A larger body is refused with 413 before it is read."""


def too_large_message(files: str) -> str:
    """What an upload page says of a file over ``MAX_UPLOAD_BYTES`` (``files``: "photos", "logos"): the 413
    page's message, and the one the form's file field shows before sending (``static/js/file-size.js``)."""
    return f"The file is too large: {files} can be at most {MAX_UPLOAD_MB} MB."


class ImageTooLarge(ValidationFailed):
    """An uploaded file is larger than ``MAX_UPLOAD_BYTES``: HTTP 413 (RFC 9110 §15.5.14)."""

    status_code = 413
    title = "Too large"

    def __init__(self) -> None:
        reason = too_large_message("photos")
        super().__init__(reason, field_errors={"image": reason})


def new_image_key() -> str:
    """A random image key (128 bits, hex) for an upload: its file names reveal nothing about it."""
    return secrets.token_hex(16)


def remove_image_files(media_dir: Path, key: str) -> None:
    """Delete the original and the WebP derivatives of image ``key`` (missing files are fine)."""
    if not _KEY_PATTERN.fullmatch(key):
        return
    for name in [f"{key}.{ext}" for ext in ("jpg", "png", "webp")] + [f"{key}-{w}.webp" for w in IMAGE_WIDTHS]:
        with contextlib.suppress(FileNotFoundError):
            (media_dir / name).unlink()


class MediaFolder:
    """Mixin of the services that store images (``ProductService``'s photos, ``ShopService``'s logos):
    ``media_dir`` from the ``shop`` settings the service was given at construction."""

    shop: ShopSettings | None
    media_kind: ClassVar[str]
    """What the service stores there (``"photos"``, ``"logos"``), for the error without ``shop``."""

    @property
    def media_dir(self) -> Path:
        """Where the service's images are stored (``shop.media_dir``).

        Raises:
            RuntimeError: the service was built without ``shop`` (a programming error).
        """
        if self.shop is None:
            raise RuntimeError(
                f"{type(self).__name__} needs shop= (its media_dir) to store or remove {self.media_kind}"
            )
        return self.shop.media_dir


@dataclass(frozen=True)
class StoredImage:
    """An image stored in the media directory.

    Attributes:
        key: File name stem shared by the original and its derivatives.
        ext: Extension of the re-encoded original: ``jpg``, ``png`` or ``webp``.
        width: Width of the original in pixels, after EXIF orientation was applied.
        height: Height of the original in pixels, after EXIF orientation was applied.
    """

    key: str
    ext: str
    width: int
    height: int


def image_url(key: str, width: int) -> str:
    """URL of the WebP derivative of image ``key`` at ``width`` pixels (one of ``IMAGE_WIDTHS``).

    >>> image_url("ab12", 640)
    '/media/ab12-640.webp'
    """
    return f"/media/{key}-{width}.webp"


def content_key(data: bytes) -> str:
    """Content-addressed key of ``data``: the first 32 hex characters of its SHA-256."""
    return hashlib.sha256(data).hexdigest()[:32]


def store_image(data: bytes, media_dir: Path, *, key: str | None = None) -> StoredImage:
    """Verify ``data`` as an image and store it with its WebP derivatives in ``media_dir``.

    Blocking (decoding and encoding take tens to hundreds of milliseconds): call it from a worker
    thread in async code, e.g. ``await anyio.to_thread.run_sync(store_image, data, media_dir)``.

    The image is fully decoded (a truncated file is rejected), turned upright according to its EXIF
    orientation, converted to sRGB when it carries an ICC profile, and re-encoded without any
    metadata (EXIF with GPS position, XMP, comments, ICC). Files are written to temporary files in
    ``media_dir`` and renamed into place, so an error leaves nothing half-written.

    Args:
        data: The uploaded or imported file's bytes.
        media_dir: Directory to write to; created if missing.
        key: File name stem (letters, digits, ``_`` and ``-``, at most 64). By default the content key
            (``content_key(data)``): the same bytes get the same key, and when all of its files
            already exist nothing is decoded or written again (re-imports are fast and idempotent).
            An explicit key always re-encodes and overwrites.

    Returns:
        The stored image's key, original extension and upright size in pixels.

    Raises:
        ImageRejected: not an image; not JPEG, PNG or WebP; truncated or damaged; more than
            ``MAX_IMAGE_PIXELS`` pixels.
        ValueError: ``key`` contains characters unfit for a file name.
        OSError: the media directory cannot be written.
    """
    if key is not None and not _KEY_PATTERN.fullmatch(key):
        raise ValueError(f"image key {key!r} must be 1-64 letters, digits, '_' or '-'")
    content_addressed = key is None
    key = key or content_key(data)
    if content_addressed:
        existing = _existing(media_dir, key)
        if existing is not None:
            return existing

    image = _decode(data)
    width, height = image.size
    ext = _EXTENSIONS[str(image.format)]
    image = _clean(image)

    media_dir.mkdir(parents=True, exist_ok=True)
    pending: list[tuple[Path, Path]] = []  # (temporary file, final path)
    try:
        encoded: dict[int, Path] = {}
        for target in IMAGE_WIDTHS:
            actual = min(target, width)
            if actual not in encoded:
                encoded[actual] = _write_temp(media_dir, _derivative(image, actual), "WEBP")
                pending.append((encoded[actual], media_dir / f"{key}-{target}.webp"))
            else:
                copy = _write_temp_bytes(media_dir, encoded[actual].read_bytes())
                pending.append((copy, media_dir / f"{key}-{target}.webp"))
        pending.append((_write_temp(media_dir, image, ext), media_dir / f"{key}.{ext}"))
        # The original goes last: its presence tells _existing() the set is complete.
        for temporary, final in pending:
            os.replace(temporary, final)
    finally:
        for temporary, _final in pending:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return StoredImage(key=key, ext=ext, width=width, height=height)


def _existing(media_dir: Path, key: str) -> StoredImage | None:
    """The stored image ``key`` when its original and every derivative exist, else ``None``."""
    if not all((media_dir / f"{key}-{width}.webp").is_file() for width in IMAGE_WIDTHS):
        return None
    for ext in ("jpg", "png", "webp"):
        original = media_dir / f"{key}.{ext}"
        if original.is_file():
            try:
                with Image.open(original) as stored:  # reads the header only
                    width, height = stored.size
            except (OSError, Image.DecompressionBombError):
                return None
            return StoredImage(key=key, ext=ext, width=width, height=height)
    return None


def _decode(data: bytes) -> Image.Image:
    """Decode ``data`` fully and apply EXIF orientation; raises ``ImageRejected``."""
    if not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")) and not (
        data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    ):
        if data[:64].lstrip().startswith(_OTHER_IMAGE_SIGNATURES) or data[4:12] in (b"ftypheic", b"ftypavif"):
            raise ImageRejected("only JPEG, PNG or WebP")
        raise ImageRejected("not an image")
    try:
        # verify() checks structure (PNG chunk CRCs) but cannot be followed by load(): reopen.
        with _guarded_open(data) as probe:
            probe.verify()
        with _guarded_open(data) as image:
            image.load()
            upright = _upright(image)
            upright.format = image.format
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRejected(_too_many_pixels()) from exc
    except UnidentifiedImageError as exc:
        raise ImageRejected("not an image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        message = "image is truncated" if "truncated" in str(exc).lower() else "image is damaged"
        raise ImageRejected(message) from exc
    if upright.format not in _EXTENSIONS:
        raise ImageRejected("only JPEG, PNG or WebP")
    return upright


@contextlib.contextmanager
def _guarded_open(data: bytes) -> Iterator[Image.Image]:
    """``Image.open`` restricted to accepted formats, with the decompression-bomb guard armed."""
    with _OPEN_LOCK, warnings.catch_warnings():
        Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    try:
        if image.width * image.height > MAX_IMAGE_PIXELS:
            raise ImageRejected(_too_many_pixels())
        yield image
    finally:
        image.close()


def _too_many_pixels() -> str:
    return f"too many pixels (at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels)"


def _upright(image: Image.Image) -> Image.Image:
    """A copy of ``image`` turned according to its EXIF orientation tag."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF in an untrusted file: keep the image as it is
        return image.copy()


def _clean(image: Image.Image) -> Image.Image:
    """``image`` in sRGB and a web-friendly mode (L, RGB or RGBA), with every metadata field dropped."""
    image = _to_srgb(image)
    if image.mode.startswith("I"):
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    has_alpha = image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or "transparency" in image.info
    if has_alpha:
        image = image.convert("RGBA")
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in {"L", "RGB"}:
        image = image.convert("RGB")
    # Encoders fall back to image.info for some fields (PNG copies the ICC profile from it).
    image.info = {}
    return image


def _to_srgb(image: Image.Image) -> Image.Image:
    """Convert ``image`` from its embedded ICC profile to sRGB (Display P3 and Adobe RGB photos)."""
    icc = image.info.get("icc_profile")
    if not icc:
        return image
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        output_mode = "RGBA" if image.mode in {"RGBA", "LA", "PA"} else "RGB"
        converted = ImageCms.profileToProfile(image, source, ImageCms.createProfile("sRGB"), outputMode=output_mode)
    except Exception:  # an unusable profile: keep the pixels as they are
        return image
    return converted if converted is not None else image


def _derivative(image: Image.Image, width: int) -> Image.Image:
    """``image`` scaled to ``width`` pixels wide (aspect kept), in a mode WebP stores."""
    if width < image.width:
        height = max(1, round(image.height * width / image.width))
        image = image.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if image.mode not in {"RGB", "RGBA"}:
        image = image.convert("RGB")
    return image


def _write_temp(media_dir: Path, image: Image.Image, ext_or_format: str) -> Path:
    """Encode ``image`` into a new temporary file in ``media_dir``; returns its path."""
    buffer = io.BytesIO()
    if ext_or_format == "jpg":
        image.save(buffer, "JPEG", **_JPEG_OPTIONS)
    elif ext_or_format == "png":
        image.save(buffer, "PNG")
    else:
        image.save(buffer, "WEBP", quality=_WEBP_QUALITY, method=4)
    return _write_temp_bytes(media_dir, buffer.getvalue())


def _write_temp_bytes(media_dir: Path, content: bytes) -> Path:
    descriptor, name = tempfile.mkstemp(dir=media_dir, prefix=".incoming-", suffix=".tmp")
    path = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        path.chmod(0o644)  # mkstemp's 0600 would hide the file from a front web server
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def placeholder_image(label: str, *, seed: int, size: tuple[int, int] = (800, 1000)) -> bytes:
    """A generated JPEG placeholder: a two-colour gradient, a few soft shapes and ``label``.

    Deterministic: the same label, seed and size give the same bytes.

    Args:
        label: Text drawn in the middle (wrapped to fit), e.g. a product name.
        seed: Chooses the colours and shapes.
        size: ``(width, height)`` in pixels.

    Returns:
        The JPEG file's bytes.
    """
    rng = random.Random(seed)  # noqa: S311 - decoration, not security
    width, height = size
    hue = rng.random()
    start = _hsv(hue, 0.35 + rng.random() * 0.25, 0.92)
    end = _hsv((hue + 0.08 + rng.random() * 0.12) % 1.0, 0.55 + rng.random() * 0.3, 0.55 + rng.random() * 0.2)
    gradient = Image.linear_gradient("L").rotate(rng.choice((0, 90, 180, 270)))
    canvas = ImageOps.colorize(gradient.resize(size), start, end).convert("RGBA")

    shapes = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shapes)
    for _ in range(rng.randint(3, 6)):
        radius = int(min(width, height) * (0.08 + rng.random() * 0.25))
        x, y = rng.randint(0, width), rng.randint(0, height)
        fill = (255, 255, 255, rng.randint(30, 80)) if rng.random() < 0.6 else (0, 0, 0, rng.randint(15, 40))
        box = (x - radius, y - radius, x + radius, y + radius)
        if rng.random() < 0.7:
            draw.ellipse(box, fill=fill)
        else:
            draw.rounded_rectangle(box, radius=radius // 4, fill=fill)
    canvas = Image.alpha_composite(canvas, shapes)

    text_layer = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(text_layer)
    font_size = max(12, width // 14)
    font = ImageFont.load_default(size=font_size)
    lines = textwrap.wrap(label, width=max(8, int(width * 0.8 / (font_size * 0.55)))) or [""]
    line_height = int(font_size * 1.25)
    top = (height - line_height * len(lines)) // 2
    for index, line in enumerate(lines):
        line_width = draw.textlength(line, font=font)
        position = ((width - line_width) / 2, top + index * line_height)
        draw.text((position[0] + 2, position[1] + 2), line, font=font, fill=(0, 0, 0, 90))
        draw.text(position, line, font=font, fill=(255, 255, 255, 255))
    canvas = Image.alpha_composite(canvas, text_layer).convert("RGB")

    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _hsv(hue: float, saturation: float, value: float) -> tuple[int, int, int]:
    import colorsys

    red, green, blue = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(red * 255), round(green * 255), round(blue * 255)
