"""Cost before it is spent: the estimate of a call, the `max_cost` / `budget` limits, the spend ledger.

Every call is estimated before anything is sent: each request's images times
its model's price per image (from the catalog), images the store will serve
counted as free. With a limit set, a call over it, or one with a model of no
known price, is refused with one line naming the estimate, the limit and how
to change it. What was spent is kept per model for `%meshimg_cost` / `spend()`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .catalog import ImageModel
from .errors import InvalidOptionError
from .results import ImageResult
from .store import Store

if TYPE_CHECKING:
    from .request import ImageRequest


def format_usd(value: float) -> str:
    """$0.04, $0.003, $0.065, $1.20, $0 — as many decimals as the amount needs (2 to 4)."""
    if value == 0:
        return "$0"
    text = f"{value:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


@dataclass(frozen=True)
class ModelCost:
    """One model's share of a call: images to pay for, images the store serves, price."""

    model: str
    images: int
    cached: int = 0
    price: float | None = None

    @property
    def usd(self) -> float | None:
        if self.images == 0:
            return 0.0
        return None if self.price is None else self.price * self.images


@dataclass(frozen=True)
class Estimate:
    """What a call is expected to cost, per model; `catalog_error` says why prices are unknown."""

    lines: tuple[ModelCost, ...] = ()
    catalog_error: str | None = None

    @property
    def images(self) -> int:
        return sum(line.images for line in self.lines)

    @property
    def cached(self) -> int:
        return sum(line.cached for line in self.lines)

    @property
    def usd(self) -> float | None:
        """The whole call in USD; None when a model with images to pay has no known price."""
        amounts = [line.usd for line in self.lines]
        return None if any(a is None for a in amounts) else sum(a or 0.0 for a in amounts)

    @property
    def known_usd(self) -> float:
        return sum(line.usd or 0.0 for line in self.lines)

    @property
    def unpriced(self) -> list[str]:
        return [line.model for line in self.lines if line.images and line.price is None]

    def text(self) -> str:
        """ "$0.04", "~$0.12 for 3 images", "$0 (2 images from the cache)", "price unknown"."""
        if self.images == 0:
            return f"$0 ({self.cached} image{'s' * (self.cached != 1)} from the cache)"
        images = f"{self.images} image{'s' * (self.images != 1)}"
        usd = self.usd
        if usd is not None:
            return format_usd(usd) if self.images == 1 else f"~{format_usd(usd)} for {images}"
        known = f"~{format_usd(self.known_usd)} + " if self.known_usd else ""
        return f"{known}unknown (no price for {', '.join(self.unpriced)}) for {images}"


def estimate(
    requests: Sequence[ImageRequest],
    models: Iterable[ImageModel] | None,
    cached_rows: set[int] | None = None,
    catalog_error: str | None = None,
) -> Estimate:
    """The estimate of `requests`: `cached_rows` are the rows the store will answer."""
    prices = {m.id: m.price for m in models or ()}
    totals: dict[str, list[int]] = {}
    for request in requests:
        paid, free = totals.setdefault(request.model, [0, 0])
        if cached_rows and request.row in cached_rows:
            totals[request.model] = [paid, free + request.n]
        else:
            totals[request.model] = [paid + request.n, free]
    lines = tuple(ModelCost(model, paid, free, prices.get(model)) for model, (paid, free) in totals.items())
    return Estimate(lines, catalog_error)


def cost_text(result: ImageResult) -> str:
    """What a finished call cost: "$0.04", "$0.12 for 3 images", "$0 (from the cache)"."""
    images = [im for im in result if not im.partial]
    if not images:
        return ""
    cached = sum(1 for im in images if im.cached)
    if cached == len(images):
        return "$0 (from the cache)"
    usd = result.cost
    if usd is None:
        unpriced = sorted({im.model for im in images if im.cost is None})
        return f"cost unknown (no price for {', '.join(unpriced)})"
    text = format_usd(usd) if len(images) == 1 else f"{format_usd(usd)} for {len(images)} images"
    return text + (f", {cached} from the cache" if cached else "")


class CostLimitError(InvalidOptionError):
    """A call refused before sending: over `max_cost` or `budget`, or with no known price."""


def check_limits(found: Estimate, *, max_cost: float | None, budget: float | None, spent: float) -> None:
    """Raise CostLimitError when the call would pass a limit; nothing is sent then."""
    if max_cost is None and budget is None:
        return
    if found.unpriced:
        why = f" ({found.catalog_error})" if found.catalog_error else ""
        raise CostLimitError(
            f"No known price for {', '.join(found.unpriced)}{why}, and a spend limit is set: pick a "
            "priced model (%meshimg_models --sort price), or unset the limit (max_cost=None, budget=None)."
        )
    usd = found.usd or 0.0
    if max_cost is not None and usd > max_cost + 1e-9:
        raise CostLimitError(
            f"This call would cost {found.text()}, over max_cost {format_usd(max_cost)}: ask for fewer "
            f"images or models, or raise it (%meshimg_config max_cost={_suggest(usd)})."
        )
    if budget is not None and spent + usd > budget + 1e-9:
        raise CostLimitError(
            f"This call ({found.text()}) would take the session's spend to {format_usd(spent + usd)}, "
            f"over budget {format_usd(budget)} ({format_usd(spent)} spent): raise it "
            f"(%meshimg_config budget={_suggest(spent + usd)}) or ask for less."
        )


def _suggest(usd: float) -> str:
    return f"{max(0.01, round(usd * 1.5 + 0.005, 2)):g}"


@dataclass
class ModelSpend:
    model: str
    images: int = 0
    usd: float = 0.0
    unpriced_images: int = 0  # paid images whose price was unknown
    cached: int = 0  # images served from the store, free

    @property
    def known(self) -> bool:
        return self.unpriced_images == 0


@dataclass
class SpendLedger:
    """What this session spent, per model (thread-safe: the panel records from the engine thread)."""

    models: dict[str, ModelSpend] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, result: ImageResult) -> None:
        with self._lock:
            for image in result:
                if image.partial:
                    continue
                line = self.models.setdefault(image.model, ModelSpend(image.model))
                if image.cached:
                    line.cached += 1
                elif image.cost is None:
                    line.images += 1
                    line.unpriced_images += 1
                else:
                    line.images += 1
                    line.usd += image.cost

    @property
    def total(self) -> float:
        with self._lock:
            return sum(line.usd for line in self.models.values())

    def rows(self) -> list[ModelSpend]:
        with self._lock:
            return [ModelSpend(**vars(line)) for _, line in sorted(self.models.items())]

    def clear(self) -> None:
        with self._lock:
            self.models.clear()


_ledger = SpendLedger()


def ledger() -> SpendLedger:
    """This session's spend, shared by every front end."""
    return _ledger


def spend_in_store(store: Store) -> list[ModelSpend]:
    """What every session that wrote to `store` spent, per model, from the sidecars.

    An image stored before costs were recorded counts as an image of unknown price.
    """
    totals: dict[str, ModelSpend] = {}
    for _, meta in store.sidecars():
        if meta.get("partial"):
            continue
        line = totals.setdefault(str(meta.get("model", "?")), ModelSpend(str(meta.get("model", "?"))))
        cost = meta.get("cost")
        line.images += 1
        if isinstance(cost, (int, float)) and not isinstance(cost, bool):
            line.usd += float(cost)
        else:
            line.unpriced_images += 1
    return [totals[name] for name in sorted(totals)]
