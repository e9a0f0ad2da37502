"""The widget panel: a form for image generation that never blocks the kernel.

`panel(**defaults)` (and `%meshimg_panel`) builds an `ImagePanel`. It only
turns widget values into call options and shows what the core reports; all
HTTP happens in the core's shared engine (`_generate.plan` / `arun`,
`Engine.submit`). ipywidgets is imported here and nowhere else, so
`%load_ext mesh_magic` stays light.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from . import _config
from ._engine import Collector, engine
from ._errors import InvalidOptionError, MeshImageError
from ._generate import CALL_OPTIONS, Plan, arun, new_collector, plan
from ._images import thumbnail
from ._request import parse_param
from ._results import GeneratedImage, ImageResult

__all__ = ["ImagePanel", "panel"]

DEFAULT_SAVE_DIR = "./mesh_images"
# Gallery thumbnails stay small: the full image is in `panel.results` and the store.
GALLERY_PX = 192
# Older tiles leave the view (not `results`) so a long session doesn't pile up widgets.
MAX_TILES = 60
# Progress updates arrive from the engine thread; more than a few a second is just noise.
STATUS_INTERVAL = 0.2
TICK_SECONDS = 0.5
SIZES = ("auto", "1024x1024", "1536x1024", "1024x1536", "512x512",
         "square", "landscape", "portrait")
# Body fields the panel has its own inputs for; typing them as extra params is a mistake.
_OWN_FIELDS = frozenset(
    {"prompt", "model", "n", "size", "quality", "output_format", "response_format", "stream"}
)
Callback = Callable[[ImageResult], Any]


@dataclass
class _Run:
    """One generation in flight: what the Cancel button and the callbacks need."""

    call: Plan
    collector: Collector
    future: concurrent.futures.Future[ImageResult] | None = None


class ImagePanel:
    """Prompt, model picker, options, Generate/Cancel, status, errors and a gallery.

    One generation runs at a time: while it is in flight Generate is disabled
    and further clicks are ignored (no duplicate, possibly billed, requests);
    Cancel aborts it and keeps the images that already arrived. Every finished
    generation (cancelled and failed ones too) is appended to `results`, oldest
    first, and passed to the `on_result` callbacks; the gallery shows the
    newest first. Callbacks and widget updates run on the engine's thread.

    Widgets for scripting and tests: `prompt`, `model`, `size`, `quality`, `n`,
    `output_format`, `params`, `generate_button`, `cancel_button`,
    `apply_button`, `save_dir`, `status`, `errors`, `model_note`, `gallery`;
    the displayed root is `root`.
    """

    def __init__(self, **defaults: Any) -> None:
        # Fails fast (InvalidOptionError) on a bad default rather than at the first click.
        settings = _config.resolve(
            {k: v for k, v in defaults.items() if k not in CALL_OPTIONS})
        self._defaults = dict(defaults)
        self.results: list[ImageResult] = []
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._active: _Run | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._last_status = 0.0
        self._prices: dict[str, float] = {}
        self._models_state = "Loading the model list…"
        self._closed = False
        self._build(settings)
        self._load_models(settings)

    # -- layout ------------------------------------------------------------

    def _build(self, settings: _config.Settings) -> None:
        wide = {"description_width": "initial"}
        self.prompt = widgets.Textarea(
            placeholder="Describe the image, e.g. A lighthouse on a cliff at dawn, watercolor",
            rows=3, layout=widgets.Layout(width="auto"),
        )
        self.model = widgets.Combobox(
            value=settings.model, options=[settings.model], ensure_option=False,
            description="Model", placeholder="model id (comma-separate to compare)",
            style=wide, layout=widgets.Layout(flex="1 1 300px", min_width="240px"),
        )
        self.size = widgets.Combobox(
            value=settings.size, options=list(SIZES), ensure_option=False, description="Size",
            style=wide, layout=widgets.Layout(width="170px"),
        )
        self.quality = widgets.Dropdown(
            options=list(_config.QUALITIES), value=settings.quality, description="Quality",
            style=wide, layout=widgets.Layout(width="160px"),
        )
        self.n = widgets.BoundedIntText(
            value=settings.n, min=1, max=10, description="n", style=wide,
            layout=widgets.Layout(width="90px"),
        )
        self.output_format = widgets.Dropdown(
            options=[("default", "")] + [(f, f) for f in _config.OUTPUT_FORMATS],
            value=settings.output_format or "", description="Format", style=wide,
            layout=widgets.Layout(width="150px"),
        )
        self.params = widgets.Textarea(
            value=_params_text(settings.params), rows=2, description="Extra params",
            placeholder='seed=42 (one KEY=VALUE per line) or {"seed": 42}',
            style=wide, layout=widgets.Layout(width="auto"),
        )
        self.model_note = widgets.HTML()
        self.generate_button = widgets.Button(
            description="Generate", button_style="primary", icon="play",
            tooltip="Send the request (disabled while one is in flight)",
        )
        self.cancel_button = widgets.Button(
            description="Cancel", icon="stop", disabled=True,
            tooltip="Stop the generation; keep the images that arrived",
        )
        self.apply_button = widgets.Button(
            description="Apply to session", icon="check",
            tooltip="Make these values the session defaults (%%meshimg, generate())",
        )
        self.save_dir = widgets.Text(
            value=DEFAULT_SAVE_DIR, description="Save to", style=wide,
            layout=widgets.Layout(width="260px"),
        )
        self.status = widgets.HTML(value=_status_html("Ready."))
        self.errors = widgets.HTML(value="")
        self.gallery = widgets.Box(
            layout=widgets.Layout(display="flex", flex_flow="row wrap", grid_gap="8px",
                                  align_items="flex-start", width="100%"),
        )
        for widget, name in (
            (self.prompt, "prompt"), (self.model, "model"), (self.size, "size"),
            (self.quality, "quality"), (self.n, "n"), (self.output_format, "output-format"),
            (self.params, "params"), (self.model_note, "model-note"),
            (self.generate_button, "generate"), (self.cancel_button, "cancel"),
            (self.apply_button, "apply"), (self.save_dir, "save-dir"),
            (self.status, "status"), (self.errors, "errors"), (self.gallery, "gallery"),
        ):
            widget.add_class(f"mesh-panel-{name}")

        self.generate_button.on_click(self._on_generate)
        self.cancel_button.on_click(self._on_cancel)
        self.apply_button.on_click(self._on_apply)
        self.model.observe(lambda _: self._show_model_note(), names="value")
        self._show_model_note()

        row = widgets.Layout(display="flex", flex_flow="row wrap", grid_gap="6px 12px",
                             align_items="center", width="100%")
        self.root = widgets.VBox(
            [
                widgets.HTML("<b>MeshAPI images</b>"),
                self.prompt,
                widgets.Box([self.model, self.size], layout=row),
                self.model_note,
                widgets.Box([self.quality, self.n, self.output_format], layout=row),
                self.params,
                widgets.Box([self.generate_button, self.cancel_button, self.apply_button,
                             self.save_dir], layout=row),
                self.status,
                self.errors,
                self.gallery,
            ],
            layout=widgets.Layout(width="100%", max_width="960px", grid_gap="4px"),
        )
        self.root.add_class("mesh-panel")

    # -- display -----------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = self.root._repr_mimebundle_(**kwargs)
        if bundle is not None:
            # Where widgets can't render (nbconvert, a terminal) this line is what shows.
            bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        state = "generating" if self.busy else "idle"
        return f"<ImagePanel {state}, {len(self.results)} results>"

    # -- public API --------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a generation is in flight."""
        return not self._idle.is_set()

    def on_result(self, callback: Callback, remove: bool = False) -> Callback:
        """Call `callback(result)` after each generation; usable as a decorator.

        It runs on the engine thread; an exception it raises is shown in the
        error area instead of breaking the panel.
        """
        if remove:
            if callback in self._callbacks:
                self._callbacks.remove(callback)
        else:
            self._callbacks.append(callback)
        return callback

    def wait(self, timeout: float | None = None) -> ImageResult | None:
        """Block until the current generation ends; returns the latest result (or None)."""
        if not self._idle.wait(timeout):
            raise TimeoutError(f"the panel is still generating after {timeout} s")
        return self.results[-1] if self.results else None

    def close(self) -> None:
        """Cancel what is in flight and close every widget of the panel."""
        self._closed = True
        self._on_cancel(None)
        _close_tree(self.root)

    # -- generate ----------------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The call options the widgets describe (raises InvalidOptionError on bad params)."""
        return {
            **self._defaults,
            "model": self.model.value.strip(),
            "n": self.n.value,
            "size": self.size.value.strip() or "auto",
            "quality": self.quality.value,
            "output_format": self.output_format.value or None,
            "params": parse_params(self.params.value),
        }

    def _on_generate(self, _button: Any = None) -> None:
        with self._lock:
            if self._active is not None:
                return  # a double click: the first request is already on its way
            try:
                call = plan(self.prompt.value, self.options())
            except InvalidOptionError as exc:
                self._show_errors([(None, exc)])
                self._set_status("Not sent: fix the input below.", "warn")
                return
            run = _Run(call, new_collector(call))
            self._active = run
            self._idle.clear()
        self._show_errors([])
        self.generate_button.disabled = True
        self.cancel_button.disabled = False
        self._show_progress(run, force=True)
        run.collector.on_change = lambda _: self._show_progress(run)
        try:
            run.future = engine().submit(arun(run.call, run.collector))
        except Exception as exc:  # no engine loop: say so rather than stay "busy" forever
            with self._lock:
                self._active = None
            self._show_errors([(None, exc)])
            self._set_status("Not sent.", "error")
            self.generate_button.disabled, self.cancel_button.disabled = False, True
            self._idle.set()
            return
        engine().submit(self._tick(run))
        # Added last: if the future is already done the callback runs right here.
        run.future.add_done_callback(lambda fut: self._finish(run, fut))

    async def _tick(self, run: _Run) -> None:
        # Elapsed time should move even while no request has answered yet.
        while self._active is run:
            self._show_progress(run, force=True)
            await asyncio.sleep(TICK_SECONDS)

    def _on_cancel(self, _button: Any = None) -> None:
        with self._lock:
            run = self._active
        if run is not None and run.future is not None:
            # Cancelling runs the done callback (`_finish`) right here, with what arrived.
            run.future.cancel()

    def _finish(self, run: _Run, future: concurrent.futures.Future[ImageResult]) -> None:
        with self._lock:
            if self._active is not run:
                return
            self._active = None
        elapsed = run.collector.elapsed
        problems: list[tuple[str | None, BaseException]] = []
        try:
            if future.cancelled():
                result = run.collector.result(interrupted=True)
                self._set_status(
                    f"Cancelled after {elapsed:.1f} s: kept {len(result)} of "
                    f"{run.call.total_images} images.", "warn")
            elif future.exception() is not None:
                result = run.collector.result(interrupted=True)
                problems.append((None, future.exception()))  # type: ignore[arg-type]
                self._set_status(f"Failed after {elapsed:.1f} s.", "error")
            else:
                result = future.result()
                self._set_status(_done_text(result, run.call, elapsed),
                                 "error" if not len(result) and result.errors else "ok")
            problems += [(err.model, err.error) for err in result.errors]
            self.results.append(result)
            self._render_result(result)
            for callback in list(self._callbacks):
                try:
                    callback(result)
                except Exception as exc:  # a user's hook must not wedge the panel
                    problems.append(("on_result callback", exc))
            self._show_errors(problems)
        finally:
            if not self._closed:
                self.generate_button.disabled = False
                self.cancel_button.disabled = True
            self._idle.set()

    # -- showing progress, results and errors ------------------------------

    def _show_progress(self, run: _Run, force: bool = False) -> None:
        now = time.monotonic()
        if self._active is not run or (not force and now - self._last_status < STATUS_INTERVAL):
            return
        self._last_status = now
        items = run.collector.items
        images = sum(item.images for item in items)
        finished = sum(1 for item in items if item.status in ("done", "failed"))
        text = (f"Generating… {images}/{run.call.total_images} images · "
                f"{finished}/{len(items)} requests · {run.collector.elapsed:.1f} s")
        with self._lock:
            # Checked again under the lock: a Cancel on another thread may have just
            # finished this run, and its "Cancelled" must not be overwritten.
            if self._active is run:
                self._set_status(text, "busy")

    def _set_status(self, text: str, kind: str = "") -> None:
        self.status.value = _status_html(text, kind)

    def _show_errors(self, problems: Iterable[tuple[str | None, BaseException]]) -> None:
        parts = []
        for where, error in problems:
            hint = getattr(error, "hint", "") if isinstance(error, MeshImageError) else ""
            text = str(error) if isinstance(error, MeshImageError) else (
                f"{type(error).__name__}: {error}")
            prefix = f"<b>{html.escape(where)}</b>: " if where else ""
            parts.append(
                '<div class="mesh-panel-error" style="color:#c0392b">'
                f"⚠ {prefix}{html.escape(text)}"
                + (f'<br><span style="opacity:.85">{html.escape(hint)}</span>' if hint else "")
                + "</div>"
            )
        self.errors.value = "".join(parts)

    def _render_result(self, result: ImageResult) -> None:
        max_px = min(GALLERY_PX, result.display_max_px)
        tiles = [self._tile(image, max_px) for image in result]
        children = tiles + list(self.gallery.children)
        self.gallery.children = children[:MAX_TILES]
        for dropped in children[MAX_TILES:]:
            _close_tree(dropped)

    def _tile(self, image: GeneratedImage, max_px: int) -> widgets.Widget:
        data, mime, width, height = thumbnail(image.data, max_px)
        picture = widgets.Image(value=data, format=mime.split("/")[-1], width=width,
                                height=height, layout=widgets.Layout(max_width="100%"))
        caption = widgets.HTML(_caption(image), layout=widgets.Layout(width=f"{width}px"))
        save = widgets.Button(description="Save", icon="download", tooltip="Save full size",
                              layout=widgets.Layout(width="auto"))
        save.add_class("mesh-panel-save")
        save.on_click(lambda button: self._save(image, button))
        tile = widgets.VBox(
            [picture, caption, save],
            layout=widgets.Layout(padding="6px", border="1px solid rgba(128,128,128,.35)",
                                  width=f"{width + 14}px", overflow="hidden"),
        )
        tile.add_class("mesh-panel-tile")
        return tile

    def _save(self, image: GeneratedImage, button: widgets.Button) -> Path | None:
        from ._store import write_with_sidecar

        folder = Path(self.save_dir.value.strip() or DEFAULT_SAVE_DIR).expanduser()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = write_with_sidecar(folder, image, stem=_free_stem(folder, image))
        except OSError as exc:
            self._show_errors([("Save", exc)])
            return None
        button.description = "Saved"
        button.tooltip = str(path)
        self._set_status(f"Saved {path}", "ok")
        return path

    # -- session and model list --------------------------------------------

    def _on_apply(self, _button: Any = None) -> None:
        try:
            values = {k: v for k, v in self.options().items()
                      if k in ("model", "n", "size", "quality", "output_format", "params")}
            _config.configure(**values)
        except InvalidOptionError as exc:
            self._show_errors([(None, exc)])
            self._set_status("Session not changed: fix the input below.", "warn")
            return
        self._show_errors([])
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if v not in (None, {}))
        self._set_status(f"Session defaults set: {shown}.", "ok")

    def _load_models(self, settings: _config.Settings) -> None:
        async def fetch() -> list[dict[str, Any]]:
            # The client is built on the engine loop, where its connection pool lives.
            return await engine().client(settings).list_models("image")

        engine().submit(fetch()).add_done_callback(self._models_loaded)

    def _models_loaded(self, future: concurrent.futures.Future[list[dict[str, Any]]]) -> None:
        if self._closed:
            return
        from ._api import price_per_image

        error = future.exception()
        if error is not None:
            reason = str(error) if isinstance(error, MeshImageError) else type(error).__name__
            self._models_state = (f"Model list unavailable ({reason}); "
                                  "type any model id.")
            self.model.options = [self.model.value] if self.model.value else []
        else:
            found = [m for m in future.result()
                     if "image" in (m.get("output_modalities") or ["image"])]
            ids = sorted({str(m["id"]) for m in found})
            self._prices = {str(m["id"]): p for m in found
                            if (p := price_per_image(m)) is not None}
            current = [m for m in self.model.value.split(",") if m.strip()]
            extra = [m.strip() for m in current if m.strip() not in ids]
            self.model.options = extra + ids
            self._models_state = f"{len(ids)} image models; type any id."
        self._show_model_note()

    def _show_model_note(self) -> None:
        price = self._prices.get(self.model.value.strip())
        cost = f" · ${price:.3f} per image" if price is not None else ""
        self.model_note.value = (
            f'<span style="font-size:11px;opacity:.7">{html.escape(self._models_state)}'
            f"{cost}</span>"
        )


