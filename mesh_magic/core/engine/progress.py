"""Per-call progress: what has arrived, failed or is running, for progress displays and interrupts.

The runner writes into a `CallProgress` as requests move; renderers (the
progress box, the panel's status line) read `items`, `counts()`, `elapsed`
and `rate_note()`; an interrupt turns it into the `ImageResult` of what arrived.
"""

from __future__ import annotations

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
        self._changed()

    def fail(self, request: ImageRequest, error: MeshImageError) -> None:
        with self._lock:
            self._errors.append(ItemError(request.prompt, request.model, error, row=request.row))
            self.items[request.row].status = "failed"
            self.items[request.row].message = str(error)
        self._changed()

    def set_status(self, row: int, status: str, message: str = "") -> None:
        item = self.items[row]
        item.status, item.retry_at = status, None
        if message:
            item.message = message
        self._changed()

    def waiting(self, row: int, seconds: float, reason: str) -> None:
        """Row `row` sleeps `seconds` before a retry: progress counts down."""
        item = self.items[row]
        item.message, item.retry_at = reason, time.monotonic() + seconds
        self._changed()

    def waiting_rows(self) -> list[ItemProgress]:
        return [item for item in self.items if item.retry_at is not None]

    def show_partial(self, row: int, data: bytes, index: int) -> None:
        item = self.items[row]
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
        counts = {"done": 0, "failed": 0, "running": 0, "images": 0}
        for item in self.items:
            if item.status in counts:
                counts[item.status] += 1
            counts["images"] += item.images
        return counts

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
        for request, item in zip(self.requests, self.items, strict=True):
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
