"""Image bytes: sniffing, whole-and-sane checks (truncation, non-images, bombs) and thumbnails."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from mesh_magic.core.errors import ResponseError
from mesh_magic.core.images import MAX_PIXELS, inspect_image, sniff_mime, thumbnail, to_pil
from tests.support.images import make_image


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny, well-formed-looking PNG whose header claims width x height pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + _chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("GIF", "image/gif")],
)
def test_sniff_and_inspect(fmt: str, mime: str) -> None:
    data = make_image(33, 17, fmt=fmt)
    assert sniff_mime(data) == mime
    info = inspect_image(data)
    assert (info.mime_type, info.width, info.height) == (mime, 33, 17)


def test_sniff_unknown() -> None:
    assert sniff_mime(b"") is None
    assert sniff_mime(b"RIFF\x00\x00\x00\x00WAVE") is None
    assert sniff_mime(b"<html>") is None


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_image(fmt: str) -> None:
    data = make_image(64, 64, fmt=fmt)
    with pytest.raises(ResponseError, match="truncated"):
        inspect_image(data[: len(data) // 2], what="image 1")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "no bytes"),
        (b"<!DOCTYPE html><html>Not found</html>", "an HTML page"),
        (b'{"error": "nope"}', "JSON"),
        (b"GARBAGE1234", "bytes starting"),
    ],
)
def test_not_an_image(data: bytes, match: str) -> None:
    with pytest.raises(ResponseError, match="is not an image") as info:
        inspect_image(data, what="image 2 from m/x")
    assert match in str(info.value)
    assert "image 2 from m/x" in str(info.value)


def test_png_signature_with_garbage_body() -> None:
    data = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100 + b"IEND\xaeB`\x82"
    with pytest.raises(ResponseError, match="could not be read"):
        inspect_image(data)


def test_decompression_bomb_refused() -> None:
    bomb = png_claiming(100_000, 100_000)
    assert len(bomb) < 200
    with pytest.raises(ResponseError, match="too large"):
        inspect_image(bomb)


def test_over_our_pixel_limit_refused() -> None:
    side = 9_000  # 81 MP: under Pillow's bomb threshold, over MAX_PIXELS
    assert side * side > MAX_PIXELS
    with pytest.raises(ResponseError, match="too large to open safely"):
        inspect_image(png_claiming(side, side))
    # Under the limit, a header claiming 64 MP over a 64-byte IDAT is still no image.
    with pytest.raises(ResponseError, match="cut short"):
        inspect_image(png_claiming(8_000, 8_000))
    side = 2_000
    whole = png_claiming(side, side).replace(
        _chunk(b"IDAT", zlib.compress(b"\x00" * 64)),
        _chunk(b"IDAT", zlib.compress(b"\x00" * ((3 * side + 1) * side))),
    )
    assert inspect_image(whole).width == side


@pytest.mark.parametrize(("width", "height"), [(1200, 600), (300, 900), (700, 700)])
def test_thumbnail_keeps_aspect(width: int, height: int) -> None:
    data = make_image(width, height)
    thumb, mime, tw, th = thumbnail(data, 256)
    assert max(tw, th) == 256
    assert abs(tw / th - width / height) < 0.02
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.size == (tw, th)
    assert mime == "image/jpeg"
    assert thumb[:3] == b"\xff\xd8\xff"


def test_thumbnail_png_for_alpha() -> None:
    data = make_image(800, 400, mode="RGBA")
    thumb, mime, tw, th = thumbnail(data, 200)
    assert mime == "image/png"
    assert (tw, th) == (200, 100)
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.mode in ("RGBA", "LA", "P")


def test_thumbnail_passes_small_images_through() -> None:
    data = make_image(100, 50, fmt="WEBP")
    thumb, mime, tw, th = thumbnail(data, 512)
    assert thumb == data
    assert (mime, tw, th) == ("image/webp", 100, 50)


def test_thumbnail_of_big_jpeg() -> None:
    data = make_image(2048, 1024, fmt="JPEG")
    thumb, mime, tw, th = thumbnail(data, 512)
    assert (mime, tw, th) == ("image/jpeg", 512, 256)
    with Image.open(io.BytesIO(thumb)) as img:
        assert img.size == (512, 256)


def test_to_pil_loads() -> None:
    img = to_pil(make_image(12, 34))
    assert img.size == (12, 34)
    assert img.format == "PNG"
