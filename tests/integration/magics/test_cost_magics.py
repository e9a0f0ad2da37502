"""Cost through the magics: %meshimg_models filters, %meshimg_cost, a refused cell, the estimate shown."""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError

from mesh_magic.render.tables import ModelTable, SpendTable
from mesh_magic.server import MeshServer
from tests.support.published import Publications
from tests.support.servers import generations
from tests.support.shell import run


def ids(table: ModelTable) -> list[str]:
    return [row[0] for row in table.rows]


def test_models_by_operation_price_and_freeness(shell: Any, server: MeshServer) -> None:
    upscalers = run(shell, "%meshimg_models --op upscale --sort price")
    assert ids(upscalers) == ["google/imagen-4", "stability/sd-3.5-large", "meshapi/data-uri-preview"]
    assert ids(run(shell, "%meshimg_models --free")) == ["stability/sdxl-turbo"]
    cheap = run(shell, "%meshimg_models --max-price 0.03 --sort price")
    assert ids(cheap) == ["stability/sdxl-turbo", "black-forest-labs/flux-schnell", "google/imagen-4"]
    assert ids(run(shell, "%meshimg_models flux --op edit")) == ["black-forest-labs/flux-kontext-pro"]
    text = repr(run(shell, "%meshimg_models --op reference"))
    assert "openai/gpt-image-1" in text and "edit inpaint mix ref" in text
    by_price = ids(run(shell, "%meshimg_models --sort price"))
    assert by_price[0] == "stability/sdxl-turbo" and by_price[-1] == "meshapi/data-uri-preview"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("%meshimg_models --op paint", "Unknown operation 'paint'"),
        ("%meshimg_models --max-price cheap", "max-price must be an amount in US dollars"),
    ],
)
def test_bad_model_filters_are_one_line(shell: Any, server: MeshServer, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        run(shell, line)


def test_a_cell_over_max_cost_is_refused_before_sending(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    run(shell, "%meshimg_config max_cost=0.05")
    with pytest.raises(UsageError) as info:
        run(shell, "%%meshimg -m openai/gpt-image-1,google/imagen-4 -n 2 -s 64x64\na harbor")
    assert "~$0.14 for 4 images, over max_cost $0.05" in str(info.value)
    assert generations(server) == [] and published == []


def test_meshimg_cost_after_a_generation_and_a_cache_hit(
    shell: Any, server: MeshServer, published: Publications
) -> None:
    assert "Nothing spent in this session." in repr(run(shell, "%meshimg_cost"))
    run(shell, "%meshimg_config cache=on")
    cell = "%%meshimg -m google/imagen-4 -n 2 -s 64x64\na kite"
    run(shell, cell)
    run(shell, cell)
    table = run(shell, "%meshimg_cost")
    assert isinstance(table, SpendTable)
    (row,) = table.rows
    assert (row.model, row.images, round(row.usd, 2), row.cached) == ("google/imagen-4", 2, 0.06, 2)
    html = table._repr_html_()
    assert "Spent in this session: $0.06" in html and "<th style='text-align:left'>from cache</th>" in html
    across = run(shell, "%meshimg_cost --all")
    assert [r.images for r in across.rows] == [2] and "the store at" in repr(across)


def test_the_progress_box_shows_the_estimate(shell: Any, server: MeshServer, published: Publications) -> None:
    server.latency = 1.3  # long enough for the progress box (shown after a second)
    run(shell, "%%meshimg -m google/imagen-4 -n 2 -s 64x64\na slow lighthouse")
    assert any("estimated ~$0.06 for 2 images" in p.html for p in published.progress)
    assert "Cost: $0.06 for 2 images" in published.grids[-1].html
