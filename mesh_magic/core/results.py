"""Result objects: `GeneratedImage` (one image and its facts) and `ImageResult` (a call's grid).

They know nothing of IPython or HTML. Rich display is the `_repr_mimebundle_`
protocol, answered by the renderer the package installs (`use_renderer`; the
rendering layer's grid), so the core never imports the layer above it.
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, overload

from .errors import MeshImageError, StoreError
from .images import EXTENSIONS
from .stored_bytes import ImageBytes


class Renderer(Protocol):
    def __call__(self, result: ImageResult) -> tuple[dict[str, str], dict[str, Any]]: ...


_renderer: Renderer | str | None = None


def use_renderer(renderer: Renderer | str) -> None:
    """Install how results display: a function, or "module:function" looked up when shown."""
    global _renderer
    _renderer = renderer


_page: str | None = None


def use_page(path: str) -> None:
    """Install what `ImageResult.to_html()` calls ("module:function" -> the page's HTML)."""
    global _page
    _page = path


_editor: str | None = None


def use_editor(path: str) -> None:
    """Install what `GeneratedImage.edit()` and friends call ("module:function"), like the renderer."""
    global _editor
    _editor = path


def _edit(image: GeneratedImage, prompt: str, operation: str, **options: Any) -> ImageResult:
    if _editor is None:
        raise RuntimeError("no editor installed: import mesh_magic")
    module, _, name = _editor.partition(":")
    editor = getattr(importlib.import_module(module), name)
    result: ImageResult = editor(image, prompt, operation=operation, **options)
    return result


def _render(result: ImageResult) -> tuple[dict[str, str], dict[str, Any]]:
    renderer = _renderer
    if isinstance(renderer, str):
        # Looked up at each display (a cached import): cheap, and replaceable in tests.
        module, _, name = renderer.partition(":")
        renderer = getattr(importlib.import_module(module), name)
    if renderer is None:
        return {"text/plain": repr(result)}, {}
    return renderer(result)


@dataclass(frozen=True)
class ImageParent:
    """A source image of an edit: its sha256, where the store keeps it, what it was called, its size."""

    sha256: str
    path: str | None = None
    label: str | None = None
    size: str | None = None  # "WIDTHxHEIGHT"

    def as_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "path": self.path, "label": self.label, "size": self.size}


