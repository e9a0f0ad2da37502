"""The image store: every image on disk with a JSON sidecar, a request cache, and history.

Layout under the store root (default: a per-user data folder from platformdirs):

    images/YYYY-MM-DD/<id>.<ext>   the full-resolution image
    images/YYYY-MM-DD/<id>.json    its sidecar (prompt, model, parameters, ids, sha256; never a key)
    cache/<key>.json               which images answer one exact request

All writes are atomic (temp file + rename), so a crash never leaves a half file
that later reads as valid. Paths in the cache index are relative, so a store
folder can be shipped next to a notebook and replayed elsewhere: every request
is indexed twice, under a key with the base URL and under a host-agnostic one,
and `cache="replay"` accepts either.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .errors import CacheMissError
from .files import atomic_write, json_bytes, sidecar_for
from .images import EXTENSIONS
from .urls import public_url

if TYPE_CHECKING:
    from .request import ImageRequest
    from .results import GeneratedImage
    from .settings import Settings
    from .sources import ImageSource

SIDECAR_VERSION = 1

# Body fields that change how images are delivered, not which images: left out of the cache key.
_DELIVERY_FIELDS = ("stream", "response_format", "partial_images")
# What the API assumes for a field the body leaves out.
_IMPLIED_FIELDS = {"n": 1, "size": "auto", "quality": "auto"}


def default_store_dir() -> Path:
    """The per-user store folder (e.g. ~/.local/share/mesh_magic/store on Linux)."""
    from platformdirs import user_data_dir

    return Path(user_data_dir("mesh_magic", appauthor=False)) / "store"


def cache_key(request: ImageRequest, base_url: str, *, with_host: bool = True) -> str:
    """Identity of a request for the cache: everything that shapes the images, never the key.

    Base URL (unless `with_host` is False), model, prompt, n, size, quality,
    output format and every extra parameter count; how the images travel
    (`stream`, `response_format`) does not. A field left out of the body counts
    as its API default (n 1, size and quality auto), so a request that sends only
    what the user set finds what was stored when every request carried them all.
    """
    body = {**_IMPLIED_FIELDS, **request.identity()}  # images as their sha256, not their bytes
    for name in _DELIVERY_FIELDS:
        body.pop(name, None)
    host = public_url(base_url).rstrip("/").removesuffix("/v1") if with_host else "*"
    canonical = {"base_url": host, "body": body}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _describe_request(request: ImageRequest) -> str:
    bits = [f"n={request.n}"]
    bits += [f"{k}={v}" for k, v in request.fields.items() if k != "response_format"]
    bits += [f"{k}={json.dumps(v, default=str)}" for k, v in sorted(request.params.items())]
    return ", ".join(bits)


class Store:
    """One store folder: write images as they arrive, look requests up, list history."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = (Path(root).expanduser() if root else default_store_dir()).absolute()

    @classmethod
    def for_settings(cls, settings: Settings) -> Store:
        return cls(settings.store_dir)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # -- writing ------------------------------------------------------------

    def put(self, image: GeneratedImage, *, base_url: str = "") -> GeneratedImage:
        """Write the image and its sidecar; returns a copy whose `.path` points at it.

        The image is written first and the sidecar second, and only a sidecar makes
        an image visible (history, cache): if the sidecar cannot be written the image
        file is removed again and the error raised. The copy holds no bytes: its
        `.data` reads the file back (checked against the sha256 kept here).
        """
        created = image.created or int(time.time())
        day = time.strftime("%Y-%m-%d", time.gmtime(created))
        stem = f"{time.strftime('%H%M%S', time.gmtime(created))}-{secrets.token_hex(4)}"
        folder = self.root / "images" / day
        target = folder / f"{stem}.{image.extension}"
        atomic_write(target, image.data)
        sidecar = sidecar_for(
            image, version=SIDECAR_VERSION, base_url=public_url(base_url), stored_at=time.time()
        )
        stored = image.with_changes(path=target, sha256=sidecar["sha256"], not_stored=None)
        stored.release()
        try:
            atomic_write(folder / f"{stem}.json", json_bytes(sidecar))
        except BaseException:
            with contextlib.suppress(OSError):
                target.unlink()
            raise
        return stored

    def put_source(self, source: ImageSource) -> Path:
        """Keep an input image of an edit (once per content: named by its sha256); its path."""
        ext = EXTENSIONS.get(source.mime_type, "bin")
        target = self.root / "sources" / f"{source.sha256}.{ext}"
        if not target.exists():
            atomic_write(target, source.data)
        return target

    def remember(self, request: ImageRequest, base_url: str, images: list[GeneratedImage]) -> None:
        """Index the images that answered `request` (exact key and host-agnostic key)."""
        paths = [im.path.relative_to(self.root).as_posix() for im in images if im.path is not None]
        if not paths:
            return
        entry = json_bytes(
            {"model": request.model, "prompt": request.prompt, "images": paths, "time": time.time()}
        )
        # No fsync for the index (half the store's fsyncs per request): the image and its
        # sidecar are already durable, and an index entry lost in a crash is only a cache miss.
        for with_host in (True, False):
            key = cache_key(request, base_url, with_host=with_host)
            atomic_write(self.root / "cache" / f"{key}.json", entry, durable=False)

    # -- reading ------------------------------------------------------------

    def lookup(
        self, request: ImageRequest, base_url: str, *, any_host: bool = False
    ) -> list[GeneratedImage] | None:
        """The stored images for `request`, or None; `any_host` also accepts other base URLs."""
        keys = [cache_key(request, base_url)]
        if any_host:
            keys.append(cache_key(request, base_url, with_host=False))
        for key in keys:
            index = self.root / "cache" / f"{key}.json"
            try:
                entry = json.loads(index.read_bytes())
                images = [self.load(self._inside(rel), verify=True) for rel in entry["images"]]
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if not images:
                continue
            # Served from the store: nothing is billed.
            return [
                im.with_changes(row=request.row, index=i, cached=True, cost=0.0)
                for i, im in enumerate(images)
            ]
        return None

    def _inside(self, relative: str) -> Path:
        """A path from a cache index, refused unless it stays inside the store (shipped stores)."""
        rel = PurePosixPath(relative)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"cache entry points outside the store: {relative!r}")
        return self.root.joinpath(*rel.parts)

    def load(self, path: Path, meta: dict[str, Any] | None = None, *, verify: bool = False) -> GeneratedImage:
        """An image from its sidecar (read unless given); its bytes stay on disk until `.data`.

        `verify` also reads the image now and checks its sha256 (the cache does, so a
        damaged file is a miss rather than an error later). Raises OSError/ValueError/
        KeyError if the sidecar or (with `verify`) the image is bad.
        """
        from .results import GeneratedImage, ImageParent

        if meta is None:
            meta = json.loads(path.with_suffix(".json").read_bytes())
        digest = meta.get("sha256")
        if not isinstance(digest, str):
            raise ValueError(f"{path}: the sidecar records no sha256")
        if verify and hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise ValueError(f"{path} does not match its sidecar's sha256")
        return GeneratedImage.stored(
            path,
            digest,
            mime_type=meta["mime_type"],
            width=meta["width"],
            height=meta["height"],
            prompt=meta["prompt"],
            model=meta["model"],
            revised_prompt=meta.get("revised_prompt"),
            request_id=meta.get("request_id"),
            created=meta.get("created"),
            params=meta.get("params") or {},
            index=meta.get("index", 0),
            operation=str(meta.get("operation") or "generate"),
            parents=tuple(
                ImageParent(str(p["sha256"]), p.get("path"), p.get("label"), p.get("size"))
                for p in meta.get("parents") or ()
                if isinstance(p, dict) and p.get("sha256")
            ),
            cost=meta.get("cost") if isinstance(meta.get("cost"), (int, float)) else None,
            latency_s=meta.get("latency_s") if isinstance(meta.get("latency_s"), (int, float)) else None,
        )

    def sidecars(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """(image path, sidecar) for every stored image, newest first.

        Day folders are read one at a time, newest first, so `history(n)` on a big
        store only opens the sidecars of the last few days.
        """
        folder = self.root / "images"
        if not folder.is_dir():
            return
        days = sorted((d for d in folder.iterdir() if d.is_dir()), key=lambda d: d.name, reverse=True)
        for day in days:
            found = []
            for meta_path in day.glob("*.json"):
                try:
                    meta = json.loads(meta_path.read_bytes())
                except (OSError, ValueError):
                    continue
                if not isinstance(meta, dict):
                    continue
                ext = EXTENSIONS.get(str(meta.get("mime_type", "")), "bin")
                stamp = meta.get("stored_at") or meta.get("created") or 0
                found.append((stamp, meta_path.name, meta_path.with_suffix(f".{ext}"), meta))
            found.sort(key=lambda item: (item[0], item[1]), reverse=True)
            for _, _, path, meta in found:
                yield path, meta

    def history(
        self, n: int | None = 20, *, text: str | None = None, model: str | None = None
    ) -> list[GeneratedImage]:
        """The newest `n` stored images (all with None), filtered by prompt text and model.

        Both filters are case-insensitive substrings; `text` also matches the revised prompt.
        """
        out: list[GeneratedImage] = []
        needle = text.lower() if text else None
        wanted_model = model.lower() if model else None
        for path, meta in self.sidecars():
            if wanted_model and wanted_model not in str(meta.get("model", "")).lower():
                continue
            if needle:
                haystack = f"{meta.get('prompt', '')}\n{meta.get('revised_prompt') or ''}".lower()
                if needle not in haystack:
                    continue
            if not _same_size(path, meta):
                continue  # gone or rewritten; the sha256 is checked whenever the bytes are read
            try:
                out.append(self.load(path, meta))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if n is not None and len(out) >= n:
                break
        return out


def _same_size(path: Path, meta: dict[str, Any]) -> bool:
    """The image file exists with the size its sidecar recorded (a stat, not a read)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    recorded = meta.get("bytes")
    return not isinstance(recorded, int) or recorded == size


def replay_miss(request: ImageRequest, store: Store) -> CacheMissError:
    """The error for a request `cache="replay"` cannot answer from `store`."""
    prompt = request.prompt if len(request.prompt) <= 80 else request.prompt[:79] + "…"
    return CacheMissError(
        f"cache='replay': no stored images for model {request.model} with prompt {prompt!r} "
        f"({_describe_request(request)}) in the store {store.root}. Nothing was sent."
    )
