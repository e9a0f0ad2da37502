"""The Python API front end: generate, agenerate, generate_many, configure, login, models."""

from __future__ import annotations

import getpass
from collections.abc import Sequence
from typing import Any

from . import _config
from ._config import MeshImg
from ._engine import engine
from ._generate import arun, in_engine, plan, raise_total_failure, run
from ._results import ImageResult


def generate(prompt: str, **options: Any) -> ImageResult:
    """Generate images for `prompt`; options are the magic's (model, n, size, quality, ...).

    Several comma-separated models are compared side by side. Per-item failures are in
    `result.errors`; bad input, or one error that sank every item (a bad key),
    is raised.
    """
    return raise_total_failure(run(plan(prompt, options)))


async def agenerate(prompt: str, **options: Any) -> ImageResult:
    """Async `generate`: awaitable from any event loop, including a notebook cell."""
    call = plan(prompt, options)
    return raise_total_failure(await in_engine(lambda: arun(call)))


def generate_many(prompts: Sequence[str], **options: Any) -> list[ImageResult]:
    """One ImageResult per prompt, in input order, run concurrently; failures are reported."""
    from ._bulk import generate_many as _generate_many

    return _generate_many(prompts, **options)


def configure(**settings: Any) -> MeshImg:
    """Set session defaults, e.g. `configure(model="google/imagen-4", n=2)`."""
    return _config.configure(**settings)


def login(key: str | None = None) -> None:
    """Ask for the API key with a hidden prompt and keep it for this session only."""
    value = key if key is not None else getpass.getpass("MeshAPI key (input hidden): ")
    value = (value or "").strip()
    if not value:
        raise _config.InvalidOptionError("No key entered; nothing changed.")
    _config.session().set_api_key(value)


def models(text: str | None = None, **options: Any) -> list[dict[str, Any]]:
    """Image-capable models, optionally filtered by `text` (in id or name)."""
    settings = _config.resolve(options)

    async def fetch() -> list[dict[str, Any]]:
        return await engine().client(settings).list_models("image")

    found = engine().run(fetch())
    found = [m for m in found if "image" in (m.get("output_modalities") or ["image"])]
    if text:
        needle = text.lower()
        found = [m for m in found if needle in f"{m.get('id', '')} {m.get('name', '')}".lower()]
    return sorted(found, key=lambda m: str(m.get("id")))


def history(n: int | None = None, *, text: str | None = None, model: str | None = None,
            **options: Any) -> ImageResult:
    """The last `n` (default 20) stored images, newest first, filtered by prompt text or model.

    Reads the store folder (`store_dir` / MESHIMG_STORE_DIR), so it shows the
    generations of earlier sessions and kernels too. Images of one request share
    a row, captioned with its prompt.
    """
    from dataclasses import replace

    from ._store import Store

    limit = 20 if n is None else n
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise _config.InvalidOptionError(f"history needs a positive number of images (got {n!r}).")
    settings = _config.resolve(options)
    store = Store.for_settings(settings)
    images = store.history(limit, text=text, model=model)
    rows: list[tuple[str, str]] = []
    placed = []
    keys: dict[tuple[str, str, str | None], int] = {}
    for image in images:
        key = (image.prompt, image.model, image.request_id)
        if key not in keys:
            keys[key] = len(rows)
            rows.append((image.prompt, image.model))
        placed.append(replace(image, row=keys[key]))
    return History(placed, rows=rows, display_max_px=min(settings.display_max_px, 256) or 256,
                   store=_home_relative(store.root), text=text, model=model)


def _home_relative(path: Any) -> str:
    """The store path with the home folder as ~, so saved notebooks don't carry a user name."""
    from pathlib import Path

    text = str(path)
    home = str(Path.home())
    return "~" + text[len(home):] if home != "/" and text.startswith(home + "/") else text


class History(ImageResult):
    """An `ImageResult` of stored images, displayed under a heading naming the store."""

    def __init__(self, images: Sequence[Any], *, rows: Sequence[tuple[str, str]], display_max_px: int,
                 store: str, text: str | None = None, model: str | None = None) -> None:
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

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        import html

        from ._display import render_result

        data, metadata = render_result(self)
        head = f'<div style="font:600 13px/1.4 system-ui,sans-serif">{html.escape(self.heading())}</div>'
        if not len(self):
            return {"text/html": head, "text/plain": self.heading()}, metadata
        data = dict(data)
        data["text/html"] = head + data["text/html"]
        data["text/plain"] = self.heading() + "\n" + data["text/plain"]
        return data, metadata


def price_per_image(model: dict[str, Any]) -> float | None:
    for key in ("image_output_usd_per_image", "price_per_image", "usd_per_image"):
        value = model.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    pricing = model.get("pricing")
    if isinstance(pricing, dict):
        return price_per_image(pricing)
    return None
