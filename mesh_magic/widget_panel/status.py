"""The panel's status line and error area: what a finished run says, and how errors read."""

from __future__ import annotations

import html

from ..core.errors import MeshImageError
from ..core.generate import Plan
from ..core.results import ImageResult
from ..render.html import ERROR_COLOUR


def error_html(where: str | None, error: BaseException) -> str:
    hint = error.hint if isinstance(error, MeshImageError) else ""
    text = str(error) if isinstance(error, MeshImageError) else f"{type(error).__name__}: {error}"
    prefix = f"<b>{html.escape(where)}</b>: " if where else ""
    return (
        # Its own line height: the widget's (one input row high) spreads a wrapped message apart.
        f'<div class="mesh-panel-error" style="color:{ERROR_COLOUR};line-height:1.4;margin:2px 0">'
        f"⚠ {prefix}{html.escape(text)}"
        + (f'<br><span style="opacity:.85">{html.escape(hint)}</span>' if hint else "")
        + "</div>"
    )


def done_text(result: ImageResult, call: Plan, elapsed: float) -> str:
    if not len(result) and result.errors:
        return f"Failed after {elapsed:.1f} s (see below)."
    text = f"Done: {len(result)}/{call.total_images} images in {elapsed:.1f} s"
    if result.errors:
        text += f" · {len(result.errors)} failed"
    if any(image.cached for image in result):
        text += " · from cache"
    # Notes explain surprises, e.g. a model that needed one request per image.
    return " ".join([text + ".", *result.notes])
