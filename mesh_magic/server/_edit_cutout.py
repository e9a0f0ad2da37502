"""Remove a picture's background locally: what differs from its edges is the subject, the rest goes.

The background is modelled from the picture's border (left/right edges per row,
top/bottom edges per column, so gradients count as background); pixels far from
both models are the subject. The work is done on a small copy and the mask scaled
back up, which keeps a 1024x1024 cut-out in the tens of milliseconds. When no one
subject stands out (a landscape, a texture), a soft centred ellipse stands in for one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._edit_inputs import Source
from ._images import draw_tag

if TYPE_CHECKING:
    from PIL import Image as PILImage

_WORK_PX = 256
_THRESHOLD = 40  # max-channel distance from the background model that counts as subject
_GRID = 48  # cells per side of the coarse grid the subject is looked for in


def _edge_model(img: PILImage.Image, along_rows: bool) -> PILImage.Image:
    """The border pixels spread across the picture: per row from the sides, or per column."""
    from PIL import Image

    w, h = img.size
    if along_rows:
        edges = Image.new("RGB", (2, h))
        edges.paste(img.crop((0, 0, 1, h)), (0, 0))
        edges.paste(img.crop((w - 1, 0, w, h)), (1, 0))
    else:
        edges = Image.new("RGB", (w, 2))
        edges.paste(img.crop((0, 0, w, 1)), (0, 0))
        edges.paste(img.crop((0, h - 1, w, h)), (0, 1))
    return edges.resize((w, h), Image.Resampling.BILINEAR)


def _distance(img: PILImage.Image, model: PILImage.Image) -> PILImage.Image:
    from PIL import ImageChops

    r, g, b = ImageChops.difference(img, model).split()
    return ImageChops.lighter(ImageChops.lighter(r, g), b)


def _ellipse(size: tuple[int, int]) -> PILImage.Image:
    from PIL import Image, ImageDraw, ImageFilter

    w, h = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).ellipse((w * 0.18, h * 0.12, w * 0.82, h * 0.88), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(max(w, h) / 80))


def _components(cells: list[bool], w: int, h: int) -> list[list[int]]:
    """4-connected groups of set cells (a coarse grid, so plain Python is quick enough)."""
    seen = [False] * len(cells)
    groups = []
    for start, on in enumerate(cells):
        if not on or seen[start]:
            continue
        seen[start] = True
        group, todo = [], [start]
        while todo:
            i = todo.pop()
            group.append(i)
            x, y = i % w, i // w
            for j, ok in ((i - 1, x > 0), (i + 1, x < w - 1), (i - w, y > 0), (i + w, y < h - 1)):
                if ok and cells[j] and not seen[j]:
                    seen[j] = True
                    todo.append(j)
        groups.append(group)
    return groups


def _subject_box(mask: PILImage.Image) -> tuple[float, float, float, float] | None:
    """The main subject's box (fractions of the picture), or None when no clear subject stands out.

    Clear means: one connected blob holds most of what differs from the background, covers
    1-90% of the picture and touches at most one edge (a portrait's subject meets the bottom).
    """
    from PIL import Image

    grid = mask.resize((_GRID, _GRID), Image.Resampling.BOX)
    cells = [v > 127 for v in grid.tobytes()]
    total = sum(cells)
    groups = _components(cells, _GRID, _GRID)
    if not groups:
        return None
    main = max(groups, key=len)
    xs, ys = [i % _GRID for i in main], [i // _GRID for i in main]
    left, top, right, bottom = min(xs), min(ys), max(xs) + 1, max(ys) + 1
    edges = (left == 0) + (top == 0) + (right == _GRID) + (bottom == _GRID)
    if len(main) < 0.6 * total or not 0.01 <= len(main) / _GRID**2 <= 0.9 or edges > 1:
        return None
    # One cell of slack, so the soft edge is not clipped.
    return (
        max(0, left - 1) / _GRID,
        max(0, top - 1) / _GRID,
        min(_GRID, right + 1) / _GRID,
        min(_GRID, bottom + 1) / _GRID,
    )


def _box_mask(size: tuple[int, int], box: tuple[float, float, float, float]) -> PILImage.Image:
    from PIL import Image, ImageDraw

    w, h = size
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle((box[0] * w, box[1] * h, box[2] * w, box[3] * h), fill=255)
    return mask


def subject_mask(img: PILImage.Image, index: int = 0) -> PILImage.Image:
    """L mask of `img` (RGB): 255 for the subject, 0 for the background, soft at the edge."""
    from PIL import Image, ImageChops, ImageFilter

    work = img.copy()
    work.thumbnail((_WORK_PX, _WORK_PX), Image.Resampling.BOX)
    near = ImageChops.darker(
        _distance(work, _edge_model(work, True)), _distance(work, _edge_model(work, False))
    )
    cut = _THRESHOLD + 6 * (index % 4)  # later variants cut a little tighter
    mask = near.point(lambda v: 255 if v > cut else 0)
    # Opening then closing: specks of noise go, small holes in the subject fill.
    mask = mask.filter(ImageFilter.MinFilter(3)).filter(ImageFilter.MaxFilter(3))
    mask = mask.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.MinFilter(3))
    box = _subject_box(mask)
    # Around a clear subject, stray patches that differ from the edges go too.
    mask = _ellipse(work.size) if box is None else ImageChops.multiply(mask, _box_mask(work.size, box))
    # Rounded off, scaled up smoothly, then the ramp steepened: an anti-aliased edge
    # without stair steps, and a background that is fully clear.
    mask = mask.filter(ImageFilter.GaussianBlur(1.5))
    big = mask.resize(img.size, Image.Resampling.BILINEAR)
    return big.point(lambda v: 0 if v < 48 else 255 if v > 208 else round((v - 48) * 255 / 160))


def cut_out(source: Source, index: int, title: str, background: str | None) -> PILImage.Image:
    """The source's subject on transparency (RGBA), or on `background` (a colour) when given."""
    from PIL import Image, ImageChops

    rgb = source.rgb()
    mask = subject_mask(rgb, index)
    alpha = source.alpha()
    if alpha is not None:  # already transparent somewhere: stays so
        mask = ImageChops.darker(mask, alpha)
    if background is not None:
        flat = Image.new("RGB", rgb.size, background)
        flat.paste(rgb, (0, 0), mask)
        draw_tag(flat, title)
        return flat
    rgb.putalpha(mask)
    draw_tag(rgb, title)
    return rgb
