"""Results as data (SPEC 10): to_pandas, export as an imagefolder, one self-contained HTML page."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import mesh_magic
from mesh_magic.core.dataset import COLUMNS
from tests.support.servers import FAST_MODEL, OTHER_MODEL, TINY

SPEC_COLUMNS = [
    "prompt", "revised_prompt", "model", "operation", "size", "width", "height", "seed",
    "cost", "latency_s", "request_id", "created", "path", "sha256",
]  # fmt: skip


def _run() -> list[Any]:
    return mesh_magic.generate_many(
        ["A red kite", "A blue kite"], model=f"{FAST_MODEL},{OTHER_MODEL}", size=TINY, seed=7, progress=False
    )


def test_to_pandas_has_the_spec_columns_and_one_row_per_image(server: Any) -> None:
    results = _run()
    frame = results[0].to_pandas()
    assert list(frame.columns) == SPEC_COLUMNS == list(COLUMNS)
    assert len(frame) == 2
    assert list(frame["model"]) == [FAST_MODEL, OTHER_MODEL]
    assert set(frame["prompt"]) == {"A red kite"}
    assert list(frame["seed"]) == [7, 7]  # --seed / seed= is recorded
    assert list(frame["size"]) == ["64x64", "64x64"] and list(frame["width"]) == [64, 64]
    assert (frame["latency_s"] > 0).all()  # request sent -> image decoded
    assert frame["request_id"].notna().all() and frame["sha256"].str.len().eq(64).all()
    assert all(Path(p).is_file() for p in frame["path"])
    history = mesh_magic.history(10).to_pandas()
    assert list(history.columns) == SPEC_COLUMNS and len(history) == 4
    assert set(history["sha256"]) == {im.sha256 for r in results for im in r}
    assert (history["latency_s"] > 0).all() and list(history["seed"]) == [7] * 4  # from the sidecars


def test_to_pandas_without_pandas_is_a_one_line_error(server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (result,) = mesh_magic.generate_many(["A kite"], model=FAST_MODEL, size=TINY, progress=False)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(mesh_magic.MeshImageError) as caught:
        result.to_pandas()
    assert isinstance(caught.value, mesh_magic.MissingDependencyError)
    assert str(caught.value) == 'to_pandas() needs pandas: pip install "mesh-magic[pandas]"'


def test_export_loads_as_a_datasets_imagefolder(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Hugging Face's caches and config under the test's temp folder, never the user's.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf" / "datasets"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import datasets  # the test extra's; a missing one fails here, it is never skipped

    results = _run()
    images = [im for r in results for im in r]
    folder = mesh_magic.history(10).export(tmp_path / "set")
    lines = (folder / "metadata.jsonl").read_text().splitlines()
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert list(first) == ["file_name", *SPEC_COLUMNS]
    loaded = datasets.load_dataset(
        "imagefolder", data_dir=str(folder), split="train", cache_dir=str(tmp_path / "hf" / "datasets")
    )
    assert loaded.num_rows == 4
    assert set(loaded["sha256"]) == {im.sha256 for im in images}
    assert set(loaded["prompt"]) == {"A red kite", "A blue kite"}
    assert all(img.size == (64, 64) for img in loaded["image"])
    with pytest.raises(mesh_magic.InvalidOptionError, match="already holds an export"):
        results[0].export(folder)


def test_to_html_is_one_self_contained_file_with_every_image(server: Any, tmp_path: Path) -> None:
    results = _run()
    images = [im for r in results for im in r]
    page_path = mesh_magic.history(10).to_html(tmp_path / "share.html")
    page = page_path.read_text()
    sources = re.findall(r'<img [^>]*src="([^"]+)"', page)
    assert len(sources) == len(images) == 4
    for src in sources:
        assert src.startswith("data:image/")
        with Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))) as pil:
            assert pil.size == (64, 64)
    # Nothing by reference: no links, scripts, stylesheets, imports or remote URLs.
    assert not re.search(r"<link|<script|@import|url\(|href=|https?://", page)
    for text in ("A red kite", "A blue kite", FAST_MODEL, OTHER_MODEL, "Parameters", "latency_s"):
        assert text in page
    assert all(im.request_id and im.request_id in page for im in images)


def test_history_magic_writes_the_page(server: Any, shell: Any, tmp_path: Path, capsys: Any) -> None:
    _run()
    target = tmp_path / "history.html"
    shell.run_line_magic("meshimg_history", f"3 --html {target}")
    assert f"Wrote 3 images to {target}" in capsys.readouterr().out
    assert len(re.findall(r'<img [^>]*src="data:image/', target.read_text())) == 3
