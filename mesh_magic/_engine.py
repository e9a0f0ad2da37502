"""The one async engine: a background event loop, shared HTTP clients, and fan-out of requests.

A Jupyter kernel already runs an event loop on its main thread, so the engine
keeps its own loop on a daemon thread; the sync facade (`Engine.run`) waits on
it in a way Ctrl-C can interrupt, cancels what is in flight and keeps what
already arrived. The magic, the panel and the Python API all go through here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpx

from ._config import Settings
from ._errors import InvalidRequestError, MeshImageError, RateLimitError, ResponseError
from ._http import Generation, MeshClient
from ._images import inspect_image
from ._parsing import StreamEvent, decode_b64
from ._request import ImageRequest
from ._results import GeneratedImage, ImageResult, ItemError
from ._store import Store, replay_miss

T = TypeVar("T")

# How long an interrupted call waits for its tasks to wind down before giving up on them.
CANCEL_GRACE = 0.5
# A bulk run re-queues a rate-limited request only when the server asks for a short wait.
MAX_RATE_LIMIT_WAIT = 60.0


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
        settled = threading.Event()

        async def tracked() -> T:
            try:
                return await coro
            finally:
                settled.set()

        future = self.submit(tracked())
        try:
            while True:
                try:
                    # A short wait keeps the main thread responsive to SIGINT on every platform.
                    return future.result(timeout=0.1)
                except concurrent.futures.TimeoutError:
                    if tick is not None:
                        tick()
        except KeyboardInterrupt:
            # Cancelling the concurrent future cancels the task on the loop; the future
            # reads as done at once, so wait on the task itself: its requests close their
            # connections (the server stops working) before we report what arrived.
            if not future.cancel():
                # It finished as the interrupt came: the whole answer beats a partial one.
                return future.result(timeout=CANCEL_GRACE)
            settled.wait(CANCEL_GRACE)
            if on_interrupt is None:
                raise
            return on_interrupt()
        except BaseException:
            future.cancel()  # e.g. `tick` failed: don't leave the requests running unseen
            raise

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
                # Network only: honour HTTPS_PROXY / NO_PROXY / SSL_CERT_FILE like other clients.
                trust_env=not offline,
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
    partial: bytes | None = None  # the latest streamed partial image
    partial_index: int = -1  # its partial_image_index


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
    # The run's concurrency gate (set by run_requests): progress shows rate-limit backoff.
    limit: AdaptiveLimit | None = None

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
            _add_usage(self.usage, generation.usage)
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
            images = list(self.images)
            if interrupted:
                images += self._unfinished_partials()
            return ImageResult(
                images,
                list(self.errors),
                rows=[(r.prompt, r.model) for r in self.requests],
                usage=dict(self.usage),
                display_max_px=self.display_max_px,
                interrupted=interrupted,
                notes=self.notes,
            )

    def _unfinished_partials(self) -> list[GeneratedImage]:
        """The last partial image of each stream cut off by an interrupt, marked partial."""
        kept: list[GeneratedImage] = []
        for request, item in zip(self.requests, self.items, strict=True):
            if item.partial is None or item.status in ("done", "failed"):
                continue
            image = partial_image(request, item.partial)
            if image is not None:
                kept.append(image)
        return kept


def partial_image(request: ImageRequest, data: bytes, *, request_id: str | None = None
                  ) -> GeneratedImage | None:
    """A stream's last partial image as a result image marked partial (None if unreadable)."""
    try:
        info = inspect_image(data, what="partial image")
    except MeshImageError:
        return None
    return GeneratedImage(
        data=data, mime_type=info.mime_type, width=info.width, height=info.height,
        prompt=request.prompt, model=request.model, request_id=request_id,
        params=request.describe(), row=request.row, partial=True, source="stream",
    )


# Which window of the gate the current request started in (see AdaptiveLimit.throttle).
_window: contextvars.ContextVar[int] = contextvars.ContextVar("mesh_magic_window", default=-1)


