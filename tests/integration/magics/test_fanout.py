"""Fan-out through the one engine: prompts x models x n run concurrently, bounded, per-item errors."""

from __future__ import annotations

import time
from typing import Any

from mesh_magic.server import Fault
from tests.support.images import inline_images
from tests.support.published import Publications
from tests.support.servers import FAST_MODEL, OTHER_MODEL, SINGLE_IMAGE_MODEL, TINY, generations


def _cell(options: str, prompts: list[str]) -> str:
    return f"%%meshimg {options}\n" + "\n---\n".join(prompts)


def _warm(shell: Any, server: Any) -> None:
    # First use in a process pays imports and connection setup; the timings measure fan-out.
    shell.run_cell(f"%meshimg -s {TINY} --no-display warm-up")
    server.reset()


def test_eight_slow_requests_overlap(server: Any, shell: Any) -> None:
    _warm(shell, server)
    server.latency = 0.3
    prompts = [f"A paper lantern, number {i}" for i in range(4)]
    started = time.perf_counter()
    shell.run_cell(_cell(f"-m {FAST_MODEL},{OTHER_MODEL} -s {TINY} -o res --no-display", prompts))
    elapsed = time.perf_counter() - started
    print(f"\n8 requests x 300 ms server latency: {elapsed:.3f} s (serial would be >= 2.4 s)")
    result = shell.user_ns["res"]
    assert len(result) == 8 and not result.errors
    assert len(result.rows) == 8  # one row per prompt x model, in grid order
    assert [r[0] for r in result.rows] == [p for p in prompts for _ in range(2)]
    assert [im.row for im in result] == list(range(8))
    assert len(generations(server)) == 8
    assert server.max_in_flight == 8
    assert elapsed < 1.2


def test_concurrency_setting_is_a_hard_bound(server: Any, shell: Any) -> None:
    _warm(shell, server)
    server.latency = 0.2
    shell.run_line_magic("config", "MeshImg.concurrency = 2")
    prompts = [f"A glass marble, colour {i}" for i in range(3)]
    started = time.perf_counter()
    shell.run_cell(_cell(f"-m {FAST_MODEL},{OTHER_MODEL} -s {TINY} -o res --no-display", prompts))
    elapsed = time.perf_counter() - started
    print(f"\n6 requests x 200 ms, concurrency=2: {elapsed:.3f} s, peak in flight {server.max_in_flight}")
    assert len(shell.user_ns["res"]) == 6
    assert len(generations(server)) == 6
    assert server.max_in_flight == 2
    assert elapsed >= 3 * 0.2 * 0.95  # three waves of two


def test_one_failing_model_gives_an_error_tile_and_the_rest(
    server: Any, shell: Any, published: Publications
) -> None:
    server.add_fault(
        Fault(kind="status", status=500, model=OTHER_MODEL, times=-1, message="The upstream GPU caught fire.")
    )
    shell.run_cell(_cell(f"-m {FAST_MODEL},{OTHER_MODEL} -n 2 -s {TINY} -o res", ["A red kite"]))
    result = shell.user_ns["res"]
    assert [im.model for im in result] == [FAST_MODEL, FAST_MODEL]
    assert len(result.errors) == 1
    failure = result.errors[0]
    assert failure.model == OTHER_MODEL and failure.row == 1
    assert failure.error.status == 500 and "GPU caught fire" in str(failure.error)
    # A 500 may be billed: never retried silently.
    assert len(generations(server)) == 2
    (grid,) = published.grids
    assert len(inline_images(grid.html)) == 2
    assert grid.html.count("⚠") == 1 and "GPU caught fire" in grid.html


def test_single_image_model_falls_back_to_n_requests_and_says_so_once(
    server: Any, shell: Any, published: Publications
) -> None:
    shell.run_cell(
        _cell(f"-m {SINGLE_IMAGE_MODEL} -n 3 -s {TINY} -p seed=7 -o res", ["A blue door", "A green door"])
    )
    result = shell.user_ns["res"]
    assert not result.errors
    assert [(im.row, im.index) for im in result] == [(r, i) for r in (0, 1) for i in range(3)]
    # Each single request gets its own seed: six different images, not two times three copies.
    assert len({im.data for im in result}) == 6
    bodies = [r.json for r in generations(server)]
    singles = [b for b in bodies if b["n"] == 1]
    assert sorted(b["seed"] for b in singles) == [7, 7, 8, 8, 9, 9]
    assert 1 <= len(bodies) - len(singles) <= 2  # the rejected n=3 attempts
    assert len(result.notes) == 1 and "one image per request" in result.notes[0]
    (grid,) = published.grids
    assert grid.html.count("one image per request") == 1
