"""Where an edited image came from, shown: a before/after pair, and small parent thumbnails."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.images import thumbnail

if TYPE_CHECKING:
    from ..core.results import GeneratedImage, ImageParent, ImageResult

PARENT_PX = 48


def parent_data(parent: ImageParent) -> bytes | None:
    """The parent's bytes from the store (None when it is not there any more)."""
    if not parent.path:
        return None
    try:
        return Path(parent.path).read_bytes()
    except OSError:
        return None


def _img(data: bytes, max_px: int, alt: str, style: str) -> str | None:
    try:
        small, mime, width, height = thumbnail(data, max_px)
    except Exception:  # noqa: BLE001 - an unreadable parent is simply not shown
        return None
    b64 = base64.b64encode(small).decode("ascii")
    return (
        f'<img src="data:{mime};base64,{b64}" width="{width}" height="{height}" '
        f'alt="{html.escape(alt, quote=True)}" style="{style}">'
    )


def parent_thumbs_html(image: GeneratedImage) -> str:
    """Tiny thumbnails of the images an edit started from (history captions show them)."""
    tags = []
    for parent in image.parents:
        data = parent_data(parent)
        tag = (
            _img(
                data,
                PARENT_PX,
                f"from {parent.label or 'an image'}",
                "height:32px;width:auto;border-radius:2px;vertical-align:middle;margin-right:3px",
            )
            if data
            else None
        )
        if tag:
            tags.append(tag)
    return f'<span class="mesh-magic-parents" title="made from">{"".join(tags)}</span> ' if tags else ""


def before_after_pair(result: ImageResult) -> tuple[GeneratedImage, bytes] | None:
    """The image and its one source, when the result is one edited image of one source."""
    if len(result) != 1:
        return None
    image = result[0]
    if image.operation == "generate" or len(image.parents) != 1:
        return None
    data = parent_data(image.parents[0])
    return (image, data) if data else None


def before_html(data: bytes, label: str, max_px: int, tile_style: str) -> str:
    tag = _img(data, max_px, label, "display:block;max-width:100%;height:auto;border-radius:4px") or ""
    return (
        f'<figure style="{tile_style}">{tag}<figcaption style="margin-top:4px">'
        f"<b>before</b> · {html.escape(label)}</figcaption></figure>"
    )
