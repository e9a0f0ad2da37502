"""The offline previews' scenery: palettes per style, and motifs drawn from a prompt's seed."""

from __future__ import annotations

import colorsys
import hashlib
import math
import random
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image as PILImage

Color = tuple[int, int, int]


def _hex(value: str) -> Color:
    return (int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16))


def _palettes(*rows: str) -> list[tuple[Color, ...]]:
    # Each palette: sky top, sky middle, horizon, accent (sun / highlights), foreground.
    return [tuple(_hex(c) for c in row.split()) for row in rows]


_STYLES: dict[str, dict[str, Any]] = {
    "dusk": {
        "palettes": _palettes(
            "#1b1f4b #6a3d7a #f08a5d #ffd56b #231631",
            "#0f2a4a #3f6e9a #f5b971 #fff1c1 #17283b",
            "#2b1b3d #8c4a6b #ff9966 #ffe29a #1e1226",
        ),
        "motifs": ("mountains",),
    },
    "painterly": {
        "palettes": _palettes(
            "#3a2c5a #b5566d #f7b267 #fff3b0 #5b2a3c",
            "#264653 #2a9d8f #e9c46a #f4a261 #1d3557",
        ),
        "motifs": ("bubbles", "mountains"),
    },
    "pastel": {
        "palettes": _palettes(
            "#a8d8ea #cbe7f0 #fcefee #ffd3b6 #aa96da",
            "#ffd6e0 #ffefcf #e2f0cb #b5ead7 #c7ceea",
        ),
        "motifs": ("waves",),
    },
    "cinematic": {
        "palettes": _palettes(
            "#02111b #0b3c49 #2f7f86 #ff8c42 #010a10",
            "#0d0d0d #1e3d59 #f5f0e1 #ff6e40 #050505",
        ),
        "motifs": ("mountains", "sun_rays"),
    },
    "flat": {
        "palettes": _palettes(
            "#f94144 #f3722c #f8961e #f9c74f #277da1",
            "#118ab2 #06d6a0 #ffd166 #ef476f #073b4c",
        ),
        "motifs": ("mountains",),
        "posterize": 3,
    },
    "neon": {
        "palettes": _palettes(
            "#07000f #1a0033 #3d0066 #00f5d4 #f15bb5",
            "#000814 #001d3d #003566 #ffc300 #ff006e",
        ),
        "motifs": ("rings",),
    },
    "blueprint": {
        "palettes": _palettes(
            "#0a2342 #12355b #1f4e79 #e0fbfc #98c1d9",
        ),
        "motifs": ("grid", "rings"),
    },
}


def _rng_for(*parts: object) -> random.Random:
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def _shift(color: Color, hue: float, light: float) -> Color:
    h, lum, s = colorsys.rgb_to_hls(*(c / 255 for c in color))
    r, g, b = colorsys.hls_to_rgb((h + hue) % 1.0, min(1.0, max(0.0, lum + light)), s)
    return (round(r * 255), round(g * 255), round(b * 255))


def _mix(a: Color, b: Color, t: float) -> Color:
    return (round(a[0] + (b[0] - a[0]) * t), round(a[1] + (b[1] - a[1]) * t), round(a[2] + (b[2] - a[2]) * t))


def _vertical_gradient(size: tuple[int, int], top: Color, bottom: Color) -> PILImage.Image:
    from PIL import Image

    mask = Image.linear_gradient("L").resize(size, Image.Resampling.BILINEAR)
    return Image.composite(Image.new("RGB", size, bottom), Image.new("RGB", size, top), mask)


def _sky(size: tuple[int, int], pal: tuple[Color, ...], horizon: float) -> PILImage.Image:
    from PIL import Image

    w, h = size
    split = max(1, min(h - 1, int(h * horizon)))
    sky = Image.new("RGB", size, pal[2])
    sky.paste(_vertical_gradient((w, split), pal[0], pal[1]), (0, 0))
    sky.paste(_vertical_gradient((w, h - split), pal[1], pal[2]), (0, split))
    return sky


def _glow(
    img: PILImage.Image, center: tuple[float, float], radius: float, color: Color, strength: float
) -> None:
    from PIL import Image

    d = max(2, int(radius * 2))
    # radial_gradient holds the distance from the centre (128 at the edge midpoints):
    # fading to 0 by that distance leaves no visible square around the disc.
    mask = Image.radial_gradient("L").point(
        lambda v: int(min(255.0, (max(0, 128 - v) / 128) ** 2 * 255 * strength))
    )
    mask = mask.resize((d, d), Image.Resampling.BILINEAR)
    img.paste(Image.new("RGB", (d, d), color), (int(center[0] - d / 2), int(center[1] - d / 2)), mask)


def _ridge(rng: random.Random, w: int, h: int, base: float, amp: float) -> list[tuple[float, float]]:
    waves = [(rng.uniform(0.5, 4.0), rng.uniform(0, math.tau), rng.uniform(0.3, 1.0)) for _ in range(4)]
    total = sum(a for _, _, a in waves)
    points = [(0.0, float(h))]
    steps = 48
    for i in range(steps + 1):
        x = w * i / steps
        y = sum(a * math.sin(f * math.tau * i / steps + p) for f, p, a in waves) / total
        points.append((x, h * base - y * h * amp))
    points.append((float(w), float(h)))
    return points


