"""The model catalog: the image models of one API, their prices and capabilities, fetched once.

Shared by `%meshimg_models`, the panel's model picker, cost estimates and
`mesh_magic.models()`. The list is fetched once per session, base URL and key,
and again after `CATALOG_TTL` seconds; entries become `ImageModel` records that
keep the raw entry, reading the fields that matter (price per image, the
`supports_image_*` flags) whatever their exact shape.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .settings import Settings

ModelEntry = dict[str, Any]
# The catalog changes rarely; a session re-reads it after this long.
CATALOG_TTL = 300.0
_PRICE_FIELDS = ("image_output_usd_per_image", "price_per_image", "usd_per_image")
OPERATIONS = ("edit", "inpaint", "outpaint", "mix", "reframe", "upscale", "remove_background")
CAPABILITIES = (*OPERATIONS, "reference")
# Compact marks for tables, in CAPABILITIES order.
CAPABILITY_MARKS = {
    "edit": "edit",
    "inpaint": "inpaint",
    "outpaint": "outpaint",
    "mix": "mix",
    "reframe": "reframe",
    "upscale": "upscale",
    "remove_background": "rm-bg",
    "reference": "ref",
}


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


@dataclass(frozen=True)
class ImageModel:
    """One image model of the catalog; `raw` is the entry as the API sent it.

    `capabilities` holds what the entry says the model can do; `known` what it
    says anything about (a flag missing from the entry means "unknown": send anyway).
    """

    id: str
    name: str
    price: float | None
    is_free: bool
    capabilities: frozenset[str]
    known: frozenset[str] = field(default=frozenset(), repr=False)
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> ImageModel:
        flags = {cap: entry.get(f"supports_image_{cap}") for cap in CAPABILITIES}
        return cls(
            id=str(entry.get("id")),
            name=str(entry.get("name") or ""),
            price=price_per_image(entry),
            is_free=entry.get("is_free") is True,
            capabilities=frozenset(cap for cap, flag in flags.items() if flag is True),
            known=frozenset(cap for cap, flag in flags.items() if isinstance(flag, bool)),
            raw=entry,
        )

    def supports(self, capability: str) -> bool | None:
        """True or False as the catalog says, None when it does not say."""
        return capability in self.capabilities if capability in self.known else None

    @property
    def marks(self) -> str:
        return " ".join(CAPABILITY_MARKS[c] for c in CAPABILITIES if c in self.capabilities)

    # The raw entry stays at hand: record["pricing"], record.get("brand").
    def __getitem__(self, key: str) -> Any:
        return self.raw[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)


def matching(entries: list[ModelEntry], text: str | None) -> list[ModelEntry]:
    """Image models whose id or name contains `text` (any case), sorted by id."""
    found = [m for m in entries if is_image_model(m)]
    if text:
        needle = text.lower()
        found = [m for m in found if needle in f"{m.get('id', '')} {m.get('name', '')}".lower()]
    return sorted(found, key=lambda m: str(m.get("id")))


@dataclass(frozen=True)
class ModelQuery:
    """What `%meshimg_models` / `models()` filter and sort by."""

    text: str | None = None
    operation: str | None = None
    free: bool = False
    max_price: float | None = None
    sort: str = "name"  # "name" (the id) or "price" (cheapest first, unknown last)

    def select(self, records: list[ImageModel]) -> list[ImageModel]:
        found = [r for r in records if self.operation is None or r.supports(self.operation)]
        if self.free:
            found = [r for r in found if r.price == 0]
        if self.max_price is not None:
            found = [r for r in found if r.price is not None and r.price <= self.max_price]
        if self.sort == "price":
            return sorted(found, key=lambda r: (r.price is None, r.price or 0.0, r.id))
        return sorted(found, key=lambda r: r.id)


def model_query(
    text: str | None = None,
    *,
    operation: str | None = None,
    free: bool = False,
    max_price: Any = None,
    sort: str = "name",
) -> ModelQuery:
    """A checked `ModelQuery`; raises InvalidOptionError naming what to type instead."""
    from .errors import InvalidOptionError

    if operation is not None and operation not in CAPABILITIES:
        raise InvalidOptionError(f"Unknown operation {operation!r}: one of {', '.join(CAPABILITIES)}.")
    if sort not in ("name", "price"):
        raise InvalidOptionError(f"sort must be 'name' or 'price' (got {sort!r}).")
    limit = None
    if max_price is not None:
        limit = usd(str(max_price).strip().lstrip("$"))
        if limit is None:
            raise InvalidOptionError(
                f"max-price must be an amount in US dollars, e.g. 0.05 (got {max_price!r})."
            )
    return ModelQuery(text or None, operation, free, limit, sort)


def records(entries: list[ModelEntry], text: str | None = None) -> list[ImageModel]:
    return [ImageModel.from_entry(e) for e in matching(entries, text)]


def cheapest_with(found: list[ImageModel], capability: str, limit: int = 5) -> list[ImageModel]:
    """Up to `limit` models that can do `capability`, cheapest first (unknown prices last)."""
    return ModelQuery(operation=capability, sort="price").select(found)[:limit]


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

    def __iter__(self) -> Iterator[str]:
        with self._lock:
            return iter(list(self._entries))


_catalog = Catalog()


def catalog() -> Catalog:
    """The session's catalog, shared by every front end."""
    return _catalog


def source_of(settings: Settings) -> str:
    key = settings.api_key
    return f"{settings.base_url}#{hash(key) if key is not None else '-'}"


async def fetch_models(settings: Settings) -> list[ModelEntry]:
    """The API's models for `settings` (cached per session), on the engine loop."""
    from .engine.loop import engine

    async def fetch() -> list[ModelEntry]:
        return await engine().client(settings).list_models("image")

    return await catalog().models(source_of(settings), fetch)


async def fetch_records(settings: Settings) -> list[ImageModel]:
    return records(await fetch_models(settings))


def image_models(settings: Settings, query: ModelQuery | None = None) -> list[ImageModel]:
    """Image models matching `query`, from sync code (waits on the engine loop)."""
    from .engine.loop import engine

    query = query or ModelQuery()
    return query.select(records(engine().run(fetch_models(settings)), query.text))
