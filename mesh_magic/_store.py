"""Writing images to disk: atomic files with a JSON sidecar each (never the key).

The per-user store, history and cache build on these helpers.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._results import GeneratedImage


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temp file + rename, so a crash never leaves a half file under `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def sidecar_for(image: GeneratedImage) -> dict[str, Any]:
    meta = image.metadata()
    meta["sha256"] = hashlib.sha256(image.data).hexdigest()
    meta["bytes"] = len(image.data)
    return meta


def write_with_sidecar(folder: Path, image: GeneratedImage, stem: str | None = None) -> Path:
    """Write `image` as `<stem>.<ext>` plus `<stem>.json`; returns the image path."""
    stem = stem or image.slug()
    target = folder / f"{stem}.{image.extension}"
    atomic_write(target, image.data)
    sidecar = json.dumps(sidecar_for(image), indent=2, ensure_ascii=False, default=str)
    atomic_write(folder / f"{stem}.json", sidecar.encode("utf-8"))
    return target
