"""Result objects: sequence behaviour, request ids, rows, saving with sidecars."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh_magic.core.errors import ServerError
from mesh_magic.core.results import ImageResult, ItemError
from tests.support.results import grid, image


def test_sequence_behaviour() -> None:
    result = grid()
    assert len(result) == 4
    assert [(im.row, im.index) for im in result] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert result[0].model == "m/a" and result[-1].model == "m/b"
    assert [im.index for im in result[1:3]] == [1, 0]
    assert result.images == list(result)
    result.images.clear()  # a copy: the result is unchanged
    assert len(result) == 4
    assert result[2] in result
    assert not result.ok
    assert repr(result) == "<ImageResult 4 images, 1 errors>"
    with pytest.raises(IndexError):
        result[9]


def test_request_ids_in_order_without_duplicates() -> None:
    assert grid().request_ids == ["req_1", "req_2", "req_3"]
    assert ImageResult([image(request_id=None)]).request_ids == []


def test_ok_and_interrupted() -> None:
    assert ImageResult([image()]).ok
    assert not ImageResult([image()], interrupted=True).ok
    assert "interrupted" in repr(ImageResult([image()], interrupted=True))


def test_rows_derived_when_not_given() -> None:
    result = ImageResult([image(1, model="m/b"), image(0)], [ItemError("p2", "m/z", ServerError("x"), row=2)])
    assert result.rows == [("a red fox", "m/a"), ("a red fox", "m/b"), ("p2", "m/z")]


def test_save_writes_images_and_sidecars(tmp_path: Path) -> None:
    result = grid()
    paths = result.save(tmp_path / "out")
    assert len(paths) == 4
    assert len({p.name for p in paths}) == 4
    for path, im in zip(paths, result, strict=True):
        assert path.parent == tmp_path / "out"
        assert path.suffix == ".png"
        assert path.read_bytes() == im.data
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["prompt"] == "a red fox"
        assert meta["model"] == im.model
        assert meta["request_id"] == im.request_id
        assert meta["params"]["seed"] == 3
        assert (meta["width"], meta["height"], meta["mime_type"]) == (40, 20, "image/png")
        assert len(meta["sha256"]) == 64 and meta["bytes"] == len(im.data)
    leftovers = [p for p in (tmp_path / "out").iterdir() if p.suffix not in (".png", ".json")]
    assert leftovers == []


def test_generated_image_save_and_slug(tmp_path: Path) -> None:
    im = image(2, 1, prompt="A Red Fox! In snow?", model="openai/gpt-image-1")
    assert im.slug() == "a-red-fox-in-snow_openai-gpt-image-1_2-1"
    folder = tmp_path / "dir"
    folder.mkdir()
    saved = im.save(folder)
    assert saved == folder / f"{im.slug()}.png"
    assert saved.read_bytes() == im.data
    explicit = im.save(tmp_path / "nested" / "fox.png")
    assert explicit.read_bytes() == im.data
    assert im.to_pil().size == (40, 20)
    assert im.size == "40x20" and im.extension == "png"
    assert "bytes" in repr(im) and "data=" not in repr(im)
