"""The one async engine: a background event loop, shared HTTP clients, and fan-out of requests.

A Jupyter kernel already runs an event loop on its main thread, so the engine
keeps its own loop on a daemon thread; the sync facade (`Engine.run`) waits on
it in a way Ctrl-C can interrupt, cancels what is in flight and keeps what
already arrived. The magic, the panel and the Python API all go through here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpx

from ._config import Settings
from ._errors import InvalidRequestError, MeshImageError, RateLimitError
from ._http import Generation, MeshClient
from ._images import inspect_image
from ._parsing import StreamEvent
from ._request import ImageRequest
from ._results import GeneratedImage, ImageResult, ItemError
from ._store import Store, replay_miss

T = TypeVar("T")

# How long an interrupted call waits for its tasks to wind down before giving up on them.
CANCEL_GRACE = 0.5


class Engine:
    """Owns the background loop thread and one `httpx.AsyncClient` per transport kind."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._lock = threading.Lock()

    # -- loop --------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name="mesh-magic-engine", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
                self._clients = {}
            return self._loop

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the engine loop without waiting (the panel's way in)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        on_interrupt: Callable[[], T] | None = None,
        tick: Callable[[], None] | None = None,
    ) -> T:
        """Run `coro` to completion from sync code; Ctrl-C cancels it.

        With `on_interrupt`, an interrupt returns what that callback builds (the
        images that arrived) instead of raising KeyboardInterrupt. `tick` runs on
        the calling thread about ten times a second: display updates belong
        there, because a kernel routes output by the thread that sends it.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError("Engine.run called from the engine loop; await the coroutine instead")
        future = self.submit(coro)
        try:
            while True:
                try:
                    # A short wait keeps the main thread responsive to SIGINT on every platform.
                    return future.result(timeout=0.1)
                except concurrent.futures.TimeoutError:
                    if tick is not None:
                        tick()
        except KeyboardInterrupt:
            future.cancel()
            deadline = time.monotonic() + CANCEL_GRACE
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.01)
            if on_interrupt is None:
                raise
            return on_interrupt()

    def set_transport(self, transport: httpx.AsyncBaseTransport | None) -> None:
        """Route all network traffic through `transport` (tests); clients are rebuilt lazily."""
        old, self._clients = self._clients, {}
        self._transport = transport
        if self._loop is not None:
            for client in old.values():
                asyncio.run_coroutine_threadsafe(client.aclose(), self._loop)

    def http_client(self, offline: bool) -> httpx.AsyncClient:
        """The shared client for the network or the offline backend (engine loop only)."""
        kind = "offline" if offline else "network"
        client = self._clients.get(kind)
        if client is None:
            if offline:
                from .server import offline_transport

                transport: httpx.AsyncBaseTransport | None = offline_transport()
            else:
                transport = self._transport
            client = httpx.AsyncClient(
                transport=transport,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
                timeout=httpx.Timeout(180.0),
                trust_env=False,
            )
            self._clients[kind] = client
        return client

    def client(self, settings: Settings, **kwargs: Any) -> MeshClient:
        return MeshClient(settings, self.http_client(settings.offline), **kwargs)


_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine()
    return _engine


@dataclass
class ItemProgress:
    """Live state of one grid row, for progress displays."""

    prompt: str
    model: str
    n: int
    status: str = "queued"  # queued | running | done | failed | cancelled
    images: int = 0
    message: str = ""
    partial: bytes | None = None


@dataclass
class Collector:
    """Gathers results as they arrive so an interrupt can still show them."""

    requests: Sequence[ImageRequest]
    display_max_px: int = 512
    images: list[GeneratedImage] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    items: list[ItemProgress] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    on_change: Callable[[Collector], None] | None = None

    def __post_init__(self) -> None:
        self.items = [ItemProgress(r.prompt, r.model, r.n) for r in self.requests]
        self._lock = threading.Lock()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)

    def add(self, generation: Generation, request: ImageRequest) -> None:
        images = generation.images
        with self._lock:
            self.images.extend(images)
            for err in generation.errors:
                self.errors.append(ItemError(request.prompt, request.model, err, row=request.row))
            for key, value in generation.usage.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.usage[key] = self.usage.get(key, 0) + value
            item = self.items[request.row]
            item.images += len(images)
        self._changed()

    def fail(self, request: ImageRequest, error: MeshImageError) -> None:
        with self._lock:
            self.errors.append(ItemError(request.prompt, request.model, error, row=request.row))
            self.items[request.row].status = "failed"
            self.items[request.row].message = str(error)
        self._changed()

    def set_status(self, row: int, status: str, message: str = "") -> None:
        self.items[row].status = status
        if message:
            self.items[row].message = message
        self._changed()

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def result(self, *, interrupted: bool = False) -> ImageResult:
        with self._lock:
            return ImageResult(
                list(self.images),
                list(self.errors),
                rows=[(r.prompt, r.model) for r in self.requests],
                usage=dict(self.usage),
                display_max_px=self.display_max_px,
                interrupted=interrupted,
                notes=self.notes,
            )


class AdaptiveLimit:
    """A concurrency gate that halves on rate limiting and grows back one step per success.

    Bulk runs meet 429 storms; backing off here (not only per request) stops a
    run of hundreds from hammering a server that already said "slow down".
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.active = 0
        self.lowest = ceiling
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def throttle(self) -> None:
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)

    async def recover(self) -> None:
        async with self._cond:
            if self.limit < self.ceiling:
                self.limit += 1
                self._cond.notify_all()


