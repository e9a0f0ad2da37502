"""Bulk runs keep images on disk, not in memory: results read their bytes back from the store."""

from __future__ import annotations

import gc
import hashlib
import io
import os
import weakref
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

import mesh_magic
from mesh_magic.core import files as _files
from tests.support.servers import FAST_MODEL, TINY, generations


def test_a_bulk_run_holds_no_bytes_and_reads_them_back_from_the_store(server: Any, store: Path) -> None:
    prompts = [f"A paper boat, fold {i}" for i in range(30)]
    results = mesh_magic.generate_many(prompts, model=FAST_MODEL, size=TINY, n=2, progress=False)
    images = [im for r in results for im in r]
    assert len(images) == 60 and len(generations(server)) == 30
    # Nothing of the run's bytes stays in memory once stored ...
    assert not any(im.in_memory for im in images)
    assert all(im.path is not None and im.path.is_relative_to(store) and im.sha256 for im in images)
    # ... the bytes the server sent are gone with the run ...
    tracked = [weakref.ref(r) for r in results]
    del results
    gc.collect()
    assert all(ref() is None for ref in tracked)
    # ... and each image reads back from its file, checked against its sha256.
    for im in images:
        data = im.data
        assert hashlib.sha256(data).hexdigest() == im.sha256
        with Image.open(io.BytesIO(data)) as pil:
            assert pil.size == (64, 64)
    assert im.to_pil().size == (64, 64)
    # A later session finds the same files through history.
    assert {h.path for h in mesh_magic.history(60)} == {im.path for im in images}


def test_an_image_the_store_could_not_keep_stays_in_memory_and_says_why(
    server: Any, store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = _files.atomic_write

    def disk_full(path: Path, data: bytes, **kwargs: Any) -> None:
        if path.suffix == ".png":
            raise OSError(28, os.strerror(28))
        real(path, data, **kwargs)

    monkeypatch.setattr("mesh_magic.core.store.atomic_write", disk_full)
    (result,) = mesh_magic.generate_many(["A lost kite"], model=FAST_MODEL, size=TINY, progress=False)
    (image,) = result
    assert image.in_memory and image.path is None
    assert image.not_stored is not None and "No space left on device" in image.not_stored
    assert "kept in memory" in image.not_stored
    with Image.open(io.BytesIO(image.data)) as pil:
        assert pil.size == (64, 64)
