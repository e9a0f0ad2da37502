"""Results as data (SPEC 10): one row per image, a pandas DataFrame, an imagefolder export.

`ImageResult.to_pandas()` / `.export(dir)` (and so `history(...)`) come here. Rows are
built from each image's facts without reading its bytes, so 10,000 history rows cost a
few milliseconds; `export` copies the stored files rather than loading them.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidOptionError, MissingDependencyError
from .files import atomic_write

if TYPE_CHECKING:
    from .results import GeneratedImage

# The columns of `to_pandas()`, in order (SPEC 10); `export` writes the same fields.
COLUMNS = (
    "prompt",
    "revised_prompt",
    "model",
    "operation",
    "size",
    "width",
    "height",
    "seed",
    "cost",
    "latency_s",
    "request_id",
    "created",
    "path",
    "sha256",
)
METADATA_FILE = "metadata.jsonl"


def image_row(image: GeneratedImage) -> dict[str, Any]:
    """One image's row: its facts, never its bytes (an unstored image's sha256 is computed)."""
    digest = image.sha256 or (hashlib.sha256(image.data).hexdigest() if image.in_memory else None)
    return {
        "prompt": image.prompt,
        "revised_prompt": image.revised_prompt,
        "model": image.model,
        "operation": image.operation,
        "size": image.size,
        "width": image.width,
        "height": image.height,
        "seed": image.seed,
        "cost": image.cost,
        "latency_s": image.latency_s,
        "request_id": image.request_id,
        "created": image.created,
        "path": None if image.path is None else str(image.path),
        "sha256": digest,
    }


def to_pandas(images: Iterable[GeneratedImage]) -> Any:
    """A pandas DataFrame, one row per image, columns `COLUMNS`."""
    try:
        import pandas as pd
    except ImportError:
        raise MissingDependencyError('to_pandas() needs pandas: pip install "mesh-magic[pandas]"') from None
    frame = pd.DataFrame.from_records([image_row(im) for im in images], columns=list(COLUMNS))
    # Nullable integers: a seed or creation time left out of some rows must not turn the column to floats.
    for name in ("width", "height", "created"):
        frame[name] = frame[name].astype("Int64")
    if frame["seed"].map(lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool))).all():
        frame["seed"] = frame["seed"].astype("Int64")
    return frame


def export(images: Iterable[GeneratedImage], directory: str | Path) -> Path:
    """Write the images and a `metadata.jsonl` (`file_name` + the row fields) to `directory`.

    The folder loads with `datasets.load_dataset("imagefolder", data_dir=directory)`.
    Stored images are copied file to file (checked against their sha256 first), so a
    10,000-image export never holds more than one image in memory. Returns the folder.
    """
    folder = Path(directory).expanduser()
    if folder.exists() and (folder / METADATA_FILE).exists():
        raise InvalidOptionError(
            f"{folder} already holds an export ({METADATA_FILE}): choose an empty folder."
        )
    folder.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    for number, image in enumerate(images):
        name = f"{number:05d}_{_slug(image.prompt)}.{image.extension}"
        _copy_image(image, folder / name)
        row = {"file_name": name, **image_row(image)}
        lines.append(json.dumps(row, ensure_ascii=False, default=str))
    atomic_write(folder / METADATA_FILE, ("\n".join(lines) + "\n").encode("utf-8") if lines else b"")
    return folder


def _copy_image(image: GeneratedImage, target: Path) -> None:
    if image.in_memory or image.path is None:
        atomic_write(target, image.data, durable=False)
        return
    try:
        shutil.copyfile(image.path, target)
    except FileNotFoundError:
        _ = image.data  # raises the StoreError that names the missing file
        raise
    if image.sha256 is not None and hashlib.sha256(target.read_bytes()).hexdigest() != image.sha256:
        target.unlink()
        _ = image.data  # raises the StoreError that says which file changed (or is gone)


def _slug(prompt: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].strip("-") or "image"


def write_html(page: str, path: str | Path) -> Path:
    """Write a rendered page (`ImageResult.to_html`); a folder gets `mesh_magic_results.html`."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / "mesh_magic_results.html"
    atomic_write(target, page.encode("utf-8"), durable=False)
    return target
