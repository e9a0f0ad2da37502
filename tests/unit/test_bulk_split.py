"""Splitting a bulk run's combined grid into one result per prompt (core.bulk.split_by_prompt)."""

from __future__ import annotations

from mesh_magic.core.bulk import split_by_prompt
from mesh_magic.core.errors import ServerError
from mesh_magic.core.results import ImageResult, ItemError
from tests.support.results import image

MODELS = ["m/a", "m/b"]


def combined(interrupted: bool = False) -> ImageResult:
    # 3 prompts x 2 models = rows 0..5; row 3 failed; row 5 never finished (only a partial).
    images = [image(r, i, model=MODELS[r % 2], prompt=f"p{r // 2}") for r in (0, 1, 2, 4) for i in (0, 1)]
    partial = image(5, 0, model="m/b", prompt="p2")
    partial.partial = True
    errors = [ItemError("p1", "m/b", ServerError("down", status=500), row=3)]
    return ImageResult([*images, partial], errors, interrupted=interrupted)


def test_each_prompt_gets_its_own_rows_images_and_errors() -> None:
    parts = split_by_prompt(combined(), ["p0", "p1", "p2"], MODELS, 64)
    assert [len(p) for p in parts] == [4, 2, 3]
    assert [(im.row, im.index, im.model) for im in parts[0]] == [
        (0, 0, "m/a"),
        (0, 1, "m/a"),
        (1, 0, "m/b"),
        (1, 1, "m/b"),
    ]
    assert [(e.row, e.model) for e in parts[1].errors] == [(1, "m/b")]
    assert not parts[0].errors and not parts[2].errors
    assert parts[2].rows == [("p2", "m/a"), ("p2", "m/b")]
    assert all(p.display_max_px == 64 for p in parts)
    assert not any(p.interrupted for p in parts)


def test_only_prompts_with_an_unfinished_row_are_marked_interrupted() -> None:
    parts = split_by_prompt(combined(interrupted=True), ["p0", "p1", "p2"], MODELS, 64)
    # p1's rows: one arrived, one failed (finished); p2's second row has only a partial image.
    assert [p.interrupted for p in parts] == [False, False, True]


def test_a_large_run_splits_in_one_pass() -> None:
    count = 5_000
    images = [image(r, 0, model="m/a", prompt=f"p{r}") for r in range(count)]
    parts = split_by_prompt(ImageResult(images), [f"p{r}" for r in range(count)], ["m/a"], 64)
    assert len(parts) == count
    assert all(len(p) == 1 and p[0].prompt == f"p{i}" and p[0].row == 0 for i, p in enumerate(parts))