class AdaptiveLimit:
    """A concurrency gate that halves on rate limiting and grows back one step per success.

    Bulk runs meet 429 storms; backing off here (not only per request) stops a
    run of hundreds from hammering a server that already said "slow down". As in
    TCP, one burst of 429s answering requests sent together counts as one signal:
    only a request started after the last cut can cut again. `throttles`,
    `lowest` and `limit` are there to be looked at (progress display, tests).
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = ceiling
        self.active = 0
        self.lowest = ceiling
        self.throttles = 0
        self.window = 0
        self._cond = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.active < self.limit)
            self.active += 1
        _window.set(self.window)

    async def __aexit__(self, *exc: object) -> None:
        async with self._cond:
            self.active -= 1
            self._cond.notify_all()

    def throttle(self) -> bool:
        """Halve the limit, once per window; True if this call cut it."""
        started = _window.get()
        if 0 <= started < self.window or self.limit == 1:
            return False  # sent before the last cut (that cut answered it), or nothing to cut
        self.window += 1
        self.throttles += 1
        self.limit = max(1, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        return True

    async def recover(self) -> None:
        async with self._cond:
            if self.limit < self.ceiling:
                self.limit += 1
                self._cond.notify_all()

    @property
    def throttled(self) -> bool:
        return self.limit < self.ceiling


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
    rate_limit_rounds: int = 0,
) -> ImageResult:
    """Run every request concurrently (bounded by `settings.concurrency`) into `collector`.

    With a `store`, each new image is written there before anyone sees it, and
    `settings.cache` decides whether a stored answer replaces the HTTP call.
    `rate_limit_rounds` (bulk runs) sends a request whose retries all met 429 back
    through the throttled gate that many more times: a 429 is never billed.
    """
    runner = _Runner(settings, collector, client=client, store=store, fresh=fresh,
                     rate_limit_rounds=rate_limit_rounds)
    return await runner.run(requests)


def _add_usage(total: dict[str, Any], usage: dict[str, Any]) -> None:
    for key, value in usage.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total[key] = total.get(key, 0) + value


class _Runner:
    """One call's fan-out: cache, gate, HTTP, store and progress for each request."""

    def __init__(self, settings: Settings, collector: Collector, *, client: MeshClient | None,
                 store: Store | None, fresh: bool, rate_limit_rounds: int) -> None:
        self.settings = settings
        self.collector = collector
        self.store = store
        self.rate_limit_rounds = rate_limit_rounds
        self.use_cache = store is not None and settings.cache != "off" and not fresh
        self.gate = AdaptiveLimit(settings.concurrency)
        collector.limit = self.gate
        self.single_only: set[str] = set()
        self._client = client

    async def run(self, requests: Sequence[ImageRequest]) -> ImageResult:
        tasks = [asyncio.ensure_future(self.one(r)) for r in requests]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # `one` keeps MeshImageErrors per item; anything else is a bug that ends the call,
            # and gather alone would leave the other requests running (and billing) unseen.
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            raise
        return self.collector.result()

    def http(self) -> MeshClient:
        # Built on first use: a call answered wholly from the store (replay) needs no client,
        # so it can't trip over network settings it never uses.
        if self._client is None:
            self._client = engine().client(self.settings, on_retry=self.on_retry)
        return self._client

    def on_retry(self, error: MeshImageError, wait: float) -> None:
        if isinstance(error, RateLimitError):
            self.gate.throttle()
            _window.set(self.gate.window)  # its next attempt goes out in the current window

    def from_cache(self, request: ImageRequest) -> Generation | None:
        if not self.use_cache or self.store is None:
            return None
        found = self.store.lookup(request, self.settings.base_url,
                                  any_host=self.settings.cache == "replay")
        if found:
            return Generation(images=found, request_id=found[0].request_id)
        if self.settings.cache == "replay":
            raise replay_miss(request, self.store)
        return None

    def _write(self, request: ImageRequest, generation: Generation) -> list[GeneratedImage]:
        assert self.store is not None
        base_url = self.settings.base_url
        stored = [self.store.put(im, base_url=base_url) for im in generation.images]
        if not generation.errors:  # only a complete answer may answer this request again
            self.store.remember(request, base_url, stored)
        return stored

    async def keep(self, request: ImageRequest, generation: Generation) -> Generation:
        if self.store is None or not generation.images:
            return generation
        try:
            # Off the loop: fsyncs would otherwise stall every other request's I/O.
            generation.images = await asyncio.to_thread(self._write, request, generation)
        except OSError as exc:
            self.collector.note(f"Could not write to the store {self.store.root}: {exc}")
        return generation

    def _on_event(self, request: ImageRequest, event: StreamEvent) -> None:
        item = self.collector.items[request.row]
        if event.kind == "partial" and event.b64:
            try:
                item.partial = decode_b64(event.b64, what="partial image")
            except ResponseError:
                return  # a garbled preview is not worth failing the request over
            item.partial_index = event.index
            item.message = f"partial image {event.index + 1}"
        elif event.kind == "progress":
            item.message = str(event.payload.get("status", "processing"))
        self.collector._changed()

    async def call(self, request: ImageRequest) -> Generation:
        """One HTTP generation through the gate (bulk runs re-queue after a 429)."""
        rounds = self.rate_limit_rounds
        while True:
            try:
                async with self.gate:
                    self.collector.set_status(request.row, "running")
                    generation = await self.http().generate(
                        request, on_event=lambda event: self._on_event(request, event)
                    )
                break
            except RateLimitError as exc:
                wait = exc.retry_after if exc.retry_after is not None else 1.0
                if rounds <= 0 or wait > MAX_RATE_LIMIT_WAIT:
                    raise
                rounds -= 1
                self.gate.throttle()
                self.collector.set_status(request.row, "queued", "rate limited: waiting its turn")
                await asyncio.sleep(wait)
        await self.gate.recover()
        return generation

    async def fetch(self, request: ImageRequest) -> Generation:
        """The images for `request` from the API, as one request or n single ones."""
        if request.n > 1 and request.model in self.single_only:
            return await self.fan_out_singles(request)
        try:
            return await self.call(request)
        except MeshImageError as exc:
            if request.n > 1 and _single_image_only(exc):
                self.single_only.add(request.model)
                return await self.fan_out_singles(request)
            raise

    async def one(self, request: ImageRequest) -> None:
        collector = self.collector
        try:
            generation = self.from_cache(request)
            if generation is None:
                generation = await self.fetch(request)
                try:
                    generation = await self.keep(request, generation)
                except asyncio.CancelledError:
                    # Arrived (and paid for): an interrupt while it is being stored still shows it.
                    collector.add(generation, request)
                    collector.set_status(request.row, "done")
                    raise
            collector.add(generation, request)
            collector.set_status(request.row, "done")
        except MeshImageError as exc:
            self.keep_partial(request, exc)
            collector.fail(request, exc)
        except asyncio.CancelledError:
            if collector.items[request.row].status != "done":
                collector.set_status(request.row, "cancelled")
            raise

    def keep_partial(self, request: ImageRequest, error: MeshImageError) -> None:
        data = getattr(error, "partial_image", None)
        image = partial_image(request, data, request_id=error.request_id) if data else None
        if image is not None:
            self.collector.add(Generation(images=[image]), request)

    async def fan_out_singles(self, request: ImageRequest) -> Generation:
        seed = request.params.get("seed")
        singles = [replace(request, n=1) for _ in range(request.n)]
        note = f"{request.model} makes one image per request: sent {request.n} requests"
        if isinstance(seed, int) and not isinstance(seed, bool):
            # The same seed n times would buy n copies of one image.
            singles = [replace(s, params={**request.params, "seed": seed + i})
                       for i, s in enumerate(singles)]
            note += f" (seeds {seed}-{seed + request.n - 1})"
        self.collector.note(note + ".")
        outcomes = await asyncio.gather(*(self.call(s) for s in singles), return_exceptions=True)
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
                _add_usage(merged.usage, outcome.usage)
        return merged
