"""Render the deterministic, clearly labelled preview images the local server returns."""

from __future__ import annotations

import functools
import io
import zlib
from typing import TYPE_CHECKING, Any

from ._scenes import scene

if TYPE_CHECKING:
    from PIL import Image as PILImage

# Scenes are drawn at this size (longest side) and scaled up: soft shapes survive the
# upscale and it keeps a 1024x1024 render in the tens of milliseconds.
_WORK_PX = 384

MIME_TYPES: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}

_NOT_AN_IMAGE = b"hello world, not an image"


@functools.lru_cache(maxsize=16)
def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: Any, text: str, font: Any, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if draw.textlength(text[:mid].rstrip() + "…", font=font) <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…"


def band_height(width: int, height: int) -> int:
    """Height of the label band _label draws along the bottom of a width x height image."""
    return max(12, min(72, round(min(width, height) * 0.08)))


def draw_label(img: PILImage.Image, title: str, prompt: str) -> None:
    from PIL import Image, ImageDraw

    w, h = img.size
    band = band_height(w, h)
    box = (0, h - band, w, h)
    img.paste(Image.blend(img.crop(box), Image.new("RGB", (w, band)), 0.6), box[:2])
    draw = ImageDraw.Draw(img)
    pad = max(3, band // 6)
    text = " ".join(prompt.split())
    if band < 30 or not text:
        # Too small for two lines: the preview marker matters more than the prompt.
        font = _font(max(6, round(band * 0.55)))
        draw.text(
            (pad, h - band / 2),
            _fit(draw, title, font, w - 2 * pad),
            font=font,
            fill=(255, 255, 255),
            anchor="lm",
        )
        return
    title_font = _font(round(band * 0.28))
    prompt_font = _font(round(band * 0.34))
    draw.text(
        (pad, h - band + pad),
        _fit(draw, title, title_font, w - 2 * pad),
        font=title_font,
        fill=(255, 214, 102),
        anchor="lt",
    )
    draw.text(
        (pad, h - pad),
        _fit(draw, text, prompt_font, w - 2 * pad),
        font=prompt_font,
        fill=(255, 255, 255),
        anchor="lb",
    )


def draw_tag(img: PILImage.Image, text: str) -> tuple[int, int, int, int]:
    """A small dark tag holding `text` in the bottom-left corner; returns its box.

    For pictures whose background must stay clear (a cut-out), where a full-width band won't do.
    """
    from PIL import ImageDraw

    w, h = img.size
    band = band_height(w, h)
    font = _font(max(6, round(band * 0.45)))
    draw = ImageDraw.Draw(img)
    pad = max(2, band // 6)
    text = _fit(draw, text, font, w - 6 * pad)
    right = min(w - pad, round(3 * pad + draw.textlength(text, font=font)))
    box = (pad, h - pad - band, right, h - pad)
    draw.rectangle(box, fill=(20, 20, 28, 225) if img.mode == "RGBA" else (20, 20, 28))
    draw.text((2 * pad, h - pad - band / 2), text, font=font, fill=(255, 214, 102), anchor="lm")
    return box


def encode(img: PILImage.Image, fmt: str) -> bytes:
    out = io.BytesIO()
    if fmt == "png":
        # Level 1: several times faster than the default for a modest size cost.
        img.save(out, "PNG", compress_level=1)
    elif fmt == "jpeg":
        img.save(out, "JPEG", quality=88)
    elif fmt == "webp":
        img.save(out, "WEBP", quality=82, method=0)
    else:
        raise ValueError(f"unsupported image format {fmt!r}")
    return out.getvalue()


@functools.lru_cache(maxsize=64)
def render_preview(
    prompt: str,
    *,
    model: str,
    seed: int | None,
    index: int,
    width: int,
    height: int,
    fmt: str = "png",
    label: str = "OFFLINE PREVIEW",
) -> bytes:
    """A deterministic preview image for a prompt, encoded as `fmt` (png, jpeg or webp).

    The same (prompt, model, seed, index, size, fmt) always gives the same bytes; the
    model picks the look, so side-by-side comparisons visibly differ.
    """
    from PIL import Image

    from ._models import find_model

    entry = find_model(model) or {}
    scale = _WORK_PX / max(width, height)
    work = (max(8, round(width * scale)), max(8, round(height * scale)))
    drawn = scene(prompt, model, seed, index, entry.get("preview_style", "dusk"), work)
    img = drawn.resize((width, height), Image.Resampling.BICUBIC)
    draw_label(img, f"{label} · {model}", prompt)
    return encode(img, fmt)


def render_partial(
    prompt: str,
    *,
    model: str,
    seed: int | None,
    index: int,
    width: int,
    height: int,
    step: int,
    steps: int,
    label: str = "OFFLINE PREVIEW",
) -> bytes:
    """An earlier, blurrier stage of render_preview's image, same size, as PNG."""
    from PIL import Image, ImageFilter

    final = Image.open(
        io.BytesIO(
            render_preview(
                prompt, model=model, seed=seed, index=index, width=width, height=height, label=label
            )
        )
    )
    # Later steps are sharper; the first one is little more than colour blobs.
    factor = 2 ** (steps - step + 2)
    small = final.resize((max(1, width // factor), max(1, height // factor)), Image.Resampling.BOX)
    img = small.resize((width, height), Image.Resampling.BILINEAR)
    img = img.filter(ImageFilter.GaussianBlur(max(1, factor // 4)))
    return encode(img.convert("RGB"), "png")


def not_an_image() -> bytes:
    return _NOT_AN_IMAGE


def truncated_png() -> bytes:
    data = render_preview("truncated", model="openai/gpt-image-1", seed=0, index=0, width=256, height=256)
    return data[: len(data) // 2]


def corrupt_png() -> bytes:
    """A PNG whose IDAT is garbage (right length, fixed CRC) with IEND intact: passes header checks."""
    from PIL import Image

    data = bytearray(encode(Image.radial_gradient("L").convert("RGB"), "png"))
    start = data.index(b"IDAT")
    length = int.from_bytes(data[start - 4 : start], "big")
    body = bytes(b ^ 0x5A for b in data[start + 4 : start + 4 + length])
    data[start + 4 : start + 4 + length] = body
    data[start + 4 + length : start + 8 + length] = zlib.crc32(b"IDAT" + body).to_bytes(4, "big")
    return bytes(data)


def hollow_png(width: int = 8000, height: int = 9900) -> bytes:
    """A PNG declaring width x height pixels over a 10-byte IDAT: a bomb's header, no pixels."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    idat = zlib.compress(b"\x00" * 8)[:10]
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


@functools.lru_cache(maxsize=1)
def decompression_bomb(side: int = 40000) -> bytes:
    """A small, valid 1-bit PNG that declares `side` x `side` pixels (about 200 MB raw)."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed all-black bits
    rows_per_block = 256
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    # A full flush resets the compressor's history, so every later block of the same
    # rows compresses to the same bytes: compress one and repeat it instead of
    # deflating 200 MB of zeros.
    block = packer.compress(row * rows_per_block) + packer.flush(zlib.Z_FULL_FLUSH)
    rest = packer.compress(row * (side % rows_per_block)) + packer.flush(zlib.Z_FINISH)
    raw_len = len(row) * side
    # Adler-32 of n zero bytes is closed-form: a stays 1, b grows by 1 per byte.
    adler = ((raw_len % 65521) << 16) | 1
    stream = b"\x78\xda" + block * (side // rows_per_block) + rest + adler.to_bytes(4, "big")
    ihdr = side.to_bytes(4, "big") * 2 + bytes([1, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", stream)
        + _png_chunk(b"IEND", b"")
    )
