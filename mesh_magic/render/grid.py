"""Rich display of results: an HTML grid of thumbnails with captions, plus a text fallback.

Plain HTML with `data:` URIs and inline styles renders the same in JupyterLab,
Notebook 7, VS Code and nbconvert's HTML export; thumbnails keep the saved
notebook small while full resolution stays in the result and the store.
"""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, Any

from ..core.cost import cost_text
from ..core.errors import MeshImageError
from ..core.history import History, home_relative
from ..core.images import thumbnail
from .captions import caption_html
from .html import BORDER, ERROR_BORDER, ERROR_COLOUR, ERROR_TINT, FONT, WARN_COLOUR, shorten
from .lineage import before_after_pair, before_html, parent_thumbs_html

if TYPE_CHECKING:
    from ..core.results import GeneratedImage, ImageResult, ItemError

MIME_METADATA_KEY = "mesh_magic"

_GRID_STYLE = "display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start;margin:4px 0 10px 0"
_TILE_STYLE = f"margin:0;padding:6px;border:1px solid {BORDER};border-radius:6px;font:12px/1.35 {FONT};"
# Models share the width equally, so a comparison stays side by side on any screen.
_COMPARE_STYLE = "display:grid;gap:18px;align-items:start;grid-template-columns:repeat({n},minmax(0,1fr))"
_COLUMN_STYLE = "min-width:0"
_COLUMN_GRID_STYLE = (
    "display:grid;gap:10px;align-items:start;"
    "grid-template-columns:repeat(auto-fill,minmax(min(100%,{px}px),1fr))"
)
_ROW_STYLE = f"font:600 13px/1.4 {FONT};margin:6px 0 2px 0"
_NOTE_STYLE = "opacity:.75;font-size:12px"


def _thumb_tag(image: GeneratedImage, max_px: int) -> tuple[str, int]:
    data, mime, width, height = thumbnail(image.data, max_px)
    b64 = base64.b64encode(data).decode("ascii")
    alt = html.escape(image.prompt[:200], quote=True)
    tag = (
        f'<img src="data:{mime};base64,{b64}" width="{width}" height="{height}" alt="{alt}" '
        f'style="display:block;max-width:100%;height:auto;border-radius:4px">'
    )
    return tag, width


def _image_tile(image: GeneratedImage, max_px: int, *, parents: bool = False) -> str:
    try:
        tag, width = _thumb_tag(image, max_px)
    except MeshImageError as exc:  # a stored file gone or changed: that tile says so, the grid stays
        from ..core.results import ItemError

        return _error_tile(ItemError(image.prompt, image.model, exc, row=image.row), max_px)
    lineage = parent_thumbs_html(image) if parents else ""
    return (
        f'<figure style="{_TILE_STYLE}max-width:{width + 14}px">{tag}'
        f'<figcaption style="margin-top:4px;word-wrap:break-word">{lineage}{caption_html(image)}'
        "</figcaption></figure>"
    )


def _before_after(result: ImageResult, max_px: int) -> str | None:
    """One edited image of one source: the source and the result side by side."""
    pair = before_after_pair(result)
    if pair is None:
        return None
    image, data = pair
    label = image.parents[0].label or "the source"
    before = before_html(data, label, max_px, f"{_TILE_STYLE}max-width:{(max_px or 512) + 14}px")
    after = _image_tile(image, max_px)
    return f'<div class="mesh-magic-before-after" style="{_GRID_STYLE}">{before}{after}</div>'


def _error_tile(error: ItemError, max_px: int) -> str:
    side = min(max_px or 256, 256)  # 0 = full resolution, not a 0 px tile
    hint = getattr(error.error, "hint", "")
    return (
        f'<figure style="{_TILE_STYLE}width:{side}px;min-height:{side // 2}px;'
        f'background:{ERROR_TINT};border-color:{ERROR_BORDER}">'
        f"<b>{html.escape(error.model)}</b><br>"
        f'<span style="color:{ERROR_COLOUR}">⚠ {html.escape(str(error.error))}</span>'
        + (f"<br><span style='opacity:.8'>{html.escape(hint)}</span>" if hint else "")
        + "</figure>"
    )


def _row_keys(result: ImageResult) -> list[int]:
    keys = {im.row for im in result} | {err.row for err in result.errors}
    keys |= set(range(len(result.rows)))
    return sorted(keys)


def _row_tiles(result: ImageResult, key: int, max_px: int, *, column: bool = False) -> str:
    parents = isinstance(result, History)  # history shows where an edit came from
    tiles = [_image_tile(im, max_px, parents=parents) for im in result if im.row == key]
    tiles += [_error_tile(err, max_px) for err in result.errors if err.row == key]
    if not tiles:
        tiles.append(f'<figure style="{_TILE_STYLE}opacity:.7">not finished (interrupted)</figure>')
    style = _COLUMN_GRID_STYLE.format(px=min(max_px or 256, 256)) if column else _GRID_STYLE
    return f'<div style="{style}">{"".join(tiles)}</div>'


def _row_label(result: ImageResult, key: int) -> tuple[str, str]:
    if key < len(result.rows):
        return result.rows[key]
    for im in result:
        if im.row == key:
            return im.prompt, im.model
    err = next(e for e in result.errors if e.row == key)
    return err.prompt, err.model


