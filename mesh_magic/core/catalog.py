"""The model catalog: the image models of one API, their prices and capabilities, fetched once.

Shared by `%meshimg_models`, the panel's model picker and `mesh_magic.models()`.
Entries are kept as the API sent them; the helpers here read the fields that
matter (price per image, image output) whatever their exact shape.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings

ModelEntry = dict[str, Any]
# The catalog changes rarely; a session re-reads it after this long.
CATALOG_TTL = 300.0
_PRICE_FIELDS = ("image_output_usd_per_image", "price_per_image", "usd_per_image")


def usd(value: Any) -> float | None:
    """A price as the API writes it: a number or a numeric string ("0.04"); None otherwise."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def price_per_image(entry: Mapping[str, Any]) -> float | None:
    """USD per generated image: `is_free` is 0; else `pricing.image_output_usd_per_image`
    (a string in the official SDK's types, or a number), else a top-level field of that name."""
    if entry.get("is_free") is True:
        return 0.0
    pricing = entry.get("pricing")
    sources = [pricing, entry] if isinstance(pricing, Mapping) else [entry]
    for source in sources:
        for key in _PRICE_FIELDS:
            price = usd(source.get(key))
            if price is not None:
                return price
    return None


def is_image_model(entry: Mapping[str, Any]) -> bool:
    outputs = entry.get("output_modalities")
    return not isinstance(outputs, list) or "image" in outputs


def matching(entries: list[ModelEntry], text: str | None) -> list[ModelEntry]:
    """Image models whose id or name contains `text` (any case), sorted by id."""
    found = [m for m in entries if is_image_model(m)]
    if text:
        needle = text.lower()
        found = [m for m in found if needle in f"{m.get('id', '')} {m.get('name', '')}".lower()]
    return sorted(found, key=lambda m: str(m.get("id")))


@dataclass
class _Entry:
    models: list[ModelEntry]
    fetched: float


class Catalog:
    """Model lists per source (base URL and key), each fetched at most once per `ttl` seconds."""

    def __init__(self, ttl: float = CATALOG_TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def cached(self, source: str) -> list[ModelEntry] | None:
        with self._lock:
            entry = self._entries.get(source)
        if entry is None or self._clock() - entry.fetched > self.ttl:
            return None
        return entry.models

    async def models(self, source: str, fetch: Callable[[], Awaitable[list[ModelEntry]]]) -> list[ModelEntry]:
        """The models of `source` (base URL and key), cached, else `fetch()` (errors propagate)."""
        found = self.cached(source)
        if found is None:
            found = await fetch()
            with self._lock:
                self._entries[source] = _Entry(found, self._clock())
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_catalog = Catalog()


def catalog() -> Catalog:
    """The session's catalog, shared by every front end."""
    return _catalog


def _source(settings: Settings) -> str:
    key = settings.api_key
    return f"{settings.base_url}#{hash(key) if key is not None else '-'}"


async def fetch_models(settings: Settings) -> list[ModelEntry]:
    """The API's models for `settings` (cached per session), on the engine loop."""
    from .engine.loop import engine

    async def fetch() -> list[ModelEntry]:
        return await engine().client(settings).list_models("image")

    return await catalog().models(_source(settings), fetch)


def image_models(settings: Settings, text: str | None = None) -> list[ModelEntry]:
    """Image models matching `text`, from sync code (waits on the engine loop)."""
    from .engine.loop import engine

    return matching(engine().run(fetch_models(settings)), text)
