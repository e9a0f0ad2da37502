"""The panel's model picker: the catalog's image models as options, with price and capabilities."""

from __future__ import annotations

import concurrent.futures
import html
from collections.abc import Callable

import ipywidgets as widgets

from ..core.catalog import ImageModel, fetch_records
from ..core.cost import format_usd
from ..core.engine.loop import engine
from ..core.errors import MeshImageError
from ..core.settings import Settings


class ModelPicker:
    """Fills the model combobox from the catalog (on the engine loop); notes price and capabilities.

    `records` is the loaded catalog (empty until it arrives, or if it could not be
    read: then `error` says why); `on_loaded` callbacks run when it arrives.
    """

    def __init__(self, model: widgets.Combobox, note: widgets.HTML) -> None:
        self.model = model
        self.note = note
        self.closed = False
        self.records: list[ImageModel] = []
        self.error: str | None = None
        self.on_loaded: list[Callable[[], None]] = []
        self.state = "Loading the model list…"
        model.observe(lambda _: self.show_note(), names="value")
        self.show_note()

    def load(self, settings: Settings) -> None:
        engine().submit(fetch_records(settings)).add_done_callback(self.loaded)

    def loaded(self, future: concurrent.futures.Future[list[ImageModel]]) -> None:
        if self.closed:
            return
        error = future.exception()
        if error is not None:
            reason = str(error) if isinstance(error, MeshImageError) else type(error).__name__
            self.error = f"the model list could not be read: {reason}"
            self.state = f"Model list unavailable ({reason}); type any model id."
            self.model.options = [self.model.value] if self.model.value else []
        else:
            self.records = future.result()
            ids = [r.id for r in self.records]
            current = [m.strip() for m in self.model.value.split(",") if m.strip()]
            self.model.options = [m for m in current if m not in ids] + ids
            self.state = f"{len(ids)} image models; type any id."
        self.show_note()
        for callback in list(self.on_loaded):
            callback()

    def record(self, model_id: str) -> ImageModel | None:
        return next((r for r in self.records if r.id == model_id), None)

    def show_note(self) -> None:
        picked = self.record(self.model.value.strip())
        facts = ""
        if picked is not None:
            price = (
                "price unknown"
                if picked.price is None
                else ("free" if picked.price == 0 else f"{format_usd(picked.price)} per image")
            )
            facts = f" · {picked.id}: {price}" + (f" · can {picked.marks}" if picked.marks else "")
        self.note.value = (
            f'<span style="font-size:11px;opacity:.7">{html.escape(self.state)}{html.escape(facts)}</span>'
        )