def panel(**defaults: Any) -> ImagePanel:
    """The image generation panel; `defaults` (model, n, size, ...) override the session's.

    Display it as a cell's last value. `p.results`, `p.on_result(callback)` and
    `p.wait()` give its results to code. One generation at a time: Generate is
    disabled (and extra clicks ignored) until it ends or is cancelled.
    """
    return ImagePanel(**defaults)


# -- helpers -----------------------------------------------------------------


def parse_params(text: str) -> dict[str, Any]:
    """Extra body fields from a JSON object or `KEY=VALUE` lines (VALUE as JSON if it parses)."""
    text = text.strip()
    if not text:
        return {}
    if text.startswith("{"):
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise InvalidOptionError(f"Extra params are not valid JSON: {exc}.") from None
        if not isinstance(value, dict):
            raise InvalidOptionError('Extra params must be a JSON object, e.g. {"seed": 42}.')
        params = value
    else:
        params = {}
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if "=" not in line:
                raise InvalidOptionError(
                    f"Extra params: expected KEY=VALUE on each line (got {line!r}), "
                    "e.g. seed=42, or a JSON object.")
            key, value = parse_param(line)
            params[key] = value
    own = sorted(set(params) & _OWN_FIELDS)
    if own:
        raise InvalidOptionError(
            f"Extra params {', '.join(own)}: use the panel's own field for "
            f"{'it' if len(own) == 1 else 'them'}.")
    return params


