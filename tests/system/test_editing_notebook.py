"""notebooks/editing.ipynb in a real kernel against the test server: every operation, decoded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.images import inline_images
from tests.system.test_notebooks import DISPLAY_MAX_PX, _cell, _execute, _grid

EDITS = "/v1/images/edits"


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory, meshapi_server: Any) -> tuple[Any, list[Any]]:
    monkeypatch = pytest.MonkeyPatch()
    meshapi_server.reset()
    monkeypatch.setenv("MESHAPI_BASE_URL", meshapi_server.base_url)
    monkeypatch.setenv("MESHAPI_API_KEY", meshapi_server.api_key or "")
    monkeypatch.setenv("MESHIMG_STORE_DIR", str(tmp_path_factory.mktemp("store")))
    try:
        notebook = _execute("editing.ipynb", tmp_path_factory.mktemp("work"))
        return notebook, list(meshapi_server.requests)
    finally:
        monkeypatch.undo()


def _image_facts(cell: Any) -> dict[str, Any]:
    _, meta = _grid(cell)
    (image,) = meta["images"]
    return image


@pytest.mark.timeout(180)
def test_every_operation_reached_the_server(executed: tuple[Any, list[Any]]) -> None:
    _, requests = executed
    operations = [r.json["operation"] for r in requests if r.path == EDITS]
    assert sorted(operations) == sorted(
        ["edit", "inpaint", "outpaint", "upscale", "remove_background", "mix", "reframe"]
    )
    references = [r.json for r in requests if r.path == "/v1/images/generations" and r.json.get("image")]
    assert len(references) == 1 and references[0]["seed"] == 7
    assert all(r.headers.get("authorization") for r in requests if r.path == EDITS)


def test_the_images_do_what_each_operation_says(executed: tuple[Any, list[Any]]) -> None:
    notebook, _ = executed
    source = _image_facts(_cell(notebook, "%%meshimg -s 512x512 -o harbor"))
    assert (source["width"], source["height"]) == (512, 512)
    upscaled = _image_facts(_cell(notebook, "%meshimg -i harbor --op upscale"))
    assert (upscaled["width"], upscaled["height"]) == (1024, 1024)
    wide = _image_facts(_cell(notebook, "%%meshimg -i harbor --op outpaint"))
    assert wide["width"] > 512 and wide["operation"] == "outpaint"
    reframed = _image_facts(_cell(notebook, "import mesh_magic"))
    assert abs(reframed["width"] / reframed["height"] - 16 / 9) < 0.02
    cutout_html, _ = _grid(_cell(notebook, "%meshimg -i harbor --op remove_background"))
    after = inline_images(cutout_html)[-1]  # before, then after
    assert after.mode == "RGBA" and after.getextrema()[3][0] == 0  # transparent background
    edit_html, edit_meta = _grid(_cell(notebook, "%%meshimg -i harbor -o dusk"))
    assert "mesh-magic-before-after" in edit_html and "edit of harbor" in edit_html
    assert edit_meta["images"][0]["parents"][0]["label"] == "harbor"
    thumbs = [
        im
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        for im in inline_images(o.get("data", {}).get("text/html", ""))
    ]
    assert len(thumbs) >= 20 and all(max(im.size) <= DISPLAY_MAX_PX for im in thumbs)


def test_lineage_is_printed_from_history(executed: tuple[Any, list[Any]]) -> None:
    notebook, _ = executed
    text = "".join(o.get("text", "") for o in _cell(notebook, "for image in mesh_magic.history").outputs)
    for line in ("upscale", "remove_background", "outpaint", "mix", "reframe", "inpaint"):
        assert line in text
    assert "from harbor + moon" in text  # the mix names both its sources
    history_html = "".join(
        o.get("data", {}).get("text/html", "") for o in _cell(notebook, "%meshimg_history 4").outputs
    )
    assert "mesh-magic-parents" in history_html  # small thumbnails of what each edit came from


def test_the_saved_copy_is_executed_light_and_clean() -> None:
    from tests.system.test_notebooks import test_saved_copy_is_executed_small_and_clean

    test_saved_copy_is_executed_small_and_clean("editing.ipynb")
    assert (Path(__file__).parents[2] / "notebooks" / "editing.ipynb").stat().st_size < 300 * 1024
