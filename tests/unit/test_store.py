"""The image store: atomic writes, put/lookup/history, sidecars and cache keys."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core import store as _store
from mesh_magic.core.errors import CacheMissError, MeshImageWarning, StoreError
from mesh_magic.core.files import atomic_write
from mesh_magic.core.request import ImageRequest
from mesh_magic.core.results import GeneratedImage
from mesh_magic.core.store import Store, cache_key, replay_miss
from tests.support.images import make_image

BASE = "https://api.example.test"


def image(
    prompt: str = "a red fox",
    model: str = "m/a",
    index: int = 0,
    created: int = 1700000000,
    color_width: int = 40,
) -> GeneratedImage:
    return GeneratedImage(
        data=make_image(color_width, 20),
        mime_type="image/png",
        width=color_width,
        height=20,
        prompt=prompt,
        model=model,
        revised_prompt="revised " + prompt,
        request_id="req_s1",
        created=created,
        params={"model": model, "n": 1, "seed": 5},
        index=index,
    )


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# -- atomic writes -----------------------------------------------------------------------------


def test_atomic_write_writes(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "file.bin"
    atomic_write(target, b"hello")
    assert target.read_bytes() == b"hello"
    assert files_in(tmp_path) == ["a/b/file.bin"]


def test_atomic_write_failure_at_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, b"new content")
    assert target.read_bytes() == b"old"
    assert files_in(tmp_path) == ["file.bin"]  # no .part left behind


def test_atomic_write_failure_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_fsync(fd: int) -> None:
        raise KeyboardInterrupt  # even an interrupt mid-write cleans up

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(tmp_path / "new.bin", b"x" * 100_000)
    assert files_in(tmp_path) == []


# -- put / lookup ------------------------------------------------------------------------------


def test_put_writes_image_and_sidecar(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    original = image()
    stored = store.put(original, base_url=BASE)
    assert original.path is None  # a copy is returned
    assert stored.path is not None and stored.path.exists()
    assert stored.path.is_relative_to(tmp_path / "store" / "images" / "2023-11-14")
    assert stored.path.read_bytes() == original.data
    meta = json.loads(stored.path.with_suffix(".json").read_text())
    assert meta["prompt"] == "a red fox"
    assert meta["model"] == "m/a"
    assert meta["revised_prompt"] == "revised a red fox"
    assert meta["request_id"] == "req_s1"
    assert meta["created"] == 1700000000
    assert meta["params"] == {"model": "m/a", "n": 1, "seed": 5}
    assert meta["base_url"] == BASE
    assert meta["version"] == _store.SIDECAR_VERSION
    assert isinstance(meta["stored_at"], float)
    assert meta["bytes"] == len(original.data)
    assert len(meta["sha256"]) == 64
    assert not any(".part" in name for name in files_in(tmp_path))
    assert "rsk_" not in stored.path.with_suffix(".json").read_text()


def test_two_puts_do_not_collide(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first, second = store.put(image()), store.put(image())
    assert first.path != second.path
    assert len([p for p in files_in(tmp_path) if p.endswith(".png")]) == 2


def test_remember_and_lookup(tmp_path: Path) -> None:
    store = Store(tmp_path)
    request = ImageRequest("a red fox", "m/a", n=2, row=4)
    stored = [store.put(image(index=i, color_width=40 + i), base_url=BASE) for i in range(2)]
    store.remember(request, BASE, stored)
    answer = store.lookup(replace(request, row=7), BASE)
    assert answer is not None and answer.missing == ()
    found = answer.images
    assert [im.data for im in found] == [im.data for im in stored]
    assert all(im.cached for im in found)
    assert [(im.row, im.index) for im in found] == [(7, 0), (7, 1)]
    assert found[0].prompt == "a red fox" and found[0].request_id == "req_s1"
    assert found[0].params == {"model": "m/a", "n": 1, "seed": 5}
    # The index stores relative paths, so the folder can move.
    entry = json.loads(next((tmp_path / "cache").glob("*.json")).read_text())
    assert all(not Path(p).is_absolute() for p in entry["images"])


def test_lookup_misses(tmp_path: Path) -> None:
    store = Store(tmp_path)
    request = ImageRequest("a red fox", "m/a")
    assert store.lookup(request, BASE) is None
    store.remember(request, BASE, [store.put(image())])
    assert store.lookup(replace(request, prompt="a blue fox"), BASE) is None
    assert store.lookup(request, "https://other.example") is None
    assert store.lookup(request, "https://other.example", any_host=True) is not None


def test_remember_without_paths_writes_nothing(tmp_path: Path) -> None:
    Store(tmp_path).remember(ImageRequest("p", "m"), BASE, [image()])
    assert files_in(tmp_path) == []


def test_store_folder_can_move(tmp_path: Path) -> None:
    request = ImageRequest("a red fox", "m/a")
    store = Store(tmp_path / "one")
    store.remember(request, BASE, [store.put(image())])
    (tmp_path / "one").rename(tmp_path / "two")
    found = Store(tmp_path / "two").lookup(request, BASE)
    assert found is not None and found.images[0].path is not None
    assert found.images[0].path.is_relative_to(tmp_path / "two")


def test_sha256_mismatch_is_a_cache_miss_and_an_error_on_read(tmp_path: Path) -> None:
    store = Store(tmp_path)
    request = ImageRequest("a red fox", "m/a")
    stored = store.put(image())
    store.remember(request, BASE, [stored])
    assert stored.path is not None
    stored.path.write_bytes(make_image(41, 20))  # a valid image, but not the one recorded
    assert store.lookup(request, BASE) is None
    with pytest.warns(MeshImageWarning, match="Skipped"):
        assert store.history() == []
    with pytest.raises(ValueError, match="sha256"):
        store.load(stored.path, verify=True)
    with pytest.raises(StoreError, match="sha256 no longer matches"):
        _ = stored.data


def test_a_same_size_change_is_caught_when_the_bytes_are_read(tmp_path: Path) -> None:
    store = Store(tmp_path)
    stored = store.put(image())
    assert stored.path is not None
    data = bytearray(stored.path.read_bytes())
    data[-20] ^= 0xFF  # same length, other bytes
    stored.path.write_bytes(bytes(data))
    # History lists it from its sidecar (without reading every image), but its bytes are refused.
    (listed,) = store.history()
    with pytest.raises(StoreError, match="sha256 no longer matches"):
        _ = listed.data


def test_a_stored_image_keeps_no_bytes_and_reads_them_back(tmp_path: Path) -> None:
    store = Store(tmp_path)
    original = image()
    stored = store.put(original)
    assert original.in_memory and not stored.in_memory
    assert stored.sha256 == hashlib.sha256(original.data).hexdigest()
    assert stored.data == original.data
    assert not stored.in_memory  # reading does not keep them either
    assert "stored" in repr(stored)
    moved = stored.with_changes(row=3)
    assert (moved.row, moved.path, moved.in_memory) == (3, stored.path, False)
    assert stored.path is not None
    stored.path.unlink()
    with pytest.raises(StoreError, match="cannot be read"):
        _ = moved.data


def test_broken_sidecars_and_index_are_skipped(tmp_path: Path) -> None:
    store = Store(tmp_path)
    request = ImageRequest("a red fox", "m/a")
    good = store.put(image(prompt="good"))
    bad = store.put(image(prompt="bad"))
    assert bad.path is not None and good.path is not None
    bad.path.with_suffix(".json").write_text("{not json")
    store.remember(request, BASE, [good])
    for index in (tmp_path / "cache").glob("*.json"):
        index.write_text('{"images": 5}')
    assert store.lookup(request, BASE) is None
    with pytest.warns(MeshImageWarning, match="Skipped"):
        assert [im.prompt for im in store.history()] == ["good"]


# -- cache keys --------------------------------------------------------------------------------


BASE_REQUEST = ImageRequest(
    "a red fox",
    "m/a",
    n=1,
    fields={"size": "1024x1024", "quality": "auto", "response_format": "b64_json"},
    params={"seed": 1},
)


@pytest.mark.parametrize(
    "changed",
    [
        {"prompt": "a red fox "},
        {"model": "m/b"},
        {"n": 2},
        {"size": "512x512"},
        {"quality": "high"},
        {"output_format": "png"},
        {"params": {"seed": 2}},
        {"params": {"seed": 1, "background": "transparent"}},
    ],
)
def test_cache_key_changes_with_each_param(changed: dict[str, Any]) -> None:
    assert cache_key(changed_request(**changed), BASE) != cache_key(BASE_REQUEST, BASE)


def changed_request(**changes: Any) -> ImageRequest:
    """BASE_REQUEST with attributes or typed fields (size, quality, ...) changed."""
    attributes = {k: v for k, v in changes.items() if hasattr(BASE_REQUEST, k) and k != "fields"}
    fields = {k: v for k, v in changes.items() if k not in attributes}
    return replace(BASE_REQUEST, **attributes, fields={**BASE_REQUEST.fields, **fields})


def test_cache_key_ignores_delivery_and_grid_position() -> None:
    key = cache_key(BASE_REQUEST, BASE)
    assert cache_key(replace(BASE_REQUEST, stream=True), BASE) == key
    assert cache_key(changed_request(response_format="url"), BASE) == key
    assert cache_key(replace(BASE_REQUEST, params={"seed": 1, "partial_images": 2}), BASE) == key
    assert cache_key(BASE_REQUEST, BASE + "/v1") == key
    assert cache_key(replace(BASE_REQUEST, row=5), BASE) == key
    assert cache_key(replace(BASE_REQUEST, params={"seed": 1}), BASE) == key
    assert cache_key(BASE_REQUEST, "https://other.example") != key
    assert cache_key(BASE_REQUEST, "https://other.example", with_host=False) == cache_key(
        BASE_REQUEST, BASE, with_host=False
    )


# -- history -----------------------------------------------------------------------------------


def test_history_newest_first_with_filters(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for i, (prompt, model) in enumerate(
        [("a red fox", "m/a"), ("a blue whale", "m/b"), ("a red panda", "m/b")]
    ):
        store.put(replace(image(prompt=prompt, model=model), created=1700000000 + i))
    fresh = Store(tmp_path)  # a new object sees the same folder
    assert [im.prompt for im in fresh.history()] == ["a red panda", "a blue whale", "a red fox"]
    assert [im.prompt for im in fresh.history(2)] == ["a red panda", "a blue whale"]
    assert [im.prompt for im in fresh.history(text="RED")] == ["a red panda", "a red fox"]
    assert [im.prompt for im in fresh.history(model="m/b")] == ["a red panda", "a blue whale"]
    assert fresh.history(text="nothing") == []
    assert all(im.path is not None for im in fresh.history())
    assert Store(tmp_path / "empty").history() == []


def test_for_settings_and_default_dir(tmp_path: Path) -> None:
    from mesh_magic.core.config import resolve

    assert Store.for_settings(resolve({"store_dir": str(tmp_path)})).root == tmp_path
    assert Store().root == _store.default_store_dir()
    assert _store.default_store_dir().name == "store"


def test_replay_miss_message(tmp_path: Path) -> None:
    err = replay_miss(ImageRequest("a red fox", "m/a", n=2, fields={"size": "512x512"}), Store(tmp_path))
    assert isinstance(err, CacheMissError)
    text = str(err)
    assert "m/a" in text and "a red fox" in text and "n=2" in text and "512x512" in text
    assert str(tmp_path) in text
    assert "cache='on'" in err.hint
