"""The image store: every image on disk with a JSON sidecar, a request cache, and history.

Layout under the store root (default: a per-user data folder from platformdirs):

    images/YYYY-MM-DD/<id>.<ext>   the full-resolution image
    images/YYYY-MM-DD/<id>.json    its sidecar (prompt, model, parameters, ids, sha256; never a key)
    cache/<key>.json               which images answer one exact request

All writes are atomic (temp file + rename), so a crash never leaves a half file
that later reads as valid. Paths in the cache index are relative, so a store
folder can be shipped next to a notebook and replayed elsewhere: a request is
indexed under a host-agnostic key, its entry naming the base URL that answered
it; `cache="on"` takes only the same base URL's answers, `cache="replay"` any.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeGuard

from .errors import CacheMissError, MeshImageError, MeshImageWarning
from .files import atomic_write, json_bytes, sidecar_for
from .images import EXTENSIONS
from .parsing import as_timestamp
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


@dataclass(frozen=True)
class StoredAnswer:
    """What the store holds for one request: its images, and which of them never arrived."""

    images: list[GeneratedImage]
    # Indices (0..n-1) of the images a partly failed answer lacks; empty when it is complete.
    missing: tuple[int, ...] = ()


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
    host = _host(base_url) if with_host else "*"
    canonical = {"base_url": host, "body": body}
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _host(base_url: str) -> str:
    """The API root a cache entry was answered by, as the cache keys and entries name it."""
    return public_url(base_url).rstrip("/").removesuffix("/v1")


def _describe_request(request: ImageRequest) -> str:
    bits = [f"n={request.n}"]
    bits += [f"{k}={v}" for k, v in request.fields.items() if k != "response_format"]
    bits += [f"{k}={json.dumps(v, default=str)}" for k, v in sorted(request.params.items())]
    return ", ".join(bits)


class Store:
    """One store folder: write images as they arrive, look requests up, list history."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = (Path(root).expanduser() if root else default_store_dir()).absolute()
        # Entries found unreadable or malformed so far (history and the cache skip them).
        self.skipped = 0

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
        created = as_timestamp(image.created) or int(time.time())
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

    def remember(
        self, request: ImageRequest, base_url: str, images: list[GeneratedImage], *, complete: bool = True
    ) -> None:
        """Index the images that answered `request`: one entry, naming the base URL.

        `complete=False` records a partly failed answer: a later run serves these
        images and asks only for the missing ones (their indices are kept).
        """
        kept = [im for im in images if im.path is not None]
        if not kept:
            return
        entry = json_bytes(
            {
                "model": request.model,
                "prompt": request.prompt,
                "images": [im.path.relative_to(self.root).as_posix() for im in kept if im.path],
                "indices": [im.index for im in kept],
                "n": request.n,
                "complete": complete,
                "base_url": _host(base_url),
                "time": time.time(),
            }
        )
        # One entry, under the host-agnostic key: it names its base URL, so `cache="on"`
        # takes it only from the same one while replay takes it from any. No fsync: the
        # image and sidecar are already durable, and an entry lost in a crash is only a miss.
        key = cache_key(request, base_url, with_host=False)
        atomic_write(self.root / "cache" / f"{key}.json", entry, durable=False)

    # -- reading ------------------------------------------------------------

    def lookup(self, request: ImageRequest, base_url: str, *, any_host: bool = False) -> StoredAnswer | None:
        """The stored answer to `request`, or None; `any_host` also accepts other base URLs.

        Stores written before entries named their base URL also hold an entry under
        the key with the host: it is the fallback.
        """
        host = None if any_host else _host(base_url)
        exact = cache_key(request, base_url)
        for key in (cache_key(request, base_url, with_host=False), exact):
            index = self.root / "cache" / f"{key}.json"
            try:
                raw = index.read_bytes()
            except OSError:
                continue  # not asked before: the usual miss
            try:
                entry = json.loads(raw)
                if key != exact and host is not None and entry.get("base_url") != host:
                    continue  # answered by another base URL (or unnamed, from an older store)
                answer = self._answer(entry, request)
            except (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError):
                self.skipped += 1  # a broken entry is a miss: the request is sent again
                continue
            if answer.images:
                return answer
        return None

    def _answer(self, entry: dict[str, Any], request: ImageRequest) -> StoredAnswer:
        images = [self.load(self._inside(rel), verify=True) for rel in entry["images"]]
        partial = entry.get("complete", True) is False
        indices = entry.get("indices")
        if not _distinct_indices(indices, len(images)):
            if partial:  # which images are missing is unknown: a miss, never a double purchase
                raise ValueError("a partial cache entry without usable indices")
            indices = list(range(len(images)))  # an entry written before indices were kept
        taken = set(indices)
        missing = tuple(i for i in range(request.n) if i not in taken) if partial else ()
        # Served from the store: nothing is billed.
        found = [
            im.with_changes(row=request.row, index=i, cached=True, cost=0.0)
            for im, i in zip(images, indices, strict=True)
        ]
        return StoredAnswer(found, missing)

    def _inside(self, relative: str) -> Path:
        """A path from a cache index, refused unless it stays inside the store (shipped stores)."""
        rel = PurePosixPath(relative)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"cache entry points outside the store: {relative!r}")
        return self.root.joinpath(*rel.parts)

    def load(self, path: Path, meta: Any = None, *, verify: bool = False) -> GeneratedImage:
        """An image from its sidecar (read unless given); its bytes stay on disk until `.data`.

        Raises OSError/ValueError if the sidecar is bad (not a JSON object, a field missing
        or of the wrong type) or, with `verify`, if the image file is missing, changed since
        (sha256) or does not decode completely. The cache verifies, so a damaged file is a
        miss; history does not (reading every image would make it slow): `.data` checks
        the sha256 when the bytes are read.
        """
        from .results import GeneratedImage, ImageParent

        if meta is None:
            try:
                meta = json.loads(path.with_suffix(".json").read_bytes())
            except RecursionError:
                raise ValueError(f"the sidecar of {path.name} is nested too deeply") from None
        fields = _sidecar_fields(meta, path)
        digest = meta.get("sha256")
        if not isinstance(digest, str):
            raise ValueError(f"the sidecar of {path.name} records no sha256")
        if verify:
            _verify_image(path, digest)
        return GeneratedImage.stored(
            path,
            digest,
            **fields,
            revised_prompt=_text_or_none(meta.get("revised_prompt")),
            request_id=_text_or_none(meta.get("request_id")),
            created=as_timestamp(meta.get("created")),
            params=meta["params"] if isinstance(meta.get("params"), dict) else {},
            index=meta["index"] if type(meta.get("index")) is int else 0,
            operation=str(meta.get("operation") or "generate"),
            parents=tuple(
                ImageParent(str(p["sha256"]), p.get("path"), p.get("label"), p.get("size"))
                for p in (meta.get("parents") if isinstance(meta.get("parents"), list) else ())
                if isinstance(p, dict) and p.get("sha256")
            ),
            cost=_number_or_none(meta.get("cost")),
            latency_s=_number_or_none(meta.get("latency_s")),
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
                except (OSError, ValueError, RecursionError):
                    self.skipped += 1
                    continue
                if not isinstance(meta, dict):
                    self.skipped += 1
                    continue
                ext = EXTENSIONS.get(str(meta.get("mime_type", "")), "bin")
                # Sorted by number only: a sidecar with "stored_at": "soon" must not break the sort.
                stamp = _number_or_none(meta.get("stored_at")) or as_timestamp(meta.get("created")) or 0
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
        self.skipped = 0
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
                self.skipped += 1  # gone or rewritten; the sha256 is checked whenever bytes are read
                continue
            try:
                out.append(self.load(path, meta))
            except (OSError, ValueError):
                self.skipped += 1
                continue
            if n is not None and len(out) >= n:
                break
        if self.skipped:
            warnings.warn(self.skipped_note(), MeshImageWarning, stacklevel=2)
        return out

    def skipped_note(self) -> str:
        many = self.skipped != 1
        return (
            f"Skipped {self.skipped} unreadable or malformed entr{'ies' if many else 'y'} in the store "
            f"{self.root} (a sidecar or image file that is missing, corrupt or not ours)."
        )


def _sidecar_fields(meta: Any, path: Path) -> dict[str, Any]:
    """The fields an image cannot do without, type-checked: a sidecar is a file anyone can edit."""
    if not isinstance(meta, dict):
        raise ValueError(f"the sidecar of {path.name} is not a JSON object")
    fields = {"mime_type": str, "prompt": str, "model": str, "width": int, "height": int}
    for name, kind in fields.items():
        value = meta.get(name)
        if type(value) is not kind or (isinstance(value, int) and value <= 0):
            raise ValueError(f"the sidecar of {path.name} has no usable {name!r}")
    return {name: meta[name] for name in fields}


def _verify_image(path: Path, digest: str) -> None:
    """The file is the one the sidecar describes and decodes completely, else ValueError."""
    from .images import inspect_image

    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise ValueError(f"{path} does not match its sidecar's sha256")
    try:
        inspect_image(data, what=f"stored image {path.name}")
    except MeshImageError as exc:
        raise ValueError(exc.message) from None


def _distinct_indices(value: Any, count: int) -> TypeGuard[list[int]]:
    """`value` is a list of `count` distinct non-negative ints (an index entry's "indices")."""
    if not isinstance(value, list) or len(value) != count:
        return False
    return all(type(i) is int and i >= 0 for i in value) and len(set(value)) == count


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _number_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _same_size(path: Path, meta: dict[str, Any]) -> bool:
    """The image file exists with the size its sidecar recorded (a stat, not a read)."""
    try:
        size = path.stat().st_size
    except OSError:
        return False
    recorded = meta.get("bytes")
    return not isinstance(recorded, int) or recorded == size


def replay_miss(request: ImageRequest, store: Store, found: StoredAnswer | None = None) -> CacheMissError:
    """The error for a request `cache="replay"` cannot answer (wholly) from `store`."""
    prompt = request.prompt if len(request.prompt) <= 80 else request.prompt[:79] + "…"
    what = "no stored images"
    if found is not None:
        what = f"only {len(found.images)} of the {request.n} images stored (the rest failed when recorded)"
    return CacheMissError(
        f"cache='replay': {what} for model {request.model} with prompt {prompt!r} "
        f"({_describe_request(request)}) in the store {store.root}. Nothing was sent."
    )
