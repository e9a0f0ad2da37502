"""Careful file writes (core.files) and the history of stored images (core.history)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core.errors import InvalidOptionError
from mesh_magic.core.files import atomic_write, json_bytes, sidecar_for, write_with_sidecar
from mesh_magic.core.history import DEFAULT_HISTORY, HISTORY_MAX_PX, History, home_relative, load_history
from mesh_magic.core.results import GeneratedImage
from mesh_magic.core.settings import Settings
from mesh_magic.core.store import Store
from tests.support.images import make_image


def image(
    prompt: str = "a red fox",
    model: str = "m/a",
    request_id: str | None = "req_1",
    width: int = 40,
    index: int = 0,
) -> GeneratedImage:
    return GeneratedImage(
        data=make_image(width, 20),
        mime_type="image/png",
        width=width,
        height=20,
        prompt=prompt,
        model=model,
        request_id=request_id,
        created=1700000000,
        params={"model": model, "n": 1},
        index=index,
    )


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# -- atomic_write ----------------------------------------------------------------------------


def test_atomic_write_replaces_and_creates_parents(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "f.bin"
    atomic_write(target, b"one")
    atomic_write(target, b"two")
    assert target.read_bytes() == b"two"
    assert files_in(target.parent) == ["f.bin"]


def test_atomic_write_failing_fsync_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def broken_fsync(fd: int) -> None:
        raise OSError("I/O error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="I/O error"):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert files_in(tmp_path) == ["f.bin"]


def test_atomic_write_interrupted_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C is a BaseException: the clean-up must run for it too.
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def interrupted(src: Any, dst: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, b"new")
    assert target.read_bytes() == b"old"
    assert files_in(tmp_path) == ["f.bin"]


def test_atomic_write_with_bad_data_leaves_no_new_file(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    with pytest.raises(TypeError):
        atomic_write(target, "not bytes")  # type: ignore[arg-type]
    assert files_in(tmp_path) == []


def test_atomic_write_durable_false_skips_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    atomic_write(tmp_path / "a", b"x", durable=False)
    assert synced == []
    atomic_write(tmp_path / "b", b"x")
    assert len(synced) == 1
    assert (tmp_path / "a").read_bytes() == b"x"


def test_atomic_write_gives_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "f.bin"
    atomic_write(target, b"x")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


# -- sidecars and write_with_sidecar ---------------------------------------------------------


def test_json_bytes_keeps_unicode_and_stringifies_the_rest() -> None:
    data = json.loads(json_bytes({"prompt": "café ☕", "path": Path("/x")}))
    assert data == {"prompt": "café ☕", "path": "/x"}
    assert "café".encode() in json_bytes({"p": "café"})


def test_sidecar_has_size_hash_and_extra_facts() -> None:
    im = image()
    meta = sidecar_for(im, version=1)
    assert meta["size"] == "40x20"
    assert meta["bytes"] == len(im.data)
    assert len(meta["sha256"]) == 64
    assert meta["prompt"] == "a red fox" and meta["request_id"] == "req_1" and meta["version"] == 1


def test_write_with_sidecar_writes_both(tmp_path: Path) -> None:
    im = image()
    path = write_with_sidecar(tmp_path, im)
    assert path == tmp_path / f"{im.slug()}.png"
    assert path.read_bytes() == im.data
    meta = json.loads(path.with_suffix(".json").read_bytes())
    assert meta["sha256"] == sidecar_for(im)["sha256"]
    assert files_in(tmp_path) == sorted([path.name, path.with_suffix(".json").name])


def test_write_with_sidecar_never_overwrites_different_bytes(tmp_path: Path) -> None:
    first, second, third = image(width=40), image(width=41), image(width=42)
    assert first.slug() == second.slug() == third.slug()
    p1 = write_with_sidecar(tmp_path, first)
    p2 = write_with_sidecar(tmp_path, second)
    p3 = write_with_sidecar(tmp_path, third)
    assert p2.name == f"{first.slug()}-2.png"
    assert p3.name == f"{first.slug()}-3.png"
    assert [p.read_bytes() for p in (p1, p2, p3)] == [first.data, second.data, third.data]
    assert json.loads(p2.with_suffix(".json").read_bytes())["width"] == 41


def test_write_with_sidecar_same_bytes_reuses_the_file(tmp_path: Path) -> None:
    im = image()
    assert write_with_sidecar(tmp_path, im) == write_with_sidecar(tmp_path, im)
    assert len(files_in(tmp_path)) == 2


def test_write_with_sidecar_custom_stem_keeps_a_foreign_file(tmp_path: Path) -> None:
    (tmp_path / "mine.png").write_bytes(b"someone else's file")
    path = write_with_sidecar(tmp_path, image(), stem="mine")
    assert path.name == "mine-2.png"
    assert (tmp_path / "mine.png").read_bytes() == b"someone else's file"
    assert (tmp_path / "mine-2.json").exists() and not (tmp_path / "mine.json").exists()


# -- home_relative ---------------------------------------------------------------------------


def test_home_relative(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    home = tmp_path / "alice"
    monkeypatch.setenv("HOME", str(home))
    assert home_relative(home / "store") == "~/store"
    assert home_relative(f"{home}/a/b") == "~/a/b"
    assert home_relative(home) == str(home)  # the home folder itself stays as it is
    assert home_relative(f"{home}-other/store") == f"{home}-other/store"  # a lookalike prefix
    assert home_relative("/srv/store") == "/srv/store"


def test_home_relative_with_root_as_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/")
    assert home_relative("/srv/store") == "/srv/store"


# -- load_history ----------------------------------------------------------------------------


@pytest.fixture
def stored(settings: Callable[..., Settings], tmp_path: Path) -> Callable[..., Settings]:
    """Settings whose store is tmp_path/hist; call it with images to store them first."""

    def fill(*images: GeneratedImage, **overrides: Any) -> Settings:
        store = Store(tmp_path / "hist")
        for im in images:
            store.put(im, base_url="https://api.example.test")
        return settings(store_dir=str(store.root), **overrides)

    return fill


def test_images_of_one_request_share_a_row(stored: Callable[..., Settings]) -> None:
    s = stored(
        image("a fox", request_id="req_a", index=0),
        image("a fox", request_id="req_a", index=1),
        image("a cat", request_id="req_b"),
        image("a fox", request_id="req_c"),  # same prompt, another request: its own row
    )
    history = load_history(s)
    assert isinstance(history, History)
    assert len(history) == 4
    assert len(history.rows) == 3
    assert sorted(history.rows) == [("a cat", "m/a"), ("a fox", "m/a"), ("a fox", "m/a")]
    by_request: dict[str | None, set[int]] = {}
    for im in history:
        by_request.setdefault(im.request_id, set()).add(im.row)
    assert all(len(rows) == 1 for rows in by_request.values())
    assert len({next(iter(r)) for r in by_request.values()}) == 3


def test_history_limit_and_filters(stored: Callable[..., Settings]) -> None:
    s = stored(
        image("a red fox", model="m/a", request_id="r1"),
        image("a blue whale", model="m/b", request_id="r2"),
        image("a red car", model="m/b", request_id="r3"),
    )
    assert len(load_history(s)) == 3
    assert len(load_history(s, 2)) == 2
    assert sorted(im.prompt for im in load_history(s, text="RED")) == ["a red car", "a red fox"]
    assert [im.prompt for im in load_history(s, text="red", model="m/b")] == ["a red car"]
    filtered = load_history(s, text="red", model="m/b")
    assert filtered.filters == {"text": "red", "model": "m/b"}
    assert "matching text 'red' and model 'm/b'" in filtered.heading()


@pytest.mark.parametrize("n", [0, -1, True, 2.5, "3"])
def test_history_rejects_a_bad_count(stored: Callable[..., Settings], n: Any) -> None:
    with pytest.raises(InvalidOptionError, match="history needs a positive number of images"):
        load_history(stored(), n)


def test_history_default_count_and_thumbnail_size(stored: Callable[..., Settings]) -> None:
    assert DEFAULT_HISTORY == 20
    assert load_history(stored()).display_max_px == HISTORY_MAX_PX
    assert load_history(stored(display_max_px=128)).display_max_px == 128
    assert load_history(stored(display_max_px=0)).display_max_px == HISTORY_MAX_PX


def test_history_heading_names_the_store(stored: Callable[..., Settings], tmp_path: Path) -> None:
    empty = load_history(stored())
    assert len(empty) == 0
    assert empty.heading() == f"No stored images in {tmp_path / 'hist'}."
    one = load_history(stored(image("a fox", model="m/a")))
    assert one.heading().startswith("1 stored image, newest first (")
    assert one.heading().endswith(": m/a — a fox")
    assert repr(one) == f"<History 1 images from {tmp_path / 'hist'}>"


def test_history_store_path_is_home_relative(
    stored: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    history = load_history(stored(image()))
    assert history.store == "~/hist"
    assert "(~/hist)" in history.heading()
