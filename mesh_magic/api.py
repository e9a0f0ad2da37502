"""The Python API front end: generate, agenerate, generate_many, configure, login and forget_key, models."""

from __future__ import annotations

import getpass
from collections.abc import Iterable, Sequence
from typing import Any

from .core import config as _config
from .core.bulk import generate_many as _generate_many
from .core.catalog import ImageModel, image_models, model_query
from .core.config import SessionConfig
from .core.generate import Plan, arun, in_engine, plan, raise_total_failure, run, warn_unsaved
from .core.history import History, load_history
from .core.keys import forgets_key_arguments, optional_key
from .core.pricing import aprepare, prepare
from .core.results import ImageResult
from .render.tables import SpendTable, spend_table


@forgets_key_arguments
def _hold_key(options: dict[str, Any]) -> None:
    """A call's `api_key=` becomes an ApiKey at once, in place: no frame of the call keeps the text.

    (A traceback through this call, shown with `pytest -l` or `%xmode Verbose`, lists
    each frame's locals, `options` among them.)
    """
    if "api_key" in options:
        raw = options.pop("api_key")
        options["api_key"] = optional_key(raw, "The api_key option")


def generate(prompt: str, *, references: Sequence[Any] | None = None, **options: Any) -> ImageResult:
    """Generate images for `prompt`; options are the magic's (model, n, size, quality, ...).

    Several comma-separated models are compared side by side. `references` are
    images the model should draw on (for models that take them). Per-item failures
    are in `result.errors`; bad input, or one error that sank every item (a bad
    key), is raised.
    """
    _hold_key(options)
    if references is not None:
        options["references"] = _as_list(references)
    return warn_unsaved(raise_total_failure(run(prepare(prompt, options))))


def _as_list(references: Any) -> list[Any]:
    """References as a list: one image given alone is a list of one (then checked like any)."""
    if references is None:
        return []
    return list(references) if isinstance(references, list | tuple) else [references]


def _edit_options(
    image: Any, operation: str, mask: Any, region: Any, references: Any, options: dict[str, Any]
) -> dict[str, Any]:
    sources = [image, *_as_list(references)]
    return {**options, "image": sources, "operation": operation, "mask": mask, "region": region}


def edit(
    image: Any,
    prompt: str = "",
    *,
    operation: str = "edit",
    mask: Any = None,
    region: Any = None,
    references: Sequence[Any] | None = None,
    **options: Any,
) -> ImageResult:
    """Edit `image` (a GeneratedImage or result, a PIL image, bytes, a path, an https URL or a
    data: URI) with one of the seven operations: edit, inpaint (`mask`, or `region`
    X,Y,W,H), outpaint, mix (with `references`), reframe, upscale, remove_background.

    Other options are the generation's (model, n, size, params, timeout, save, ...).
    """
    _hold_key(options)
    call = prepare(prompt, _edit_options(image, operation, mask, region, references, options))
    return warn_unsaved(raise_total_failure(run(call)))


async def aedit(
    image: Any,
    prompt: str = "",
    *,
    operation: str = "edit",
    mask: Any = None,
    region: Any = None,
    references: Sequence[Any] | None = None,
    **options: Any,
) -> ImageResult:
    """Async `edit`: awaitable from any event loop, including a notebook cell."""
    _hold_key(options)
    edit_options = _edit_options(image, operation, mask, region, references, options)
    call: Plan = await in_engine(lambda: aprepare(prompt, edit_options))
    result: ImageResult = await in_engine(lambda: arun(call))
    return warn_unsaved(raise_total_failure(result))


def _edit_image(image: Any, prompt: str, *, operation: str, **options: Any) -> ImageResult:
    """What `GeneratedImage.edit()` and friends call."""
    return edit(image, prompt, operation=operation, **options)


async def agenerate(prompt: str, **options: Any) -> ImageResult:
    """Async `generate`: awaitable from any event loop, including a notebook cell."""
    _hold_key(options)
    plan(prompt, options)  # bad input raises here, in the caller's own frame
    call: Plan = await in_engine(lambda: aprepare(prompt, options))
    result: ImageResult = await in_engine(lambda: arun(call))
    return warn_unsaved(raise_total_failure(result))


def _bulk_progress(call: Plan) -> Any:
    from .render.progress import BAR_THRESHOLD, BarProgress, ProgressDisplay

    if len(call.requests) > BAR_THRESHOLD:
        return BarProgress(call)
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
    _hold_key(options)
    return _generate_many(prompts, resume=resume, progress=_bulk_progress if progress else None, **options)


@forgets_key_arguments
def configure(**settings: Any) -> SessionConfig:
    """Set session defaults, e.g. `configure(model="google/imagen-4", n=2)`."""
    return _config.configure(**settings)


@forgets_key_arguments
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


def models(
    text: str | None = None,
    *,
    operation: str | None = None,
    free: bool = False,
    max_price: float | None = None,
    sort: str = "name",
    **options: Any,
) -> list[ImageModel]:
    """Image models as records (id, name, price, is_free, capabilities; `.raw` the API's entry).

    Filtered by `text` (in id or name), by what they can do (`operation="upscale"`,
    or "reference"), `free=True`, `max_price` USD per image; `sort` by "name" or "price".
    """
    _hold_key(options)
    query = model_query(text, operation=operation, free=free, max_price=max_price, sort=sort)
    return image_models(_config.resolve(options), query)


def spend(all: bool = False, **options: Any) -> SpendTable:
    """This session's spend per model (images, USD, images served free from the cache);
    `all=True` adds up every image in the store, across sessions."""
    _hold_key(options)
    return spend_table(_config.resolve(options), everything=all)


def history(
    n: int | None = None, *, text: str | None = None, model: str | None = None, **options: Any
) -> History:
    """The last `n` (default 20) stored images, newest first, filtered by prompt text or model.

    Reads the store folder (`store_dir` / MESHIMG_STORE_DIR), so it shows the
    generations of earlier sessions and kernels too. Images of one request share
    a row, captioned with its prompt.
    """
    _hold_key(options)
    return load_history(_config.resolve(options), n, text=text, model=model)