def _single_image_only(error: MeshImageError) -> bool:
    text = f"{error.code or ''} {error.message}".lower()
    return isinstance(error, InvalidRequestError) and (
        "capability" in text or "one image per request" in text or "n must be 1" in text
    )


async def run_requests(
    requests: Sequence[ImageRequest],
    settings: Settings,
    collector: Collector,
    *,
    client: MeshClient | None = None,
    store: Store | None = None,
    fresh: bool = False,
) -> ImageResult:
    """Run every request concurrently (bounded by `settings.concurrency`) into `collector`.

    With a `store`, each new image is written there before anyone sees it, and
    `settings.cache` decides whether a stored answer replaces the HTTP call.
    """
    gate = AdaptiveLimit(settings.concurrency)

    def on_retry(error: MeshImageError, wait: float) -> None:
        if isinstance(error, RateLimitError):
            gate.throttle()

    client = client or engine().client(settings, on_retry=on_retry)
    use_cache = store is not None and settings.cache != "off" and not fresh

    def from_cache(request: ImageRequest) -> Generation | None:
        if not use_cache or store is None:
            return None
        found = store.lookup(request, settings.base_url, any_host=settings.cache == "replay")
        if found:
            return Generation(images=found, request_id=found[0].request_id)
        if settings.cache == "replay":
            raise replay_miss(request, store)
        return None

    def keep(request: ImageRequest, generation: Generation) -> Generation:
        if store is None or not generation.images:
            return generation
        try:
            generation.images = [store.put(im, base_url=settings.base_url)
                                 for im in generation.images]
            store.remember(request, settings.base_url, generation.images)
        except OSError as exc:
            collector.note(f"Could not write to the store {store.root}: {exc}")
        return generation

    async def call(request: ImageRequest) -> Generation:
        def on_event(event: StreamEvent) -> None:
            item = collector.items[request.row]
            if event.kind == "partial" and event.b64:
                import base64

                item.partial = base64.b64decode(event.b64)
                item.message = f"partial image {event.index + 1}"
            elif event.kind == "progress":
                item.message = str(event.payload.get("status", "processing"))
            collector._changed()

        async with gate:
            collector.set_status(request.row, "running")
            generation = await client.generate(request, on_event=on_event)
        await gate.recover()
        return generation

    async def one(request: ImageRequest) -> None:
        try:
            generation = from_cache(request)
            if generation is None:
                try:
                    generation = await call(request)
                except MeshImageError as exc:
                    if request.n > 1 and _single_image_only(exc):
                        generation = await fan_out_singles(request)
                    else:
                        raise
                generation = keep(request, generation)
            collector.add(generation, request)
            collector.set_status(request.row, "done")
        except MeshImageError as exc:
            keep_partial(request, exc)
            collector.fail(request, exc)
        except asyncio.CancelledError:
            collector.set_status(request.row, "cancelled")
            raise

    def keep_partial(request: ImageRequest, error: MeshImageError) -> None:
        data = getattr(error, "partial_image", None)
        if not data:
            return
        try:
            info = inspect_image(data, what="partial image")
        except MeshImageError:
            return
        image = GeneratedImage(
            data=data, mime_type=info.mime_type, width=info.width, height=info.height,
            prompt=request.prompt, model=request.model, request_id=error.request_id,
            params=request.describe(), row=request.row, partial=True, source="stream",
        )
        collector.add(Generation(images=[image]), request)

    async def fan_out_singles(request: ImageRequest) -> Generation:
        collector.note(f"{request.model} makes one image per request: sent {request.n} requests.")
        singles = [replace(request, n=1) for _ in range(request.n)]
        outcomes = await asyncio.gather(*(call(s) for s in singles), return_exceptions=True)
        merged = Generation()
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, MeshImageError):
                merged.errors.append(outcome)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                for image in outcome.images:
                    image.index = index
                merged.images.extend(outcome.images)
                merged.errors.extend(outcome.errors)
                merged.request_id = merged.request_id or outcome.request_id
        return merged

    await asyncio.gather(*(one(r) for r in requests))
    return collector.result()
