"""Load: 200 prompts through generate_many against the server with seeded random faults.

Every item must end with its own image or with its own error: none lost, none
duplicated, none swapped (the test server's stand-in renderer writes the prompt
into each PNG, so an image can be traced back to the prompt it was made for).
Memory is sampled (process RSS) during the run and must stay within a stated bound.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core import config as _config
from mesh_magic.core.errors import MeshImageError, ResponseError, ServerError
from mesh_magic.server import Fault
from tests.reliability.report import REPORT, rss_peak
from tests.support.images import png_prompt

PROMPTS = 200
RSS_BOUND = 96 * 1024 * 1024  # RSS growth allowed for 200 small images + bookkeeping
MODEL = "openai/dall-e-3"  # b64 answers with a revised_prompt derived from the prompt


@pytest.mark.usefixtures("cheap_images", "fast_backoff", "memory_store")
def test_200_requests_with_random_faults(server: Any) -> None:
    _config.configure(base_url=server.base_url, concurrency=8)
    server.reset()
    for fault in [
        Fault("status", status=429, retry_after="0.05", times=-1, probability=0.08, seed=1),
        Fault("status", status=503, times=-1, probability=0.05, seed=2),
        Fault("status", status=500, times=-1, probability=0.03, seed=3),
        Fault("corrupt_b64", times=-1, probability=0.03, seed=4),
        Fault("latency", delay=0.15, times=-1, probability=0.05, seed=5),
    ]:
        server.add_fault(fault)
    prompts = [f"load item {i:03d}: a lighthouse, variation {i}" for i in range(PROMPTS)]
    started = time.perf_counter()
    with rss_peak() as rss:
        results = mesh_magic.generate_many(prompts, model=MODEL, size="64x64", progress=False)
    seconds = time.perf_counter() - started
    generations = [r for r in server.requests if r.path == "/v1/images/generations"]

    assert len(results) == PROMPTS
    lost, ok, failed = [], 0, Counter()
    paths: list[Path] = []
    for prompt, result in zip(prompts, results, strict=True):
        assert result.rows == [(prompt, MODEL)]
        if len(result) == 1 and not result.errors:
            image = result[0]
            assert image.prompt == prompt and image.model == MODEL
            assert (image.revised_prompt or "").startswith(prompt), "the server answered this prompt"
            assert png_prompt(image.data) == prompt, "the bytes are this prompt's image"
            assert image.path is not None and image.path.exists()
            sidecar = json.loads(image.path.with_suffix(".json").read_text(encoding="utf-8"))
            assert sidecar["prompt"] == prompt and sidecar["request_id"] == image.request_id
            assert png_prompt(image.path.read_bytes()) == prompt
            paths.append(image.path)
            ok += 1
        elif len(result) == 0 and len(result.errors) == 1:
            item = result.errors[0]
            assert item.prompt == prompt and isinstance(item.error, MeshImageError)
            assert isinstance(item.error, ServerError | ResponseError), repr(item.error)
            assert (item.error.request_id or "").startswith("req_")
            failed[type(item.error).__name__] += 1
        else:
            lost.append((prompt, len(result), len(result.errors)))
    duplicates = len(paths) - len(set(paths))
    sent_prompts = Counter(r.json["prompt"] for r in generations)
    assert set(sent_prompts) == set(prompts), "every prompt was sent"
    retried = sum(c - 1 for c in sent_prompts.values())

    REPORT.load.update(
        prompts=PROMPTS,
        requests=len(generations),
        retried_requests=retried,
        items_ok=ok,
        items_failed=dict(failed),
        items_lost=len(lost),
        duplicates=duplicates,
        seconds=round(seconds, 2),
        peak_rss_delta_mib=round(rss["delta"] / 2**20, 1),
        rss_bound_mib=RSS_BOUND // 2**20,
        faults="429 (Retry-After 0.05 s) p=.08, 503 p=.05, "
        "500 p=.03, corrupt_b64 p=.03, latency 0.15 s p=.05 (seeded)",
    )
    REPORT.used = True
    assert lost == [] and duplicates == 0
    assert ok + sum(failed.values()) == PROMPTS
    assert ok >= PROMPTS * 0.8 and failed, (ok, failed)
    assert retried > 0, "the injected 429/503 were retried"
    assert len(generations) == PROMPTS + retried
    assert rss["delta"] < RSS_BOUND, f"RSS grew {rss['delta'] / 2**20:.0f} MiB"
    assert server.max_in_flight <= 8, "concurrency bound respected"
