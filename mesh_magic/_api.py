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

    Several comma-separated models give one row each. Per-item failures are in
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
    """The last `n` (default 20) stored generations, newest first, filtered by prompt text or model."""
    from dataclasses import replace

    from ._store import Store

    settings = _config.resolve(options)
    images = Store.for_settings(settings).history(n or 20, text=text, model=model)
    rows: list[tuple[str, str]] = []
    placed = []
    keys: dict[tuple[str, str, str | None], int] = {}
    for image in images:
        key = (image.prompt, image.model, image.request_id)
        if key not in keys:
            keys[key] = len(rows)
            rows.append((image.prompt, image.model))
        placed.append(replace(image, row=keys[key]))
    return ImageResult(placed, rows=rows, display_max_px=min(settings.display_max_px, 256))


def price_per_image(model: dict[str, Any]) -> float | None:
    for key in ("image_output_usd_per_image", "price_per_image", "usd_per_image"):
        value = model.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    pricing = model.get("pricing")
    if isinstance(pricing, dict):
        return price_per_image(pricing)
    return None
