"""The widget panel: a form for image generation and edits that never blocks the kernel.

`panel(**defaults)` (and `%meshimg_panel`) builds an `ImagePanel`. It turns
widget values into call options and shows what the core reports; all HTTP
happens in the core's shared engine (`pricing.prepare`, then `generate.arun` on
`Engine.submit`, the catalog for the model list). Edits take the same path with
the image input's options (`image`, `operation`, `mask`, `region`, `references`). ipywidgets is imported in
this package and nowhere else, so `%load_ext mesh_magic` stays light.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from ..core import config as _config
from ..core.engine.loop import engine
from ..core.engine.progress import CallProgress
from ..core.errors import InvalidOptionError
from ..core.generate import CALL_OPTIONS, Plan, arun, new_progress
from ..core.pricing import prepare
from ..core.results import GeneratedImage, ImageResult
from ..render.html import status_html
from .editing import EditControls
from .estimate import GENERATE_TIP, EstimateView
from .form import Form, parse_params
from .gallery import DEFAULT_SAVE_DIR, Gallery, close_tree, save_image
from .models import ModelPicker
from .status import error_html, outcome, progress_text

__all__ = ["ImagePanel", "panel", "parse_params"]

# Progress updates arrive from the engine thread; more than a few a second is just noise.
STATUS_INTERVAL = 0.2
TICK_SECONDS = 0.5
Callback = Callable[[ImageResult], Any]


@dataclass
class _Run:
    """One generation in flight: what the Cancel button and the callbacks need."""

    call: Plan
    progress: CallProgress
    future: concurrent.futures.Future[ImageResult] | None = None


class ImagePanel:
    """Prompt, model picker, options, image input, Generate/Cancel, status, errors and a gallery.

    One generation runs at a time: while it is in flight Generate is disabled
    and further clicks are ignored (no duplicate, possibly billed, requests);
    Cancel aborts it and keeps the images that already arrived. Every finished
    generation (cancelled and failed ones too) is appended to `results`, oldest
    first, and passed to the `on_result` callbacks; the gallery shows the
    newest first. Callbacks and widget updates run on the engine's thread.

    Widgets for scripting and tests: `prompt`, the setting inputs (`model`, `size`,
    `quality`, `n`, `output_format`, `params`), `generate_button`, `cancel_button`,
    `apply_button`, `save_dir`, `status`, `errors`, `model_note`, `gallery`;
    the image input `image_input` (its `operation`, `upload`, `mask_upload`,
    `region` X/Y/W/H); the displayed root is `root`.
    """

    def __init__(self, **defaults: Any) -> None:
        # Fails fast (InvalidOptionError) on a bad default rather than at the first click.
        settings = _config.resolve({k: v for k, v in defaults.items() if k not in CALL_OPTIONS})
        self._defaults = dict(defaults)
        self.results: list[ImageResult] = []
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._active: _Run | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._last_status = 0.0
        self._closed = False
        self.form = Form(settings)
        self._build()
        self.models = ModelPicker(self.form.fields["model"], self.model_note)
        self.edits = EditControls(
            self.form,
            self.prompt,
            self.generate_button,
            self.models,
            run=lambda operation: self._on_generate(operation=operation),
            refresh=self._refresh_estimate,
        )
        self.image_input = self.edits.input
        self.operation = self.image_input.operation
        self._layout()
        self.estimate = EstimateView(
            self.models, self.edits.prompt, self.options, self.estimate_line, self.edits.not_ready
        )
        self.models.on_loaded.append(self._refresh_estimate)
        for widget in (self.prompt, *self.form.fields.values()):
            widget.observe(lambda _: self._refresh_estimate(), names="value")
        self._refresh_estimate()
        self.models.load(settings)

    def __getattr__(self, name: str) -> Any:
        # The setting inputs by name (`panel.model`, `panel.n`, ...), as built from the table.
        form = self.__dict__.get("form")
        if form is not None and name in form.fields:
            return form.fields[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- layout ------------------------------------------------------------

    def _build(self) -> None:
        self.prompt = widgets.Textarea(
            placeholder="Describe the image, e.g. A lighthouse on a cliff at dawn, watercolor",
            rows=3,
            layout=widgets.Layout(width="auto"),
        )
        self.model_note = widgets.HTML()
        self._buttons()
        self.save_dir = widgets.Text(
            value=DEFAULT_SAVE_DIR,
            description="Save to",
            style={"description_width": "initial"},
            layout=widgets.Layout(width="260px"),
        )
        self.estimate_line = widgets.HTML()
        self.status = widgets.HTML(value=status_html("Ready."))
        self.errors = widgets.HTML(value="")
        self._gallery = Gallery(self._save, lambda action, image: self.edits.on_tile(action, image))
        self.gallery = self._gallery.box
        for widget, name in (
            (self.prompt, "prompt"),
            (self.model_note, "model-note"),
            (self.generate_button, "generate"),
            (self.cancel_button, "cancel"),
            (self.apply_button, "apply"),
            (self.save_dir, "save-dir"),
            (self.status, "status"),
            (self.errors, "errors"),
        ):
            widget.add_class(f"mesh-panel-{name}")

    def _layout(self) -> None:
        self.root = widgets.VBox(
            [
                widgets.HTML("<b>MeshAPI images</b>"),
                self.prompt,
                *self._rows(),
                self.estimate_line,
                self.status,
                self.errors,
                self.gallery,
            ],
            layout=widgets.Layout(width="100%", max_width="960px", grid_gap="4px"),
        )
        self.root.add_class("mesh-panel")

    def _buttons(self) -> None:
        self.generate_button = widgets.Button(
            description="Generate",
            button_style="primary",
            icon="play",
            tooltip=GENERATE_TIP,
        )
        self.cancel_button = widgets.Button(
            description="Cancel",
            icon="stop",
            disabled=True,
            tooltip="Stop the generation; keep the images that arrived",
        )
        self.apply_button = widgets.Button(
            description="Apply to session",
            icon="check",
            tooltip="Make these values the session defaults (%%meshimg, generate())",
        )
        self.generate_button.on_click(self._on_generate)
        self.cancel_button.on_click(self._on_cancel)
        self.apply_button.on_click(self._on_apply)

    def _rows(self) -> list[widgets.Widget]:
        row = widgets.Layout(
            display="flex", flex_flow="row wrap", grid_gap="6px 12px", align_items="center", width="100%"
        )
        rows: list[widgets.Widget] = []
        for inputs in self.form.rows():
            rows.append(
                inputs[0]
                if len(inputs) == 1 and inputs[0] is self.form.fields.get("params")
                else widgets.Box(inputs, layout=row)
            )
            if self.form.fields.get("model") in inputs:
                rows.append(self.model_note)
        image = self.image_input
        rows += [image.row, image.mask_row, image.note]
        buttons = [self.generate_button, self.cancel_button, self.apply_button, self.save_dir]
        rows.append(widgets.Box(buttons, layout=row))
        return rows

    # -- display -----------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle: dict[str, Any] | None = self.root._repr_mimebundle_(**kwargs)
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
        self.models.closed = True
        self._on_cancel(None)
        close_tree(self.root)

    def options(self, operation: str | None = None) -> dict[str, Any]:
        """The call options the widgets describe (raises InvalidOptionError on bad params),
        with the image input's (for `operation`, if given, instead of the picker's).

        Only inputs that differ from what the call would get anyway are options, so a
        value left as the session (or default) has it is not sent as if the user chose it.
        """
        base = _config.resolve({k: v for k, v in self._defaults.items() if k not in CALL_OPTIONS})
        chosen = {k: v for k, v in self.form.values().items() if v != getattr(base, k)}
        return self.edits.options({**self._defaults, **chosen}, operation)

    def use(self, image: Any, operation: str = "edit") -> bool:
        """Put `image` (a GeneratedImage, PIL image, bytes or path) in the input for `operation`;
        False (the reason shown under the input) if the image or the operation is refused."""
        return self.image_input.use(image, operation, self.edits.models())

    # -- generate ----------------------------------------------------------

    def _on_generate(self, _button: Any = None, *, operation: str | None = None) -> None:
        with self._lock:
            if self._active is not None:
                return  # a double click: the first request is already on its way
            try:
                # Estimated and checked against the limits before anything is sent. The engine
                # loop never waits for this lock while no run is active, so waiting on it is safe.
                call = prepare(self.edits.prompt(operation), self.options(operation))
            except InvalidOptionError as exc:
                self._show_errors([(None, exc)])
                self._set_status("Not sent: fix the input below.", "warn")
                return
            run = _Run(call, new_progress(call))
            self._active = run
            self._idle.clear()
        self._show_errors([])
        self.generate_button.disabled, self.cancel_button.disabled = True, False
        self._show_progress(run, force=True)
        run.progress.on_change = lambda _: self._show_progress(run)
        try:
            run.future = engine().submit(arun(run.call, run.progress))
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
        try:
            result, problems, text, kind = outcome(run.call, run.progress, future)
            self._set_status(text, kind)
            problems += [(err.model, err.error) for err in result.errors]
            self.results.append(result)
            self._gallery.show(result)
            for callback in list(self._callbacks):
                try:
                    callback(result)
                except Exception as exc:  # a user's hook must not wedge the panel
                    problems.append(("on_result callback", exc))
            self._show_errors(problems)
        finally:
            if not self._closed:
                self.cancel_button.disabled = True
                self._refresh_estimate(idle=True)  # the session spent more: the budget may now refuse
            self._idle.set()

    # -- showing progress, results and errors ------------------------------

    def _show_progress(self, run: _Run, force: bool = False) -> None:
        now = time.monotonic()
        if self._active is not run or (not force and now - self._last_status < STATUS_INTERVAL):
            return
        self._last_status = now
        text = progress_text(run.call, run.progress)
        with self._lock:
            # Checked again under the lock: a Cancel on another thread may have just
            # finished this run, and its "Cancelled" must not be overwritten.
            if self._active is run:
                self._set_status(text, "busy")

    def _refresh_estimate(self, idle: bool | None = None) -> None:
        if not self._closed:
            self.estimate.update(self.generate_button, idle=not self.busy if idle is None else idle)

    def _set_status(self, text: str, kind: str = "") -> None:
        self.status.value = status_html(text, kind)

    def _show_errors(self, problems: Iterable[tuple[str | None, BaseException]]) -> None:
        self.errors.value = "".join(error_html(where, error) for where, error in problems)

    def _save(self, image: GeneratedImage, button: widgets.Button) -> Path | None:
        try:
            path = save_image(self.save_dir.value, image)
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
            values = self.form.values()
            _config.configure(**values)
        except InvalidOptionError as exc:
            self._show_errors([(None, exc)])
            self._set_status("Session not changed: fix the input below.", "warn")
            return
        self._show_errors([])
        shown = ", ".join(f"{k}={v}" for k, v in values.items() if v not in (None, {}))
        self._set_status(f"Session defaults set: {shown}.", "ok")


def panel(**defaults: Any) -> ImagePanel:
    """The image generation panel; `defaults` (model, n, size, ...) override the session's.

    Display it as a cell's last value. `p.results`, `p.on_result(callback)` and
    `p.wait()` give its results to code. One generation at a time: Generate is
    disabled (and extra clicks ignored) until it ends or is cancelled.
    """
    return ImagePanel(**defaults)
