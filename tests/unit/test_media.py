"""store_image: verification, metadata stripping, derivatives, content addressing; placeholders."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from webshop.media import (
    IMAGE_WIDTHS,
    MAX_IMAGE_PIXELS,
    ImageRejected,
    StoredImage,
    image_url,
    placeholder_image,
    store_image,
)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _photo(size: tuple[int, int] = (800, 600)) -> Image.Image:
    return Image.linear_gradient("L").resize(size).convert("RGB")


def _files(media: Path) -> list[str]:
    return sorted(path.name for path in media.iterdir())


def test_stores_jpeg_with_derivatives(tmp_path: Path) -> None:
    stored = store_image(_encode(_photo((800, 600)), "JPEG"), tmp_path)
    assert (stored.ext, stored.width, stored.height) == ("jpg", 800, 600)
    assert len(stored.key) == 32
    assert _files(tmp_path) == sorted([f"{stored.key}.jpg"] + [f"{stored.key}-{width}.webp" for width in IMAGE_WIDTHS])
    widths = {}
    for width in IMAGE_WIDTHS:
        with Image.open(tmp_path / f"{stored.key}-{width}.webp") as derivative:
            assert derivative.format == "WEBP"
            widths[width] = derivative.size
    # never upscaled: the 1200 file of an 800 px image is the 800 px version
    assert widths == {320: (320, 240), 640: (640, 480), 1200: (800, 600)}


def test_stores_png_with_alpha(tmp_path: Path) -> None:
    image = Image.new("RGBA", (200, 100), (255, 0, 0, 128))
    stored = store_image(_encode(image, "PNG"), tmp_path)
    assert stored == StoredImage(key=stored.key, ext="png", width=200, height=100)
    with Image.open(tmp_path / f"{stored.key}.png") as original:
        assert original.mode == "RGBA"
    with Image.open(tmp_path / f"{stored.key}-320.webp") as small:
        assert small.size == (200, 100)


def test_same_bytes_same_key_and_no_rewrite(tmp_path: Path) -> None:
    data = _encode(_photo(), "JPEG")
    first = store_image(data, tmp_path)
    mtimes = {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()}
    second = store_image(data, tmp_path)
    assert second == first
    assert {path.name: path.stat().st_mtime_ns for path in tmp_path.iterdir()} == mtimes
    assert all((tmp_path / f"{first.key}-{width}.webp").is_file() for width in IMAGE_WIDTHS)


def test_explicit_key(tmp_path: Path) -> None:
    stored = store_image(_encode(_photo(), "PNG"), tmp_path, key="upload_1")
    assert stored.key == "upload_1"
    assert (tmp_path / "upload_1.png").is_file()
    with pytest.raises(ValueError, match="image key"):
        store_image(_encode(_photo(), "PNG"), tmp_path, key="../escape")


def test_exif_orientation_applied_and_metadata_stripped(tmp_path: Path) -> None:
    image = _photo((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "SpyCam"  # make
    data = _encode(image, "JPEG", exif=exif.tobytes(), comment=b"secret")
    stored = store_image(data, tmp_path)
    assert (stored.width, stored.height) == (200, 300)
    for name in [f"{stored.key}.jpg"] + [f"{stored.key}-{width}.webp" for width in IMAGE_WIDTHS]:
        with Image.open(tmp_path / name) as written:
            assert not written.getexif(), name
            assert "exif" not in written.info
            assert "comment" not in written.info
            assert "icc_profile" not in written.info


def test_rejects_text(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected, match="not an image"):
        store_image(b"hello, I am not a picture", tmp_path)
    assert _files(tmp_path) == []


def test_rejects_truncated_jpeg(tmp_path: Path) -> None:
    data = _encode(_photo((640, 480)), "JPEG")
    with pytest.raises(ImageRejected, match="truncated") as caught:
        store_image(data[: len(data) // 2], tmp_path)
    assert caught.value.field_errors == {"image": caught.value.detail}
    assert _files(tmp_path) == []


def test_rejects_gif(tmp_path: Path) -> None:
    with pytest.raises(ImageRejected, match="only JPEG, PNG or WebP"):
        store_image(_encode(_photo((50, 50)), "GIF"), tmp_path)


@pytest.mark.parametrize("side", [8000, 10000])  # above the limit (a warning), above twice it (an error)
def test_rejects_decompression_bomb(tmp_path: Path, side: int) -> None:
    assert side * side > MAX_IMAGE_PIXELS
    data = _encode(Image.new("1", (side, side), 1), "PNG")  # 1-bit white: a few kilobytes
    assert len(data) < 100_000
    with pytest.raises(ImageRejected, match="too many pixels"):
        store_image(data, tmp_path)
    assert _files(tmp_path) == []


def test_rejects_damaged_png(tmp_path: Path) -> None:
    data = bytearray(_encode(_photo((64, 64)), "PNG"))
    data[data.index(b"IDAT") + 20] ^= 0xFF
    with pytest.raises(ImageRejected, match="image is damaged"):
        store_image(bytes(data), tmp_path)


def test_accepts_webp(tmp_path: Path) -> None:
    stored = store_image(_encode(_photo((400, 300)), "WEBP"), tmp_path)
    assert (stored.ext, stored.width) == ("webp", 400)


def test_image_url() -> None:
    assert image_url("abc", 640) == "/media/abc-640.webp"


def test_placeholder_is_a_deterministic_jpeg() -> None:
    data = placeholder_image("Nordic Armchair", seed=3, size=(400, 500))
    assert data == placeholder_image("Nordic Armchair", seed=3, size=(400, 500))
    assert data != placeholder_image("Nordic Armchair", seed=4, size=(400, 500))
    with Image.open(io.BytesIO(data)) as image:
        assert (image.format, image.size) == ("JPEG", (400, 500))
