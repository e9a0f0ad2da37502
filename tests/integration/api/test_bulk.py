"""generate_many: a 429 storm is ridden out with backoff, results keep input order, re-runs resume."""

from __future__ import annotations

import time
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core import bulk as _bulk
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.server import Fault
from tests.support.servers import FAST_MODEL, OTHER_MODEL, SINGLE_IMAGE_MODEL, TINY, generations


@pytest.fixture
def collectors(monkeypatch: pytest.MonkeyPatch) -> list[CallProgress]:
    """The CallProgress of every bulk run (it holds the run's AdaptiveLimit)."""
    seen: list[CallProgress] = []
    original = _bulk.new_progress

    def spy(*args: Any, **kwargs: Any) -> CallProgress:
        collector = original(*args, **kwargs)
        seen.append(collector)
        return collector

    monkeypatch.setattr(_bulk, "new_progress", spy)
    return seen


def test_429_storm_backs_off_recovers_and_completes_in_order(
    server: Any, collectors: list[CallProgress], capsys: pytest.CaptureFixture[str]
) -> None:
    calm_prompts = [f"A calm sea, study {i}" for i in range(40)]
    started = time.perf_counter()
    calm = mesh_magic.generate_many(calm_prompts, model=FAST_MODEL, size=TINY, progress=False)
    calm_elapsed = time.perf_counter() - started
    assert all(len(r) == 1 for r in calm)
    server.reset()

    server.add_fault(Fault(kind="status", status=429, retry_after="0.2", probability=0.5, seed=1, times=-1))
    prompts = [f"A stormy sea, study {i}" for i in range(40)]
    started = time.perf_counter()
    results = mesh_magic.generate_many(prompts, model=FAST_MODEL, size=TINY)
    elapsed = time.perf_counter() - started
    summary = capsys.readouterr().err
    sent = len(generations(server))
    gate = collectors[-1].limit
    assert gate is not None
    print(
        f"\n40 prompts: calm {calm_elapsed:.2f} s; 429 storm {elapsed:.2f} s, {sent} requests, "
        f"limit {gate.ceiling} -> lowest {gate.lowest} ({gate.throttles} cuts) -> {gate.limit}"
    )
    print(summary.strip().splitlines()[-1])

    # Every item, in input order, none failed.
    assert [r.rows[0][0] for r in results] == prompts
    assert [r[0].prompt for r in results] == prompts
    assert all(len(r) == 1 and not r.errors for r in results)
    # The storm happened and slowed the run down ...
    assert sent > 40
    assert elapsed > calm_elapsed + 0.2
    # ... and the gate backed off, then grew back.
    assert gate.throttles >= 1
    assert gate.lowest < gate.ceiling
    assert gate.limit > gate.lowest
    assert "Rate limited" in summary


def test_rerun_resumes_from_the_store_without_new_requests(server: Any) -> None:
    prompts = [f"A tin robot, pose {i}" for i in range(5)]
    first = mesh_magic.generate_many(prompts, model=f"{FAST_MODEL},{OTHER_MODEL}", size=TINY, progress=False)
    assert len(generations(server)) == 10
    server.reset()
    again = mesh_magic.generate_many(prompts, model=f"{FAST_MODEL},{OTHER_MODEL}", size=TINY, progress=False)
    assert generations(server) == []
    assert [[im.data for im in r] for r in again] == [[im.data for im in r] for r in first]
    assert all(im.cached for r in again for im in r)
    assert [r.rows for r in again] == [r.rows for r in first]


def test_rerun_after_a_failure_only_pays_for_what_is_missing(server: Any) -> None:
    server.add_fault(Fault(kind="status", status=500, times=1))
    prompts = [f"A clay pot, angle {i}" for i in range(4)]
    first = mesh_magic.generate_many(prompts, model=FAST_MODEL, size=TINY, concurrency=1, progress=False)
    failed = [i for i, r in enumerate(first) if r.errors]
    assert len(failed) == 1
    server.reset()
    again = mesh_magic.generate_many(prompts, model=FAST_MODEL, size=TINY, progress=False)
    (retry,) = generations(server)
    assert retry.json["prompt"] == prompts[failed[0]]
    assert all(len(r) == 1 and not r.errors for r in again)


