"""Hold one server's mutable state: request log, faults, in-flight counts, stored images."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

from ._faults import Fault, FaultPlan

OFFLINE_LOG_SIZE = 64


@dataclass
class RecordedRequest:
    """One request as the server received it (header names lower-case, values verbatim)."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    json: Any | None
    time: float
    request_id: str = ""  # the X-Request-Id the server answered it with
    # "" while it runs; "finished" once the whole answer was sent, "disconnected" if the
    # client hung up first (a cancelled request that a real server might still bill).
    outcome: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ImageStore:
    """Generated images served back at /v1/files, bounded so memory stays bounded."""

    def __init__(self, max_items: int = 256, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[bytes, str, str]] = OrderedDict()
        self._bytes = 0
        self._max_items = max_items
        self._max_bytes = max_bytes

    def put(self, name: str, data: bytes, mime_type: str, model: str) -> None:
        with self._lock:
            old = self._items.pop(name, None)
            if old is not None:
                self._bytes -= len(old[0])
            self._items[name] = (data, mime_type, model)
            self._bytes += len(data)
            while self._items and (len(self._items) > self._max_items or self._bytes > self._max_bytes):
                _, (evicted, _, _) = self._items.popitem(last=False)
                self._bytes -= len(evicted)

    def get(self, name: str) -> tuple[bytes, str, str] | None:
        """(bytes, mime type, model) for a file name like ``img_ab12.png``."""
        with self._lock:
            item = self._items.get(name)
            if item is not None:
                self._items.move_to_end(name)
            return item

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


class MeshState:
    """Everything tests observe or steer on a running server; safe across threads."""

    def __init__(
        self, *, api_key: str | None, latency: float, image_base_url: str | None, offline: bool
    ) -> None:
        self.api_key = api_key
        self.latency = latency
        self.image_base_url = image_base_url.rstrip("/") if image_base_url else None
        self.offline = offline
        self.faults = FaultPlan()
        self.images = ImageStore()
        # Appended in place and cleared in place, so a reference handed out stays live.
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
            # The offline backend lives as long as a notebook kernel and nobody reads its log;
            # edit bodies carry whole images, so it keeps only the latest few.
            if self.offline and len(self.requests) > OFFLINE_LOG_SIZE:
                del self.requests[: len(self.requests) - OFFLINE_LOG_SIZE]

    def enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def add_fault(self, fault: Fault) -> None:
        self.faults.add(fault)

    def reset(self) -> None:
        """Forget faults, logged requests and in-flight peaks (stored images stay valid)."""
        self.faults.clear()
        with self._lock:
            self.requests.clear()
            # Requests still running will leave later; the peak restarts from them.
            self.max_in_flight = self.in_flight

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "max_in_flight": self.max_in_flight,
                "in_flight": self.in_flight,
                "requests": len(self.requests),
            }
