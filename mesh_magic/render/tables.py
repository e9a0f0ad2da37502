"""Tables shown by the helper magics: the effective configuration and the model list."""

from __future__ import annotations

import html
from typing import Any

from ..core.catalog import price_per_image
from ..core.keys import mask_key
from ..core.settings import SETTINGS, Settings
from .html import html_table


class ConfigTable:
    """The effective configuration, masked key included, as HTML and text."""

    def __init__(self, settings: Settings) -> None:
        self.rows: list[tuple[str, str, str]] = [
            (
                "api_key",
                mask_key(settings.api_key.reveal() if settings.api_key else None),
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
    """The image model list as HTML and text."""

    def __init__(self, models: list[dict[str, Any]], text: str = "") -> None:
        self.text = text
        self.rows = [(str(m.get("id")), str(m.get("name") or ""), price_per_image(m)) for m in models]

    @staticmethod
    def _price(value: float | None) -> str:
        if value is None:
            return "—"
        return "free" if value == 0 else f"${value:.3f}"

    def __repr__(self) -> str:
        if not self.rows:
            return f"No image models match {self.text!r}." if self.text else "No image models."
        width = max(len(r[0]) for r in self.rows)
        lines = [f"{'model'.ljust(width)}  price/image"]
        lines += [f"{i.ljust(width)}  {self._price(p)}" for i, _, p in self.rows]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        if not self.rows:
            return f"<i>{html.escape(repr(self))}</i>"
        rows = [[f"<code>{html.escape(i)}</code>", html.escape(n), self._price(p)] for i, n, p in self.rows]
        return html_table(["model", "name", "price / image"], rows, right=2)