def test_one_bad_item_fails_alone(server: Any) -> None:
    server.add_fault(
        Fault(
            kind="status",
            status=400,
            times=1,
            code="content_policy_violation",
            message="This prompt was refused by the safety system.",
        )
    )
    prompts = ["A fox in snow", "   ", "A heron", "A hare", "A badger"]
    results = mesh_magic.generate_many(prompts, model=FAST_MODEL, size=TINY, concurrency=1, progress=False)
    assert [r.rows[0][0] for r in results] == prompts
    # The blank prompt fails alone, before anything is sent for it.
    assert isinstance(results[1].errors[0].error, mesh_magic.InvalidOptionError)
    assert len(results[1]) == 0
    assert len(generations(server)) == 4
    # The refused one (whichever went first) fails alone too.
    refused = [r for r in results if r.errors and r is not results[1]]
    assert len(refused) == 1 and "safety system" in str(refused[0].errors[0].error)
    assert sum(len(r) for r in results) == 3
    assert all(len(r) == 1 for r in results if not r.errors)


def test_bad_options_raise_before_anything_is_sent(server: Any) -> None:
    with pytest.raises(mesh_magic.InvalidOptionError):
        mesh_magic.generate_many(["A cat", "A dog"], n=20, progress=False)
    assert generations(server) == []


def test_rate_limited_item_goes_round_again_after_its_retries(server: Any) -> None:
    # No retries inside the client: only the bulk re-queue through the gate can save the item.
    server.add_fault(Fault(kind="status", status=429, retry_after="0.05", times=2))
    (result,) = mesh_magic.generate_many(
        ["A patient snail"], model=FAST_MODEL, size=TINY, max_retries=0, progress=False
    )
    assert len(result) == 1 and not result.errors
    assert len(generations(server)) == 3


def test_rate_limit_that_never_ends_is_reported_not_raised(server: Any) -> None:
    server.add_fault(Fault(kind="status", status=429, retry_after="0.02", times=-1))
    (result,) = mesh_magic.generate_many(
        ["A stubborn mule"], model=FAST_MODEL, size=TINY, max_retries=0, progress=False
    )
    assert len(result) == 0
    assert isinstance(result.errors[0].error, mesh_magic.RateLimitError)
    assert len(generations(server)) == 1 + _bulk.BULK_RATE_LIMIT_ROUNDS


def test_partly_failed_request_resumes_only_its_missing_images(server: Any) -> None:
    # A one-image-per-request model asked for 4: the server refuses n=4, then four single
    # requests go out and the first two of those are refused.
    server.add_fault(Fault(kind="status", status=400, skip=1, times=2, code="content_policy_violation"))
    prompts = ["A lighthouse in fog"]
    (first,) = mesh_magic.generate_many(prompts, model=SINGLE_IMAGE_MODEL, n=4, seed=40, size="1024x1024")
    assert len(first) == 2 and len(first.errors) == 2
    kept = {im.index: im.data for im in first}
    server.reset()

    (again,) = mesh_magic.generate_many(prompts, model=SINGLE_IMAGE_MODEL, n=4, seed=40, size="1024x1024")
    billed = [r.json for r in generations(server) if r.json["n"] == 1]
    missing = sorted(set(range(4)) - set(kept))
    # The server's log: only the two missing images were asked for, each with its own seed.
    assert sorted(body["seed"] for body in billed) == [40 + i for i in missing]
    assert sorted(im.index for im in again) == [0, 1, 2, 3] and not again.errors
    assert {im.index: im.data for im in again if im.cached} == kept
    server.reset()
    mesh_magic.generate_many(prompts, model=SINGLE_IMAGE_MODEL, n=4, seed=40, size="1024x1024")
    assert generations(server) == []  # complete now: nothing is sent
