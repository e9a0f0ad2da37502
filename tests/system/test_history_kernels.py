"""History across kernels: what one real kernel stored, the next one shows (nbclient)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.images import html_images
from tests.support.notebooks import code_notebook, error_outputs, run_notebook, stream_text
from tests.support.store_files import sha256


def test_history_survives_a_new_kernel(store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Generate in one kernel, shut it down, start another on the same store folder."""
    monkeypatch.setenv("MESHAPI_BASE_URL", "offline")
    first = run_notebook(
        code_notebook(
            "%load_ext mesh_magic",
            "%%meshimg -n 2 -s 256x256 -o made\nA red kite over the dunes",
            "import json, os, hashlib\n"
            "print(json.dumps({'pid': os.getpid(), "
            "'images': [[str(im.path), hashlib.sha256(im.data).hexdigest()] for im in made]}))",
        ),
        tmp_path,
    )
    assert error_outputs(first) == []
    made = json.loads(stream_text(first).strip().splitlines()[-1])
    assert len(made["images"]) == 2 and all(Path(p).is_relative_to(store) for p, _ in made["images"])

    second = run_notebook(
        code_notebook(
            "%load_ext mesh_magic",
            "%meshimg_history 5",
            "import json, os, hashlib, mesh_magic\n"
            "print(json.dumps({'pid': os.getpid(), 'images': [[str(im.path), "
            "hashlib.sha256(im.data).hexdigest(), im.prompt] for im in mesh_magic.history()]}))",
        ),
        tmp_path,
    )
    assert error_outputs(second) == []
    seen = json.loads(stream_text(second).strip().splitlines()[-1])
    assert seen["pid"] != made["pid"] and seen["pid"] != os.getpid()
    assert sorted(p[:2] for p in seen["images"]) == sorted(made["images"])
    assert {p[2] for p in seen["images"]} == {"A red kite over the dunes"}
    shown = second.cells[1].outputs
    html = "".join("".join(o["data"].get("text/html", "")) for o in shown if "data" in o)
    assert "A red kite over the dunes" in html and str(store) in html
    assert {sha256(raw) for _, raw in html_images(html)} == {h for _, h in made["images"]}
