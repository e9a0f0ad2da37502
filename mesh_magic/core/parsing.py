"""Response parsing: generation bodies and stream events into image items, without any I/O.

An item's image may arrive three ways (SPEC 1): `b64_json`, an `https://` URL, or
a `data:image/...;base64,` URI in `url`. Parsing says which; fetching URLs is the
client's job.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .constants import MAX_TIMESTAMP
from .errors import ResponseError
from .keys import SECRETS

# Image data is never text a key could hide in, and scanning it would cost a copy.
_NOT_TEXT = frozenset({"b64_json"})
_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?);base64,", re.I)


@dataclass(frozen=True)
class RawItem:
    """One entry of `data`: exactly one of `b64`, `data_uri`, `url` is set."""

    index: int
    b64: str | None = None
    data_uri: str | None = None
    url: str | None = None
    revised_prompt: str | None = None

    @property
    def source(self) -> str:
        return "b64_json" if self.b64 is not None else "data_uri" if self.data_uri else "url"


@dataclass(frozen=True)
class ParsedGeneration:
    created: int | None
    items: list[RawItem]
    item_errors: list[tuple[int, ResponseError]]
    usage: dict[str, Any]
    extra: dict[str, Any]


def load_json(body: bytes, *, what: str = "response") -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        head = body[:60].lstrip().lower()
        if head.startswith((b"<!doctype", b"<html")):
            raise ResponseError(f"The {what} is an HTML page, not the expected JSON.") from None
        if not head:
            detail = "empty"
        elif head.startswith((b"{", b"[")):
            detail = "malformed or cut off"
        else:
            detail = f"not JSON at all: {len(body)} bytes of text or binary"
        raise ResponseError(f"The {what} is invalid JSON ({detail}).") from None


def parse_generation(payload: Any) -> ParsedGeneration:
    """Items and per-item problems from a 200 body (or a stream's final chunk).

    Everything the server wrote (a revised prompt, a URL, usage) is scrubbed of known
    keys first: a server that echoes the key must not get it into results or files.
    """
    payload = SECRETS.scrub_tree(payload, skip=_NOT_TEXT)
    if not isinstance(payload, dict):
        raise ResponseError("The response is JSON but not an object with a 'data' list.")
    data = payload.get("data")
    if not isinstance(data, list):
        raise ResponseError("The response has no 'data' list of images.")
    if not data:
        raise ResponseError("The response contains no images ('data' is empty).")
    items: list[RawItem] = []
    errors: list[tuple[int, ResponseError]] = []
    for index, entry in enumerate(data):
        try:
            items.append(parse_item(entry, index))
        except ResponseError as exc:
            errors.append((index, exc))
    usage: dict[str, Any] = payload["usage"] if isinstance(payload.get("usage"), dict) else {}
    extra = {
        k: payload[k]
        for k in ("size", "quality", "output_format", "background")
        if isinstance(payload.get(k), str)
    }
    return ParsedGeneration(
        created=as_timestamp(payload.get("created")),
        items=items,
        item_errors=errors,
        usage=usage,
        extra=extra,
    )


def as_timestamp(value: Any) -> int | None:
    """A `created` field as whole seconds since 1970, or None when it is not a usable time.

    Servers send floats, strings, 1e20 or negatives; only a finite number between 1970
    and the year 9999 is kept, so later date arithmetic can never overflow.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if 0 < value <= MAX_TIMESTAMP else None


def as_text(value: Any) -> str | None:
    """A field that must be a non-empty string (b64_json, url, ids), or None for anything else."""
    return value if isinstance(value, str) and value else None


def parse_item(entry: Any, index: int) -> RawItem:
    if not isinstance(entry, dict):
        raise ResponseError(f"Image {index + 1} in the response is not an object.")
    revised = entry.get("revised_prompt")
    revised = revised if isinstance(revised, str) and revised.strip() else None
    b64 = as_text(entry.get("b64_json"))
    url = as_text(entry.get("url"))
    if b64 is not None:
        return RawItem(index=index, b64=b64, revised_prompt=revised)
    if url is not None:
        if url[:5].lower() == "data:":
            return RawItem(index=index, data_uri=url, revised_prompt=revised)
        if url.lower().startswith(("https://", "http://")):
            return RawItem(index=index, url=url, revised_prompt=revised)
        raise ResponseError(f"Image {index + 1} has an unusable url ({url[:40]!r}).")
    raise ResponseError(f"Image {index + 1} in the response has neither b64_json nor url.")


def decode_b64(text: str, *, what: str = "image") -> bytes:
    cleaned = "".join(text.split())
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ResponseError(f"The {what} is not valid base64.") from None


def decode_data_uri(uri: str) -> bytes:
    match = _DATA_URI.match(uri)
    if not match:
        raise ResponseError("The image data: URI is not base64-encoded.")
    return decode_b64(uri[match.end() :], what="image data: URI")


@dataclass(frozen=True)
class StreamEvent:
    """What one server-sent event means for the caller."""

    kind: str  # progress | partial | final | image | error | done | ignore
    payload: Any = None
    b64: str | None = None
    index: int = 0


def _as_index(value: Any) -> int:
    try:
        return max(0, min(int(value or 0), 1_000))
    except (TypeError, ValueError, OverflowError):
        return 0  # only labels a preview: not worth failing the stream over


def classify_event(event_name: str, data: str) -> StreamEvent:
    """Interpret MeshAPI `image.chunk` events and OpenAI `image_generation.*` events."""
    data = data.strip()
    if data == "[DONE]":
        return StreamEvent("done")
    if not data:
        return StreamEvent("ignore")
    try:
        payload = json.loads(data)
    except (ValueError, RecursionError):
        raise ResponseError("The stream sent an event that is not JSON.") from None
    if not isinstance(payload, dict):
        return StreamEvent("ignore")
    payload = SECRETS.scrub_tree(payload, skip=_NOT_TEXT)  # see parse_generation
    if "error" in payload and payload["error"]:
        return StreamEvent("error", payload)
    kind = as_text(payload.get("type")) or event_name or ""
    # Typed here, once: a b64_json that is a number or a list is no image, not a crash later.
    b64 = as_text(payload.get("b64_json"))
    if kind == "image_generation.partial_image":
        return StreamEvent("partial", payload, b64=b64, index=_as_index(payload.get("partial_image_index")))
    if kind == "image_generation.completed":
        return StreamEvent("image", payload, b64=b64)
    if payload.get("object") == "image.chunk" or "status" in payload or "data" in payload:
        if isinstance(payload.get("data"), list) and payload["data"]:
            return StreamEvent("final", payload)
        return StreamEvent("progress", payload)
    return StreamEvent("ignore", payload)
