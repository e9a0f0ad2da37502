"""Execute the example notebooks in a real kernel against the test server and decode their images."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.support.images import inline_images
from tests.support.paths import NOTEBOOKS
from tests.support.servers import generations

DISPLAY_MAX_PX = 256  # what both notebooks configure


def _execute(name: str, workdir: Path) -> Any:
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    errors = [
        out for cell in notebook.cells for out in cell.get("outputs", []) if out["output_type"] == "error"
    ]
    assert not errors, errors
    return notebook


def _cell(notebook: Any, startswith: str) -> Any:
    (cell,) = [
        c for c in notebook.cells if c.cell_type == "code" and c.source.lstrip().startswith(startswith)
    ]
    return cell


def _html(cell: Any) -> str:
    htmls = [out["data"]["text/html"] for out in cell.outputs if "text/html" in out.get("data", {})]
    assert len(htmls) == 1, [out["output_type"] for out in cell.outputs]
    return htmls[0]


def _grid(cell: Any) -> tuple[str, dict[str, Any]]:
    (out,) = [o for o in cell.outputs if "mesh_magic" in o.get("metadata", {})]
    return out["data"]["text/html"], out["metadata"]["mesh_magic"]


def _check_grid(cell: Any, rows: list[tuple[str, str]], per_row: int, errors: int = 0) -> str:
    html, meta = _grid(cell)
    assert [m["model"] for m in meta["rows"]] == [m for _, m in rows]
    assert [
        p.startswith(start) for p, (start, _) in zip([m["prompt"] for m in meta["rows"]], rows, strict=True)
    ] == [True] * len(rows)
    counts = Counter(im["row"] for im in meta["images"])
    ok_rows = len(rows) - errors
    assert sorted(counts.values()) == [per_row] * ok_rows
    assert len(meta["errors"]) == errors
    images = inline_images(html)
    assert len(images) == per_row * ok_rows
    assert all(max(im.size) <= DISPLAY_MAX_PX for im in images)
    return html


@pytest.mark.timeout(120)
def test_compare_models_notebook(meshapi_env: Any, tmp_path: Path) -> None:
    notebook = _execute("compare_models.ipynb", tmp_path)
    gpt, imagen, flux = "openai/gpt-image-1", "google/imagen-4", "black-forest-labs/flux-1.1-pro"
    _check_grid(
        _cell(notebook, "%%meshimg -m openai/gpt-image-1,google"),
        [
            ("A red fox", gpt),
            ("A red fox", imagen),
            ("A red fox", flux),
            ("A hand-painted", gpt),
            ("A hand-painted", imagen),
            ("A hand-painted", flux),
        ],
        per_row=1,
    )
    html = _check_grid(
        _cell(notebook, "%%meshimg -m google/imagen-4,openai/dall-e-3"),
        [("A tiny lighthouse", imagen), ("A tiny lighthouse", "openai/dall-e-3")],
        per_row=2,
    )
    assert html.count("one image per request") == 1
    html = _check_grid(
        _cell(notebook, "%%meshimg -m google/imagen-4,google/imagen-40"),
        [("A bowl", imagen), ("A bowl", "google/imagen-40")],
        per_row=1,
        errors=1,
    )
    assert "not found" in html
    _check_grid(
        _cell(notebook, "import mesh_magic"),
        [("A paper boat", gpt), ("A paper boat", "stability/sd-3.5-large")],
        per_row=1,
    )
    # It really ran against the server: 6 + (2 + 1 + 2 single) + 2 + 2 requests.
    assert len(generations(meshapi_env)) >= 14


@pytest.mark.timeout(120)
def test_bulk_notebook(meshapi_env: Any, tmp_path: Path) -> None:
    notebook = _execute("bulk.ipynb", tmp_path)
    table = _html(_cell(notebook, "import base64"))
    assert table.count("<tr>") == 1 + 6
    thumbs = inline_images(table)
    assert len(thumbs) == 6 and all(max(im.size) <= DISPLAY_MAX_PX for im in thumbs)
    # One row per prompt, in input order, each with its image.
    animals = re.findall(r"<tr><td><img [^>]*></td><td>([^<]+)</td>", table)
    assert animals == ["red panda", "snow owl", "pink axolotl", "tortoise", "hedgehog", "octopus"]
    _check_grid(
        _cell(notebook, "results[2]"), [("A pink axolotl", "black-forest-labs/flux-schnell")], per_row=1
    )
    summary = _cell(notebook, "images = sum(")
    assert "".join(out.get("text", "") for out in summary.outputs) == "6 prompts, 6 images, 0 failed\n"
    resumed = "".join(out.get("text", "") for out in _cell(notebook, "again =").outputs)
    assert resumed == "all from the store: True\nsame images: True\n"
    # Six prompts, six requests: the second run came from the store.
    assert len(generations(meshapi_env)) == 6


@pytest.mark.parametrize("name", ["compare_models.ipynb", "bulk.ipynb"])
def test_saved_copy_is_executed_small_and_clean(name: str) -> None:
    import nbformat

    path = NOTEBOOKS / name
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)  # saved executed, with outputs
    outputs = [out for c in code for out in c.outputs]
    assert not [out for out in outputs if out["output_type"] == "error"]
    text = path.read_text()
    assert path.stat().st_size < 300 * 1024
    assert not re.search(r"rsk_[A-Za-z0-9_]{6,}", text)  # no key
    assert "127.0.0.1" not in text and "MESHAPI_BASE_URL=" not in text
    images = [im for out in outputs for im in inline_images(out.get("data", {}).get("text/html", ""))]
    assert images and all(max(im.size) <= DISPLAY_MAX_PX for im in images)
