"""The teacher's workflow: notebooks/teaching_replay.ipynb re-runs offline from its shipped store.

Executed in a real kernel (nbclient), as a student or CI would: no key, the base URL
pointing nowhere (or at a live server, as nbval does in scripts/test, which must then
see no request). Every image shown must be byte-identical to a file of the shipped store.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.support.notebooks import error_outputs, output_images, run_notebook
from tests.support.paths import NOTEBOOKS
from tests.support.store_files import all_files, sha256, stored_images

NOTEBOOK = NOTEBOOKS / "teaching_replay.ipynb"
SHIPPED = NOTEBOOKS / "teaching_store"

CHECK_CELL = """\
import hashlib, json
from mesh_magic.core.results import ImageResult
print(json.dumps([[str(im.path), hashlib.sha256(im.data).hexdigest(), im.cached]
                  for value in Out.values() if isinstance(value, ImageResult) for im in value]))
"""


def shipped_hashes() -> set[str]:
    return {sha256(p.read_bytes()) for p in stored_images(SHIPPED)}


def test_the_shipped_notebook_and_store_are_consistent_and_small() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert error_outputs(nb) == []
    text = NOTEBOOK.read_text()
    assert "cache=replay" in text and "store_dir=teaching_store" in text
    assert not re.search(r"rsk_[A-Za-z0-9]", text)  # no key anywhere
    assert "/work/" not in text and "/tmp/" not in text  # no machine paths in outputs
    images = stored_images(SHIPPED)
    assert 3 <= len(images) <= 8
    assert sum(p.stat().st_size for p in all_files(SHIPPED)) < 1_000_000
    for path in images:  # every image has a sidecar that vouches for its bytes
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["sha256"] == sha256(path.read_bytes()) and meta["prompt"]
    # The saved outputs show exactly the shipped images.
    assert {sha256(raw) for raw in output_images(nb)} == shipped_hashes()


@pytest.mark.parametrize("network", ["nowhere", "live-server"])
def test_replay_reruns_offline_with_byte_identical_images(
    network: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    folder = tmp_path / "course"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    shutil.copytree(SHIPPED, folder / "teaching_store")
    before = {p.relative_to(folder): p.read_bytes() for p in all_files(folder / "teaching_store")}
    server: Any = None
    if network == "nowhere":
        monkeypatch.setenv("MESHAPI_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    else:  # like scripts/test's nbval run: a live server and a key in the environment
        server = request.getfixturevalue("meshapi_server")
        server.reset()
        monkeypatch.setenv("MESHAPI_BASE_URL", server.base_url)
        monkeypatch.setenv("MESHAPI_API_KEY", server.api_key)
    monkeypatch.setenv("MESHIMG_CACHE", "off")  # the notebook's own config must win

    nb = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
    nb.cells.append(nbformat.v4.new_code_cell(CHECK_CELL))
    run_notebook(nb, folder)

    assert error_outputs(nb) == []
    everything = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "Could not connect" not in everything and "CacheMissError" not in everything
    shown = output_images(nb)
    assert len(shown) == len(stored_images(SHIPPED))
    assert {sha256(raw) for raw in shown} == shipped_hashes()
    results = json.loads("".join(nb.cells[-1].outputs[0]["text"]))
    assert len(results) == len(shown)
    for path, digest, cached in results:
        file = Path(path)
        assert file.is_relative_to(folder / "teaching_store") and cached
        assert sha256(file.read_bytes()) == digest
    # Replay wrote nothing: the store folder is exactly what was shipped.
    after = {p.relative_to(folder): p.read_bytes() for p in all_files(folder / "teaching_store")}
    assert after == before
    if server is not None:
        assert server.requests == []