def _params_text(params: Mapping[str, Any]) -> str:
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


_STATUS_COLOURS = {"ok": "#1e8449", "warn": "#b9770e", "error": "#c0392b", "busy": "inherit"}


def _status_html(text: str, kind: str = "") -> str:
    colour = _STATUS_COLOURS.get(kind, "inherit")
    return f'<span style="color:{colour}">{html.escape(text, quote=False)}</span>'


def _done_text(result: ImageResult, call: Plan, elapsed: float) -> str:
    if not len(result) and result.errors:
        return f"Failed after {elapsed:.1f} s (see below)."
    text = f"Done: {len(result)}/{call.total_images} images in {elapsed:.1f} s"
    if result.errors:
        text += f" · {len(result.errors)} failed"
    if any(image.cached for image in result):
        text += " · from cache"
    # Notes explain surprises, e.g. a model that needed one request per image.
    return " ".join([text + ".", *result.notes])


def _caption(image: GeneratedImage) -> str:
    bits = [f"<b>{html.escape(image.model)}</b>", html.escape(image.size)]
    if image.cached:
        bits.append("cached")
    text = image.revised_prompt or image.prompt
    short = text if len(text) <= 140 else text[:139] + "…"
    return (
        '<div style="font-size:11px;line-height:1.3;overflow-wrap:anywhere">'
        f"{' · '.join(bits)}<br>"
        f'<i title="{html.escape(text)}">{html.escape(short)}</i></div>'
    )


def _free_stem(folder: Path, image: GeneratedImage) -> str:
    # The same prompt generated twice has the same slug; never overwrite an earlier save.
    stem, counter = image.slug(), 1
    candidate = stem
    while (folder / f"{candidate}.{image.extension}").exists():
        counter += 1
        candidate = f"{stem}-{counter}"
    return candidate


def _close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        _close_tree(child)
    widget.close()
