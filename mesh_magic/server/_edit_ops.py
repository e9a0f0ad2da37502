"""Do the seven edit operations locally with Pillow, each visibly doing what it says.

Results are deterministic for the same inputs (image bytes, prompt, options) and index,
labelled as offline previews like generations, and never touch pixels an operation
promises to keep: outpaint pastes the original unchanged, inpaint (and a masked edit)
changes only where the mask is fully transparent.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import TYPE_CHECKING

from ._edit_adjust import adjust_for_prompt, mean_of
from ._edit_cutout import cut_out
from ._edit_validation import Edit
from ._images import band_height, draw_label, encode
from ._scenes import scene

if TYPE_CHECKING:
    from PIL import Image as PILImage

Size = tuple[int, int]
Box = tuple[int, int, int, int]

_WORK_PX = 384  # scenes for fills are drawn this big and scaled, as previews are
_SMEAR_PX = 24  # the original shrunk to this, then stretched back: a soft continuation of it


def _rng(edit: Edit, index: int) -> random.Random:
    parts = [edit.operation, edit.prompt, edit.model, str(index), *(s.digest for s in edit.sources)]
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _scene(edit: Edit, index: int, size: Size) -> PILImage.Image:
    from PIL import Image

    scale = _WORK_PX / max(size)
    work = (max(8, round(size[0] * scale)), max(8, round(size[1] * scale)))
    style = str(edit.entry.get("preview_style", "dusk"))
    # Seeded by the source's bytes, so two images filled with one prompt still differ.
    seed = int(edit.image.digest[:8], 16)
    drawn = scene(edit.prompt or edit.operation, edit.model, seed, index, style, work)
    return drawn.resize(size, Image.Resampling.BILINEAR)  # soft shapes: bilinear is enough


def _smear(img: PILImage.Image, size: Size) -> PILImage.Image:
    from PIL import Image

    w, h = img.size
    small = (max(2, round(_SMEAR_PX * w / max(w, h))), max(2, round(_SMEAR_PX * h / max(w, h))))
    return img.convert("RGB").resize(small, Image.Resampling.BOX).resize(size, Image.Resampling.BILINEAR)


def _backdrop(edit: Edit, index: int, size: Size) -> PILImage.Image:
    """New content for `size`: the prompt's scene over the source's colours, spread out."""
    from PIL import Image

    return Image.blend(_smear(edit.image.image, size), _scene(edit, index, size), 0.45)


def _title(edit: Edit, label: str) -> str:
    what = f"{edit.operation} {edit.note}".strip()
    return f"{label} · {what} · {edit.model}"


def _labelled(img: PILImage.Image, title: str, prompt: str) -> PILImage.Image:
    """The generations' label band along the bottom (opaque, also on a transparent image)."""
    if img.mode != "RGBA":
        draw_label(img, title, prompt)
        return img
    alpha = img.getchannel("A")
    rgb = img.convert("RGB")
    draw_label(rgb, title, prompt)
    w, h = img.size
    alpha.paste(255, (0, h - band_height(w, h), w, h))
    rgb.putalpha(alpha)
    return rgb


def _label_box(img: PILImage.Image, box: Box, title: str, prompt: str) -> None:
    """The label band drawn inside `box` only (a margin, a masked area)."""
    region = img.crop(box).convert("RGB")
    draw_label(region, title, prompt)
    img.paste(region, box[:2])


def _sized(img: PILImage.Image, size: Size) -> PILImage.Image:
    from PIL import Image

    return img if img.size == size else img.resize(size, Image.Resampling.LANCZOS)


def _weight(edit: Edit, size: Size) -> PILImage.Image:
    """Where a masked result replaces the source: 255 inside the change area, feathered inwards."""
    from PIL import Image, ImageChops, ImageFilter

    assert edit.change is not None
    area = edit.change if edit.change.size == size else edit.change.resize(size, Image.Resampling.NEAREST)
    if edit.feather <= 0:
        return area
    # Blurred, then clipped to the area: the edge softens inside, nothing outside moves.
    return ImageChops.darker(area, area.filter(ImageFilter.GaussianBlur(edit.feather)))


def _masked(edit: Edit, changed: PILImage.Image, title: str) -> PILImage.Image:
    """`changed` where the mask says so, the source everywhere else (bit for bit)."""
    from PIL import Image

    size = changed.size
    source = _sized(edit.image.in_mode(), size)
    weight = _weight(edit, size)
    box = weight.getbbox()
    if box is not None and min(box[2] - box[0], box[3] - box[1]) >= 12:
        _label_box(changed, box, title, edit.prompt)
    return Image.composite(changed.convert(source.mode), source, weight)


def _with_source_alpha(edit: Edit, img: PILImage.Image) -> PILImage.Image:
    alpha = edit.image.alpha()
    if alpha is not None:
        img.putalpha(_sized(alpha, img.size))
    return img


