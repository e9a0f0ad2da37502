"""The panel's gallery: a tile per image (thumbnail, caption, Save, edit actions), newest first, bounded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import ipywidgets as widgets

from ..core.files import write_with_sidecar
from ..core.images import thumbnail
from ..core.results import GeneratedImage, ImageResult
from ..render.captions import gallery_caption_html
from ..render.html import BORDER

DEFAULT_SAVE_DIR = "./mesh_images"
# Gallery thumbnails stay small: the full image is in `panel.results` and the store.
GALLERY_PX = 192
# Older tiles leave the view (not `results`) so a long session doesn't pile up widgets.
MAX_TILES = 60

SaveHandler = Callable[[GeneratedImage, widgets.Button], object]
ActionHandler = Callable[[str, GeneratedImage], object]
# A tile's edit actions: (action, label, icon, tooltip). Edit and Use as reference put the
# image in the panel's input; Upscale and Remove background run at once. Short labels: a
# tile is under 210 px wide.
ACTIONS = (
    ("edit", "Edit", "pencil", "Edit: put this image in the input to change it"),
    ("upscale", "Upscale", "expand", "Upscale this image now"),
    ("remove_background", "Remove bg", "eraser", "Remove background: cut this image out now"),
    ("reference", "Reference", "paperclip", "Use as reference: add this image to the input"),
)


_SMALL = {"font_size": "12px"}


def _small_button() -> widgets.Layout:
    return widgets.Layout(width="auto", height="26px", padding="0 4px", margin="0")


def close_tree(widget: widgets.Widget) -> None:
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


class Gallery:
    """Tiles of generated images; `box` is the widget to lay out."""

    def __init__(self, on_save: SaveHandler, on_action: ActionHandler) -> None:
        self.on_save = on_save
        self.on_action = on_action
        self.box = widgets.Box(
            layout=widgets.Layout(
                display="flex", flex_flow="row wrap", grid_gap="8px", align_items="flex-start", width="100%"
            )
        )
        self.box.add_class("mesh-panel-gallery")

    def show(self, result: ImageResult) -> None:
        max_px = min(GALLERY_PX, result.display_max_px)
        tiles = [self.tile(image, max_px) for image in result]
        children = tiles + list(self.box.children)
        self.box.children = children[:MAX_TILES]
        for dropped in children[MAX_TILES:]:
            close_tree(dropped)

    def tile(self, image: GeneratedImage, max_px: int) -> widgets.Widget:
        data, mime, width, height = thumbnail(image.data, max_px)
        picture = widgets.Image(
            value=data,
            format=mime.split("/")[-1],
            width=width,
            height=height,
            layout=widgets.Layout(max_width="100%"),
        )
        caption = widgets.HTML(gallery_caption_html(image), layout=widgets.Layout(width=f"{width}px"))
        save = widgets.Button(
            description="Save",
            icon="download",
            tooltip="Save full size",
            layout=_small_button(),
            style=_SMALL,
        )
        save.add_class("mesh-panel-save")
        save.on_click(lambda button: self.on_save(image, button))
        tile = widgets.VBox(
            [
                picture,
                caption,
                widgets.Box(
                    [save, *self._actions(image)],
                    layout=widgets.Layout(display="flex", flex_flow="row wrap", grid_gap="4px"),
                ),
            ],
            layout=widgets.Layout(
                padding="6px",
                border=f"1px solid {BORDER}",
                width=f"{width + 14}px",
                overflow="hidden",
            ),
        )
        tile.add_class("mesh-panel-tile")
        return tile

    def _actions(self, image: GeneratedImage) -> list[widgets.Button]:
        buttons = []
        for action, label, icon, tip in ACTIONS:
            button = widgets.Button(description=label, icon=icon, tooltip=tip, layout=_small_button())
            button.add_class(f"mesh-panel-{action.replace('_', '-')}")
            button.on_click(lambda _, action=action: self.on_action(action, image))
            buttons.append(button)
        return buttons


def save_image(folder_text: str, image: GeneratedImage) -> Path:
    """Write `image` with its sidecar into the folder; raises OSError."""
    folder = Path(folder_text.strip() or DEFAULT_SAVE_DIR).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    return write_with_sidecar(folder, image, stem=_free_stem(folder, image))


def _free_stem(folder: Path, image: GeneratedImage) -> str:
    # The same prompt generated twice has the same slug; never overwrite an earlier save.
    stem, counter = image.slug(), 1
    candidate = stem
    while (folder / f"{candidate}.{image.extension}").exists():
        counter += 1
        candidate = f"{stem}-{counter}"
    return candidate
