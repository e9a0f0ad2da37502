"""Live progress while a call runs: a table per request, or a bar for bulk runs.

Driven from the caller's thread by the engine's `tick`. In a kernel it uses one
display handle (display id), so progress never lands in another cell's output
and the final grid can replace it in place; elsewhere it writes one line to
stderr.
"""

from __future__ import annotations

import base64
import html
import sys
import time
from typing import Any

from ..core.engine.progress import CallProgress, ItemProgress
from ..core.generate import Plan
from ..core.images import thumbnail
from ..core.results import ImageResult
from .html import FONT

# Calls that finish faster than this never show a progress box.
SHOW_AFTER = 1.0
_MIN_INTERVAL = 0.25
_ICONS = {"queued": "·", "running": "⏳", "done": "✓", "failed": "✗", "cancelled": "■"}
# Above this many requests the table gives way to a bar plus the rows that need attention.
_TABLE_LIMIT = 12
# Partial images are shown this big while a stream runs (the final grid replaces them).
_PARTIAL_PX = 128
# id(partial bytes) -> (those bytes, kept alive so the id stays theirs; thumbnail; mime)
_partial_thumbs: dict[int, tuple[bytes, bytes, str]] = {}


def _partial_thumb(data: bytes) -> tuple[bytes, str] | None:
    """A small copy of a partial image, computed once per partial (keyed by identity)."""
    cached = _partial_thumbs.get(id(data))
    if cached is None or cached[0] is not data:
        try:
            small, mime, _, _ = thumbnail(data, _PARTIAL_PX)
        except Exception:  # noqa: BLE001 - a preview that won't decode is just not shown
            return None
        if len(_partial_thumbs) > 64:
            _partial_thumbs.clear()  # only the latest partials matter
        cached = _partial_thumbs[id(data)] = (data, small, mime)
    return cached[1], cached[2]


def _row(item: ItemProgress) -> str:
    thumb = ""
    found = _partial_thumb(item.partial) if item.partial else None
    if found:
        data, mime = found
        b64 = base64.b64encode(data).decode("ascii")
        thumb = (
            f'<img src="data:{mime};base64,{b64}" data-partial-index="{item.partial_index}" '
            'style="height:64px;vertical-align:middle;border-radius:3px">'
        )
    return (
        f"<tr><td>{_ICONS.get(item.status, '')}</td><td><code>{html.escape(item.model)}</code>"
        f"</td><td>{html.escape(item.prompt[:60])}</td><td>{item.images}/{item.n}</td>"
        f"<td style='opacity:.75'>{html.escape(item.describe()[:120])}</td><td>{thumb}</td></tr>"
    )


def _estimated(estimate: str) -> str:
    return f" · estimated {estimate}" if estimate else ""


def progress_html(
    progress: CallProgress, total_images: int, *, compact: bool = False, estimate: str = ""
) -> str:
    counts = progress.counts()
    total = len(progress.items)
    finished = counts["done"] + counts["failed"]
    head = (
        f"<b>Generating</b> {finished}/{total} requests · {counts['images']}/{total_images} images"
        f" · {counts['failed']} failed · {progress.elapsed:.1f} s"
        f"{html.escape(progress.rate_note() + retry_note(progress) + _estimated(estimate))}"
    )
    bar = f'<progress value="{finished}" max="{total}" style="width:320px;vertical-align:middle"></progress> '
    if compact or total > _TABLE_LIMIT:
        rows = [_row(item) for item in progress.attention_rows(_TABLE_LIMIT)]
    else:
        rows = [_row(item) for item in progress.items]
    return (
        f'<div class="mesh-magic-progress" style="font:12px/1.4 {FONT}">'
        f"{bar}{head}<table>{''.join(rows)}</table></div>"
    )


def progress_text(progress: CallProgress, total_images: int, estimate: str = "") -> str:
    counts = progress.counts()
    total = len(progress.items)
    finished = counts["done"] + counts["failed"]
    filled = int(20 * finished / total) if total else 20
    return (
        f"[{'#' * filled}{'-' * (20 - filled)}] {finished}/{total} requests, "
        f"{counts['images']}/{total_images} images, {counts['failed']} failed, "
        f"{progress.elapsed:.1f} s{progress.rate_note()}{retry_note(progress)}{_estimated(estimate)}"
    )


def retry_note(progress: CallProgress) -> str:
    """ " · next retry in N s" while a request waits to retry (the soonest one)."""
    waiting = [item.retry_at for item in progress.waiting_rows() if item.retry_at is not None]
    if not waiting:
        return ""
    left = max(0.0, min(waiting) - time.monotonic())
    return f" · next retry in {left:.0f} s"


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    # Terminal IPython prints every display update anew: a stderr line suits it better.
    return shell is not None and not any(
        cls.__name__ == "TerminalInteractiveShell" for cls in type(shell).__mro__
    )


