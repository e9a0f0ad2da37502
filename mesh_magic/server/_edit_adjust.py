"""Turn an edit prompt into a visible change of a picture: words it knows, else a tint it seeds.

"make the sky darker" darkens, "black and white" desaturates, "add some red" tints red;
a prompt with none of the known words still changes the picture, by a tint whose hue
comes from the prompt. Each rule is a cheap Pillow filter (a 1024x1024 picture takes
milliseconds), deterministic for the same prompt and variant index.
"""

from __future__ import annotations

import colorsys
import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image as PILImage

Adjust = Callable[["PILImage.Image"], "PILImage.Image"]
Color = tuple[int, int, int]

_WORD = re.compile(r"[a-z]+")


def _enhance(kind: str, factor: float) -> Adjust:
    def apply(img: PILImage.Image) -> PILImage.Image:
        from PIL import ImageEnhance

        enhancer = {
            "brightness": ImageEnhance.Brightness,
            "color": ImageEnhance.Color,
            "contrast": ImageEnhance.Contrast,
        }[kind]
        return enhancer(img).enhance(factor)

    return apply


def tint(img: PILImage.Image, color: Color, strength: float) -> PILImage.Image:
    """The picture's light and shade recoloured toward `color`, blended in by `strength`."""
    from PIL import Image, ImageOps

    dark = tuple(round(c * 0.12) for c in color)
    light = tuple(round(c + (255 - c) * 0.55) for c in color)
    toned = ImageOps.colorize(img.convert("L"), black=dark, white=light, mid=color)
    return Image.blend(img, toned, strength)


def _tinted(color: Color, strength: float) -> Adjust:
    return lambda img: tint(img, color, strength)


def _grey(img: PILImage.Image) -> PILImage.Image:
    return img.convert("L").convert("RGB")


def _blur(img: PILImage.Image) -> PILImage.Image:
    from PIL import ImageFilter

    return img.filter(ImageFilter.GaussianBlur(max(1.5, max(img.size) / 256)))


def _sharpen(img: PILImage.Image) -> PILImage.Image:
    from PIL import ImageFilter

    return img.filter(ImageFilter.UnsharpMask(radius=3, percent=160, threshold=2))


def _invert(img: PILImage.Image) -> PILImage.Image:
    from PIL import ImageOps

    return ImageOps.invert(img)


_SEPIA: Color = (162, 118, 72)
_RULES: tuple[tuple[frozenset[str], Adjust], ...] = (
    (
        frozenset({"dark", "darker", "darken", "night", "moody", "dim", "dimmer", "gloomy"}),
        _enhance("brightness", 0.6),
    ),
    (
        frozenset({"bright", "brighter", "brighten", "lighter", "lighten", "sunny"}),
        _enhance("brightness", 1.35),
    ),
    (frozenset({"grayscale", "greyscale", "monochrome", "bw", "noir", "desaturate"}), _grey),
    (frozenset({"sepia", "vintage", "antique", "old"}), _tinted(_SEPIA, 0.7)),
    (frozenset({"blur", "blurry", "blurred", "soft", "softer", "dreamy", "hazy", "foggy"}), _blur),
    (frozenset({"sharp", "sharper", "sharpen", "crisp", "detailed"}), _sharpen),
    (frozenset({"warm", "warmer", "golden", "sunset"}), _tinted((255, 140, 40), 0.3)),
    (frozenset({"cool", "cooler", "cold", "icy", "winter", "frosty"}), _tinted((60, 130, 255), 0.3)),
    (frozenset({"vivid", "saturated", "colorful", "colourful", "vibrant", "punchy"}), _enhance("color", 1.7)),
    (frozenset({"muted", "desaturated", "faded", "washed", "pale"}), _enhance("color", 0.45)),
    (frozenset({"contrast", "dramatic"}), _enhance("contrast", 1.5)),
    (frozenset({"invert", "inverted", "negative"}), _invert),
)


def _colour_words(words: list[str], known: frozenset[str]) -> list[Color]:
    from PIL import ImageColor

    colours = []
    for word in words:
        if word in known or word not in ImageColor.colormap:
            continue
        value = ImageColor.getrgb(word)
        colours.append((value[0], value[1], value[2]))
    return colours


def _seeded_colour(rng: random.Random) -> Color:
    r, g, b = colorsys.hls_to_rgb(rng.random(), 0.5, 0.75)
    return (round(r * 255), round(g * 255), round(b * 255))


def adjust_for_prompt(img: PILImage.Image, prompt: str, rng: random.Random, index: int) -> PILImage.Image:
    """`img` (RGB) changed the way `prompt` asks, as far as a few filters can."""
    text = prompt.lower()
    words = _WORD.findall(text)
    found = set(words)
    if "black and white" in text:
        found.add("bw")
    known = frozenset().union(*(keys for keys, _ in _RULES))
    matched = False
    for keys, rule in _RULES:
        if found & keys:
            img = rule(img)
            matched = True
    for colour in _colour_words(words, known)[:3]:
        img = tint(img, colour, 0.35)
        matched = True
    if not matched:
        img = tint(img, _seeded_colour(random.Random(prompt)), 0.4)
    if index:  # later variants: the same change with a nudge of their own
        img = tint(img, _seeded_colour(rng), 0.12)
    return img


def mean_of(images: list[PILImage.Image], size: tuple[int, int]) -> PILImage.Image:
    """An even blend of pictures, each cropped to fill `size`."""
    from PIL import Image, ImageOps

    mixed = ImageOps.fit(images[0].convert("RGB"), size, Image.Resampling.LANCZOS)
    for i, img in enumerate(images[1:], start=1):
        fitted = ImageOps.fit(img.convert("RGB"), size, Image.Resampling.LANCZOS)
        mixed = Image.blend(mixed, fitted, 1 / (i + 1))
    return mixed