@dataclass(eq=False)
class GeneratedImage:
    """One generated image with full-resolution bytes and where it came from.

    `operation` is "generate" or the edit done (SPEC 8) with its source images in
    `parents`; `cost` is USD (None when unknown, 0 for cache hits and replays);
    `latency_s` runs from the request sent to this image decoded. A stored image
    (`path`, `sha256`) keeps no bytes in memory: `data` reads the file; one that
    could not be stored keeps its bytes and says why in `not_stored`.
    """

    data: bytes = field(repr=False)  # held bytes or the stored file: see ImageBytes, installed below
    mime_type: str
    width: int
    height: int
    prompt: str
    model: str
    revised_prompt: str | None = None
    request_id: str | None = None
    created: int | None = None
    path: Path | None = None
    params: dict[str, Any] = field(default_factory=dict)
    row: int = 0
    index: int = 0
    cached: bool = False
    partial: bool = False  # a stream's last partial image, kept because the stream failed
    source: str = "b64_json"  # b64_json | url | data_uri | stream
    operation: str = "generate"
    parents: tuple[ImageParent, ...] = ()
    cost: float | None = None
    latency_s: float | None = None
    sha256: str | None = None
    not_stored: str | None = None  # why this image is only in memory (the store write failed)

    def with_changes(self, **changes: Any) -> GeneratedImage:
        """A copy with some fields changed; unlike `dataclasses.replace`, never reads stored bytes."""
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise TypeError(f"GeneratedImage has no field {sorted(unknown)[0]!r}")
        clone = copy.copy(self)
        for name, value in changes.items():
            setattr(clone, name, value)
        return clone

    @property
    def in_memory(self) -> bool:
        """True while the bytes are held in memory (not yet stored, or not storable)."""
        return self.__dict__.get("_data") is not None

    @classmethod
    def stored(cls, path: Path, sha256: str, **facts: Any) -> GeneratedImage:
        """An image kept in the store, described by `facts`; its bytes are read when needed."""
        (image := cls(data=b"", path=path, sha256=sha256, **facts)).release()
        return image

    def release(self) -> None:
        """Drop the bytes from memory; only for a stored image (`path` and `sha256` set)."""
        if self.path is None or self.sha256 is None:
            raise ValueError("only a stored image can release its bytes")
        self.__dict__["_data"] = None

    def _read_stored(self) -> bytes:
        if self.path is None:
            raise StoreError("This image holds no bytes and has no file to read them from.")
        try:
            data = Path(self.path).read_bytes()
        except OSError as exc:
            raise StoreError(
                f"The stored image {self.path} cannot be read ({exc.strerror or exc})."
            ) from None
        if self.sha256 is not None and hashlib.sha256(data).hexdigest() != self.sha256:
            raise StoreError(f"The stored image {self.path} was changed: its sha256 no longer matches.")
        return data

    @property
    def seed(self) -> Any:
        """The seed sent for this image (`--seed` / `-p seed=`), if any."""
        return self.params.get("seed")

    @property
    def extension(self) -> str:
        return EXTENSIONS.get(self.mime_type, "bin")

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    # -- refine this image (SPEC 8): each is `mesh_magic.edit(self, ...)` ---------------------

    def edit(self, prompt: str, **options: Any) -> ImageResult:
        """This image changed as `prompt` says."""
        return _edit(self, prompt, "edit", **options)

    def inpaint(self, prompt: str = "", mask: Any = None, region: Any = None, **options: Any) -> ImageResult:
        """Only the masked area changed (`mask`: transparent = change; or `region` X,Y,W,H)."""
        return _edit(self, prompt, "inpaint", mask=mask, region=region, **options)

    def outpaint(self, prompt: str, **options: Any) -> ImageResult:
        """A larger canvas around this image, filled as `prompt` says."""
        return _edit(self, prompt, "outpaint", **options)

    def upscale(self, factor: int | str | None = None, **options: Any) -> ImageResult:
        """A bigger version (`factor` 2 or 4: the `upscale_factor` field)."""
        if factor is not None:
            options["params"] = {**options.get("params", {}), "upscale_factor": str(factor)}
        return _edit(self, "", "upscale", **options)

    def remove_background(self, **options: Any) -> ImageResult:
        """The subject on a transparent background."""
        return _edit(self, "", "remove_background", **options)

    def reframe(self, aspect_ratio: str, prompt: str = "", **options: Any) -> ImageResult:
        """This image in another shape (`aspect_ratio` like "16:9"), keeping the subject."""
        options["params"] = {**options.get("params", {}), "aspect_ratio": aspect_ratio}
        return _edit(self, prompt, "reframe", **options)

    def to_pil(self) -> Any:
        """A loaded `PIL.Image.Image` of the full-resolution image."""
        from .images import to_pil

        return to_pil(self.data)

    def save(self, path: str | Path) -> Path:
        """Write the image bytes to `path`; a folder gets a descriptive file name inside it."""
        target = Path(path).expanduser()
        # A folder (existing, with a trailing slash, or a name without an extension) gets a name.
        if target.is_dir() or str(path).endswith(("/", "\\")) or not target.suffix:
            from .files import claim

            target.mkdir(parents=True, exist_ok=True)
            stem = self.slug()
            # A name of our choosing never replaces a file: claimed atomically, -2, -3...
            target = target / f"{stem}.{self.extension}"
            counter = 1
            while not claim(target):
                counter += 1
                target = target.with_name(f"{stem}-{counter}.{self.extension}")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.data)
        return target

    def slug(self) -> str:
        words = re.sub(r"[^a-z0-9]+", "-", self.prompt.lower()).strip("-")[:40].strip("-")
        model = re.sub(r"[^a-z0-9]+", "-", self.model.lower()).strip("-")
        return f"{words or 'image'}_{model}_{self.row}-{self.index}"

    def metadata(self) -> dict[str, Any]:
        """Facts worth keeping with the image (sidecars, output metadata). Never the key."""
        return {
            "prompt": self.prompt,
            "model": self.model,
            "revised_prompt": self.revised_prompt,
            "request_id": self.request_id,
            "created": self.created,
            "mime_type": self.mime_type,
            "width": self.width,
            "height": self.height,
            "params": self.params,
            "cached": self.cached,
            "partial": self.partial,
            "operation": self.operation,
            "parents": [parent.as_dict() for parent in self.parents],
            "cost": self.cost,
            "latency_s": self.latency_s,
        }

    def __repr__(self) -> str:
        held = self.__dict__.get("_data")
        where = f"{len(held)} bytes" if held is not None else "stored"
        return (
            f"<GeneratedImage {self.model} {self.size} {self.mime_type} {where} prompt={self.prompt[:40]!r}>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return _render(ImageResult([self]))


# After the dataclass is built: its __init__ assigns `self.data`, which then goes through the
# descriptor (declared in the class body, dataclasses would take it for the field's default).
setattr(GeneratedImage, "data", ImageBytes())  # noqa: B010


@dataclass
class ItemError:
    """A failed grid cell: which prompt and model, and the error."""

    prompt: str
    model: str
    error: MeshImageError
    row: int = 0

    def __str__(self) -> str:
        return f"{self.model}: {self.error}"


class ImageResult(Sequence[GeneratedImage]):
    """The images of one call (all prompts x models), in grid order, plus per-item errors."""

    def __init__(
        self,
        images: Sequence[GeneratedImage] = (),
        errors: Sequence[ItemError] = (),
        *,
        rows: Sequence[tuple[str, str]] = (),
        usage: dict[str, Any] | None = None,
        display_max_px: int = 512,
        interrupted: bool = False,
        notes: Sequence[str] = (),
    ) -> None:
        self._images = sorted(images, key=lambda im: (im.row, im.index))
        self.errors: list[ItemError] = sorted(errors, key=lambda e: e.row)
        self.rows: list[tuple[str, str]] = list(rows) or _rows_of(self._images, self.errors)
        self.usage: dict[str, Any] = usage or {}
        self.display_max_px = display_max_px
        self.interrupted = interrupted
        # Why `save=` / --save failed, if it did: the images are still here (a warning says so).
        self.save_error: str | None = None
        self.notes: list[str] = list(notes)

    @overload
    def __getitem__(self, index: int) -> GeneratedImage: ...
    @overload
    def __getitem__(self, index: slice) -> list[GeneratedImage]: ...
    def __getitem__(self, index: int | slice) -> GeneratedImage | list[GeneratedImage]:
        return self._images[index]

    def __len__(self) -> int:
        return len(self._images)

    def __iter__(self) -> Iterator[GeneratedImage]:
        return iter(self._images)

    @property
    def images(self) -> list[GeneratedImage]:
        return list(self._images)

    @property
    def request_ids(self) -> list[str]:
        seen: dict[str, None] = {}
        for im in self._images:
            if im.request_id:
                seen.setdefault(im.request_id)
        for err in self.errors:
            if err.error.request_id:
                seen.setdefault(err.error.request_id)
        return list(seen)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.interrupted

    @property
    def cost(self) -> float | None:
        """USD for the images of this call: 0 for those from the cache; None if a price was unknown."""
        costs = [im.cost for im in self._images if not im.partial]
        return None if any(c is None for c in costs) else sum(c or 0.0 for c in costs)

    def save(self, directory: str | Path) -> list[Path]:
        """Write every image (and a JSON sidecar each) to `directory`; returns the image paths."""
        from .files import write_with_sidecar

        folder = Path(directory).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        return [write_with_sidecar(folder, im) for im in self._images]

    # -- results as data (SPEC 10) -------------------------------------------------------

    def to_pandas(self) -> Any:
        """A pandas DataFrame, one row per image (`mesh_magic.core.dataset.COLUMNS`)."""
        from .dataset import to_pandas

        return to_pandas(self._images)

    def export(self, directory: str | Path) -> Path:
        """The images plus a `metadata.jsonl`, loadable as a Hugging Face imagefolder."""
        from .dataset import export

        return export(self._images, directory)

    def to_html(self, path: str | Path, *, title: str | None = None) -> Path:
        """One self-contained HTML file (thumbnails embedded, captions, parameters); its path."""
        from .dataset import write_html

        if _page is None:
            raise RuntimeError("no page renderer installed: import mesh_magic")
        module, _, name = _page.partition(":")
        return write_html(getattr(importlib.import_module(module), name)(self, title=title), path)

    def __repr__(self) -> str:
        state = " interrupted" if self.interrupted else ""
        return f"<ImageResult {len(self)} images, {len(self.errors)} errors{state}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return _render(self)


def _rows_of(images: Sequence[GeneratedImage], errors: Sequence[ItemError]) -> list[tuple[str, str]]:
    found: dict[int, tuple[str, str]] = {}
    for im in images:
        found.setdefault(im.row, (im.prompt, im.model))
    for err in errors:
        found.setdefault(err.row, (err.prompt, err.model))
    return [found[k] for k in sorted(found)]
