"""Image inputs of edits and references: whatever the user points at, checked and ready to send.

A source may be a `GeneratedImage`, an `ImageResult` (its first image), a
`PIL.Image.Image`, bytes, a path, a `data:` URI or an `https://` URL (plain
`http://` only to loopback, as for image answers; fetched by the client, never
with the key). Everything is checked before anything is sent: a missing file,
something that is not an image, or an image over 25 MB is a one-line error.
Sources go on the wire as `data:` URLs and are known by their sha256.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidOptionError, MeshImageError
from .images import inspect_image
from .kv import short
from .parsing import decode_data_uri
from .urls import host_of, is_loopback

if TYPE_CHECKING:
    from .settings import Settings

MAX_SOURCE_BYTES = 25 * 1024 * 1024
_URL = re.compile(r"^https?://", re.I)


@dataclass(frozen=True)
class ImageSource:
    """One input image: its bytes and facts, and where it came from (`label`, `path`)."""

    data: bytes = field(repr=False)
    mime_type: str
    width: int
    height: int
    label: str  # how captions and errors name it: a file name, "result[1]", "an image"
    path: str | None = None  # where the store already keeps it, if it does

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def _checked(data: bytes, label: str, what: str, path: str | None = None) -> ImageSource:
    if len(data) > MAX_SOURCE_BYTES:
        raise InvalidOptionError(
            f"The {what} {label} is {len(data) / 1024 / 1024:.0f} MB, over the 25 MB the API takes: "
            "use a smaller or compressed image (JPEG, WebP)."
        )
    try:
        info = inspect_image(data, what=f"{what} {label}")
    except MeshImageError as exc:
        raise InvalidOptionError(f"{exc.message} Give a PNG, JPEG or WebP image.") from None
    return ImageSource(data, info.mime_type, info.width, info.height, label, path)


def _from_pil(image: Any, label: str, what: str) -> ImageSource:
    out = io.BytesIO()
    image.save(out, format="PNG")  # lossless, keeps transparency
    return _checked(out.getvalue(), label, what)


def _from_path(text: str, label: str, what: str) -> ImageSource:
    path = Path(text).expanduser()
    if not path.is_file():
        where = "is a folder, not an image file" if path.is_dir() else "does not exist"
        raise InvalidOptionError(f"The {what} file {short(str(path))} {where}.")
    if path.stat().st_size > MAX_SOURCE_BYTES:
        return _checked(b"\0" * (MAX_SOURCE_BYTES + 1), label, what)  # the size error, unread
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidOptionError(
            f"Could not read the {what} file {short(str(path))}: {exc.strerror}."
        ) from None
    return _checked(data, label, what)


def source_url(value: Any) -> str | None:
    """`value` when it is an image URL to download (checked: https, or http only to loopback)."""
    if not isinstance(value, str) or not _URL.match(value.strip()):
        return None
    url = value.strip()
    if url.lower().startswith("http://") and not is_loopback(host_of(url)):
        raise InvalidOptionError(
            f"Image URLs must be https:// (plain http:// only to this machine): {short(url)}."
        )
    return url


def load_source(
    value: Any, *, label: str | None = None, what: str = "image", downloaded: bytes | None = None
) -> ImageSource:
    """An `ImageSource` for `value`; raises InvalidOptionError saying what is wrong.

    For a URL pass the bytes already fetched (`downloaded`): fetching is the client's job.
    """
    from .results import GeneratedImage, ImageResult

    name = label or "an image"
    if isinstance(value, ImageResult):
        if not len(value):
            raise InvalidOptionError(f"The {what} {name} is a result with no images.")
        value = value[0]
    if isinstance(value, GeneratedImage):
        where = str(value.path) if value.path is not None else None
        return _checked(value.data, label or f"the {value.model} image", what, where)
    if isinstance(value, bytes | bytearray | memoryview):
        return _checked(bytes(value), name, what)
    if type(value).__module__.startswith("PIL.") and hasattr(value, "save"):
        return _from_pil(value, name, what)
    if isinstance(value, Path):
        return _from_path(str(value), label or value.name, what)
    if isinstance(value, str):
        text = value.strip()
        if text[:5].lower() == "data:":
            try:
                data = decode_data_uri(text)
            except MeshImageError:
                raise InvalidOptionError(f"The {what} data: URI is not base64 image data.") from None
            return _checked(data, label or "a data: URI", what)
        if source_url(text) is not None:
            if downloaded is None:
                raise InvalidOptionError(f"The {what} URL {short(text)} was not downloaded.")
            return _checked(downloaded, label or text.rsplit("/", 1)[-1][:60] or "a URL", what)
        return _from_path(text, label or Path(text).name, what)
    raise InvalidOptionError(
        f"The {what} must be an image: a GeneratedImage or result, a PIL image, bytes, a file path, "
        f"an https:// URL or a data: URI (got {type(value).__name__})."
    )


def load_sources(
    values: list[Any], settings: Settings, *, what: str = "image", labels: list[str | None] | None = None
) -> list[ImageSource]:
    """Every source in `values`, downloading URLs first (without the key, size-limited)."""
    labels = labels or [None] * len(values)
    urls = {i: url for i, v in enumerate(values) if (url := source_url(v)) is not None}
    fetched = _download(list(urls.values()), settings) if urls else []
    data = dict(zip(urls, fetched, strict=True))
    return [load_source(v, label=labels[i], what=what, downloaded=data.get(i)) for i, v in enumerate(values)]


def _download(urls: list[str], settings: Settings) -> list[bytes]:
    from .engine.loop import engine

    async def fetch_all() -> list[bytes]:
        import asyncio

        client = engine().client(settings)
        return list(await asyncio.gather(*(client.download(url) for url in urls)))

    try:
        return engine().run(fetch_all())
    except MeshImageError as exc:
        raise InvalidOptionError(f"Could not download the image: {exc.message}") from None
