"""Per-call progress: what has arrived, failed or is running, for progress displays and interrupts.

The runner writes into a `CallProgress` as requests move; renderers (the
progress box, the panel's status line) read `items`, `counts()`, `elapsed`
and `rate_note()`; an interrupt turns it into the `ImageResult` of what arrived.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MeshImageError
from ..images import inspect_image
from ..request import ImageRequest
from ..results import GeneratedImage, ImageResult, ItemError

if TYPE_CHECKING:
    from ..http.client import Generation
    from .limit import AdaptiveLimit

STATUSES = ("queued", "running", "done", "failed", "cancelled")


@dataclass
class ItemProgress:
    """Live state of one grid row, for progress displays."""

    prompt: str
    model: str
    n: int
    status: str = "queued"  # one of STATUSES
    images: int = 0
    message: str = ""
    partial: bytes | None = None  # the latest streamed partial image
    partial_index: int = -1  # its partial_image_index
    retry_at: float | None = None  # time.monotonic() of the next retry, while waiting for it

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    def describe(self, now: float | None = None) -> str:
        """The row's message, with a countdown while it waits to retry."""
        if self.retry_at is None:
            return self.message
        left = max(0.0, self.retry_at - (time.monotonic() if now is None else now))
        return f"{self.message}: retrying in {left:.0f} s"


def add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    """Sum the numeric usage fields of one answer into `total`."""
    for key, value in usage.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


class CallProgress:
    """Gathers one call's results as they arrive, so an interrupt can still show them."""

    def __init__(
        self,
        requests: Sequence[ImageRequest],
        *,
        display_max_px: int = 512,
        on_change: Callable[[CallProgress], None] | None = None,
    ) -> None:
        self.requests = list(requests)
        self.display_max_px = display_max_px
        self.on_change = on_change
        self.items = [ItemProgress(r.prompt, r.model, r.n) for r in self.requests]
        self.started = time.monotonic()
        # The run's concurrency gate (set by the runner): progress shows rate-limit backoff.
        self.limit: AdaptiveLimit | None = None
        self._images: list[GeneratedImage] = []
        self._errors: list[ItemError] = []
        self._usage: dict[str, Any] = {}
        self._notes: list[str] = []
        self._lock = threading.Lock()
        # Kept as rows change, so a renderer's read costs nothing per row (runs of 10,000 rows).
        self._counts = dict.fromkeys(STATUSES, 0)
        self._counts["queued"] = len(self.items)
        self._images_arrived = 0
        self._waiting: set[int] = set()  # rows counting down to a retry
        self._streaming: set[int] = set()  # rows with a partial image
        self._attention: set[int] = set()  # rows running, failed or streaming

    # -- written by the runner -----------------------------------------------

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def add(self, generation: Generation, request: ImageRequest) -> None:
        with self._lock:
            self._images.extend(generation.images)
            self._errors += [
                ItemError(request.prompt, request.model, err, row=request.row) for err in generation.errors
            ]
            add_usage(self._usage, generation.usage)
            self.items[request.row].images += len(generation.images)
            self._images_arrived += len(generation.images)
        self._changed()

    def fail(self, request: ImageRequest, error: MeshImageError) -> None:
        with self._lock:
            self._errors.append(ItemError(request.prompt, request.model, error, row=request.row))
            self._move(request.row, "failed")
            self.items[request.row].message = str(error)
        self._changed()

    def _move(self, row: int, status: str) -> None:
        item = self.items[row]
        self._counts[item.status] -= 1
        self._counts[status] += 1
        item.status, item.retry_at = status, None
        self._waiting.discard(row)
        if status in ("running", "failed") or row in self._streaming:
            self._attention.add(row)
        else:
            self._attention.discard(row)

    def set_status(self, row: int, status: str, message: str = "") -> None:
        with self._lock:
            self._move(row, status)
        if message:
            self.items[row].message = message
        self._changed()

    def waiting(self, row: int, seconds: float, reason: str) -> None:
        """Row `row` sleeps `seconds` before a retry: progress counts down."""
        item = self.items[row]
        item.message, item.retry_at = reason, time.monotonic() + seconds
        with self._lock:
            self._waiting.add(row)
        self._changed()

    def waiting_rows(self) -> list[ItemProgress]:
        with self._lock:
            rows = sorted(self._waiting)
        return [self.items[row] for row in rows if self.items[row].retry_at is not None]

    def attention_rows(self, limit: int) -> list[ItemProgress]:
        """Up to `limit` rows worth showing in a long run: running, failed or streaming ones."""
        with self._lock:
            rows = heapq.nsmallest(limit, self._attention)
        return [self.items[row] for row in rows]

    def partial_ids(self) -> list[int]:
        """Identities of the rows' latest partial images (a renderer's cue to redraw at once)."""
        with self._lock:
            rows = sorted(self._streaming)
        return [id(self.items[row].partial) for row in rows]

    def show_partial(self, row: int, data: bytes, index: int) -> None:
        item = self.items[row]
        with self._lock:
            self._streaming.add(row)
            self._attention.add(row)
        item.partial, item.partial_index = data, index
        item.message = f"partial image {index + 1}"
        self._changed()

    def show_message(self, row: int, text: str) -> None:
        self.items[row].message = text
        self._changed()

    def note(self, text: str) -> None:
        with self._lock:
            if text not in self._notes:
                self._notes.append(text)

    # -- read by renderers ---------------------------------------------------

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def notes(self) -> list[str]:
        return list(self._notes)

    def counts(self) -> dict[str, int]:
        """Rows done, failed and running, and images arrived."""
        with self._lock:
            return {
                "done": self._counts["done"],
                "failed": self._counts["failed"],
                "running": self._counts["running"],
                "images": self._images_arrived,
            }

    def rate_note(self) -> str:
        return self.limit.describe() if self.limit is not None else ""

    def result(self, *, interrupted: bool = False) -> ImageResult:
        with self._lock:
            images = list(self._images)
            if interrupted:
                images += self._unfinished_partials()
            return ImageResult(
                images,
                list(self._errors),
                rows=[(r.prompt, r.model) for r in self.requests],
                usage=dict(self._usage),
                display_max_px=self.display_max_px,
                interrupted=interrupted,
                notes=self._notes,
            )

    def _unfinished_partials(self) -> list[GeneratedImage]:
        """The last partial image of each stream cut off by an interrupt, marked partial."""
        kept: list[GeneratedImage] = []
        for row in sorted(self._streaming):
            request, item = self.requests[row], self.items[row]
            if item.partial is None or item.finished:
                continue
            image = partial_image(request, item.partial)
            if image is not None:
                kept.append(image)
        return kept


def partial_image(
    request: ImageRequest, data: bytes, *, request_id: str | None = None
) -> GeneratedImage | None:
    """A stream's last partial image as a result image marked partial (None if unreadable)."""
    try:
        info = inspect_image(data, what="partial image")
    except MeshImageError:
        return None
    return GeneratedImage(
        data=data,
        mime_type=info.mime_type,
        width=info.width,
        height=info.height,
        prompt=request.prompt,
        model=request.model,
        request_id=request_id,
        params=request.describe(),
        row=request.row,
        partial=True,
        source="stream",
    )
