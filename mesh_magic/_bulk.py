"""Bulk generation: many prompts through one bounded fan-out, one ImageResult per prompt."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ._generate import plan, run
from ._results import ImageResult


def generate_many(prompts: Sequence[str], **options: Any) -> list[ImageResult]:
    """Results in input order; a failed prompt has its error in `.errors`, nothing is raised."""
    prompts = [str(p) for p in prompts]
    call = plan(prompts, options)
    combined = run(call)
    per_model = len(call.settings.models)
    results: list[ImageResult] = []
    for index, prompt in enumerate(prompts):
        start = index * per_model
        rows = range(start, start + per_model)
        results.append(
            ImageResult(
                [replace(im, row=im.row - start) for im in combined if im.row in rows],
                [replace(err, row=err.row - start) for err in combined.errors if err.row in rows],
                rows=[(prompt, m) for m in call.settings.models],
                display_max_px=call.settings.display_max_px,
                interrupted=combined.interrupted,
            )
        )
    return results
