"""Live progress in the cell for slow calls, replaced in place (same display id) by the grid."""

from __future__ import annotations

from typing import Any

from tests.support.images import inline_images
from tests.support.published import Publications
from tests.support.servers import FAST_MODEL, TINY


def test_slow_call_shows_progress_then_the_grid_in_its_place(
    server: Any, shell: Any, published: Publications
) -> None:
    server.latency = 1.5
    shell.run_cell(f"%%meshimg -m {FAST_MODEL} -s {TINY} -n 2\nA slow sunrise over dunes")
    first = published[0]
    assert first.is_progress and not first.update and first.display_id
    assert "0/1 requests" in first.html and "0/2 images" in first.html
    assert "⏳" in first.html  # per-item status
    assert "0/1 requests" in first.data["text/plain"]
    # Everything after is an update of that same display; the last one is the grid.
    assert all(p.update and p.display_id == first.display_id for p in published[1:])
    last = published[-1]
    assert last.is_grid and not last.is_progress
    assert len(inline_images(last.html)) == 2
    assert len(published.grids) == 1  # not shown a second time by the displayhook
    print(f"\nprogress publications: {len(published.progress)}, then the grid")


def test_fast_call_shows_no_progress(server: Any, shell: Any, published: Publications) -> None:
    shell.run_cell(f"%%meshimg -m {FAST_MODEL} -s {TINY}\nA quick sketch")
    assert not published.progress
    (grid,) = published
    assert grid.is_grid and not grid.update
