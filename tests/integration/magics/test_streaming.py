"""Streaming in a cell: partial images update one display in place, then the grid replaces it."""

from __future__ import annotations

import re
from typing import Any

import mesh_magic
from mesh_magic.server import Fault
from tests.support.images import inline_images
from tests.support.published import Publications
from tests.support.servers import FAST_MODEL, OPENAI_MODEL, OTHER_MODEL, TINY

_PARTIAL_INDEX = re.compile(r'data-partial-index="(\d+)"')


def test_partials_update_one_display_in_order_then_the_grid(
    server: Any, shell: Any, published: Publications
) -> None:
    # 3 partials spread over the latency: one every 0.4 s, the display polls every 0.1 s.
    server.latency = 1.6
    shell.run_cell(
        f"%%meshimg --stream -m {OPENAI_MODEL} -s {TINY} -p partial_images=3 -o res\n"
        "A snail racing a tortoise, watercolour"
    )
    result = shell.user_ns["res"]
    assert len(result) == 1 and not result.errors and not result[0].partial
    assert result[0].source == "stream"

    first, *updates = list(published)
    assert not first.update and first.display_id and first.is_progress
    assert all(u.update and u.display_id == first.display_id for u in updates)
    shown = []
    for item in published.progress:
        indexes = [int(i) for i in _PARTIAL_INDEX.findall(item.html)]
        if indexes and (not shown or shown[-1] != indexes[0]):
            shown.append(indexes[0])
            # Each partial is a real (small) image.
            (thumb,) = inline_images(item.html)
            assert max(thumb.size) <= 128
    print(f"\npartial_image_index sequence shown: {shown}; {len(published)} publications")
    # In partial_image_index order, up to the last one (normally all three: [0, 1, 2]; a
    # machine too busy to redraw within 0.4 s may merge two updates, never reorder them).
    assert shown == sorted(set(shown)) and len(shown) >= 2 and shown[-1] == 2
    last = published[-1]
    assert last.is_grid and not last.is_progress  # the grid replaced the progress in place
    assert len(inline_images(last.html)) == 1
    assert published.index(last) == len(published) - 1 and len(published.grids) == 1


def test_mesh_keepalive_chunks_then_final_data(server: Any, published: Publications, shell: Any) -> None:
    server.latency = 0.5  # a 'processing' chunk every 0.1 s before the final one
    shell.run_cell(f"%%meshimg --stream -m {FAST_MODEL} -s {TINY} -o res\nA lighthouse")
    result = shell.user_ns["res"]
    assert len(result) == 1 and result[0].source == "stream" and not result.errors
    assert result[0].width == 64


def test_broken_stream_tile_in_the_grid(server: Any, shell: Any, published: Publications) -> None:
    server.add_fault(Fault(kind="stream_break", model=OPENAI_MODEL))
    shell.run_cell(
        f"%%meshimg --stream -m {OPENAI_MODEL},{FAST_MODEL} -s {TINY} "
        "-p partial_images=2 -o res\nA bridge at dawn"
    )
    result = shell.user_ns["res"]
    assert sorted((im.model, im.partial) for im in result) == [(FAST_MODEL, False), (OPENAI_MODEL, True)]
    grid = published.grids[-1]
    assert "partial (stream failed)" in grid.html and "⚠" in grid.html
    assert len(inline_images(grid.html)) == 2


def test_mesh_style_error_mid_stream_is_reported(server: Any, shell: Any, published: Publications) -> None:
    server.add_fault(
        Fault(kind="stream_error", model=FAST_MODEL, message="Upstream renderer crashed mid-way.")
    )
    shell.run_cell(f"%%meshimg --stream -m {FAST_MODEL},{OTHER_MODEL} -s {TINY} -o res\nA paper crane")
    result = shell.user_ns["res"]
    assert [im.model for im in result] == [OTHER_MODEL]
    (failure,) = result.errors
    assert failure.model == FAST_MODEL
    assert isinstance(failure.error, mesh_magic.ServerError)
    assert "Upstream renderer crashed mid-way." in str(failure.error)
    assert failure.error.request_id
    assert "Upstream renderer crashed mid-way." in published.grids[-1].html
