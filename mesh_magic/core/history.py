"""History: the newest stored images as an `ImageResult`, grouped by request, with a heading."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import InvalidOptionError
from .results import GeneratedImage, ImageResult
from .settings import Settings
from .store import Store

DEFAULT_HISTORY = 20
HISTORY_MAX_PX = 256


def home_relative(path: Any) -> str:
    """The path with the home folder as ~, so saved notebooks don't carry a user name."""
    text = str(path)
    home = str(Path.home())
    return "~" + text[len(home) :] if home != "/" and text.startswith(home + "/") else text


class History(ImageResult):
    """An `ImageResult` of stored images, displayed under a heading naming the store."""

    def __init__(
        self,
        images: Sequence[GeneratedImage],
        *,
        rows: Sequence[tuple[str, str]],
        display_max_px: int,
        store: str,
        text: str | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(images, rows=rows, display_max_px=display_max_px)
        self.store = store
        self.filters = {"text": text, "model": model}

    def heading(self) -> str:
        wanted = [f"{k} {v!r}" for k, v in self.filters.items() if v]
        which = f" matching {' and '.join(wanted)}" if wanted else ""
        if not len(self):
            return f"No stored images{which} in {self.store}."
        line = f"{len(self)} stored image{'s' if len(self) != 1 else ''}{which}, newest first ({self.store})"
        if len(self.rows) == 1:
            prompt, model = self.rows[0]
            line += f": {model} — {prompt}"
        return line

    def __repr__(self) -> str:
        return f"<History {len(self)} images from {self.store}>"


def load_history(
    settings: Settings, n: int | None = None, *, text: str | None = None, model: str | None = None
) -> History:
    """The last `n` (default 20) stored images, newest first; images of one request share a row."""
    limit = DEFAULT_HISTORY if n is None else n
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidOptionError(f"history needs a positive number of images (got {n!r}).")
    store = Store.for_settings(settings)
    rows: list[tuple[str, str]] = []
    placed = []
    keys: dict[tuple[str, str, str | None], int] = {}
    for image in store.history(limit, text=text, model=model):
        key = (image.prompt, image.model, image.request_id)
        if key not in keys:
            keys[key] = len(rows)
            rows.append((image.prompt, image.model))
        placed.append(image.with_changes(row=keys[key]))
    return History(
        placed,
        rows=rows,
        display_max_px=min(settings.display_max_px, HISTORY_MAX_PX) or HISTORY_MAX_PX,
        store=home_relative(store.root),
        text=text,
        model=model,
    )
