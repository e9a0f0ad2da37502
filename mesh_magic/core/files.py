"""Files on disk: atomic writes, and an image written with its JSON sidecar.

Shared by the store, `ImageResult.save` / `GeneratedImage.save` and the panel's
Save button, so every image file anywhere is written the same careful way.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import GeneratedImage


def atomic_write(path: Path, data: bytes, *, durable: bool = True, mode: int | None = None) -> None:
    """Write via a temp file + rename, so a crash never leaves a half file under `path`.

    On any failure the temp file is removed and an existing file at `path` is untouched.
    `durable=False` skips the fsync: still atomic, but the newest write may be lost in a
    power cut; only for derived data that is safe to lose (the cache index). `mode` sets
    the file's permissions (e.g. 0o600, owner only) instead of what a plain open() gives.
    """
    fd, tmp = _open_temp(path, mode)
    try:
        if mode is not None:
            os.chmod(tmp, mode)  # exactly this mode, whatever the umask
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _open_temp(path: Path, mode: int | None) -> tuple[int, str]:
    """A new temp file next to `path` (its folder made if missing), opened for writing.

    os.open with O_EXCL and a mode gives the umask's permissions in one call; the folder is
    made only when the open finds it missing (a bulk run writes thousands of files into a
    few folders: no mkdir or stat per file).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for attempt in range(2):
        tmp = os.path.join(path.parent, f".{path.name}.{secrets.token_hex(4)}.part")
        try:
            return os.open(tmp, flags, 0o600 if mode is not None else 0o666), tmp
        except FileNotFoundError:
            if attempt:
                raise
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            continue  # another writer's temp name: draw again
    raise FileExistsError(f"no free temporary name next to {path}")


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode("utf-8")


def sidecar_for(image: GeneratedImage, **extra: Any) -> dict[str, Any]:
    """The JSON facts kept next to an image: prompt, model, parameters, ids, size, sha256."""
    meta = image.metadata()
    meta["size"] = image.size
    meta["sha256"] = hashlib.sha256(image.data).hexdigest()
    meta["bytes"] = len(image.data)
    meta["index"] = image.index
    meta.update(extra)
    return meta


def claim(path: Path) -> bool:
    """Create `path` empty if no file has that name yet; False if one has (atomic: O_EXCL).

    Two processes saving into one folder can both see a name free; only one can create
    it. The empty placeholder is then replaced by `atomic_write`.
    """
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    except FileExistsError:
        return False
    os.close(fd)
    return True


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False


def write_with_sidecar(folder: Path, image: GeneratedImage, stem: str | None = None) -> Path:
    """Write `image` as `<stem>.<ext>` plus `<stem>.json`; returns the image path.

    The default stem is human-friendly: prompt slug, model, row-index. A name is
    claimed atomically before it is written, so nothing is ever overwritten, even by
    another process saving into the same folder at once: a taken name (image or
    sidecar) moves on to `-2`, `-3`... A file already holding these very bytes is reused.
    """
    base = stem or image.slug()
    folder.mkdir(parents=True, exist_ok=True)
    for counter in itertools.count(1):
        stem = base if counter == 1 else f"{base}-{counter}"
        target, sidecar = folder / f"{stem}.{image.extension}", folder / f"{stem}.json"
        if claim(target):
            if claim(sidecar):
                break
            target.unlink()  # the sidecar's name belongs to another image with this stem
        elif _holds(target, image.data):
            break
    atomic_write(target, image.data)
    atomic_write(sidecar, json_bytes(sidecar_for(image)))
    return target
