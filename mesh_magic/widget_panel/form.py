"""The panel's form: one input per setting that has a `panel` kind in the settings table.

Inputs are built from the table (a setting's `panel` kind picks the widget),
laid out in rows, and read back as call options. Nothing here talks HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import ipywidgets as widgets

from ..core.errors import InvalidOptionError
from ..core.kv import parse_pairs
from ..core.settings import SETTINGS, WIRE_FIELDS, Setting, Settings

SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536", "512x512", "square", "landscape", "portrait")
# Rows of the form by setting name; a panel setting not listed joins the last row.
ROWS: tuple[tuple[str, ...], ...] = (("model", "size"), ("quality", "n", "output_format"), ("params",))
_WIDE = {"description_width": "initial"}


def _label(setting: Setting) -> str:
    return {"n": "n", "output_format": "Format", "params": "Extra params"}.get(
        setting.name, setting.name.replace("_", " ").capitalize()
    )


def _widget(setting: Setting, value: Any) -> widgets.Widget:
    """The input for `setting`, showing `value`."""
    kind, label = setting.panel, _label(setting)
    if kind == "model":
        return widgets.Combobox(
            value=value,
            options=[value],
            ensure_option=False,
            description="Model",
            placeholder="model id (comma-separate to compare)",
            style=_WIDE,
            layout=widgets.Layout(flex="1 1 300px", min_width="240px"),
        )
    if kind == "size":
        return widgets.Combobox(
            value=value,
            options=list(SIZES),
            ensure_option=False,
            description=label,
            style=_WIDE,
            layout=widgets.Layout(width="170px"),
        )
    if kind == "choice":
        return widgets.Dropdown(
            options=list(setting.choices),
            value=value,
            description=label,
            style=_WIDE,
            layout=widgets.Layout(width="160px"),
        )
    if kind == "optional_choice":
        return widgets.Dropdown(
            options=[("default", "")] + [(c, c) for c in setting.choices],
            value=value or "",
            description=label,
            style=_WIDE,
            layout=widgets.Layout(width="150px"),
        )
    if kind == "count":
        return widgets.BoundedIntText(
            value=value, min=1, max=10, description=label, style=_WIDE, layout=widgets.Layout(width="90px")
        )
    if kind == "params":
        return widgets.Textarea(
            value=params_text(value),
            rows=2,
            description=label,
            style=_WIDE,
            placeholder='seed=42 (one KEY=VALUE per line) or {"seed": 42}',
            layout=widgets.Layout(width="auto"),
        )
    raise ValueError(f"no panel input for kind {kind!r}")


def _read(setting: Setting, widget: widgets.Widget) -> Any:
    value = widget.value
    if setting.panel == "params":
        return parse_params(value)
    if setting.panel == "optional_choice":
        return value or None
    if isinstance(value, str):
        return value.strip() or (setting.default if setting.panel == "size" else "")
    return value


class Form:
    """The inputs for the panel's settings, and the call options they describe."""

    def __init__(self, settings: Settings) -> None:
        self.settings = [s for s in SETTINGS if s.panel]
        self.fields: dict[str, widgets.Widget] = {
            s.name: _widget(s, getattr(settings, s.name)) for s in self.settings
        }
        for name, widget in self.fields.items():
            widget.add_class(f"mesh-panel-{name.replace('_', '-')}")

    def rows(self) -> list[list[widgets.Widget]]:
        placed = {name for row in ROWS for name in row}
        rows = [[self.fields[n] for n in row if n in self.fields] for row in ROWS]
        rows[-1] += [w for n, w in self.fields.items() if n not in placed]
        return [row for row in rows if row]

    def values(self) -> dict[str, Any]:
        """Setting values as the inputs show them (raises InvalidOptionError on bad params)."""
        return {s.name: _read(s, self.fields[s.name]) for s in self.settings}


def parse_params(text: str) -> dict[str, Any]:
    """Extra body fields from a JSON object or `KEY=VALUE` lines; typed options are refused."""
    params = parse_pairs(text, label="Extra params")
    own = sorted(set(params) & WIRE_FIELDS)
    if own:
        raise InvalidOptionError(
            f"Extra params {', '.join(own)}: use the panel's own field for "
            f"{'it' if len(own) == 1 else 'them'}."
        )
    return params


def params_text(params: Mapping[str, Any]) -> str:
    """Params as `KEY=VALUE` lines that `parse_params` reads back the same."""
    lines = []
    for key, value in params.items():
        text = json.dumps(value)
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                text = value  # reads back as the same string without quotes
        lines.append(f"{key}={text}")
    return "\n".join(lines)