def _edit(edit: Edit, index: int, title: str) -> PILImage.Image:
    from PIL import Image

    size = (edit.width, edit.height)
    changed = adjust_for_prompt(_sized(edit.image.rgb(), size), edit.prompt, _rng(edit, index), index)
    if edit.references:
        changed = Image.blend(changed, mean_of([r.rgb() for r in edit.references], size), 0.25)
    if edit.change is not None:
        return _masked(edit, changed, title)
    return _labelled(_with_source_alpha(edit, changed), title, edit.prompt)


def _inpaint(edit: Edit, index: int, title: str) -> PILImage.Image:
    from PIL import Image

    assert edit.change is not None
    box = edit.change.getbbox() or (0, 0, *edit.image.size)
    region = (box[2] - box[0], box[3] - box[1])
    # New content only where the hole is, continuing the colours around it.
    patch = Image.blend(_smear(edit.image.image.crop(box), region), _scene(edit, index, region), 0.45)
    if edit.references:
        patch = Image.blend(patch, mean_of([r.rgb() for r in edit.references], region), 0.5)
    fill = edit.image.rgb()
    fill.paste(patch, box[:2])
    return _masked(edit, fill, title)


def _largest_margin(canvas: Size, inner: Size, at: tuple[int, int]) -> Box | None:
    (cw, ch), (w, h), (x, y) = canvas, inner, at
    margins = [(0, y + h, cw, ch), (0, 0, cw, y), (0, 0, x, ch), (x + w, 0, cw, ch)]
    usable = [m for m in margins if m[2] - m[0] >= 12 and m[3] - m[1] >= 12]
    return max(usable, key=lambda m: (m[2] - m[0]) * (m[3] - m[1]), default=None)


def _outpaint(edit: Edit, index: int, title: str) -> PILImage.Image:
    size = (edit.width, edit.height)
    source = edit.image.in_mode()
    at = ((size[0] - source.width) // 2, (size[1] - source.height) // 2)
    canvas = _backdrop(edit, index, size)
    margin = _largest_margin(size, source.size, at)
    if margin is not None:  # the label goes where the picture is new, never over the original
        _label_box(canvas, margin, title, edit.prompt)
    canvas = canvas.convert(source.mode)
    canvas.paste(source, at)
    return canvas


def _reframe(edit: Edit, index: int, title: str) -> PILImage.Image:
    from PIL import Image, ImageOps

    size = (edit.width, edit.height)
    source = edit.image.in_mode()
    # The whole picture, scaled to fit: the subject stays; the new sides are filled.
    inner = ImageOps.contain(source, size, Image.Resampling.BICUBIC)
    canvas = _backdrop(edit, index, size).convert(source.mode)
    at = ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2)
    canvas.paste(inner, at)
    return _labelled(canvas, title, edit.prompt)


def _upscale(edit: Edit, index: int, title: str) -> PILImage.Image:
    from PIL import Image, ImageFilter

    # Sharpened before it is enlarged: the same crisper look for a quarter of the work.
    img = edit.image.in_mode().filter(
        ImageFilter.UnsharpMask(radius=1, percent=50 + 12 * (index % 4), threshold=3)
    )
    img = img.resize((edit.width, edit.height), Image.Resampling.BICUBIC)
    return _labelled(img, title, edit.prompt)


def _mix(edit: Edit, index: int, title: str) -> PILImage.Image:
    from PIL import Image, ImageOps

    size = (edit.width, edit.height)
    mixed = ImageOps.fit(edit.image.rgb(), size, Image.Resampling.LANCZOS)
    # Variant 0 is an even blend of all the images; later variants lean one way or the other.
    lean = 1.0 if index == 0 else _rng(edit, index).uniform(0.6, 1.4)
    for i, ref in enumerate(edit.references):
        share = min(0.9, lean / (i + 2))
        mixed = Image.blend(mixed, ImageOps.fit(ref.rgb(), size, Image.Resampling.LANCZOS), share)
    return _labelled(mixed, title, edit.prompt)


def _remove_background(edit: Edit, index: int, title: str) -> PILImage.Image:
    return cut_out(edit.image, index, title, edit.background)


_OPS: dict[str, Callable[[Edit, int, str], PILImage.Image]] = {
    "edit": _edit,
    "inpaint": _inpaint,
    "outpaint": _outpaint,
    "mix": _mix,
    "reframe": _reframe,
    "upscale": _upscale,
    "remove_background": _remove_background,
}


def render_edit(edit: Edit, index: int, label: str = "OFFLINE PREVIEW") -> bytes:
    """The `index`-th result of an edit, as PNG bytes (alpha kept where the result has it)."""
    img = _OPS[edit.operation](edit, index, _title(edit, label))
    return encode(img, "png")
