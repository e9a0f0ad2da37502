"""Tables shown by the helper magics: the effective configuration and the model list."""

from __future__ import annotations

import html

from ..core.catalog import ImageModel
from ..core.cost import ModelSpend, format_usd, ledger, spend_in_store
from ..core.history import home_relative
from ..core.keys import mask_key
from ..core.settings import SETTINGS, Settings
from ..core.store import Store
from .html import html_table


class ConfigTable:
    """The effective configuration, masked key included, as HTML and text."""

    def __init__(self, settings: Settings) -> None:
        self.rows: list[tuple[str, str, str]] = [
            (
                "api_key",
                settings.api_key.masked if settings.api_key else mask_key(None),
                settings.sources.get("api_key", ""),
            )
        ]
        for s in SETTINGS:
            value = getattr(settings, s.name)
            if value is None:  # not set: say what happens instead ("not sent", "the server's choice")
                shown = f"({s.default_text})" if s.default_text else ""
            else:
                shown = repr(value) if isinstance(value, dict) else str(value)
            self.rows.append((s.name, shown, settings.sources.get(s.name, "")))

    def __repr__(self) -> str:
        width = max(len(r[0]) for r in self.rows)
        return "\n".join(f"{k.ljust(width)}  {v}  ({s})" for k, v, s in self.rows)

    def _repr_html_(self) -> str:
        rows = [
            [
                f"<code>{html.escape(k)}</code>",
                html.escape(v),
                f"<span style='opacity:.7'>{html.escape(s)}</span>",
            ]
            for k, v, s in self.rows
        ]
        return html_table(["setting", "value", "from"], rows)


class ModelTable:
    """The image model list as HTML and text: id, name, price per image (or free), capabilities."""

    def __init__(self, models: list[ImageModel], text: str = "") -> None:
        self.text = text
        self.models = list(models)
        self.rows = [(m.id, m.name, m.price) for m in self.models]

    @staticmethod
    def _price(value: float | None) -> str:
        if value is None:
            return "—"
        return "free" if value == 0 else f"${value:.3f}"

    def __repr__(self) -> str:
        if not self.rows:
            return f"No image models match {self.text!r}." if self.text else "No image models."
        width = max(len(m.id) for m in self.models)
        lines = [f"{'model'.ljust(width)}  {'price/image':>11}  can"]
        lines += [f"{m.id.ljust(width)}  {self._price(m.price):>11}  {m.marks}" for m in self.models]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<i>{html.escape(repr(self))}</i>"
        rows = [
            [
                f"<code>{html.escape(m.id)}</code>",
                html.escape(m.name),
                self._price(m.price),
                f"<span style='opacity:.8'>{html.escape(m.marks)}</span>",
            ]
            for m in self.models
        ]
        return html_table(["model", "name", "price / image", "can"], rows, right=2)


class SpendTable:
    """Spend per model: images paid for, USD, images served free from the cache."""

    def __init__(self, rows: list[ModelSpend], *, scope: str) -> None:
        self.rows = rows
        self.scope = scope  # "this session" or "the store at ~/..."

    @property
    def total(self) -> float:
        return sum(r.usd for r in self.rows)

    @staticmethod
    def _usd(row: ModelSpend) -> str:
        if row.images and row.unpriced_images == row.images:
            return "unknown"
        extra = f" + {row.unpriced_images} unpriced" if row.unpriced_images else ""
        return format_usd(row.usd) + extra

    def heading(self) -> str:
        if not self.rows:
            return f"Nothing spent in {self.scope}."
        return f"Spent in {self.scope}: {format_usd(self.total)}"

    def __repr__(self) -> str:
        if not self.rows:
            return self.heading()
        width = max(len(r.model) for r in self.rows)
        lines = [self.heading(), f"{'model'.ljust(width)}  images  {'USD':>10}  from cache"]
        lines += [
            f"{r.model.ljust(width)}  {r.images:>6}  {self._usd(r):>10}  {r.cached:>10}" for r in self.rows
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = f"<div style='font-weight:600;margin:2px 0'>{html.escape(self.heading())}</div>"
        if not self.rows:
            return head
        rows = [
            [f"<code>{html.escape(r.model)}</code>", str(r.images), self._usd(r), str(r.cached)]
            for r in self.rows
        ]
        return head + html_table(["model", "images", "USD", "from cache"], rows, right=2)


def spend_table(settings: Settings, *, everything: bool = False) -> SpendTable:
    """This session's spend, or with `everything` all the store holds (every session's images)."""
    if everything:
        store = Store.for_settings(settings)
        return SpendTable(spend_in_store(store), scope=f"the store at {home_relative(store.root)}")
    return SpendTable(ledger().rows(), scope="this session")
