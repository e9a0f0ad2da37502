"""The panel's image input: the images an edit works on, the operation, a mask or a region.

Images arrive from the upload button or from a gallery tile (Edit, Use as
reference) and show as small thumbnails, each with a remove (×) button; the
core checks each one as it arrives (not an image, over 25 MB). The operation
picker offers only what every chosen model can do by the catalog's
`supports_image_<op>` flags (a flag the catalog does not give counts as "can").
What the widgets describe becomes the core's call options (`image`,
`operation`, `mask`, `region`, `references`); nothing here talks HTTP.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ipywidgets as widgets

from ..core.catalog import ImageModel
from ..core.edits import NEEDS_PROMPT, TAKES_MASK, TAKES_REFERENCES
from ..core.errors import InvalidOptionError
from ..core.images import thumbnail
from ..core.sources import ImageSource, load_source
from ..render.html import BORDER, status_html
from .gallery import close_tree

# SPEC 8's operations, as the picker lists them; "generate" is a plain generation
# (with the chosen images as its references, if any).
OPERATIONS = ("generate", "edit", "inpaint", "outpaint", "upscale", "remove_background", "reframe", "mix")
LABELS = {
    "generate": "Generate",
    "edit": "Edit",
    "inpaint": "Inpaint",
    "outpaint": "Outpaint",
    "upscale": "Upscale",
    "remove_background": "Remove background",
    "reframe": "Reframe",
    "mix": "Mix",
}
# Operations a prompt means nothing to: the prompt box is off and nothing is sent as one.
PROMPTLESS = frozenset({"upscale", "remove_background"})
ASPECT_RATIOS = ("16:9", "9:16", "4:3", "3:4", "1:1", "3:2", "2:3", "21:9")
UPLOAD_TYPES = ".png,.jpg,.jpeg,.webp,image/png,image/jpeg,image/webp"
THUMB_PX = 56
_WIDE = {"description_width": "initial"}
_ROW = {"display": "flex", "flex_flow": "row wrap", "grid_gap": "6px 12px", "align_items": "center"}


@dataclass(frozen=True)
class Picked:
    """One chosen image: what the core is given (`value`) and what it checked (`source`)."""

    value: Any  # a GeneratedImage, or the bytes of an upload
    source: ImageSource

    @property
    def label(self) -> str:
        return self.source.label


def offered(models: Sequence[ImageModel | None]) -> list[str]:
    """The operations every model can do (None: a model the catalog does not list)."""
    return [
        op
        for op in OPERATIONS
        if op == "generate" or all(m is None or m.supports(op) is not False for m in models)
    ]


def _uploaded(upload: widgets.FileUpload) -> list[tuple[str, bytes]]:
    return [(str(f.get("name") or "an upload"), bytes(f["content"])) for f in upload.value]


class ImageInput:
    """The image row (operation, upload, thumbnails) and the mask row (mask upload, X/Y/W/H).

    `images[0]` is the image an edit changes, the rest are its references (for
    "generate", all of them are references). `on_change` runs after any change.
    """

    def __init__(self, on_change: Callable[[], None]) -> None:
        self.on_change = on_change
        self.images: list[Picked] = []
        self.mask: Picked | None = None
        self.operation = widgets.Dropdown(
            options=[(LABELS[op], op) for op in OPERATIONS],
            value="generate",
            description="Operation",
            style=_WIDE,
            layout=widgets.Layout(width="240px"),
        )
        self.upload = widgets.FileUpload(
            accept=UPLOAD_TYPES,
            multiple=True,
            description="Upload image",
            icon="upload",
            tooltip="Add a PNG, JPEG or WebP image to edit (or as a reference)",
            layout=widgets.Layout(width="auto"),
        )
        self.chosen = widgets.Box(layout=widgets.Layout(**{**_ROW, "grid_gap": "6px"}))
        self.aspect_ratio = widgets.Combobox(
            value="16:9",
            options=list(ASPECT_RATIOS),
            ensure_option=False,
            description="Aspect ratio",
            style=_WIDE,
            layout=widgets.Layout(width="180px"),
        )
        self._mask_widgets()
        self._shown: tuple[bool, tuple[Picked, ...], Picked | None] | None = None
        self.note = widgets.HTML()
        self.row = widgets.Box(
            [self.operation, self.aspect_ratio, self.upload, self.chosen], layout=widgets.Layout(**_ROW)
        )
        for widget, name in (
            (self.operation, "operation"),
            (self.upload, "upload"),
            (self.chosen, "chosen"),
            (self.aspect_ratio, "aspect-ratio"),
            (self.mask_upload, "mask-upload"),
            (self.mask_row, "mask-row"),
            (self.note, "input-note"),
        ):
            widget.add_class(f"mesh-panel-{name}")
        self.upload.observe(lambda _: self._take_uploads(), names="value")
        self.mask_upload.observe(lambda _: self._take_mask(), names="value")
        for widget in (self.operation, self.aspect_ratio, *self.region):
            widget.observe(lambda _: self._changed(), names="value")
        self._layout()

    def _mask_widgets(self) -> None:
        self.mask_upload = widgets.FileUpload(
            accept=".png,image/png",
            multiple=False,
            description="Upload mask",
            icon="upload",
            tooltip="A PNG the image's size: fully transparent pixels mark the area to change",
            layout=widgets.Layout(width="auto"),
        )
        self.mask_chip = widgets.Box()
        self.region = tuple(
            widgets.BoundedFloatText(
                value=0,
                min=0,
                max=100_000,
                description=name,
                style=_WIDE,
                layout=widgets.Layout(width="96px"),
            )
            for name in ("X", "Y", "W", "H")
        )
        hint = widgets.HTML(
            '<span style="font-size:12px">optional · or a region (pixels, or fractions 0-1):</span>'
        )
        self.mask_row = widgets.Box(
            [self.mask_upload, self.mask_chip, hint, *self.region], layout=widgets.Layout(**_ROW)
        )

    # -- what is chosen ----------------------------------------------------

    @property
    def chosen_operation(self) -> str:
        return str(self.operation.value)

    def add(self, value: Any, label: str | None = None) -> bool:
        """Add an image (checked by the core); False, with the reason in the note, if refused."""
        picked = self._pick(value, label)
        if picked is None:
            return False
        self.images.append(picked)
        self._changed()
        return True

    def use(self, value: Any, operation: str, models: Sequence[ImageModel | None]) -> bool:
        """Make `value` the only image and pick `operation` if the models can do it."""
        picked = self._pick(value, None)
        if picked is None:
            return False
        self.images[:] = [picked]
        self._changed()
        if operation in offered(models):
            self.operation.value = operation
            return True
        self.say(f"The model cannot {LABELS[operation].lower()}: pick another model or operation.", "warn")
        return False

    def _pick(self, value: Any, label: str | None, what: str = "image") -> Picked | None:
        try:
            picked = Picked(value, load_source(value, label=label, what=what))
        except InvalidOptionError as exc:
            self.say(exc.message, "error")
            return None
        self.say("")
        return picked

    def remove(self, index: int) -> None:
        if 0 <= index < len(self.images):
            del self.images[index]
            self._changed()

    def clear(self) -> None:
        """Forget every chosen image and the mask; back to a plain generation."""
        self.images.clear()
        self.mask = None
        for field in self.region:
            field.value = 0
        self.operation.value = "generate"
        self._changed()

    def offer(self, models: Sequence[ImageModel | None], names: str) -> None:
        """Show only the operations `models` can do; a chosen one they cannot falls back to generate."""
        ops = offered(models)
        current = self.chosen_operation
        if [value for _, value in self.operation.options] == ops:
            return
        self.operation.options = [(LABELS[op], op) for op in ops]
        if current in ops:
            self.operation.value = current
        else:
            self.operation.value = "generate"
            self.say(f"{names} cannot {LABELS[current].lower()}: the operation is back to Generate.", "warn")

    def say(self, text: str, kind: str = "") -> None:
        self.note.value = status_html(text, kind) if text else ""

    # -- reading it back ---------------------------------------------------

    def region_value(self) -> tuple[float, float, float, float] | None:
        x, y, w, h = (float(field.value or 0) for field in self.region)
        return (x, y, w, h) if w > 0 and h > 0 else None

    def options(self, operation: str | None = None) -> dict[str, Any]:
        """The core's call options for the chosen images (and `operation`, if given instead)."""
        op = operation or self.chosen_operation
        if not self.images:
            return {"operation": op} if op != "generate" else {}
        values = [p.value for p in self.images]
        labels = [p.label for p in self.images]
        if op == "generate":
            return {"references": values, "source_labels": {"references": labels}}
        found: dict[str, Any] = {"image": values, "operation": op, "source_labels": {"image": labels}}
        if op in TAKES_MASK:
            if self.mask is not None:
                found["mask"] = self.mask.value
                found["source_labels"]["mask"] = [self.mask.label]
            found["region"] = self.region_value()
        if op == "reframe" and str(self.aspect_ratio.value).strip():
            found["params"] = {"aspect_ratio": str(self.aspect_ratio.value).strip()}
        return found

    def blocked(self, prompt: str) -> str | None:
        """Why the chosen operation cannot run yet (None: it can)."""
        op = self.chosen_operation
        name = LABELS[op]
        if op == "generate":
            return None
        if not self.images:
            return f"{name} needs an image: upload one, or press Edit under a picture"
        if op in NEEDS_PROMPT and not prompt.strip():
            return f"{name} needs a prompt: describe the change"
        if len(self.images) > 1 and op not in TAKES_REFERENCES:
            return f"{name} works on one image: take the others out (×), or mix them"
        if op == "mix" and len(self.images) < 2:
            return "Mix blends two or more images: add another (upload, or Use as reference)"
        if op in TAKES_MASK and self.mask is not None and self.region_value() is not None:
            return "give a mask or a region, not both"
        if op == "inpaint" and self.mask is None and self.region_value() is None:
            return "Inpaint needs the area to change: upload a mask, or give a region (X, Y, W, H)"
        return None

    # -- reacting ----------------------------------------------------------

    def _take_uploads(self) -> None:
        files = _uploaded(self.upload)
        if not files:
            return  # the reset below
        self.upload.value = ()  # the same file can be chosen again
        added = [self.add(data, name) for name, data in files]
        if any(added) and self.chosen_operation == "generate" and "edit" in self._offered_now():
            self.operation.value = "edit"  # an uploaded picture is mostly there to be edited

    def _take_mask(self) -> None:
        files = _uploaded(self.mask_upload)
        if not files:
            return
        self.mask_upload.value = ()
        name, data = files[0]
        picked = self._pick(data, name, "mask")
        if picked is not None:
            self.mask = picked
            self._changed()

    def _offered_now(self) -> list[str]:
        return [value for _, value in self.operation.options]

    def _changed(self) -> None:
        self._layout()
        self.on_change()

    def _layout(self) -> None:
        op = self.chosen_operation
        self.mask_row.layout.display = "flex" if op in TAKES_MASK and self.images else "none"
        self.aspect_ratio.layout.display = "flex" if op == "reframe" else "none"
        # The pictures themselves, not their ids: an id can be reused once a picture is gone.
        shown = (op == "generate", tuple(self.images), self.mask)
        if shown == self._shown:
            return  # a region or ratio keystroke: the thumbnails stay as they are
        self._shown = shown
        for old in (*self.chosen.children, *self.mask_chip.children):
            close_tree(old)
        self.chosen.children = [self._chip(i, p) for i, p in enumerate(self.images)]
        self.mask_chip.children = [self._chip(None, self.mask)] if self.mask is not None else []

    def _chip(self, index: int | None, picked: Picked) -> widgets.Widget:
        data, mime, width, height = thumbnail(picked.source.data, THUMB_PX)
        references = index is not None and (index > 0 or self.chosen_operation == "generate")
        role = "mask" if index is None else ("a reference" if references else "the image")
        picture = widgets.Image(value=data, format=mime.split("/")[-1], width=width, height=height)
        remove = widgets.Button(
            description="×",
            tooltip=f"Remove {picked.label}",
            layout=widgets.Layout(width="26px", height="26px", padding="0"),
        )
        remove.add_class("mesh-panel-remove")
        remove.on_click(lambda _: self._drop(index))
        caption = widgets.HTML(
            f'<span style="font-size:11px;opacity:.8" title="{html.escape(picked.label)}">{role}</span>'
        )
        chip = widgets.HBox(
            [picture, widgets.VBox([remove, caption])],
            layout=widgets.Layout(border=f"1px solid {BORDER}", padding="2px", align_items="center"),
        )
        chip.add_class("mesh-panel-chip")
        return chip

    def _drop(self, index: int | None) -> None:
        if index is None:
            self.mask = None
            self._changed()
        else:
            self.remove(index)
