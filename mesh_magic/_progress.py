"""Live progress in the cell while a magic call runs, replaced by the final grid in place.

Driven from the kernel's main thread by the engine's `tick`, using one display
handle (display id), so progress never lands in another cell's output.
"""

from __future__ import annotations

import base64
import html
import time
from typing import Any

from ._engine import Collector
from ._generate import Plan
from ._results import ImageResult

# Calls that finish faster than this never show a progress box.
SHOW_AFTER = 1.0
_MIN_INTERVAL = 0.25
_ICONS = {"queued": "·", "running": "⏳", "done": "✓", "failed": "✗", "cancelled": "■"}


def progress_html(collector: Collector, total_images: int) -> str:
    done = sum(1 for item in collector.items if item.status in ("done", "failed"))
    images = sum(item.images for item in collector.items)
    head = (
        f"<b>Generating</b> {done}/{len(collector.items)} requests · "
        f"{images}/{total_images} images · {collector.elapsed:.1f} s"
    )
    rows = []
    for item in collector.items:
        thumb = ""
        if item.partial:
            b64 = base64.b64encode(item.partial).decode("ascii")
            thumb = (f'<img src="data:image/png;base64,{b64}" '
                     'style="height:64px;vertical-align:middle;border-radius:3px">')
        rows.append(
            f"<tr><td>{_ICONS.get(item.status, '')}</td><td><code>{html.escape(item.model)}</code>"
            f"</td><td>{html.escape(item.prompt[:60])}</td><td>{item.images}/{item.n}</td>"
            f"<td style='opacity:.75'>{html.escape(item.message[:120])}</td><td>{thumb}</td></tr>"
        )
    return (
        '<div class="mesh-magic-progress" style="font:12px system-ui,sans-serif">'
        f"{head}<table>{''.join(rows)}</table></div>"
    )


def progress_text(collector: Collector, total_images: int) -> str:
    images = sum(item.images for item in collector.items)
    return f"Generating: {images}/{total_images} images, {collector.elapsed:.1f} s"


class ProgressDisplay:
    """Shows progress after SHOW_AFTER seconds; `finish` swaps in the final grid."""

    def __init__(self, call: Plan) -> None:
        self.total = call.total_images
        self.handle: Any = None
        self._last = 0.0
        self._last_html = ""

    def tick(self, collector: Collector) -> None:
        now = time.monotonic()
        if collector.elapsed < SHOW_AFTER or now - self._last < _MIN_INTERVAL:
            return
        self._last = now
        bundle = {
            "text/html": progress_html(collector, self.total),
            "text/plain": progress_text(collector, self.total),
        }
        if bundle["text/html"] == self._last_html:
            return
        self._last_html = bundle["text/html"]
        from IPython.display import display

        if self.handle is None:
            self.handle = display(bundle, raw=True, display_id=True)
        else:
            self.handle.update(bundle, raw=True)

    def finish(self, result: ImageResult | None) -> bool:
        """Put the final grid where the progress was; False if progress never showed."""
        if self.handle is None:
            return False
        if result is None:
            self.handle.update({"text/plain": ""}, raw=True)
            return True
        data, metadata = result._repr_mimebundle_()
        self.handle.update(data, metadata=metadata, raw=True)
        return True
