"""Decode the images an edit request carries (data URLs, bare base64, {"url": ...}) like the real API."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._responses import ApiError

if TYPE_CHECKING:
    from PIL import Image as PILImage

Loc = list[str | int]

MAX_IMAGE_BYTES = 25 * 1024 * 1024
MIN_SIDE, MAX_SIDE = 16, 4096
_DATA_URL = re.compile(r"^data:([^;,]*)((?:;[^;,]*)*),", re.IGNORECASE)
_SEND_AS = "send the image as a data:image/png;base64,... URL or bare base64"


@dataclass(frozen=True)
class Source:
    """One decoded input image: its bytes, the loaded picture and where it came from in the body."""

    data: bytes
    image: PILImage.Image
    loc: tuple[str | int, ...]

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def has_alpha(self) -> bool:
        return has_alpha(self.image)

    def rgb(self) -> PILImage.Image:
        return self.image.convert("RGB")

    def alpha(self) -> PILImage.Image | None:
        return self.image.convert("RGBA").getchannel("A") if self.has_alpha else None

    def in_mode(self) -> PILImage.Image:
        """The picture as RGBA when it has transparency, RGB otherwise."""
        return self.image.convert("RGBA" if self.has_alpha else "RGB")


def has_alpha(img: PILImage.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info


def invalid(loc: Loc | tuple[str | int, ...], msg: str) -> ApiError:
    """The gateway's own 422: a generic message, the reason in `details`."""
    return ApiError(
        422, "validation_error", "Validation failed.", [{"loc": list(loc), "msg": msg, "type": "value_error"}]
    )


def _payload(text: str, loc: Loc) -> str:
    """The base64 part of a data URL or bare base64 string; remote URLs are refused."""
    if text[:8].lower().startswith(("http://", "https://")):
        raise invalid(loc, f"remote URLs are not accepted: download the image and {_SEND_AS}")
    if text[:5].lower() != "data:":
        return text
    match = _DATA_URL.match(text)
    if match is None or "base64" not in match.group(2).lower().split(";"):
        raise invalid(loc, f"not a base64 data URL: {_SEND_AS}")
    mime = match.group(1).strip().lower()
    if not mime.startswith("image/"):
        raise invalid(loc, f"the data URL holds {mime or 'untyped data'}, not an image: {_SEND_AS}")
    return text[match.end() :]


def _b64decode(payload: str, loc: Loc) -> bytes:
    if len(payload) > MAX_IMAGE_BYTES * 4 // 3 + 16:
        raise invalid(loc, "the image is over 25 MB: send a smaller one")
    compact = "".join(payload.split())
    # Missing padding is common in hand-built strings and unambiguous: accept it.
    compact += "=" * (-len(compact) % 4)
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(loc, f"not valid base64: {_SEND_AS}") from None
    if not data:
        raise invalid(loc, f"the image is empty: {_SEND_AS}")
    if len(data) > MAX_IMAGE_BYTES:
        raise invalid(loc, f"the image is {len(data) / 1024 / 1024:.1f} MB; the limit is 25 MB")
    return data


def _open(data: bytes, loc: Loc) -> PILImage.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise invalid(
            loc, f"the image declares too many pixels: each side must be at most {MAX_SIDE} px"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise invalid(loc, "the data is not an image (send a PNG, JPEG, WebP or GIF)") from None
    width, height = img.size
    # Checked before the pixels are decoded, so a decompression bomb costs nothing.
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise invalid(loc, f"the image is {width}x{height}: each side must be {MIN_SIDE}-{MAX_SIDE} px")
    try:
        img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise invalid(loc, "the image is truncated or corrupt: send the whole file") from None
    return img


def decode_source(value: Any, loc: Loc) -> Source:
    """A body image (a string, or an ImageRef object with `url`) decoded and loaded."""
    text = value["url"] if isinstance(value, dict) else value
    data = _b64decode(_payload(str(text).strip(), loc), loc)
    return Source(data=data, image=_open(data, loc), loc=tuple(loc))


def change_area(mask: Source, image_size: tuple[int, int]) -> PILImage.Image:
    """The area a mask marks for change (OpenAI's convention: fully transparent pixels), as L 0/255."""
    if mask.size != image_size:
        w, h = mask.size
        iw, ih = image_size
        raise invalid(mask.loc, f"the mask is {w}x{h} but the image is {iw}x{ih}: they must be the same size")
    alpha = mask.alpha()
    if alpha is None:
        raise invalid(
            mask.loc, "the mask has no alpha channel: make the area to change fully transparent (a PNG)"
        )
    area = alpha.point(lambda a: 255 if a == 0 else 0)
    if area.getbbox() is None:
        raise invalid(mask.loc, "the mask has no fully transparent pixels, so there is nothing to change")
    return area
