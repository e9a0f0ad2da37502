"""notebooks/panel.ipynb runs in a real kernel against a MeshServer found through the env: generate, edit."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mesh_magic.server import MeshServer
from tests.support.paths import NOTEBOOKS
from tests.support.servers import generation_bodies

NOTEBOOK = NOTEBOOKS / "panel.ipynb"


def _stream_text(cell: nbformat.NotebookNode) -> str:
    return "".join(
        out.get("text", "") for out in cell.get("outputs", ()) if out.get("output_type") == "stream"
    )


def test_the_notebook_is_saved_without_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    assert not any("127.0.0.1" in cell.source or "http://" in cell.source for cell in nb.cells)


def test_the_notebook_runs_and_generates(meshapi_env: MeshServer, tmp_path: Path) -> None:
    # `meshapi_env` put MESHAPI_BASE_URL/MESHAPI_API_KEY in os.environ: the kernel
    # inherits them, exactly as a user's shell environment would reach their kernel.
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    texts = [_stream_text(cell) for cell in nb.cells if cell.cell_type == "code"]
    summary = next(t for t in texts if "generation(s) so far" in t)
    assert "1 generation(s) so far" in summary and "2 images, 0 errors" in summary
    assert "sizes seen by the callback: ['512x512', '512x512']" in summary
    # The edit section: both images of the generation edited from the first one.
    edited = next(t for t in texts if "->" in t)
    assert edited.splitlines() == ["edit of the openai/gpt-image-1 image -> 512x512"] * 2
    assert any("kernel answered: panel busy=False, results so far=2" in t for t in texts)
    [body] = generation_bodies(meshapi_env)
    assert body["n"] == 2 and body["size"] == "512x512" and body["seed"] == 42
    [edit] = [r.json for r in meshapi_env.requests if r.path == "/v1/images/edits"]
    assert edit["operation"] == "edit" and edit["prompt"] == "The same lighthouse under a stormy sky"
    assert edit["image"].startswith("data:image/") and "quality" not in edit
    # The panel itself is a widget view in the output, not a text repr.
    shown = [
        out
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if "application/vnd.jupyter.widget-view+json" in out.get("data", {})
    ]
    assert shown
