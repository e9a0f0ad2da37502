"""History: mesh_magic.history() and %meshimg_history read the store (filters, grid, usage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError

import mesh_magic
from mesh_magic.core.history import History
from tests.support.images import html_images


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
        "a CAT in a spacesuit",
        "a dog chasing a frisbee",
        "a dog chasing a frisbee",
        "a cat asleep on a windowsill",
    ]
    assert all(im.path is not None and im.path.is_relative_to(filled) for im in everything)
    assert len(mesh_magic.history(2)) == 2
    assert [im.prompt for im in mesh_magic.history(text="cat")] == [
        "a CAT in a spacesuit",
        "a cat asleep on a windowsill",
    ]
    assert {im.model for im in mesh_magic.history(model="imagen")} == {"google/imagen-4"}
    assert [im.prompt for im in mesh_magic.history(10, text="cat", model="google/imagen-4")] == [
        "a CAT in a spacesuit"
    ]
    with pytest.raises(mesh_magic.MeshImageError):
        mesh_magic.history(0)


def test_history_grid_has_one_row_per_generation_with_its_prompt(filled: Path) -> None:
    result = mesh_magic.history()
    assert isinstance(result, History)
    assert result.rows == [
        ("a CAT in a spacesuit", "google/imagen-4"),
        ("a dog chasing a frisbee", "google/imagen-4"),
        ("a cat asleep on a windowsill", "openai/gpt-image-1"),
    ]
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
        (
            "",
            [
                "a CAT in a spacesuit",
                "a dog chasing a frisbee",
                "a dog chasing a frisbee",
                "a cat asleep on a windowsill",
            ],
        ),
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


def test_history_text_with_apostrophe(offline_shell: Any) -> None:
    offline_shell.run_line_magic("meshimg", "--no-display A fox's den")
    found = offline_shell.run_line_magic("meshimg_history", "5 fox's")
    assert len(found) == 1 and found[0].prompt == "A fox's den"
