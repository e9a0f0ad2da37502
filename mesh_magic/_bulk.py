"""Bulk generation: many prompts through one bounded fan-out, one ImageResult per prompt.

Built for hundreds of prompts (a DataFrame column): a progress bar, concurrency
that backs off on 429 (see `AdaptiveLimit`), results in input order, failures
reported per item, and resumable work — a re-run takes every request that
already succeeded from the store instead of paying for it again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ._generate import new_collector, plan, run
from ._results import ImageResult

# Bulk runs ride out rate-limit storms: more patience than a single interactive call.
BULK_MIN_RETRIES = 6


def generate_many(
    prompts: Iterable[Any], *, resume: bool = True, progress: bool = True, **options: Any
) -> list[ImageResult]:
    """Results in input order; a failed prompt has its error in `.errors`, nothing is raised.

    `resume=True` (default) serves requests that already succeeded from the store
    even when the cache is off, so re-running after an interrupt only pays for
    what is missing. Ctrl-C returns what finished, each result marked interrupted.
    """
    texts = [str(p) for p in prompts]
    if not texts:
        return []
    if "max_retries" not in options:
        from ._config import resolve

        options["max_retries"] = max(BULK_MIN_RETRIES, resolve().max_retries)
    call = plan(texts, options)
    if resume and call.settings.cache == "off":
        call = replace(call, settings=replace(call.settings, cache="on"))
    ticker = None
    if progress:
        from ._progress import ProgressDisplay

        ticker = ProgressDisplay(call, compact=True, show_after=0.0)
    combined = run(call, new_collector(call), tick=ticker.tick if ticker else None)
    if ticker:
        ticker.summary(combined)
    return split_by_prompt(combined, texts, call.settings.models, call.settings.display_max_px)


def split_by_prompt(
    combined: ImageResult, prompts: list[str], models: list[str], display_max_px: int
) -> list[ImageResult]:
    per_prompt = len(models)
    results: list[ImageResult] = []
    for index, prompt in enumerate(prompts):
        start = index * per_prompt
        rows = range(start, start + per_prompt)
        results.append(
            ImageResult(
                [replace(im, row=im.row - start) for im in combined if im.row in rows],
                [replace(err, row=err.row - start) for err in combined.errors if err.row in rows],
                rows=[(prompt, m) for m in models],
                display_max_px=display_max_px,
                interrupted=combined.interrupted
                and not any(im.row in rows for im in combined)
                and not any(err.row in rows for err in combined.errors),
            )
        )
    return results
