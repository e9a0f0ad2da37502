"""One generation call, front-end neutral: options -> settings -> requests -> ImageResult.

The magic, the panel and the Python API all call `plan` then `run` (sync,
interrupt-safe) or `arun` (async); they differ only in how they show things.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import resolve
from .edits import INPUT_OPTIONS, build_inputs, take_inputs
from .errors import InvalidOptionError, MeshImageWarning
from .request import ImageRequest, build_requests
from .results import ImageResult
from .settings import Settings
from .store import Store

if TYPE_CHECKING:
    from .cost import Estimate
    from .engine.progress import CallProgress

# The engine (asyncio, httpx) is imported on first use, not at `%load_ext`: the magics import
# this module, and those imports would otherwise be most of the extension's load time.

# Options that shape a call but are not settings.
CALL_OPTIONS = ("save", "fresh", "seed", "source_labels", *INPUT_OPTIONS)


@dataclass(frozen=True)
class Plan:
    settings: Settings
    requests: list[ImageRequest]
    save: Path | None = None
    fresh: bool = False
    # Extra passes for a request whose retries all met 429 (bulk runs; see run_requests).
    rate_limit_rounds: int = 0
    # What the call is expected to cost (core.pricing fills it in before anything is sent).
    estimate: Estimate | None = None
    prices: Mapping[str, float | None] | None = None

    @property
    def total_images(self) -> int:
        return sum(r.n for r in self.requests)


def plan(prompts: str | Sequence[str], options: Mapping[str, Any] | None = None) -> Plan:
    """Validate everything and build the requests; raises InvalidOptionError, sends nothing."""
    options = dict(options or {})
    save = options.pop("save", None)
    fresh = bool(options.pop("fresh", False))
    labels = options.pop("source_labels", None) or {}
    raw_inputs = take_inputs(options)
    _seed_into_params(options)
    if isinstance(prompts, str):
        prompts = [prompts]
    elif not isinstance(prompts, Sequence) or not all(isinstance(p, str) for p in prompts):
        raise InvalidOptionError("prompt must be a string (or a list of strings).")
    settings = resolve(options)
    if fresh and settings.cache == "replay":
        raise InvalidOptionError(
            "--fresh needs the API, but cache='replay' never calls it: set cache='on' first."
        )
    inputs = build_inputs(raw_inputs, settings, labels=labels)
    requests = build_requests(list(prompts), settings, inputs)
    return Plan(settings, requests, Path(save).expanduser() if save else None, fresh)


def _seed_into_params(options: dict[str, Any]) -> None:
    """`seed=N` (the magic's --seed) is the `seed` body field, as `-p seed=N` is."""
    seed = options.pop("seed", None)
    if seed is None:
        return
    try:
        number = int(str(seed).strip()) if not isinstance(seed, int) or isinstance(seed, bool) else seed
    except ValueError:
        raise InvalidOptionError(f"seed must be a whole number (got {seed!r}).") from None
    options["params"] = {**(options.get("params") or {}), "seed": number}


def new_progress(call: Plan, on_change: Callable[[CallProgress], None] | None = None) -> CallProgress:
    from .engine.progress import CallProgress

    return CallProgress(call.requests, display_max_px=call.settings.display_max_px, on_change=on_change)


async def arun(call: Plan, progress: CallProgress | None = None) -> ImageResult:
    from .engine.runner import run_requests

    progress = progress or new_progress(call)
    result = await run_requests(
        call.requests,
        call.settings,
        progress,
        store=Store.for_settings(call.settings),
        fresh=call.fresh,
        rate_limit_rounds=call.rate_limit_rounds,
        prices=call.prices,
    )
    _after(call, result)
    return result


def run(
    call: Plan,
    progress: CallProgress | None = None,
    *,
    tick: Callable[[CallProgress], None] | None = None,
) -> ImageResult:
    """Run on the engine loop; Ctrl-C returns the images so far, marked interrupted."""
    from .engine.loop import engine

    state = progress or new_progress(call)
    result = engine().run(
        arun(call, state),
        on_interrupt=lambda: state.result(interrupted=True),
        tick=(lambda: tick(state)) if tick else None,
    )
    if result.interrupted:
        _after(call, result)
    return result


def _after(call: Plan, result: ImageResult) -> None:
    from .cost import ledger

    ledger().record(result)
    if call.save is not None and len(result):
        try:
            result.save(call.save)
        except Exception as exc:  # noqa: BLE001 - the images are paid for: returned, with a warning
            result.save_error = _unsaved(call, result, exc)
            result.notes.append(result.save_error)


def _unsaved(call: Plan, result: ImageResult, exc: Exception) -> str:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
    kept = (
        f"they are in the store {Store.for_settings(call.settings).root}"
        if all(image.path is not None for image in result)
        else "they are only in memory: save them with result.save(folder)"
    )
    return f"Could not save the images to {call.save}: {reason}. The result is kept; {kept}."


def warn_unsaved(result: ImageResult) -> ImageResult:
    """After the result is shown or returned: a failed save said as a warning, never raised."""
    if result.save_error:
        warnings.warn(result.save_error, MeshImageWarning, stacklevel=3)
    return result


def raise_total_failure(result: ImageResult) -> ImageResult:
    """Raise the error when nothing arrived and every item failed the same way (bad key, ...).

    A mixed outcome is returned as is: its failures are in `result.errors`.
    """
    if not len(result) and result.errors and not result.interrupted:
        first = result.errors[0].error
        if all(type(item.error) is type(first) for item in result.errors):
            raise first
    return result


async def in_engine(coro_factory: Callable[[], Any]) -> Any:
    """Await work on the engine loop from any other running loop (async API)."""
    import asyncio

    from .engine.loop import engine

    future = engine().submit(coro_factory())
    return await asyncio.wrap_future(future)
