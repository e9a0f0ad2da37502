"""The image store: every image on disk with a JSON sidecar, a request cache, and history.

Layout under the store root (default: a per-user data folder from platformdirs):

    images/YYYY-MM-DD/<id>.<ext>   the full-resolution image
    images/YYYY-MM-DD/<id>.json    its sidecar (prompt, model, parameters, ids, sha256; never a key)
    cache/<key>.json               which images answer one exact request

All writes are atomic (temp file + rename), so a crash never leaves a half file
that later reads as valid. Paths in the cache index are relative, so a store
folder can be shipped next to a notebook and replayed elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import CacheMissError

if TYPE_CHECKING:
    from ._config import Settings
    from ._request import ImageRequest
    from ._results import GeneratedImage

SIDECAR_VERSION = 1


def default_store_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("mesh_magic", appauthor=False)) / "store"


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
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str).encode("utf-8")


def sidecar_for(image: GeneratedImage, **extra: Any) -> dict[str, Any]:
    meta = image.metadata()
    meta["sha256"] = hashlib.sha256(image.data).hexdigest()
    meta["bytes"] = len(image.data)
    meta["index"] = image.index
    meta.update(extra)
    return meta


def write_with_sidecar(folder: Path, image: GeneratedImage, stem: str | None = None) -> Path:
    """Write `image` as `<stem>.<ext>` plus `<stem>.json`; returns the image path.

    An existing file with other bytes is kept: the new one gets a `-2`, `-3`... suffix.
    """
    base = stem or image.slug()
    stem, counter = base, 1
    target = folder / f"{stem}.{image.extension}"
    while target.exists() and target.read_bytes() != image.data:
        counter += 1
        stem = f"{base}-{counter}"
        target = folder / f"{stem}.{image.extension}"
    atomic_write(target, image.data)
    atomic_write(folder / f"{stem}.json", _json_bytes(sidecar_for(image)))
    return target


def cache_key(request: ImageRequest, base_url: str, *, with_host: bool = True) -> str:
    """Identity of a request for the cache: everything that shapes the images, never the key."""
    body = request.body()
    body.pop("stream", None)  # streaming changes delivery, not the images
    canonical = {"base_url": base_url if with_host else "*", "body": body}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Store:
    """One store folder: write images as they arrive, look requests up, list history."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_store_dir()

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        return cls(settings.store_dir)

    # -- writing ------------------------------------------------------------

    def put(self, image: GeneratedImage, *, base_url: str = "") -> GeneratedImage:
        """Write the image and its sidecar; returns a copy whose `.path` points at it."""
        created = image.created or int(time.time())
        day = time.strftime("%Y-%m-%d", time.gmtime(created))
        stem = f"{time.strftime('%H%M%S', time.gmtime(created))}-{secrets.token_hex(4)}"
        folder = self.root / "images" / day
        stored = replace(image, path=folder / f"{stem}.{image.extension}")
        atomic_write(stored.path, image.data)  # type: ignore[arg-type]
        sidecar = sidecar_for(image, version=SIDECAR_VERSION, base_url=base_url,
                              stored_at=time.time())
        atomic_write(folder / f"{stem}.json", _json_bytes(sidecar))
        return stored

    def remember(self, request: ImageRequest, base_url: str, images: list[GeneratedImage]) -> None:
        """Index the images that answered `request` (exact key and host-agnostic key)."""
        paths = [str(im.path.relative_to(self.root)) for im in images if im.path is not None]
        if not paths:
            return
        entry = _json_bytes({"model": request.model, "prompt": request.prompt, "images": paths,
                             "time": time.time()})
        for with_host in (True, False):
            key = cache_key(request, base_url, with_host=with_host)
            atomic_write(self.root / "cache" / f"{key}.json", entry)

    # -- reading ------------------------------------------------------------

    def lookup(self, request: ImageRequest, base_url: str, *, any_host: bool = False
               ) -> list[GeneratedImage] | None:
        """The stored images for `request`, or None; `any_host` also accepts other base URLs."""
        keys = [cache_key(request, base_url)]
        if any_host:
            keys.append(cache_key(request, base_url, with_host=False))
        for key in keys:
            index = self.root / "cache" / f"{key}.json"
            try:
                entry = json.loads(index.read_bytes())
                images = [self.load(self.root / rel) for rel in entry["images"]]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            return [replace(im, row=request.row, index=i, cached=True)
                    for i, im in enumerate(images)]
        return None

    def load(self, path: Path) -> GeneratedImage:
        """Read an image and its sidecar back; raises OSError/ValueError if either is bad."""
        from ._results import GeneratedImage

        meta = json.loads(path.with_suffix(".json").read_bytes())
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            raise ValueError(f"{path} does not match its sidecar's sha256")
        return GeneratedImage(
            data=data, mime_type=meta["mime_type"], width=meta["width"], height=meta["height"],
            prompt=meta["prompt"], model=meta["model"], revised_prompt=meta.get("revised_prompt"),
            request_id=meta.get("request_id"), created=meta.get("created"), path=path,
            params=meta.get("params") or {}, index=meta.get("index", 0),
        )

    def sidecars(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """(image path, sidecar) for every stored image, newest first."""
        folder = self.root / "images"
        if not folder.is_dir():
            return
        found = []
        for meta_path in folder.glob("*/*.json"):
            try:
                meta = json.loads(meta_path.read_bytes())
            except (OSError, ValueError):
                continue
            ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp",
                   "image/gif": "gif"}.get(meta.get("mime_type", ""), "bin")
            found.append((meta.get("stored_at") or 0, meta_path.with_suffix(f".{ext}"), meta))
        found.sort(key=lambda item: item[0], reverse=True)
        for _, path, meta in found:
            yield path, meta

    def history(self, n: int | None = 20, *, text: str | None = None, model: str | None = None
                ) -> list[GeneratedImage]:
        out: list[GeneratedImage] = []
        needle = text.lower() if text else None
        for path, meta in self.sidecars():
            if model and model.lower() not in str(meta.get("model", "")).lower():
                continue
            if needle and needle not in str(meta.get("prompt", "")).lower():
                continue
            try:
                out.append(self.load(path))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if n is not None and len(out) >= n:
                break
        return out


def replay_miss(request: ImageRequest, store: Store) -> CacheMissError:
    return CacheMissError(
        f"No stored images for {request.model} with prompt {request.prompt[:60]!r} "
        f"(n={request.n}, size={request.size}, quality={request.quality}) in {store.root}."
    )

