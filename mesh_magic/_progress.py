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

from ._engine import Collector
from ._generate import Plan
from ._images import sniff_mime
from ._results import ImageResult

# Calls that finish faster than this never show a progress box.
SHOW_AFTER = 1.0
_MIN_INTERVAL = 0.25
_ICONS = {"queued": "·", "running": "⏳", "done": "✓", "failed": "✗", "cancelled": "■"}
# Above this many requests the table gives way to a bar plus the rows that need attention.
_TABLE_LIMIT = 12


def _counts(collector: Collector) -> dict[str, int]:
    counts = {"done": 0, "failed": 0, "running": 0, "images": 0}
    for item in collector.items:
        if item.status in counts:
            counts[item.status] += 1
        counts["images"] += item.images
    return counts


def _row(item: Any) -> str:
    thumb = ""
    if item.partial:
        mime = sniff_mime(item.partial) or "image/png"
        b64 = base64.b64encode(item.partial).decode("ascii")
        thumb = (f'<img src="data:{mime};base64,{b64}" '
                 'style="height:64px;vertical-align:middle;border-radius:3px">')
    return (
        f"<tr><td>{_ICONS.get(item.status, '')}</td><td><code>{html.escape(item.model)}</code>"
        f"</td><td>{html.escape(item.prompt[:60])}</td><td>{item.images}/{item.n}</td>"
        f"<td style='opacity:.75'>{html.escape(item.message[:120])}</td><td>{thumb}</td></tr>"
    )


def progress_html(collector: Collector, total_images: int, *, compact: bool = False) -> str:
    counts = _counts(collector)
    total = len(collector.items)
    finished = counts["done"] + counts["failed"]
    head = (
        f"<b>Generating</b> {finished}/{total} requests · {counts['images']}/{total_images} images"
        f" · {counts['failed']} failed · {collector.elapsed:.1f} s"
    )
    bar = (
        f'<progress value="{finished}" max="{total}" style="width:320px;vertical-align:middle">'
        "</progress> "
    )
    if compact or total > _TABLE_LIMIT:
        shown = [i for i in collector.items if i.status in ("running", "failed") or i.partial]
        rows = [_row(item) for item in shown[:_TABLE_LIMIT]]
    else:
        rows = [_row(item) for item in collector.items]
    return (
        '<div class="mesh-magic-progress" style="font:12px system-ui,sans-serif">'
        f"{bar}{head}<table>{''.join(rows)}</table></div>"
    )


def progress_text(collector: Collector, total_images: int) -> str:
    counts = _counts(collector)
    total = len(collector.items)
    finished = counts["done"] + counts["failed"]
    filled = int(20 * finished / total) if total else 20
    return (
        f"[{'#' * filled}{'-' * (20 - filled)}] {finished}/{total} requests, "
        f"{counts['images']}/{total_images} images, {counts['failed']} failed, "
        f"{collector.elapsed:.1f} s"
    )


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    return get_ipython() is not None


class ProgressDisplay:
    """Shows progress after `show_after` seconds; `finish` swaps in the final grid."""

    def __init__(self, call: Plan, *, compact: bool = False, show_after: float = SHOW_AFTER) -> None:
        self.total = call.total_images
        self.compact = compact
        self.show_after = show_after
        self.handle: Any = None
        self.in_kernel = _in_kernel()
        self._last = 0.0
        self._last_html = ""
        self._wrote_line = False

    def tick(self, collector: Collector) -> None:
        now = time.monotonic()
        if collector.elapsed < self.show_after or now - self._last < _MIN_INTERVAL:
            return
        self._last = now
        if not self.in_kernel:
            sys.stderr.write("\r" + progress_text(collector, self.total))
            sys.stderr.flush()
            self._wrote_line = True
            return
        bundle = {
            "text/html": progress_html(collector, self.total, compact=self.compact),
            "text/plain": progress_text(collector, self.total),
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

    def summary(self, result: ImageResult) -> None:
        """Replace the bar with a one-line outcome (bulk runs return results, not a grid)."""
        rows = len(result.rows)
        failed_rows = len({err.row for err in result.errors})
        state = " (interrupted)" if result.interrupted else ""
        text = (
            f"Done{state}: {rows - failed_rows}/{rows} requests succeeded, {len(result)} images, "
            f"{failed_rows} failed."
        )
        if self._wrote_line:
            sys.stderr.write("\r" + text + "\n")
            self._wrote_line = False
        elif self.handle is not None:
            self._show({"text/plain": text, "text/html": f"<div>{html.escape(text)}</div>"})
