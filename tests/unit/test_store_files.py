"""The store on disk: atomic writes, sidecars, what a failed write leaves, tampered entries."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core.errors import MeshImageWarning, StoreError
from mesh_magic.core.files import atomic_write
from mesh_magic.core.results import GeneratedImage
from mesh_magic.core.store import Store
from tests.support.images import make_png
from tests.support.store_files import all_files, part_files, sha256

RED = (200, 40, 40)


def image(data: bytes | None = None, **fields: Any) -> GeneratedImage:
    values: dict[str, Any] = {
        "data": data or make_png(32, 32, RED),
        "mime_type": "image/png",
        "width": 32,
        "height": 32,
        "prompt": "A red square",
        "model": "openai/gpt-image-1",
        "request_id": "req_1",
        "created": 1_700_000_000,
        "params": {"model": "openai/gpt-image-1", "n": 1, "seed": 7},
        "revised_prompt": "A vivid red square",
    }
    values.update(fields)
    return GeneratedImage(**values)


# -- atomic writes --------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", ["replace", "fsync", "write"])
def test_a_crash_mid_write_leaves_no_file_and_no_temp_file(
    fail_at: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "images" / "a.png"

    def boom(*args: Any, **kwargs: Any) -> None:
        raise OSError(28, "No space left on device (simulated)")

    real_fdopen = os.fdopen

    class HalfWriter(io.BufferedWriter):
        def write(self, data: Any) -> int:
            super().write(bytes(data)[: len(data) // 2])
            super().flush()
            raise OSError(28, "No space left on device (simulated)")

    def fdopen(fd: int, *args: Any, **kwargs: Any) -> Any:
        return HalfWriter(real_fdopen(fd, "wb", buffering=0))

    with monkeypatch.context() as patch:
        if fail_at == "write":
            patch.setattr(os, "fdopen", fdopen)
        else:
            patch.setattr(os, fail_at, boom)
        with pytest.raises(OSError, match="simulated"):
            atomic_write(target, make_png(32, 32, RED))
    assert not target.exists()
    assert all_files(tmp_path) == []  # no .part leftovers either


@pytest.mark.parametrize("fail_at", ["replace", "fsync"])
def test_a_failed_overwrite_keeps_the_old_file_intact(
    fail_at: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "cache" / "key.json"
    atomic_write(target, b'{"images": ["old"]}')
    with monkeypatch.context() as patch:
        patch.setattr(os, fail_at, lambda *a, **k: (_ for _ in ()).throw(OSError("simulated")))
        with pytest.raises(OSError, match="simulated"):
            atomic_write(target, b'{"images": ["new", "but half')
    assert target.read_bytes() == b'{"images": ["old"]}'
    assert part_files(tmp_path) == []


def test_put_writes_image_and_sidecar_and_points_path_at_it(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    original = image()
    stored = store.put(original, base_url="https://user:secret@api.example.com/v1?token=x")
    assert stored.path is not None and stored.path.read_bytes() == original.data
    assert stored.path.parent.parent == store.root / "images"
    assert stored.path.parent.name == "2023-11-14"  # the day of `created`, UTC
    meta = json.loads(stored.path.with_suffix(".json").read_text())
    assert meta["prompt"] == "A red square"
    assert meta["model"] == "openai/gpt-image-1"
    assert meta["revised_prompt"] == "A vivid red square"
    assert meta["request_id"] == "req_1"
    assert meta["created"] == 1_700_000_000
    assert meta["params"]["seed"] == 7
    assert meta["size"] == "32x32" and meta["width"] == 32 and meta["height"] == 32
    assert meta["sha256"] == sha256(original.data) and meta["bytes"] == len(original.data)
    # Credentials and query strings in a base URL never reach the disk.
    assert meta["base_url"] == "https://api.example.com/v1"
    assert "secret" not in stored.path.with_suffix(".json").read_text()
    assert store.load(stored.path).data == original.data


def test_a_failed_sidecar_write_removes_the_image_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(tmp_path / "s")
    real_replace = os.replace

    def replace(src: Any, dst: Any) -> None:
        if str(dst).endswith(".json"):
            raise OSError("simulated: disk full while writing the sidecar")
        real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        with pytest.raises(OSError, match="simulated"):
            store.put(image())
    assert all_files(store.root) == []
    assert store.history() == []


def test_unreadable_or_tampered_entries_are_skipped(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    good = store.put(image(prompt="good"))
    bad = store.put(image(make_png(32, 32, (0, 0, 255)), prompt="tampered"))
    assert bad.path is not None and good.path is not None
    bad.path.write_bytes(make_png(32, 32, (0, 255, 0)))  # no longer matches the sidecar's sha256
    (good.path.parent / "junk.json").write_text("{not json")
    (good.path.parent / ".x.png.abcd.part").write_bytes(b"half")  # a crashed writer's leftover
    # Listed from its sidecar (history never reads every image), refused when its bytes are read.
    with pytest.warns(MeshImageWarning, match="Skipped 1 unreadable"):  # junk.json
        listed = {im.prompt: im for im in store.history()}
    assert sorted(listed) == ["good", "tampered"]
    assert listed["good"].data == good.data
    with pytest.raises(StoreError, match="sha256"):
        _ = listed["tampered"].data


def test_cache_entries_cannot_point_outside_the_store(tmp_path: Path) -> None:
    from mesh_magic.core.request import ImageRequest

    outside = Store(tmp_path / "elsewhere").put(image())
    store = Store(tmp_path / "s")
    request = ImageRequest(prompt="A red square", model="openai/gpt-image-1")
    store.remember(request, "offline", [store.put(image())])
    index = next((store.root / "cache").glob("*.json"))
    entry = json.loads(index.read_text())
    assert outside.path is not None
    entry["images"] = [os.path.relpath(outside.path, store.root)]
    for path in (store.root / "cache").glob("*.json"):
        path.write_text(json.dumps(entry))
    assert store.lookup(request, "offline", any_host=True) is None


def test_the_grid_shows_an_unreadable_stored_image_as_an_error_tile(tmp_path: Path) -> None:
    from mesh_magic.core.results import ImageResult
    from mesh_magic.render.grid import result_html

    store = Store(tmp_path / "s")
    good = store.put(image(prompt="good"))
    gone = store.put(image(make_png(32, 32, (0, 0, 255)), prompt="gone"))
    assert gone.path is not None
    gone.path.unlink()
    page = result_html(ImageResult([good, gone.with_changes(row=1)]))
    assert page.count("<img ") == 1
    assert "cannot be read" in page and "Restore the store folder" in page
