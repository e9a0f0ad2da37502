"""Image bytes for tests: the one PNG/JPEG maker, base64, and decoding images out of HTML."""

from __future__ import annotations

import base64
import io
import re
from typing import Any

_DATA_URI = re.compile(r'src="data:(image/[\w.+-]+);base64,([A-Za-z0-9+/=]+)"')


def make_image(
    width: int = 40,
    height: int = 20,
    *,
    fmt: str = "PNG",
    mode: str = "RGB",
    color: tuple[int, ...] | None = None,
    text: dict[str, str] | None = None,
) -> bytes:
    """A plain-colour image. `text`: PNG text chunks (a cheap way to tag an image)."""
    from PIL import Image, PngImagePlugin

    if color is None:
        color = (200, 30, 30, 128) if mode == "RGBA" else (200, 30, 30)
    options: dict[str, Any] = {}
    if text:
        info = PngImagePlugin.PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
        options["pnginfo"] = info
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, format=fmt, **options)
    return out.getvalue()


def make_png(
    width: int = 40, height: int = 20, color: tuple[int, ...] | None = None, **options: Any
) -> bytes:
    return make_image(width, height, fmt="PNG", color=color, **options)


def make_jpeg(width: int = 40, height: int = 20, color: tuple[int, ...] | None = None) -> bytes:
    return make_image(width, height, fmt="JPEG", color=color)


def tagged_png(prompt: str, index: int = 0) -> bytes:
    """A tiny PNG that carries its prompt in a text chunk (cheap stand-in for server rendering)."""
    return make_png(8, 8, ((index * 40) % 256, 80, 120), text={"prompt": prompt, "index": str(index)})


def png_prompt(data: bytes) -> str | None:
    """The prompt a `tagged_png` carries."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        return img.text.get("prompt")  # type: ignore[attr-defined]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def html_images(html: str) -> list[tuple[str, bytes]]:
    """(mime, bytes) of every data-URI <img> in an HTML string."""
    return [(mime, base64.b64decode(data)) for mime, data in _DATA_URI.findall(html)]


def inline_images(html: str) -> list[Any]:
    """Every data-URI image in an HTML output, decoded and loaded with Pillow."""
    from PIL import Image

    found = []
    for _mime, raw in html_images(html):
        image = Image.open(io.BytesIO(raw))
        image.load()
        found.append(image)
    return found
