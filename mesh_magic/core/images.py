"""Image bytes: sniff the real type, check they are a whole and sane image, make thumbnails.

Pillow is imported on first use, not at `%load_ext`. An image counts only once it
decodes completely: a PNG with a corrupt IDAT, or a header claiming 8000x9900 over a
10-byte IDAT, passes every header check and still fails on display. The declared size
is checked against `MAX_IMAGE_PIXELS` before any pixel is decoded (our own
decompression-bomb guard, below Pillow's). A full decode costs ~15 ms a megapixel, so a PNG
is checked from its structure instead (`png_check`); other formats are decoded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from .constants import MAX_IMAGE_PIXELS
from .errors import ResponseError
from .png_check import BrokenPNG, check_png

MAX_PIXELS = MAX_IMAGE_PIXELS

_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_mime(data: bytes) -> str | None:
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "image/webp": "webp"}


@dataclass(frozen=True)
class ImageInfo:
    mime_type: str
    width: int
    height: int


def inspect_image(data: bytes, *, what: str = "image") -> ImageInfo:
    """Type and size of `data`; raises ResponseError for non-images, truncation or bombs."""
    mime = sniff_mime(data)
    if mime is None:
        raise ResponseError(f"The {what} is not an image (got {_describe(data)}).")
    if _looks_truncated(data, mime):
        raise ResponseError(f"The {what} is truncated ({len(data)} bytes of {mime}).")
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ResponseError(
                    f"The {what} claims {width}x{height} pixels, too large to open safely "
                    f"(limit {MAX_PIXELS // 1_000_000} megapixels)."
                )
            # Every pixel must be there: corrupt or missing data fails here, not on display.
            # A PNG is checked from its structure (a fraction of a decode's CPU), the rest decoded.
            if mime != "image/png" or check_png(data) is None:
                img.load()
    except BrokenPNG as exc:
        raise ResponseError(f"The {what} could not be read as {mime}: {exc}") from None
    except ResponseError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ResponseError(f"The {what} is far too large to open safely.") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for broken data
        raise ResponseError(f"The {what} could not be read as {mime}: {_reason(exc)}") from None
    return ImageInfo(mime, width, height)


def _reason(exc: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "its header is not one Pillow recognises"  # its own text names a BytesIO at 0x...
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:119] + "…"


def _looks_truncated(data: bytes, mime: str) -> bool:
    tail = data[-64:]
    if mime == "image/png":
        return b"IEND" not in tail
    if mime == "image/jpeg":
        # Some encoders pad after EOI, so look near the end rather than at the last two bytes.
        return b"\xff\xd9" not in tail
    if mime == "image/webp":
        declared = int.from_bytes(data[4:8], "little") + 8
        return len(data) < declared
    return False


def _describe(data: bytes) -> str:
    if not data:
        return "no bytes"
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page"
    if head.startswith((b"{", b"[")):
        return "JSON"
    return f"{len(data)} bytes starting {data[:8]!r}"


def thumbnail(data: bytes, max_px: int) -> tuple[bytes, str, int, int]:
    """A compact copy for inline display: longest side `max_px`, JPEG unless alpha needs PNG.

    Returns (bytes, mime, width, height). Small images, and every image when
    `max_px` is 0 (full-resolution embedding), are passed through untouched.
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        width, height = img.size
        if max_px <= 0 or (max(width, height) <= max_px and len(data) <= 200_000):
            return data, Image.MIME.get(img.format or "", "image/png"), width, height
        img.draft("RGB", (max_px, max_px))  # cheap JPEG downscale on decode
        # reducing_gap=1: a box reduce by the whole factor first, then LANCZOS for the rest;
        # about 5x faster than LANCZOS alone and indistinguishable at thumbnail size.
        img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS, reducing_gap=1.0)
        out = io.BytesIO()
        has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
        if has_alpha:
            img.save(out, format="PNG", optimize=True)
            mime = "image/png"
        else:
            img.convert("RGB").save(out, format="JPEG", quality=82, optimize=True)
            mime = "image/jpeg"
        return out.getvalue(), mime, img.width, img.height


def to_pil(data: bytes) -> Any:
    from PIL import Image

    img = Image.open(io.BytesIO(data))
    img.load()
    return img
