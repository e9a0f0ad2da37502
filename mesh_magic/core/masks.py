"""Masks for inpainting: the one given, checked against the image, or one built from a region.

OpenAI's convention: fully transparent mask pixels mark the area to change, opaque
ones what to keep. `--region X,Y,W,H` (pixels, or fractions 0-1 of the image)
builds such a mask at the source image's size.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from .errors import InvalidOptionError
from .kv import short
from .sources import ImageSource, load_source

_NUMBER = r"\s*(\d+(?:\.\d+)?|\.\d+)\s*"
_REGION = re.compile(rf"^{_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}$")


@dataclass(frozen=True)
class Region:
    """A rectangle in pixels of one image."""

    x: int
    y: int
    width: int
    height: int


def parse_region(text: str | tuple[float, float, float, float], width: int, height: int) -> Region:
    """X,Y,W,H in pixels, or all four as fractions 0-1 of the image; inside the image."""
    values = _values(text)
    fractions = all(v <= 1 for v in values) and any(v != int(v) for v in values)
    x, y, w, h = values
    if fractions:
        x, w = x * width, w * width
        y, h = y * height, h * height
    box = Region(round(x), round(y), round(w), round(h))
    if box.width <= 0 or box.height <= 0:
        raise InvalidOptionError(f"The region {short(text)} is empty: give a width and height above 0.")
    if box.x + box.width > width or box.y + box.height > height:
        raise InvalidOptionError(
            f"The region {short(text)} reaches past the {width}x{height} image "
            f"(to {box.x + box.width}x{box.y + box.height}): keep it inside, or use fractions 0-1."
        )
    return box


def _values(text: str | tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    if isinstance(text, tuple | list) and len(text) == 4:
        try:
            return (float(text[0]), float(text[1]), float(text[2]), float(text[3]))
        except (TypeError, ValueError):
            pass
    match = _REGION.match(str(text))
    if not match:
        raise InvalidOptionError(
            f"The region {short(text)} is not X,Y,W,H: e.g. --region 100,80,300,200 (pixels) or "
            "--region 0.25,0.25,0.5,0.5 (fractions of the image)."
        )
    return (float(match.group(1)), float(match.group(2)), float(match.group(3)), float(match.group(4)))


def region_mask(image: ImageSource, region: Region) -> ImageSource:
    """A mask at `image`'s size: transparent inside `region` (change here), opaque outside."""
    from PIL import Image, ImageDraw

    mask = Image.new("RGBA", (image.width, image.height), (0, 0, 0, 255))
    box = (region.x, region.y, region.x + region.width - 1, region.y + region.height - 1)
    ImageDraw.Draw(mask).rectangle(box, fill=(0, 0, 0, 0))
    out = io.BytesIO()
    mask.save(out, format="PNG")
    label = f"the region {region.x},{region.y},{region.width},{region.height}"
    return load_source(out.getvalue(), label=label, what="mask")


def checked_mask(mask: ImageSource, image: ImageSource) -> ImageSource:
    """The mask, if it is the image's size (the API needs them to match)."""
    if (mask.width, mask.height) != (image.width, image.height):
        raise InvalidOptionError(
            f"The mask is {mask.size} but the image is {image.size}: they must be the same size "
            "(or use --region X,Y,W,H to build one)."
        )
    return mask
