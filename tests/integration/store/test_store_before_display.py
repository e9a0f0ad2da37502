"""Every new image is on disk, with its sidecar, before anything shows it; the key never is."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.render import grid as _display
from tests.support.servers import generations
from tests.support.store_files import all_files, sha256, stored_images


def test_a_broken_display_still_leaves_image_and_sidecar(
    server: Any, shell: Any, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(len(stored_images(store)))
        raise RuntimeError("the display died")

    with monkeypatch.context() as patch:
        patch.setattr(_display, "render_result", broken)
        try:  # IPython's formatter may swallow the error and print a traceback instead
            shell.run_cell("%%meshimg -n 2 -s 256x256\nA lantern in the fog")
        except RuntimeError as exc:
            assert "the display died" in str(exc)
    assert calls and calls[0] == 2  # both images were on disk when display was first tried
    assert len(generations(server)) == 1
    images = stored_images(store)
    assert len(images) == 2
    for path in images:
        meta = json.loads(path.with_suffix(".json").read_text())
        assert meta["prompt"] == "A lantern in the fog" and meta["sha256"] == sha256(path.read_bytes())
    assert {im.path for im in mesh_magic.history()} == set(images)


@pytest.mark.parametrize(
    "options", [{}, {"stream": True}, {"response_format": "url"}], ids=["b64_json", "stream", "url"]
)
def test_images_are_stored_before_the_collector_sees_them(
    server: Any, store: Path, monkeypatch: pytest.MonkeyPatch, options: dict[str, Any]
) -> None:
    """The collector feeds progress, the grid and the panel: nothing reaches it unstored."""
    seen: list[tuple[bool, bool]] = []
    real_add = CallProgress.add

    def add(self: CallProgress, generation: Any, request: Any) -> None:
        for im in generation.images:
            on_disk = im.path is not None and im.path.is_file() and im.path.read_bytes() == im.data
            seen.append((on_disk, im.path is not None and im.path.with_suffix(".json").is_file()))
        real_add(self, generation, request)

    monkeypatch.setattr(CallProgress, "add", add)
    result = mesh_magic.generate("A lantern in the fog", n=2, size="256x256", **options)
    assert len(result) == 2 and seen == [(True, True), (True, True)]
    assert all(im.path is not None and im.path.is_relative_to(store) for im in result)


def test_the_key_never_reaches_the_store(sentinel_server: Any, store: Path, tmp_path: Path) -> None:
    key = sentinel_server.api_key
    assert key and key.startswith("rsk_SENTINEL")
    saved = tmp_path / "saved"
    mesh_magic.generate("a brass key on velvet", n=2, size="256x256", cache="on", save=saved)
    mesh_magic.generate("a brass key on velvet", response_format="url", size="512x512", cache="on")
    mesh_magic.generate("a brass key on velvet", stream=True, size="256x256", cache="on", params={"seed": 3})
    mesh_magic.generate("a brass key on velvet", n=2, size="256x256", cache="on")  # a cache hit
    files = all_files(store) + all_files(saved)
    assert len(stored_images(store)) == 4 and len(files) > 10
    needles = [key.encode(), key[4:].encode(), key[-12:].encode()]
    for path in files:
        data = path.read_bytes()
        assert not any(needle in data for needle in needles), f"the key leaked into {path}"