def _mountains(img: PILImage.Image, rng: random.Random, pal: tuple[Color, ...], horizon: float) -> None:
    from PIL import ImageDraw

    w, h = img.size
    draw = ImageDraw.Draw(img)
    layers = 3
    for layer in range(layers):
        # Far ridges fade into the horizon colour: cheap atmospheric perspective.
        t = (layer + 1) / layers
        color = _mix(_mix(pal[2], pal[1], 0.4), pal[4], t)
        base = horizon + 0.06 + layer * 0.09
        draw.polygon(_ridge(rng, w, h, base, 0.12 - layer * 0.025), fill=color)


def _bubbles(img: PILImage.Image, rng: random.Random, pal: tuple[Color, ...], horizon: float) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    w, h = img.size
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for _ in range(rng.randint(5, 9)):
        r = rng.uniform(0.04, 0.16) * max(w, h)
        x, y = rng.uniform(0, w), rng.uniform(0, h * horizon)
        color = _shift(pal[rng.choice((1, 3, 4))], rng.uniform(-0.05, 0.05), 0.1)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(*color, rng.randint(70, 150)))
    layer = layer.filter(ImageFilter.GaussianBlur(max(w, h) / 90))
    img.paste(layer, (0, 0), layer)


def _waves(img: PILImage.Image, rng: random.Random, pal: tuple[Color, ...], horizon: float) -> None:
    from PIL import ImageDraw

    w, h = img.size
    draw = ImageDraw.Draw(img)
    bands = 4
    for i in range(bands):
        base = horizon + 0.02 + i * (0.9 - horizon) / bands
        color = _mix(pal[3], pal[4], (i + 1) / bands)
        draw.polygon(_ridge(rng, w, h, base, 0.04), fill=color)


def _rings(img: PILImage.Image, rng: random.Random, pal: tuple[Color, ...], horizon: float) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    w, h = img.size
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.6) * h
    width = max(1, round(max(w, h) / 120))
    for i in range(rng.randint(3, 6)):
        r = (0.08 + i * rng.uniform(0.05, 0.09)) * max(w, h)
        color = pal[3] if i % 2 == 0 else pal[4]
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(*color, 230), width=width)
    # A blurred copy under the sharp strokes reads as a neon glow.
    glow = layer.filter(ImageFilter.GaussianBlur(max(w, h) / 60))
    img.paste(glow, (0, 0), glow)
    img.paste(layer, (0, 0), layer)


def _grid(img: PILImage.Image, rng: random.Random, pal: tuple[Color, ...], horizon: float) -> None:
    from PIL import ImageDraw

    w, h = img.size
    draw = ImageDraw.Draw(img)
    step = max(4, round(max(w, h) / rng.choice((12, 16, 20))))
    line = _mix(pal[2], pal[4], 0.5)
    for x in range(0, w, step):
        draw.line((x, 0, x, h), fill=line, width=1)
    for y in range(0, h, step):
        draw.line((0, y, w, y), fill=line, width=1)


def _sun_rays(img: PILImage.Image, rng: random.Random, pal: tuple[Color, ...], horizon: float) -> None:
    from PIL import Image, ImageDraw, ImageFilter

    w, h = img.size
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    cx, cy = rng.uniform(0.2, 0.8) * w, h * horizon
    for _ in range(rng.randint(5, 8)):
        angle = rng.uniform(math.pi * 1.05, math.pi * 1.95)
        spread = rng.uniform(0.02, 0.06)
        far = 2 * max(w, h)
        pts = [(cx, cy)] + [
            (cx + far * math.cos(angle + s), cy + far * math.sin(angle + s)) for s in (-spread, spread)
        ]
        draw.polygon(pts, fill=(*pal[3], 40))
    layer = layer.filter(ImageFilter.GaussianBlur(max(w, h) / 100))
    img.paste(layer, (0, 0), layer)


_MOTIFS = {
    "mountains": _mountains,
    "bubbles": _bubbles,
    "waves": _waves,
    "rings": _rings,
    "grid": _grid,
    "sun_rays": _sun_rays,
}


def scene(
    prompt: str, model: str, seed: int | None, index: int, style_name: str, size: tuple[int, int]
) -> PILImage.Image:
    from PIL import Image, ImageChops, ImageFilter, ImageOps

    style = _STYLES.get(style_name, _STYLES["dusk"])
    # The prompt picks the palette so one prompt looks related across seeds and images;
    # seed and index only vary the composition.
    pal_rng = _rng_for("palette", prompt, model)
    rng = _rng_for("scene", prompt, model, seed, index)
    base = pal_rng.choice(style["palettes"])
    hue = pal_rng.uniform(-0.04, 0.04) + rng.uniform(-0.02, 0.02)
    pal = tuple(_shift(c, hue, 0.0) for c in base)

    w, h = size
    horizon = rng.uniform(0.52, 0.72)
    img = _sky(size, pal, horizon)
    sun = (rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, horizon * 0.85) * h)
    _glow(img, sun, rng.uniform(0.25, 0.45) * max(w, h), pal[3], 1.1)
    _glow(img, sun, rng.uniform(0.05, 0.09) * max(w, h), _shift(pal[3], 0, 0.15), 4.0)
    for motif in style["motifs"]:
        _MOTIFS[motif](img, rng, pal, horizon)

    if style.get("posterize"):
        img = ImageOps.posterize(img, style["posterize"])
    # Shapes are drawn without anti-aliasing; softening them before the upscale
    # avoids stair-stepped ridges.
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    # Darkened corners frame the scene and hide the flat edges of the gradients.
    vignette = Image.radial_gradient("L").resize(size, Image.Resampling.BILINEAR)
    vignette = vignette.point(lambda v: 255 - int(max(0, v - 150) * 0.9))
    return ImageChops.multiply(img, Image.merge("RGB", (vignette,) * 3))
