"""Bulk generation: many prompts through one bounded fan-out, one ImageResult per prompt.

Built for hundreds of prompts (a DataFrame column): a progress bar, concurrency
that backs off on 429 (see `AdaptiveLimit`), results in input order, failures
reported per item, and resumable work — a re-run takes every request that
already succeeded from the store instead of paying for it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any, Protocol

from .config import resolve
from .engine.progress import CallProgress
from .errors import InvalidOptionError
from .generate import Plan, new_progress, plan, run, warn_unsaved
from .results import GeneratedImage, ImageResult, ItemError

# Bulk runs ride out rate-limit storms: more patience than a single interactive call.
BULK_MIN_RETRIES = 6
# After its retries, a rate-limited request goes back through the throttled gate this often.
BULK_RATE_LIMIT_ROUNDS = 3


class BulkProgress(Protocol):
    """What shows a bulk run's progress (the rendering layer's progress bar, say)."""

    def tick(self, progress: CallProgress) -> None: ...

    def summary(self, result: ImageResult, progress: CallProgress | None = None) -> None: ...


ProgressFactory = Callable[[Plan], BulkProgress]


def generate_many(
    prompts: Iterable[Any],
    *,
    resume: bool = True,
    progress: ProgressFactory | None = None,
    **options: Any,
) -> list[ImageResult]:
    """Results in input order; a failed prompt has its error in `.errors`, nothing is raised.

    `resume=True` (default) serves requests that already succeeded from the store
    even when the cache is off, so re-running after an interrupt only pays for
    what is missing. A blank prompt fails alone (nothing is sent for it). Ctrl-C
    returns what finished, each unfinished result marked interrupted. Bad options
    (an unknown size, n=20) are raised before anything is sent.
    """
    texts = ["" if p is None else str(p) for p in prompts]
    if not texts:
        return []
    if "max_retries" not in options:
        options["max_retries"] = max(BULK_MIN_RETRIES, resolve().max_retries)
    wanted = [i for i, text in enumerate(texts) if text.strip()]
    # Validates every option even when no prompt is usable.
    call = plan([texts[i] for i in wanted] or ["-"], options)
    call = replace(call, rate_limit_rounds=BULK_RATE_LIMIT_ROUNDS)
    if resume and call.settings.cache == "off":
        call = replace(call, settings=call.settings.replace(cache="on"))
    models = call.settings.models
    max_px = call.settings.display_max_px
    done: list[ImageResult] = []
    if wanted:
        # The whole run's estimate, checked against max_cost / budget before anything is sent.
        from .pricing import check, price

        call = check(price(call))
        ticker = progress(call) if progress is not None else None
        state = new_progress(call)
        combined = run(call, state, tick=ticker.tick if ticker else None)
        if ticker:
            ticker.summary(combined, state)
        warn_unsaved(combined)  # the results are returned all the same
        done = split_by_prompt(combined, [texts[i] for i in wanted], models, max_px)
    results = [_blank_result(text, models, max_px) for text in texts]
    for index, result in zip(wanted, done, strict=True):
        results[index] = result
    return results


def _blank_result(prompt: str, models: list[str], display_max_px: int) -> ImageResult:
    error = InvalidOptionError("The prompt is empty: nothing was sent for it.")
    return ImageResult(
        [],
        [ItemError(prompt, model, error, row=row) for row, model in enumerate(models)],
        rows=[(prompt, m) for m in models],
        display_max_px=display_max_px,
    )


def split_by_prompt(
    combined: ImageResult, prompts: list[str], models: list[str], display_max_px: int
) -> list[ImageResult]:
    """One result per prompt from the run's combined grid, in one pass over images and errors."""
    per_prompt = len(models)
    images: list[list[GeneratedImage]] = [[] for _ in prompts]
    errors: list[list[ItemError]] = [[] for _ in prompts]
    finished = [0] * len(prompts)  # rows of each prompt that arrived or failed
    seen: set[int] = set()
    for im in combined:
        images[im.row // per_prompt].append(im.with_changes(row=im.row % per_prompt))
        if not im.partial and im.row not in seen:
            seen.add(im.row)
            finished[im.row // per_prompt] += 1
    for err in combined.errors:
        errors[err.row // per_prompt].append(replace(err, row=err.row % per_prompt))
        if err.row not in seen:
            seen.add(err.row)
            finished[err.row // per_prompt] += 1
    rows = [[(prompt, m) for m in models] for prompt in prompts]
    return [
        ImageResult(
            images[index],
            errors[index],
            rows=rows[index],
            display_max_px=display_max_px,
            # Interrupted: a row of this prompt neither arrived nor failed.
            interrupted=combined.interrupted and finished[index] < per_prompt,
        )
        for index in range(len(prompts))
    ]
