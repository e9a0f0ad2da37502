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
from ..store import Store, StoredAnswer, replay_miss
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
            stored = self.from_cache(request)
            if stored is not None and (not stored.missing or self.settings.cache == "replay"):
                generation = self.from_store(request, stored)
            else:
                have = stored.images if stored is not None else []
                missing = stored.missing if stored is not None else tuple(range(request.n))
                generation = await self.fetch(request, missing, have)
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

    def from_cache(self, request: ImageRequest) -> StoredAnswer | None:
        """What the store holds for `request` (a replay that lacks images raises instead)."""
        if not self.use_cache or self.store is None:
            return None
        replay = self.settings.cache == "replay"
        found = self.store.lookup(request, self.settings.base_url, any_host=replay)
        if replay and found is None:
            raise replay_miss(request, self.store)
        return found

    def from_store(self, request: ImageRequest, stored: StoredAnswer) -> Generation:
        """A stored answer as a generation; a replay of a partly failed one says what is missing."""
        errors: list[MeshImageError] = []
        if stored.missing and self.store is not None:
            errors.append(replay_miss(request, self.store, stored))
        return Generation(images=stored.images, errors=errors, request_id=stored.images[0].request_id)

    async def fetch(
        self, request: ImageRequest, indices: Sequence[int], have: list[GeneratedImage]
    ) -> Generation:
        """The images `indices` (0..n-1) of `request` from the API, priced and stored, after `have`.

        All indices on a first run; after a partly failed one only the missing ones, so
        a resumed run pays for nothing it already has.
        """
        wanted = request if len(indices) == request.n else replace(request, n=len(indices))
        if wanted.n > 1 and request.model in self.single_only:
            return await self.fan_out_singles(request, indices, have)
        try:
            generation = await self.call(wanted)
        except MeshImageError as exc:
            if wanted.n > 1 and makes_one_image_per_request(exc):
                self.single_only.add(request.model)
                return await self.fan_out_singles(request, indices, have)
            raise
        for image in generation.images:
            # Image j of the request for the missing ones is image indices[j] of `request`;
            # one the server added beyond what was asked keeps an index past n.
            inside = image.index < len(indices)
            image.index = indices[image.index] if inside else request.n + image.index - len(indices)
        self.price(generation)
        try:
            return await self.keep(request, generation, have, complete=not generation.errors)
        except asyncio.CancelledError:
            # Arrived (and paid for): an interrupt while it is being stored still shows it.
            self.progress.add(Generation(images=have + generation.images), request)
            self.progress.set_status(request.row, "done")
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

    def _write(
        self, request: ImageRequest, generation: Generation, have: list[GeneratedImage], complete: bool
    ) -> list[GeneratedImage]:
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
        # A partly failed answer is kept as such: a re-run asks only for what is missing.
        self.store.remember(request, base_url, have + stored, complete=complete)
        return stored

    async def keep(
        self, request: ImageRequest, generation: Generation, have: list[GeneratedImage], *, complete: bool
    ) -> Generation:
        """Write the new images to the store; `generation` then holds `have` (stored before) too."""
        if self.store is None or not generation.images:
            generation.images = have + generation.images
            return generation
        try:
            # Off the loop: fsyncs would otherwise stall every other request's I/O.
            generation.images = await asyncio.to_thread(self._write, request, generation, have, complete)
        except Exception as exc:  # noqa: BLE001 - paid for: shown even when it can't be kept
            reason = f"Could not write to the store {self.store.root}: {exc}"
            self.progress.note(reason)
            for image in generation.images:
                image.not_stored = f"{reason} (kept in memory only)"
        generation.images = have + generation.images
        return generation

    def keep_partial(self, request: ImageRequest, error: MeshImageError) -> None:
        data = error.partial_image
        image = partial_image(request, data, request_id=error.request_id) if data else None
        if image is not None:
            self.progress.add(Generation(images=[image]), request)

    def singles(self, request: ImageRequest, indices: Sequence[int]) -> list[ImageRequest]:
        """Image `i` of `request`, for each i in `indices`, as a request of its own (noted)."""
        seed = request.params.get("seed")
        singles = [replace(request, n=1) for _ in indices]
        note = f"{request.model} makes one image per request: sent {len(indices)} requests"
        if isinstance(seed, int) and not isinstance(seed, bool):
            # The same seed n times would buy n copies of one image; image i gets seed + i.
            singles = [
                replace(s, params={**request.params, "seed": seed + i})
                for i, s in zip(indices, singles, strict=True)
            ]
            note += f" (seeds {_spans([seed + i for i in indices])})"
        self.progress.note(note + ".")
        return singles

    async def fan_out_singles(
        self, request: ImageRequest, indices: Sequence[int], have: list[GeneratedImage]
    ) -> Generation:
        """The singles of `request`, each image stored as soon as it arrives.

        So a kernel killed halfway keeps (and a re-run does not buy again) the images
        that had arrived; the index entry says complete only once every single succeeded.
        """
        kept: list[GeneratedImage] = []  # new images, stored, in arrival order
        in_order = asyncio.Lock()  # one index entry per request: its updates one at a time

        async def single(index: int, sub: ImageRequest) -> Generation:
            generation = await self.call(sub)
            for image in generation.images:
                image.index = index
            self.price(generation)
            async with in_order:
                before = have + kept
                try:
                    generation = await self.keep(request, generation, before, complete=False)
                except asyncio.CancelledError:
                    kept.extend(generation.images)  # interrupted while being stored: still shown
                    raise
                kept.extend(generation.images[len(before) :])
            return generation

        try:
            outcomes = await asyncio.gather(
                *(single(i, s) for i, s in zip(indices, self.singles(request, indices), strict=True)),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            if kept:  # arrived and paid for: shown even though the request was interrupted
                self.progress.add(Generation(images=list(kept)), request)
            raise
        merged = Generation(images=have + kept)
        for outcome in outcomes:
            if isinstance(outcome, MeshImageError):
                merged.errors.append(outcome)
            elif isinstance(outcome, Exception):
                merged.errors.append(self.unexpected(outcome, request))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                merged.errors.extend(outcome.errors)
                merged.request_id = merged.request_id or outcome.request_id
                add_usage(merged.usage, outcome.usage)
        if kept and not merged.errors and self.store is not None and all(im.path for im in kept):
            await asyncio.to_thread(self.store.remember, request, self.settings.base_url, merged.images)
        return merged


def _spans(numbers: list[int]) -> str:
    """1, 2, 3, 5 as "1-3, 5"."""
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][-1] + 1:
            spans[-1].append(number)
        else:
            spans.append([number])
    return ", ".join(f"{s[0]}-{s[-1]}" if len(s) > 1 else str(s[0]) for s in spans)
