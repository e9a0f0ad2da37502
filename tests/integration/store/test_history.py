"""History: mesh_magic.history() and %meshimg_history read the store, so past kernels show too."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import mesh_magic
from mesh_magic.core.history import History
from tests.support.images import html_images
from tests.support.notebooks import code_notebook, error_outputs, run_notebook, stream_text
from tests.support.store_files import sha256


@pytest.fixture
def filled(store: Path) -> Path:
    mesh_magic.configure(base_url="offline", size="256x256")
    mesh_magic.generate("a cat asleep on a windowsill")
    mesh_magic.generate("a dog chasing a frisbee", model="google/imagen-4", n=2)
    mesh_magic.generate("a CAT in a spacesuit", model="google/imagen-4")
    return store


def test_newest_first_with_n_and_filters(filled: Path) -> None:
    everything = mesh_magic.history()
    assert [im.prompt for im in everything] == [
        "a CAT in a spacesuit", "a dog chasing a frisbee", "a dog chasing a frisbee",
        "a cat asleep on a windowsill",
    ]
    assert all(im.path is not None and im.path.is_relative_to(filled) for im in everything)
    assert len(mesh_magic.history(2)) == 2
    assert [im.prompt for im in mesh_magic.history(text="cat")] == [
        "a CAT in a spacesuit", "a cat asleep on a windowsill"]
    assert {im.model for im in mesh_magic.history(model="imagen")} == {"google/imagen-4"}
    assert [im.prompt for im in mesh_magic.history(10, text="cat", model="google/imagen-4")] == [
        "a CAT in a spacesuit"]
    with pytest.raises(mesh_magic.MeshImageError):
        mesh_magic.history(0)


def test_history_grid_has_one_row_per_generation_with_its_prompt(filled: Path) -> None:
    result = mesh_magic.history()
    assert isinstance(result, History)
    assert result.rows == [("a CAT in a spacesuit", "google/imagen-4"),
                           ("a dog chasing a frisbee", "google/imagen-4"),
                           ("a cat asleep on a windowsill", "openai/gpt-image-1")]
    data, _ = result._repr_mimebundle_()
    for prompt, _model in result.rows:
        assert prompt in data["text/html"] and prompt in data["text/plain"]
    assert str(filled) in data["text/html"]
    assert len(html_images(data["text/html"])) == 4
    single, _ = mesh_magic.history(1)._repr_mimebundle_()
    assert "a CAT in a spacesuit" in single["text/html"]  # one row still names its prompt
    empty, _ = mesh_magic.history(text="zebra")._repr_mimebundle_()
    assert "No stored images matching text 'zebra'" in empty["text/plain"]


@pytest.mark.parametrize(
    ("line", "prompts"),
    [
        ("", ["a CAT in a spacesuit", "a dog chasing a frisbee", "a dog chasing a frisbee",
              "a cat asleep on a windowsill"]),
        ("1", ["a CAT in a spacesuit"]),
        ("10 cat", ["a CAT in a spacesuit", "a cat asleep on a windowsill"]),
        ("10 --model google/imagen-4 cat", ["a CAT in a spacesuit"]),
        ("-m openai", ["a cat asleep on a windowsill"]),
        ("--model=google/imagen-4 'chasing a'", ["a dog chasing a frisbee"] * 2),
    ],
)
def test_history_magic_arguments(filled: Path, shell: Any, line: str, prompts: list[str]) -> None:
    result = shell.run_line_magic("meshimg_history", line)
    assert [im.prompt for im in result] == prompts


@pytest.mark.parametrize("line", ["0", "--bogus", "'unclosed"])
def test_history_magic_usage_errors(shell: Any, line: str) -> None:
    with pytest.raises(UsageError):
        shell.run_line_magic("meshimg_history", line)


def test_history_survives_a_new_kernel(store: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
                                       ) -> None:
    """Generate in one kernel, shut it down, start another on the same store folder."""
    monkeypatch.setenv("MESHAPI_BASE_URL", "offline")
    first = run_notebook(code_notebook(
        "%load_ext mesh_magic",
        "%%meshimg -n 2 -s 256x256 -o made\nA red kite over the dunes",
        "import json, os, hashlib\n"
        "print(json.dumps({'pid': os.getpid(), "
        "'images': [[str(im.path), hashlib.sha256(im.data).hexdigest()] for im in made]}))",
    ), tmp_path)
    assert error_outputs(first) == []
    made = json.loads(stream_text(first).strip().splitlines()[-1])
    assert len(made["images"]) == 2 and all(Path(p).is_relative_to(store) for p, _ in made["images"])

    second = run_notebook(code_notebook(
        "%load_ext mesh_magic",
        "%meshimg_history 5",
        "import json, os, hashlib, mesh_magic\n"
        "print(json.dumps({'pid': os.getpid(), 'images': [[str(im.path), "
        "hashlib.sha256(im.data).hexdigest(), im.prompt] for im in mesh_magic.history()]}))",
    ), tmp_path)
    assert error_outputs(second) == []
    seen = json.loads(stream_text(second).strip().splitlines()[-1])
    assert seen["pid"] != made["pid"] and seen["pid"] != os.getpid()
    assert sorted(p[:2] for p in seen["images"]) == sorted(made["images"])
    assert {p[2] for p in seen["images"]} == {"A red kite over the dunes"}
    shown = second.cells[1].outputs
    html = "".join("".join(o["data"].get("text/html", "")) for o in shown if "data" in o)
    assert "A red kite over the dunes" in html and str(store) in html
    assert {sha256(raw) for _, raw in html_images(html)} == {h for _, h in made["images"]}
