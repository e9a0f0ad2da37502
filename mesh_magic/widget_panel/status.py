"""The panel's status line and error area: what a run in flight and a finished one say, how errors read."""

from __future__ import annotations

import concurrent.futures
import html

from ..core.engine.progress import CallProgress
from ..core.errors import MeshImageError
from ..core.generate import Plan
from ..core.results import ImageResult
from ..render.html import ERROR_COLOUR
from ..render.progress import retry_note

Problems = list[tuple[str | None, BaseException]]
_DOING = {
    "generate": "Generating",
    "edit": "Editing",
    "inpaint": "Inpainting",
    "outpaint": "Outpainting",
    "upscale": "Upscaling",
    "remove_background": "Removing the background",
    "reframe": "Reframing",
    "mix": "Mixing",
}


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


def progress_text(call: Plan, progress: CallProgress) -> str:
    """The status of a run in flight: "Upscaling… 0/1 images · 0/1 requests · 2.5 s"."""
    counts = progress.counts()
    doing = _DOING.get(call.requests[0].operation if call.requests else "generate", "Working")
    return (
        f"{doing}… {counts['images']}/{call.total_images} images · "
        f"{counts['done'] + counts['failed']}/{len(progress.items)} requests · "
        f"{progress.elapsed:.1f} s{retry_note(progress)}"
    )


def outcome(
    call: Plan, progress: CallProgress, future: concurrent.futures.Future[ImageResult]
) -> tuple[ImageResult, Problems, str, str]:
    """A finished run: its result, the problems to show, and the status text and kind."""
    elapsed = progress.elapsed
    if future.cancelled():
        result = progress.result(interrupted=True)
        text = f"Cancelled after {elapsed:.1f} s: kept {len(result)} of {call.total_images} images."
        return result, [], text, "warn"
    error = future.exception()
    if error is not None:
        return progress.result(interrupted=True), [(None, error)], f"Failed after {elapsed:.1f} s.", "error"
    result = future.result()
    kind = "error" if not len(result) and result.errors else "ok"
    return result, [], done_text(result, call, elapsed), kind
