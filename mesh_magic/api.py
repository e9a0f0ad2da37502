"""The Python API front end: generate, agenerate, generate_many, configure, login and forget_key, models."""

from __future__ import annotations

import getpass
from collections.abc import Iterable
from typing import Any

from .core import config as _config
from .core.bulk import generate_many as _generate_many
from .core.catalog import ModelEntry, image_models
from .core.config import SessionConfig
from .core.generate import Plan, arun, in_engine, plan, raise_total_failure, run
from .core.history import History, load_history
from .core.results import ImageResult


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
    result: ImageResult = await in_engine(lambda: arun(call))
    return raise_total_failure(result)


def _bulk_progress(call: Plan) -> Any:
    from .render.progress import ProgressDisplay

    return ProgressDisplay(call, compact=True, show_after=0.0)


def generate_many(
    prompts: Iterable[Any], *, resume: bool = True, progress: bool = True, **options: Any
) -> list[ImageResult]:
    """One ImageResult per prompt, in input order, run concurrently; failures are reported.

    `resume=True` (default) serves requests that already succeeded from the store
    even when the cache is off, so re-running after an interrupt only pays for
    what is missing. A blank prompt fails alone (nothing is sent for it). Ctrl-C
    returns what finished, each unfinished result marked interrupted. Bad options
    (an unknown size, n=20) are raised before anything is sent.
    """
    return _generate_many(prompts, resume=resume, progress=_bulk_progress if progress else None, **options)


def configure(**settings: Any) -> SessionConfig:
    """Set session defaults, e.g. `configure(model="google/imagen-4", n=2)`."""
    return _config.configure(**settings)


def login(key: str | None = None, *, remember: bool = False) -> None:
    """Ask for the API key with a hidden prompt and keep it for this session.

    `remember=True` also keeps it on this machine for later sessions: in the OS keyring
    when the `keyring` library has a usable backend, else in a file only you can read in
    your config folder. `forget_key()` removes it again.
    """
    kept = _config.login(key, ask=getpass.getpass)
    if remember:
        print(f"Key remembered {_config.remember_key(kept)} for later sessions.")


def forget_key() -> None:
    """Remove the key remembered on this machine by `login(remember=True)` (or --remember)."""
    print(_config.forget_key())


def models(text: str | None = None, **options: Any) -> list[ModelEntry]:
    """Image-capable models, optionally filtered by `text` (in id or name)."""
    return image_models(_config.resolve(options), text)


def history(
    n: int | None = None, *, text: str | None = None, model: str | None = None, **options: Any
) -> History:
    """The last `n` (default 20) stored images, newest first, filtered by prompt text or model.

    Reads the store folder (`store_dir` / MESHIMG_STORE_DIR), so it shows the
    generations of earlier sessions and kernels too. Images of one request share
    a row, captioned with its prompt.
    """
    return load_history(_config.resolve(options), n, text=text, model=model)