def _prompt_blocks(result: ImageResult, max_px: int) -> list[str]:
    """One block per prompt, its models side by side."""
    parts: list[str] = []
    by_prompt: dict[str, list[int]] = {}
    for key in _row_keys(result):
        by_prompt.setdefault(_row_label(result, key)[0], []).append(key)
    many_prompts = len(by_prompt) > 1
    for prompt, keys in by_prompt.items():
        if many_prompts:
            parts.append(f'<div style="{_ROW_STYLE}">{html.escape(shorten(prompt))}</div>')
        if len(keys) == 1 and len({m for _, m in result.rows}) <= 1:
            parts.append(_row_tiles(result, keys[0], max_px))
            continue
        columns = []
        for key in keys:
            model = _row_label(result, key)[1]
            columns.append(
                f'<div class="mesh-magic-model" style="{_COLUMN_STYLE}">'
                f'<div style="{_ROW_STYLE}">{html.escape(model)}</div>'
                f"{_row_tiles(result, key, max_px, column=True)}</div>"
            )
        compare = _COMPARE_STYLE.format(n=len(columns))
        parts.append(f'<div style="{compare}">{"".join(columns)}</div>')
    return parts


def result_html(result: ImageResult, max_px: int | None = None) -> str:
    """The grid: one block per prompt, its models side by side (wrapping when narrow)."""
    max_px = result.display_max_px if max_px is None else max_px
    parts = ['<div class="mesh-magic-result">']
    for note in result.notes:
        parts.append(f'<div style="opacity:.75;font-size:12px">ℹ {html.escape(note)}</div>')
    if result.interrupted:
        parts.append(
            f'<div style="color:{WARN_COLOUR};font-weight:600">Interrupted: showing what arrived.</div>'
        )
    pair = None if isinstance(result, History) else _before_after(result, max_px)
    parts += [pair] if pair is not None else _prompt_blocks(result, max_px)
    if not len(result) and not result.errors and not result.rows:
        parts.append("<i>No images.</i>")
    if spent := cost_text(result):
        parts.append(f'<div class="mesh-magic-cost" style="{_NOTE_STYLE}">Cost: {html.escape(spent)}</div>')
    parts.append("</div>")
    return "".join(parts)


def result_text(result: ImageResult) -> str:
    lines = [repr(result) + (f" · cost {spent}" if (spent := cost_text(result)) else "")]
    for im in result:
        lines.append(f"  [{im.row}.{im.index}] {im.model} {im.size} {im.mime_type} — {shorten(im.prompt)}")
    for err in result.errors:
        lines.append(f"  [{err.row}] {err.model} ERROR {err.error}")
    return "\n".join(lines)


def result_summary(result: ImageResult) -> str:
    """What a terminal shows (plain `ipython`): one line per image with its file in the store.

    Never an image's bytes: a terminal cannot show them, and base64 would flood it.
    """
    count = f"{len(result)} image{'s' if len(result) != 1 else ''}"
    state = " (interrupted: showing what arrived)" if result.interrupted else ""
    lines = [f"mesh_magic: {count}, {len(result.errors)} failed{state}"]
    for prompt, keys in _by_prompt(result).items():
        lines.append(f"  {shorten(prompt, 100)!r}")
        for im in (im for im in result if im.row in keys):
            where = home_relative(im.path) if im.path else "not stored"
            tag = " (cached)" if im.cached else ""
            lines.append(f"    {im.model}  {im.size}  {im.extension}{tag}  {where}")
        for err in (e for e in result.errors if e.row in keys):
            lines.append(f"    {err.model}  failed: {shorten(str(err.error), 160)}")
    lines.extend(f"  note: {note}" for note in result.notes)
    return "\n".join(lines)


def _by_prompt(result: ImageResult) -> dict[str, set[int]]:
    rows: dict[str, set[int]] = {}
    for key in _row_keys(result):
        rows.setdefault(_row_label(result, key)[0], set()).add(key)
    return rows


def result_metadata(result: ImageResult) -> dict[str, Any]:
    return {
        MIME_METADATA_KEY: {
            "rows": [{"prompt": p, "model": m} for p, m in result.rows],
            "images": [
                {k: v for k, v in im.metadata().items() if k != "prompt"} | {"row": im.row} for im in result
            ],
            "errors": [
                {
                    "row": e.row,
                    "model": e.model,
                    "message": e.error.message,
                    "status": e.error.status,
                    "request_id": e.error.request_id,
                }
                for e in result.errors
            ],
            "request_ids": result.request_ids,
        }
    }


def render_result(result: ImageResult) -> tuple[dict[str, str], dict[str, Any]]:
    """The MIME bundle and metadata of a result (a history gets its heading on top)."""
    metadata = result_metadata(result)
    if isinstance(result, History):
        head = f'<div style="font:600 13px/1.4 {FONT}">{html.escape(result.heading())}</div>'
        if not len(result):
            return {"text/html": head, "text/plain": result.heading()}, metadata
        return (
            {
                "text/html": head + result_html(result),
                "text/plain": result.heading() + "\n" + result_text(result),
            },
            metadata,
        )
    return {"text/html": result_html(result), "text/plain": result_text(result)}, metadata
