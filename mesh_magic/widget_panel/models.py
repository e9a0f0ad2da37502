"""The panel's model picker: the catalog's image models as options, and the price of the pick."""

from __future__ import annotations

import concurrent.futures
import html

import ipywidgets as widgets

from ..core.catalog import ModelEntry, fetch_models, matching, price_per_image
from ..core.engine.loop import engine
from ..core.errors import MeshImageError
from ..core.settings import Settings


class ModelPicker:
    """Fills the model combobox from the catalog (on the engine loop) and notes the price."""

    def __init__(self, model: widgets.Combobox, note: widgets.HTML) -> None:
        self.model = model
        self.note = note
        self.closed = False
        self.prices: dict[str, float] = {}
        self.state = "Loading the model list…"
        model.observe(lambda _: self.show_note(), names="value")
        self.show_note()

    def load(self, settings: Settings) -> None:
        engine().submit(fetch_models(settings)).add_done_callback(self.loaded)

    def loaded(self, future: concurrent.futures.Future[list[ModelEntry]]) -> None:
        if self.closed:
            return
        error = future.exception()
        if error is not None:
            reason = str(error) if isinstance(error, MeshImageError) else type(error).__name__
            self.state = f"Model list unavailable ({reason}); type any model id."
            self.model.options = [self.model.value] if self.model.value else []
        else:
            found = matching(future.result(), None)
            ids = sorted({str(m["id"]) for m in found})
            self.prices = {str(m["id"]): p for m in found if (p := price_per_image(m)) is not None}
            current = [m.strip() for m in self.model.value.split(",") if m.strip()]
            self.model.options = [m for m in current if m not in ids] + ids
            self.state = f"{len(ids)} image models; type any id."
        self.show_note()

    def show_note(self) -> None:
        price = self.prices.get(self.model.value.strip())
        cost = f" · ${price:.3f} per image" if price is not None else ""
        self.note.value = f'<span style="font-size:11px;opacity:.7">{html.escape(self.state)}{cost}</span>'
