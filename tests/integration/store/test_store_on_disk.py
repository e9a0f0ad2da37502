"""The store on disk through the front ends: an unwritable store, --save file names."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core.results import GeneratedImage, ImageResult
from tests.support.images import make_png
from tests.support.store_files import part_files, sha256, stored_images


def test_an_unwritable_store_still_shows_the_images_with_a_note(
    monkeypatch: pytest.MonkeyPatch, store: Path
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError("simulated")))
        result = mesh_magic.generate("a grey pebble", base_url="offline", size="256x256")
    assert len(result) == 1 and result[0].path is None
    assert any("Could not write to the store" in note for note in result.notes)
    assert stored_images(store) == [] and part_files(store) == []


# -- --save -------------------------------------------------------------------------------


def test_save_writes_friendly_names_and_sidecars(shell: Any, tmp_path: Path, store: Path) -> None:
    out = tmp_path / "out"
    shell.run_line_magic("meshimg_config", "base_url=offline")
    shell.run_cell(f"%%meshimg -n 2 -s 256x256 --save {out} -o res\nA Lighthouse, at dawn!  (v2)")
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "a-lighthouse-at-dawn-v2_openai-gpt-image-1_0-0.json",
        "a-lighthouse-at-dawn-v2_openai-gpt-image-1_0-0.png",
        "a-lighthouse-at-dawn-v2_openai-gpt-image-1_0-1.json",
        "a-lighthouse-at-dawn-v2_openai-gpt-image-1_0-1.png",
    ]
    result: ImageResult = shell.user_ns["res"]
    for im in result:
        saved = out / f"{im.slug()}.png"
        assert saved.read_bytes() == im.data
        meta = json.loads(saved.with_suffix(".json").read_text())
        assert meta["prompt"] == "A Lighthouse, at dawn!  (v2)" and meta["sha256"] == sha256(im.data)
        # The store got its own copy before anything was shown.
        assert im.path is not None and im.path.is_relative_to(store) and im.path.read_bytes() == im.data
    # Saving other bytes under the same name never overwrites: it gets a suffix.
    other = GeneratedImage(
        make_png(32, 32, (1, 2, 3)),
        "image/png",
        32,
        32,
        prompt=result[0].prompt,
        model=result[0].model,
        request_id="req_1",
        created=1_700_000_000,
        params={"model": "openai/gpt-image-1", "n": 1, "seed": 7},
        revised_prompt="A vivid red square",
    )
    ImageResult([other]).save(out)
    assert (out / "a-lighthouse-at-dawn-v2_openai-gpt-image-1_0-0-2.png").read_bytes() == other.data
    assert (out / "a-lighthouse-at-dawn-v2_openai-gpt-image-1_0-0.png").read_bytes() == result[0].data
