"""notebooks/quickstart.ipynb: executed in a real kernel against the loopback MeshAPI server.

nbval (scripts/test) only proves the cells run and that tagged text outputs match; it
never looks at images. Here nbclient runs the notebook in an ipykernel whose environment
points MESHAPI_BASE_URL / MESHAPI_API_KEY at the `meshapi_server` fixture, then every
image the notebook shows is decoded with Pillow, the server's request log is compared with
what the cells asked for, and the copy saved in the repository is checked too (executed,
no errors, images that decode, small, no key).
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from mesh_magic.testing import TEST_KEY
from tests.support.paths import NOTEBOOKS

NOTEBOOK = NOTEBOOKS / "quickstart.ipynb"

# The saved notebook measured 248 KB (18 thumbnails at 384 px); the bound leaves room to grow.
SAVED_SIZE_LIMIT = 512 * 1024
DISPLAY_MAX_PX = 384  # what the notebook sets with %config MeshImg.display_max_px
HISTORY_MAX_PX = 256  # %meshimg_history shows smaller thumbnails

_IMG_TAG = re.compile(r'<img src="data:(image/[a-z+]+);base64,([A-Za-z0-9+/=]+)"([^>]*)>')
_ATTR = re.compile(r'\b(width|height)="(\d+)"')
_KEY_LIKE = re.compile(r"rsk_[A-Za-z0-9_\-]{6,}")
_REQUEST_ID = re.compile(r"^req_[0-9A-Za-z]+$")

# Every code cell that shows images: a fragment of its source -> what it must show.
#   images: thumbnails; models: the mesh_magic metadata rows' models; errors: error tiles.
EXPECTED: dict[str, dict[str, Any]] = {
    "%%meshimg -s 1024x1024": {"images": 1, "models": ["openai/gpt-image-1"]},
    "%meshimg -s square A paper boat": {"images": 1, "models": ["openai/gpt-image-1"]},
    "%%meshimg -n 3 -s square": {"images": 3, "models": ["openai/gpt-image-1"]},
    "A lighthouse on a cliff": {"images": 2, "models": ["openai/gpt-image-1"] * 2},
    "A {style} painting of a {animal}": {"images": 1, "models": ["openai/gpt-image-1"]},
    "-m openai/gpt-image-1,google/imagen-4": {
        "images": 2,
        "models": ["openai/gpt-image-1", "google/imagen-4"],
    },
    "-s square -o result": {"images": 1, "models": ["openai/gpt-image-1"]},
    "-p seed=42 -o seeded": {"images": 1, "models": ["openai/gpt-image-1"]},
    "--save quickstart_images": {"images": 1, "models": ["openai/gpt-image-1"]},
    "koi = mesh_magic.generate(": {"images": 1, "models": ["openai/gpt-image-1"]},
    "-m google/imagen-4,no-such/model": {
        "images": 1,
        "models": ["google/imagen-4", "no-such/model"],
        "errors": 1,
    },
    "%meshimg_history 3": {"images": 3, "max_px": HISTORY_MAX_PX},
}

# (model, prompt, extra body fields) of every generation the notebook sends, in any order.
EXPECTED_BODIES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "openai/gpt-image-1",
        "A futuristic city skyline at sunset, vibrant colors, digital art",
        {"size": "1024x1024"},
    ),
    ("openai/gpt-image-1", "A paper boat on a quiet pond, morning mist", {"size": "1024x1024"}),
    (
        "openai/gpt-image-1",
        "A cozy reading nook with a sleeping cat, warm afternoon light",
        {"n": 3, "size": "1024x1024"},
    ),
    ("openai/gpt-image-1", "A lighthouse on a cliff, stormy sea", {"size": "1024x1024"}),
    ("openai/gpt-image-1", "The same lighthouse on a calm summer evening", {"size": "1024x1024"}),
    ("openai/gpt-image-1", "A watercolor painting of a red panda reading a book", {}),
    ("openai/gpt-image-1", "A bowl of ramen, studio food photography", {"size": "1024x1024"}),
    ("google/imagen-4", "A bowl of ramen, studio food photography", {"size": "1024x1024"}),
    ("openai/gpt-image-1", "A hot air balloon over lavender fields", {}),
    ("openai/gpt-image-1", "A tiny robot watering a bonsai tree", {"seed": 42}),
    ("openai/gpt-image-1", "A snowy mountain village at night, glowing windows", {}),
    ("openai/gpt-image-1", "A koi pond in autumn, top view", {"seed": 7, "size": "1024x1024"}),
    ("openai/gpt-image-1", "A red apple", {}),
    ("openai/gpt-image-1", "A green pear", {}),
    ("no-such/model", "A cat", {}),
    ("google/imagen-4", "A paper lantern festival at dusk", {}),
    ("no-such/model", "A paper lantern festival at dusk", {}),
]


@dataclass
class Run:
    nb: Any
    workdir: Path
    store: Path
    requests: list[Any]
    seconds: float
    first_image_seconds: float | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _kernel_env(base_url: str, key: str, store: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MESHAPI_", "MESH_API_", "MESHIMG_"))}
    env.update(MESHAPI_BASE_URL=base_url, MESHAPI_API_KEY=key, MESHIMG_STORE_DIR=str(store))
    return env


@pytest.fixture(scope="module")
def executed(meshapi_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The quickstart run once in a python3 kernel, in a scratch copy of its folder."""
    workdir = tmp_path_factory.mktemp("quickstart")
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
    store = workdir / "store"
    nb = nbformat.read(workdir / NOTEBOOK.name, as_version=4)
    meshapi_server.reset()
    meshapi_server.latency = 0.0
    marks: dict[str, float] = {}

    def kernel_ready(**_: Any) -> None:
        marks["ready"] = time.monotonic()

    def cell_done(cell: Any, **_: Any) -> None:
        if "first_image" not in marks and any(_images_of(o) for o in cell.get("outputs", [])):
            marks["first_image"] = time.monotonic()

    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        allow_errors=False,
        resources={"metadata": {"path": str(workdir)}},
        on_notebook_start=kernel_ready,
        on_cell_executed=cell_done,
    )
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as patch:
        # This venv's "python3" kernel, even if a personal kernelspec of that name exists.
        jupyter_path = [str(Path(sys.prefix) / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")]
        patch.setenv("JUPYTER_PATH", os.pathsep.join(p for p in jupyter_path if p))
        client.execute(env=_kernel_env(meshapi_server.base_url, TEST_KEY, store))
    seconds = time.monotonic() - started
    requests = list(meshapi_server.requests)
    first = marks["first_image"] - marks["ready"] if {"first_image", "ready"} <= set(marks) else None
    return Run(nb, workdir, store, requests, seconds, first)


@pytest.fixture(scope="module")
def saved() -> Any:
    return nbformat.read(NOTEBOOK, as_version=4)


# -- helpers ---------------------------------------------------------------------------


@dataclass
class Shown:
    mime: str
    image: Image.Image
    attr_size: tuple[int, int] | None


def _images_of(output: dict[str, Any]) -> list[Shown]:
    """Decode every image an output displays: <img> data URIs in HTML and image/* bundles."""
    data = output.get("data") or {}
    found: list[Shown] = []
    for mime, b64, attrs in _IMG_TAG.findall(str(data.get("text/html", ""))):
        sizes = dict(_ATTR.findall(attrs))
        attr = (int(sizes["width"]), int(sizes["height"])) if len(sizes) == 2 else None
        found.append(Shown(mime, _decode(base64.b64decode(b64, validate=True)), attr))
    for mime in ("image/png", "image/jpeg", "image/webp", "image/gif"):
        if mime in data:
            found.append(Shown(mime, _decode(base64.b64decode(data[mime])), None))
    return found


def _decode(raw: bytes) -> Image.Image:
    with Image.open(io.BytesIO(raw)) as probe:
        probe.verify()  # structure and checksums
    image = Image.open(io.BytesIO(raw))
    image.load()  # every pixel decodes
    return image


def _code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def _cell(nb: Any, fragment: str) -> Any:
    matches = [c for c in _code_cells(nb) if fragment in c.source]
    assert len(matches) == 1, f"expected one code cell containing {fragment!r}, found {len(matches)}"
    return matches[0]


def _expected_for(cell: Any) -> dict[str, Any] | None:
    hits = [spec for fragment, spec in EXPECTED.items() if fragment in cell.source]
    assert len(hits) <= 1, f"cell matches several expectations: {cell.source[:60]!r}"
    return hits[0] if hits else None


def _mesh_metadata(cell: Any) -> list[dict[str, Any]]:
    return [o["metadata"]["mesh_magic"] for o in cell.outputs if "mesh_magic" in (o.get("metadata") or {})]


def _text(cell: Any) -> str:
    parts = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out:
            parts.append(str(out.data.get("text/plain", "")))
    return "\n".join(parts)


def _check_images(nb: Any) -> int:
    """Every image-showing cell shows what its flags ask for, as sane thumbnails; returns the count."""
    total = 0
    for cell in _code_cells(nb):
        shown = [s for out in cell.outputs for s in _images_of(out)]
        spec = _expected_for(cell)
        if spec is None:
            assert not shown, f"unexpected images in {cell.source[:60]!r}"
            continue
        assert len(shown) == spec["images"], f"{cell.source[:60]!r}: {len(shown)} images shown"
        max_px = spec.get("max_px", DISPLAY_MAX_PX)
        for item in shown:
            img = item.image
            assert Image.MIME[img.format] == item.mime, (img.format, item.mime)
            assert max(img.size) <= max_px, f"{cell.source[:40]!r}: thumbnail {img.size} > {max_px}"
            assert min(img.size) >= 64, img.size
            if item.attr_size is not None:
                assert item.attr_size == img.size
            low, high = img.convert("L").getextrema()
            assert high - low > 40, f"{cell.source[:40]!r}: nearly uniform image ({low}..{high})"
            colours = img.convert("RGB").getcolors(maxcolors=4096)
            assert colours is None or len(colours) > 50, "too few colours for a real picture"
        html_out = "".join(str(o.get("data", {}).get("text/html", "")) for o in cell.outputs)
        assert html_out.count("⚠") == spec.get("errors", 0), "error tiles"
        total += len(shown)
    return total


# -- the executed run --------------------------------------------------------------------


def test_runs_without_error_outputs(executed: Run) -> None:
    errors = [
        (c.source[:50], o.get("ename"))
        for c in _code_cells(executed.nb)
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    assert all(c.execution_count for c in _code_cells(executed.nb))
    assert executed.seconds < 60, f"the quickstart took {executed.seconds:.1f} s"
    assert executed.first_image_seconds is not None
    assert executed.first_image_seconds < 15, executed.first_image_seconds


def test_every_image_decodes_and_matches_the_flags(executed: Run) -> None:
    assert _check_images(executed.nb) == sum(spec["images"] for spec in EXPECTED.values())


def test_output_metadata_names_models_prompts_and_request_ids(executed: Run) -> None:
    for fragment, spec in EXPECTED.items():
        cell = _cell(executed.nb, fragment)
        metas = _mesh_metadata(cell)
        assert len(metas) == 1, f"{fragment!r}: {len(metas)} outputs with mesh_magic metadata"
        meta = metas[0]
        images = meta["images"]
        assert len(images) == spec["images"]
        for image in images:
            assert _REQUEST_ID.match(image["request_id"] or ""), image
            assert image["width"] >= 64 and image["height"] >= 64
            assert image["mime_type"].startswith("image/")
        assert set(meta["request_ids"]) >= {im["request_id"] for im in images}
        assert all(_REQUEST_ID.match(rid) for rid in meta["request_ids"])
        if "models" in spec:
            assert [row["model"] for row in meta["rows"]] == spec["models"]
            assert all(row["prompt"] for row in meta["rows"])
        assert len(meta["errors"]) == spec.get("errors", 0)
    compare = _mesh_metadata(_cell(executed.nb, "-m openai/gpt-image-1,google/imagen-4"))[0]
    assert {row["prompt"] for row in compare["rows"]} == {"A bowl of ramen, studio food photography"}
    assert [im["model"] for im in compare["images"]] == ["openai/gpt-image-1", "google/imagen-4"]
    interpolated = _mesh_metadata(_cell(executed.nb, "{style} painting"))[0]
    assert interpolated["rows"][0]["prompt"] == "A watercolor painting of a red panda reading a book"
    mixed = _mesh_metadata(_cell(executed.nb, "no-such/model -s square"))[0]
    assert mixed["errors"][0]["status"] == 404 and mixed["errors"][0]["model"] == "no-such/model"


def test_server_saw_the_requests_the_cells_asked_for(executed: Run) -> None:
    gens = [r for r in executed.requests if r.path == "/v1/images/generations"]
    assert all(r.method == "POST" for r in gens)
    api_calls = [r for r in executed.requests if r.path.startswith(("/v1/images", "/v1/models"))]
    assert all(r.headers.get("authorization") == f"Bearer {TEST_KEY}" for r in api_calls)
    # Image links are fetched without the key.
    assert all("authorization" not in r.headers for r in executed.requests if r.path.startswith("/v1/files"))
    bodies = [r.json for r in gens]
    assert Counter((b["model"], b["prompt"]) for b in bodies) == Counter(
        (model, prompt) for model, prompt, _ in EXPECTED_BODIES
    )
    for model, prompt, fields in EXPECTED_BODIES:
        body = next(b for b in bodies if (b["model"], b["prompt"]) == (model, prompt))
        for name, value in fields.items():
            assert body[name] == value, (prompt, name, body)
        assert ("response_format" in body) == ("response_format" in fields), body  # only if asked
        assert body.get("n", 1) == fields.get("n", 1)
        assert "seed" not in body or "seed" in fields, body
    assert any(r.method == "GET" and r.path == "/v1/models" for r in executed.requests)


def test_text_outputs(executed: Run) -> None:
    nb = executed.nb
    inspect = _text(_cell(nb, "image = result[0]"))
    assert "model: openai/gpt-image-1" in inspect
    assert "size: 1024 x 1024 image/png" in inspect
    assert re.search(r"request id: req_\w+", inspect)
    assert "as PIL: (1024, 1024)" in inspect
    assert "'seed': 42" in _text(_cell(nb, "seeded[0].params"))
    error_text = _text(_cell(nb, 'model="no-such/model"'))
    assert "not found" in error_text and "(HTTP 404, model_not_found)" in error_text
    assert "hint: Run %meshimg_models" in error_text
    assert "n must be from 1 to 10" in _text(_cell(nb, "n=20"))
    assert "no-such/model -> ModelNotFoundError 404" in _text(_cell(nb, "for failure in mixed.errors"))
    models = _text(_cell(nb, "%meshimg_models"))
    assert "google/imagen-4" in models and "$0.030" in models


def test_config_shows_the_key_masked_and_never_whole(executed: Run) -> None:
    config = _text(_cell(executed.nb, "%meshimg_config"))
    assert f"rsk_…{TEST_KEY[-4:]}" in config
    assert "env MESHAPI_API_KEY" in config
    assert "384  (session)" in config
    dumped = json.dumps(executed.nb)
    assert TEST_KEY not in dumped
    assert TEST_KEY[4:] not in dumped


def test_save_wrote_full_resolution_files_in_the_working_folder(executed: Run) -> None:
    folder = executed.workdir / "quickstart_images"
    pngs = sorted(folder.glob("*.png"))
    assert [p.name for p in pngs] == ["a-snowy-mountain-village-at-night-glowin_openai-gpt-image-1_0-0.png"]
    with Image.open(pngs[0]) as img:
        assert img.size == (1024, 1024)
    sidecar = json.loads(pngs[0].with_suffix(".json").read_text())
    assert sidecar["prompt"] == "A snowy mountain village at night, glowing windows"
    assert sidecar["model"] == "openai/gpt-image-1"
    assert _REQUEST_ID.match(sidecar["request_id"])
    assert TEST_KEY not in pngs[0].with_suffix(".json").read_text()
    # Everything generated also went to the store named by MESHIMG_STORE_DIR.
    assert len(list(executed.store.glob("images/*/*.json"))) == 17


# -- the copy saved in the repository ------------------------------------------------------


def test_saved_notebook_is_executed_and_has_no_errors(saved: Any) -> None:
    cells = _code_cells(saved)
    assert cells and all(c.execution_count for c in cells), "save the notebook executed"
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), "run top to bottom"
    assert not [o for c in cells for o in c.outputs if o.output_type == "error"]
    assert not [c for c in cells if "raises-exception" in c.metadata.get("tags", [])]


def test_saved_notebook_images_match_the_flags(saved: Any) -> None:
    assert _check_images(saved) == sum(spec["images"] for spec in EXPECTED.values())


def test_saved_notebook_is_small_and_keyless(saved: Any) -> None:
    size = NOTEBOOK.stat().st_size
    assert size < SAVED_SIZE_LIMIT, f"{NOTEBOOK.name} is {size / 1024:.0f} KB"
    text = NOTEBOOK.read_text(encoding="utf-8")
    assert not _KEY_LIKE.search(text), "a key-shaped string is in the saved notebook"
    outputs = json.dumps([c.outputs for c in _code_cells(saved)])
    for machine_path in ("/tmp/", "/home/", "/root/", "/work/", "/Users/", "C:\\\\"):
        assert machine_path not in outputs, f"machine path {machine_path!r} in the outputs"
    assert "execution" not in json.dumps([c.metadata for c in saved.cells]), "timestamps saved"


def test_saved_notebook_is_what_a_user_writes(saved: Any) -> None:
    source = "\n".join(c.source for c in _code_cells(saved))
    for forbidden in (
        "127.0.0.1",
        "localhost",
        "MESHAPI_BASE_URL",
        "api_key",
        "rsk_",
        "os.environ",
        "MeshServer",
        "meshapi_server",
    ):
        assert forbidden not in source, f"{forbidden!r} in the notebook's code"
    assert source.startswith("%load_ext mesh_magic")
    tags = {t for c in saved.cells for t in c.metadata.get("tags", [])}
    assert tags <= {"nbval-check-output"}, tags
