"""Fan-out of one call: every request through cache, gate, HTTP and store, into its `CallProgress`.

Requests run concurrently, bounded by the adaptive gate. Each new image is
written to the store before anyone sees it; a request whose model makes one
image per request is re-sent as n single ones; a bulk run sends a request whose
retries all met 429 back through the throttled gate (a 429 is never billed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..constants import MAX_RATE_LIMIT_WAIT
from ..errors import InvalidRequestError, MeshImageError, RateLimitError, ResponseError, unexpected_error
from ..http.client import Generation, MeshClient, RetryNotice
from ..keys import SECRETS
from ..parsing import StreamEvent, decode_b64
from ..request import ImageRequest
from ..results import GeneratedImage, ImageParent, ImageResult
from ..settings import Settings
from ..store import Store, replay_miss
from .limit import AdaptiveLimit
from .loop import engine
from .progress import CallProgress, add_usage, partial_image


def makes_one_image_per_request(error: MeshImageError) -> bool:
    """The server refused `n` for this model: it takes one image per request."""
    return isinstance(error, InvalidRequestError) and error.rejects("n")


async def run_requests(
    requests: Sequence[ImageRequest],
    settings: Settings,
    progress: CallProgress,
    *,
    client: MeshClient | None = None,
    store: Store | None = None,
    fresh: bool = False,
    rate_limit_rounds: int = 0,
    prices: Mapping[str, float | None] | None = None,
) -> ImageResult:
    """Run every request concurrently (bounded by `settings.concurrency`) into `progress`.

    With a `store`, each new image is written there before anyone sees it, and
    `settings.cache` decides whether a stored answer replaces the HTTP call.
    `rate_limit_rounds` (bulk runs) sends a request whose retries all met 429 back
    through the throttled gate that many more times. `prices` (USD per image, per
    model) gives each new image its `cost`; images from the store cost 0.
    """
    runner = Runner(
        settings, progress, client=client, store=store, fresh=fresh, rate_limit_rounds=rate_limit_rounds
    )
    runner.prices = prices
    return await runner.run(requests)


class Runner:
    """One call's fan-out: cache, gate, HTTP, store and progress for each request."""

    def __init__(
        self,
        settings: Settings,
        progress: CallProgress,
        *,
        client: MeshClient | None,
        store: Store | None,
        fresh: bool,
        rate_limit_rounds: int,
    ) -> None:
        self.settings = settings
        self.progress = progress
        self.store = store
        self.rate_limit_rounds = rate_limit_rounds
        self.use_cache = store is not None and settings.cache != "off" and not fresh
        self.gate = AdaptiveLimit(settings.concurrency)
        progress.limit = self.gate
        self.single_only: set[str] = set()
        self._client = client
        self.prices: Mapping[str, float | None] | None = None

    async def run(self, requests: Sequence[ImageRequest]) -> ImageResult:
        tasks = [asyncio.ensure_future(self.one(r)) for r in requests]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # `one` keeps every Exception per item, so only an interrupt (cancellation) gets
            # here; gather alone would leave the other requests running (and billing) unseen.
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            raise
        if self.store is not None and self.store.skipped:
            self.progress.note(self.store.skipped_note() + " They were treated as cache misses.")
        return self.progress.result()

    def http(self) -> MeshClient:
        # Built on first use: a call answered wholly from the store (replay) needs no client,
        # so it can't trip over network settings it never uses.
        if self._client is None:
            self._client = engine().client(self.settings, on_retry=self.on_retry)
        return self._client

    def on_retry(self, notice: RetryNotice) -> None:
        if notice.rate_limited:
            self.gate.throttle()
            self.gate.rejoin()

    def _on_retry(self, request: ImageRequest, notice: RetryNotice) -> None:
        reason = "rate limited" if notice.rate_limited else "the gateway is busy"
        self.progress.waiting(request.row, notice.wait, reason)

    # -- one request -------------------------------------------------------

    async def one(self, request: ImageRequest) -> None:
        progress = self.progress
        try:
            generation = self.from_cache(request)
            if generation is None:
                generation = await self.fetch(request)
                self.price(generation)
                try:
                    generation = await self.keep(request, generation)
                except asyncio.CancelledError:
                    # Arrived (and paid for): an interrupt while it is being stored still shows it.
                    progress.add(generation, request)
                    progress.set_status(request.row, "done")
                    raise
            progress.add(generation, request)
            progress.set_status(request.row, "done")
        except MeshImageError as exc:
            self.keep_partial(request, exc)
            progress.fail(request, exc)
        except Exception as exc:  # noqa: BLE001 - the engine's rule: one item fails, the rest go on
            progress.fail(request, self.unexpected(exc, request))
        except asyncio.CancelledError:
            if progress.items[request.row].status != "done":
                progress.set_status(request.row, "cancelled")
            raise

    def unexpected(self, exc: BaseException, request: ImageRequest) -> MeshImageError:
        return unexpected_error(exc, f"The request to {request.model}", SECRETS.scrub)

    def price(self, generation: Generation) -> None:
        """Each new image's cost: its model's price per image (None when unknown)."""
        for image in generation.images:
            image.cost = self.prices.get(image.model) if self.prices is not None else None

    def from_cache(self, request: ImageRequest) -> Generation | None:
        if not self.use_cache or self.store is None:
            return None
        found = self.store.lookup(request, self.settings.base_url, any_host=self.settings.cache == "replay")
        if found:
            return Generation(images=found, request_id=found[0].request_id)
        if self.settings.cache == "replay":
            raise replay_miss(request, self.store)
        return None

    async def fetch(self, request: ImageRequest) -> Generation:
        """The images for `request` from the API, as one request or n single ones."""
        if request.n > 1 and request.model in self.single_only:
            return await self.fan_out_singles(request)
        try:
            return await self.call(request)
        except MeshImageError as exc:
            if request.n > 1 and makes_one_image_per_request(exc):
                self.single_only.add(request.model)
                return await self.fan_out_singles(request)
            raise

    async def call(self, request: ImageRequest) -> Generation:
        """One HTTP generation through the gate (bulk runs re-queue after a 429)."""
        rounds = self.rate_limit_rounds
        while True:
            try:
                async with self.gate:
                    self.progress.set_status(request.row, "running")
                    generation = await self.http().generate(
                        request,
                        on_event=lambda event: self._on_event(request, event),
                        on_retry=lambda notice: self._on_retry(request, notice),
                    )
                break
            except RateLimitError as exc:
                wait = exc.retry_after if exc.retry_after is not None else 1.0
                if rounds <= 0 or wait > MAX_RATE_LIMIT_WAIT:
                    raise
                rounds -= 1
                self.gate.throttle()
                self.progress.set_status(request.row, "queued", "rate limited: waiting its turn")
                await asyncio.sleep(wait)
        await self.gate.recover()
        return generation

    def _on_event(self, request: ImageRequest, event: StreamEvent) -> None:
        if event.kind == "partial" and event.b64:
            try:
                data = decode_b64(event.b64, what="partial image")
            except ResponseError:
                return  # a garbled preview is not worth failing the request over
            self.progress.show_partial(request.row, data, event.index)
        elif event.kind == "progress":
            self.progress.show_message(request.row, str(event.payload.get("status", "processing")))

    # -- after the answer --------------------------------------------------

    def _write(self, request: ImageRequest, generation: Generation) -> list[GeneratedImage]:
        assert self.store is not None
        if request.sources:  # lineage: each source kept in the store, its path on every image
            parents = tuple(
                ImageParent(s.sha256, s.path or str(self.store.put_source(s)), s.label, s.size)
                for s in request.sources
            )
            for image in generation.images:
                image.parents = parents
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
        except Exception as exc:  # noqa: BLE001 - paid for: shown even when it can't be kept
            reason = f"Could not write to the store {self.store.root}: {exc}"
            self.progress.note(reason)
            for image in generation.images:
                image.not_stored = f"{reason} (kept in memory only)"
        return generation

    def keep_partial(self, request: ImageRequest, error: MeshImageError) -> None:
        data = error.partial_image
        image = partial_image(request, data, request_id=error.request_id) if data else None
        if image is not None:
            self.progress.add(Generation(images=[image]), request)

    async def fan_out_singles(self, request: ImageRequest) -> Generation:
        seed = request.params.get("seed")
        singles = [replace(request, n=1) for _ in range(request.n)]
        note = f"{request.model} makes one image per request: sent {request.n} requests"
        if isinstance(seed, int) and not isinstance(seed, bool):
            # The same seed n times would buy n copies of one image.
            singles = [replace(s, params={**request.params, "seed": seed + i}) for i, s in enumerate(singles)]
            note += f" (seeds {seed}-{seed + request.n - 1})"
        self.progress.note(note + ".")
        outcomes = await asyncio.gather(*(self.call(s) for s in singles), return_exceptions=True)
        merged = Generation()
        for index, outcome in enumerate(outcomes):
            if isinstance(outcome, MeshImageError):
                merged.errors.append(outcome)
            elif isinstance(outcome, Exception):
                merged.errors.append(self.unexpected(outcome, request))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                for image in outcome.images:
                    image.index = index
                merged.images.extend(outcome.images)
                merged.errors.extend(outcome.errors)
                merged.request_id = merged.request_id or outcome.request_id
                add_usage(merged.usage, outcome.usage)
        return merged
