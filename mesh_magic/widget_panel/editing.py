"""The panel's edit controls: the image input tied to the model picker, the form and the gallery.

The operation picker follows the chosen model(s); the chosen operation relabels
the run button, turns off the inputs an edit cannot take (quality, format) and
the prompt where an operation takes none; a gallery tile's actions put its image
in the input or run Upscale / Remove background on it at once. The call options
go to the core as `api.edit` sends them (`image`, `operation`, `mask`, `region`,
`references` through `core.pricing.prepare`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..core.catalog import ImageModel
from ..core.edits import NOT_FOR_EDITS
from ..core.errors import InvalidOptionError
from ..core.results import GeneratedImage
from .form import Form, parse_params
from .inputs import LABELS, PROMPTLESS, ImageInput
from .models import ModelPicker

# Tile actions that run at once on the tile's image (the others only fill the input).
RUN_NOW = frozenset({"upscale", "remove_background"})
_PLACEHOLDERS = {
    "inpaint": "What to paint in the masked area (optional), e.g. a red balloon",
    "reframe": "Anything to keep in mind when reshaping (optional)",
    "outpaint": "What the wider scene holds, e.g. a rocky shore around the lighthouse",
    "mix": "How to blend the images, e.g. the fox in the style of the second image",
}
_EDIT_PLACEHOLDER = "Describe the change, e.g. make the sky stormy"


class EditControls:
    """`input` is the `ImageInput`; `run(operation)` starts a run (the panel's Generate)."""

    def __init__(
        self,
        form: Form,
        prompt: widgets.Textarea,
        button: widgets.Button,
        picker: ModelPicker,
        *,
        run: Callable[[str | None], None],
        refresh: Callable[[], None],
    ) -> None:
        self.form, self.prompt_box, self.button, self.picker = form, prompt, button, picker
        self.run, self.refresh = run, refresh
        self.generate_placeholder = prompt.placeholder
        self.input = ImageInput(self._changed)
        picker.on_loaded.append(self._offer)
        picker.model.observe(lambda _: self._offer(), names="value")

    @property
    def operation(self) -> str:
        return self.input.chosen_operation

    def models(self) -> list[ImageModel | None]:
        """The catalog record of each chosen model (None for one it does not list)."""
        ids = [m.strip() for m in str(self.picker.model.value).split(",") if m.strip()]
        return [self.picker.record(model_id) for model_id in ids]

    def prompt(self, operation: str | None = None) -> str:
        """The prompt to send: none for operations that take none."""
        return "" if (operation or self.operation) in PROMPTLESS else str(self.prompt_box.value)

    def not_ready(self) -> str | None:
        """Why the chosen operation cannot run yet, as the button's tooltip says."""
        reason = self.input.blocked(self.prompt())
        params = self.form.fields.get("params")
        if reason is None and self.operation != "generate" and params is not None:
            try:
                if "seed" in parse_params(params.value):
                    return "seed does not apply to edits: take it out of Extra params"
            except InvalidOptionError:
                return None  # the params' own error shows when the button is pressed
        return reason

    def options(self, options: dict[str, Any], operation: str | None = None) -> dict[str, Any]:
        """`options` (the form's) with the input's images; without what an edit cannot take."""
        found = self.input.options(operation)
        if "image" not in found and "operation" not in found:
            return {**options, **found}
        merged = {k: v for k, v in options.items() if k not in NOT_FOR_EDITS}
        params = {**(merged.get("params") or {}), **found.pop("params", {})}
        if "aspect_ratio" in params and found["operation"] == "reframe":
            merged.pop("size", None)  # the shape asked for; a size would fight it
        if params:
            merged["params"] = params
        return {**merged, **found}

    def on_tile(self, action: str, image: GeneratedImage) -> None:
        """A gallery tile's button: Edit / Use as reference fill the input; the others run now."""
        if action == "reference":
            self.input.add(image)
            return
        operation = "edit" if action == "edit" else action
        self.input.use(image, operation, self.models())
        if action in RUN_NOW:
            # Also when the picker could not select it: the core then refuses it, naming
            # the models that can, before anything is sent.
            self.run(operation)

    def _offer(self) -> None:
        names = str(self.picker.model.value).strip() or "The model"
        self.input.offer(self.models(), names)

    def _changed(self) -> None:
        op = self.operation
        editing = op != "generate"
        self.button.description = LABELS[op]
        self.button.icon = "play" if not editing else "magic"
        for name in NOT_FOR_EDITS:
            field = self.form.fields.get(name)
            if field is not None:
                field.disabled = editing
                field.tooltip = "Edits take n and size only" if editing else ""
        size = self.form.fields.get("size")
        if size is not None:
            size.disabled = op == "reframe" and bool(str(self.input.aspect_ratio.value).strip())
        self.prompt_box.disabled = op in PROMPTLESS
        fallback = _EDIT_PLACEHOLDER if editing else self.generate_placeholder
        self.prompt_box.placeholder = (
            f"{LABELS[op]} takes no prompt" if op in PROMPTLESS else _PLACEHOLDERS.get(op, fallback)
        )
        self.refresh()