class ProgressDisplay:
    """Shows progress after `show_after` seconds; `finish` swaps in the final grid."""

    def __init__(self, call: Plan, *, compact: bool = False, show_after: float = SHOW_AFTER) -> None:
        self.total = call.total_images
        self.estimate = call.estimate.text() if call.estimate is not None else ""
        self.compact = compact
        self.show_after = show_after
        self.handle: Any = None
        self.in_kernel = _in_kernel()
        self._last = 0.0
        self._last_html = ""
        self._wrote_line = False
        self._partials: list[int] = []

    def tick(self, progress: CallProgress) -> None:
        now = time.monotonic()
        # A new partial image shows at once (streams want to be watched), the rest is paced.
        partials = progress.partial_ids()
        fresh_partial = partials != self._partials
        if not fresh_partial and (progress.elapsed < self.show_after or now - self._last < _MIN_INTERVAL):
            return
        self._partials = partials
        self._last = now
        if not self.in_kernel:
            sys.stderr.write("\r" + progress_text(progress, self.total, self.estimate))
            sys.stderr.flush()
            self._wrote_line = True
            return
        bundle = {
            "text/html": progress_html(progress, self.total, compact=self.compact, estimate=self.estimate),
            "text/plain": progress_text(progress, self.total, self.estimate),
        }
        if bundle["text/html"] == self._last_html:
            return
        self._last_html = bundle["text/html"]
        self._show(bundle)

    def _show(self, bundle: dict[str, str], metadata: dict[str, Any] | None = None) -> None:
        from IPython.display import display

        if self.handle is None:
            self.handle = display(bundle, raw=True, metadata=metadata or {}, display_id=True)
        else:
            self.handle.update(bundle, raw=True, metadata=metadata or {})

    def finish(self, result: ImageResult | None) -> bool:
        """Put the final grid where the progress was; False if progress never showed."""
        if self._wrote_line:
            sys.stderr.write("\n")
            self._wrote_line = False
        if self.handle is None:
            return False
        if result is None:
            self.handle.update({"text/plain": ""}, raw=True)
            return True
        data, metadata = result._repr_mimebundle_()
        self.handle.update(data, metadata=metadata, raw=True)
        return True

    def summary(self, result: ImageResult, progress: CallProgress | None = None) -> None:
        """Replace the bar with a one-line outcome (bulk runs return results, not a grid)."""
        text = summary_text(result, progress)
        if self._wrote_line:
            sys.stderr.write("\r" + text + "\n")
            self._wrote_line = False
        elif self.handle is not None:
            self._show({"text/plain": text, "text/html": f"<div>{html.escape(text)}</div>"})


# Above this many requests a bulk run shows a tqdm bar instead of the live table.
BAR_THRESHOLD = 24


class BarProgress:
    """A long bulk run's progress as a `tqdm.auto` bar (a notebook bar in Jupyter, text elsewhere).

    Each tick reads the run's counters (kept as rows change), never its rows, so a
    10,000-prompt run costs the same per tick as a 30-prompt one.
    """

    def __init__(self, call: Plan) -> None:
        from tqdm.auto import tqdm

        self.estimate = call.estimate.text() if call.estimate is not None else ""
        self.bar = tqdm(total=len(call.requests), unit="req", desc="mesh_magic", dynamic_ncols=True)
        self._shown = 0

    def tick(self, progress: CallProgress) -> None:
        counts = progress.counts()
        finished = counts["done"] + counts["failed"]
        if finished != self._shown:
            self.bar.update(finished - self._shown)
            self._shown = finished
            note = f"{counts['images']} images, {counts['failed']} failed{progress.rate_note()}"
            self.bar.set_postfix_str(note + _estimated(self.estimate), refresh=False)

    def summary(self, result: ImageResult, progress: CallProgress | None = None) -> None:
        if progress is not None:
            self.tick(progress)
        self.bar.close()
        sys.stderr.write(summary_text(result, progress) + "\n")


def summary_text(result: ImageResult, progress: CallProgress | None = None) -> str:
    """A bulk run's outcome in one line: requests, images, failures, rate limiting, notes."""
    rows = len(result.rows)
    failed_rows = len({err.row for err in result.errors})
    state = " (interrupted)" if result.interrupted else ""
    text = (
        f"Done{state}: {rows - failed_rows}/{rows} requests succeeded, {len(result)} images, "
        f"{failed_rows} failed in {progress.elapsed if progress else 0:.1f} s."
    )
    gate = progress.limit if progress else None
    if gate is not None and gate.throttles:
        text += (
            f" Rate limited {gate.throttles}x: concurrency went down to {gate.lowest} "
            f"of {gate.ceiling}, back to {gate.limit} at the end."
        )
    return text + "".join(f" {note}" for note in result.notes)
