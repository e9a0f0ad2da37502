"""Read an edit's sizing options (upscale_factor, expand_factor, aspect_ratio, size) into pixel sizes."""

from __future__ import annotations

import math
import re
from typing import Any

from ._edit_inputs import MAX_SIDE, MIN_SIDE, invalid
from ._validation import parse_size

Size = tuple[int, int]

UPSCALE_FACTORS = (2, 3, 4)
DEFAULT_UPSCALE = 2
DEFAULT_EXPAND = 1.5
MAX_EXPAND = 4.0
_FACTOR = re.compile(r"^\s*[xX×]?\s*(\d+(?:\.\d+)?)\s*[xX×]?\s*$")
_RATIO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/xX×]\s*(\d+(?:\.\d+)?)\s*$")
_RESOLUTIONS = {"1k": 1024, "2k": 2048, "4k": 4096}


def _number(value: Any, loc: list[str | int], what: str) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _FACTOR.match(str(value))
    if match is None:
        raise invalid(loc, f"{what} must be a number like 2 or 'x2', not {value!r}")
    return float(match.group(1))


def aspect_ratio(value: str) -> float:
    """'16:9' (also '16/9', '1.5') as width / height."""
    match = _RATIO.match(value) or _RATIO.match(f"{value.strip()}:1")
    width, height = (float(match.group(1)), float(match.group(2))) if match else (0.0, 0.0)
    if width <= 0 or height <= 0 or not 0.1 <= width / height <= 10:
        reason = f"aspect_ratio must be like '16:9' with a ratio from 1:10 to 10:1, not {value!r}"
        raise invalid(["body", "aspect_ratio"], reason)
    return width / height


def requested_size(body: dict[str, Any]) -> Size | None:
    """The body's explicit `size`, or None for 'auto' / unset (keep the source's size)."""
    size = body.get("size")
    if size is None or size.strip().lower() == "auto":
        return None
    return parse_size(size)


def _bounded(size: Size, what: str, hint: str) -> Size:
    width, height = size
    if max(width, height) > MAX_SIDE:
        reason = f"{what} would be {width}x{height}, over {MAX_SIDE} px on a side: {hint}"
        raise invalid(["body", "size"], reason)
    return max(MIN_SIDE, width), max(MIN_SIDE, height)


def upscaled(body: dict[str, Any], source: Size) -> tuple[Size, str]:
    """The upscaled size (bounded to MAX_SIDE on its longest side) and how it was reached."""
    width, height = source
    longest = max(width, height)
    resolution = body.get("resolution")
    if (
        body.get("upscale_factor") is None
        and isinstance(resolution, str)
        and resolution.lower() in _RESOLUTIONS
    ):
        scale = _RESOLUTIONS[resolution.lower()] / longest
        how = resolution.upper()
    else:
        loc: list[str | int] = ["body", "upscale_factor"]
        raw = body.get("upscale_factor")
        factor = DEFAULT_UPSCALE if raw is None else _number(raw, loc, "upscale_factor")
        if factor not in UPSCALE_FACTORS:
            allowed = ", ".join(str(f) for f in UPSCALE_FACTORS)
            raise invalid(loc, f"upscale_factor must be one of {allowed} (or 'x2'), not {raw!r}")
        scale, how = float(factor), f"x{int(factor)}"
    scale = min(scale, MAX_SIDE / longest)
    if scale <= 1:
        reason = f"the image is {width}x{height}; upscaling it would not make it bigger (max {MAX_SIDE} px)"
        raise invalid(["body", "image"], reason)
    return (round(width * scale), round(height * scale)), how


def _expand(body: dict[str, Any]) -> float | None:
    raw = body.get("expand_factor")
    if raw is None:
        return None
    factor = _number(raw, ["body", "expand_factor"], "expand_factor")
    if not 1 < factor <= MAX_EXPAND:
        raise invalid(["body", "expand_factor"], f"expand_factor must be above 1 and at most {MAX_EXPAND:g}")
    return factor


def outpainted(body: dict[str, Any], source: Size) -> Size:
    """A canvas holding the source: `size`, else `aspect_ratio` and/or `expand_factor` (default 1.5)."""
    width, height = source
    explicit = requested_size(body)
    if explicit is not None:
        if explicit[0] < width or explicit[1] < height or explicit == source:
            reason = (
                f"outpaint size {explicit[0]}x{explicit[1]} must be larger than the image ({width}x{height})"
            )
            raise invalid(["body", "size"], reason)
        return explicit
    canvas = (float(width), float(height))
    ratio_text = body.get("aspect_ratio")
    if ratio_text:
        ratio = aspect_ratio(ratio_text)
        canvas = (max(width, height * ratio), max(height, width / ratio))
    factor = _expand(body)
    if factor is None and round(canvas[0]) == width and round(canvas[1]) == height:
        factor = DEFAULT_EXPAND
    factor = factor or 1.0
    size = (math.ceil(canvas[0] * factor), math.ceil(canvas[1] * factor))
    return _bounded(size, "the outpainted canvas", "use a smaller expand_factor or a smaller image")


def reframed(body: dict[str, Any], source: Size) -> Size:
    """The reframed size: `size`, else about the source's area at the requested aspect_ratio."""
    explicit = requested_size(body)
    if explicit is not None:
        return explicit
    ratio_text = body.get("aspect_ratio")
    if not ratio_text:
        raise invalid(
            ["body", "aspect_ratio"], "reframe needs aspect_ratio (like '16:9') or size (like 1024x576)"
        )
    ratio = aspect_ratio(ratio_text)
    area = source[0] * source[1]
    width = math.sqrt(area * ratio)
    size = (round(width), round(width / ratio))
    if max(size) > MAX_SIDE:  # keep the ratio, shrink to fit
        shrink = MAX_SIDE / max(size)
        size = (round(size[0] * shrink), round(size[1] * shrink))
    return _bounded(size, "the reframed image", "use a smaller image")


def output_size(operation: str, body: dict[str, Any], source: Size) -> tuple[Size, str]:
    """The result's size for an operation, and a short note on how it was chosen (for captions)."""
    if operation == "upscale":
        return upscaled(body, source)
    if operation == "outpaint":
        return outpainted(body, source), ""
    if operation == "reframe":
        return reframed(body, source), ""
    if operation in ("edit", "mix"):
        return requested_size(body) or source, ""
    return source, ""  # inpaint, remove_background: the image's own pixels, in place
