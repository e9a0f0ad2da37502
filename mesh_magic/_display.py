"""Rich display of results: an HTML grid of thumbnails with captions, plus a text fallback.

Plain HTML with `data:` URIs and inline styles renders the same in JupyterLab,
Notebook 7, VS Code and nbconvert's HTML export; thumbnails keep the saved
notebook small while full resolution stays in the result and the store.
"""

from __future__ import annotations

import base64
import html
from typing import TYPE_CHECKING, Any

from ._images import thumbnail

if TYPE_CHECKING:
    from ._results import GeneratedImage, ImageResult, ItemError

MIME_METADATA_KEY = "mesh_magic"

_GRID_STYLE = "display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start;margin:4px 0 10px 0"
_TILE_STYLE = (
    "margin:0;padding:6px;border:1px solid rgba(128,128,128,.35);border-radius:6px;"
    "font:12px/1.35 system-ui,-apple-system,'Segoe UI',sans-serif;"
)
_ROW_STYLE = "font:600 13px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:6px 0 2px 0"


def _thumb_tag(image: GeneratedImage, max_px: int) -> tuple[str, int]:
    data, mime, width, height = thumbnail(image.data, max_px)
    b64 = base64.b64encode(data).decode("ascii")
    alt = html.escape(image.prompt[:200], quote=True)
    tag = (
        f'<img src="data:{mime};base64,{b64}" width="{width}" height="{height}" alt="{alt}" '
        f'style="display:block;max-width:100%;height:auto;border-radius:4px">'
    )
    return tag, width


def _caption(image: GeneratedImage) -> str:
    bits = [f"<b>{html.escape(image.model)}</b>", html.escape(image.size)]
    if image.cached:
        bits.append("cached")
    if image.partial:
        bits.append("partial (stream failed)")
    line = " · ".join(bits)
    if image.revised_prompt and image.revised_prompt != image.prompt:
        line += f'<br><i title="revised prompt">{html.escape(image.revised_prompt[:300])}</i>'
    return line


def _image_tile(image: GeneratedImage, max_px: int) -> str:
    tag, width = _thumb_tag(image, max_px)
    return (
        f'<figure style="{_TILE_STYLE}max-width:{width + 14}px">{tag}'
        f'<figcaption style="margin-top:4px;word-wrap:break-word">{_caption(image)}</figcaption>'
        "</figure>"
    )


def _error_tile(error: ItemError, max_px: int) -> str:
    side = min(max_px, 256)
    hint = getattr(error.error, "hint", "")
    return (
        f'<figure style="{_TILE_STYLE}width:{side}px;min-height:{side // 2}px;'
        'background:rgba(220,50,50,.08);border-color:rgba(220,50,50,.5)">'
        f"<b>{html.escape(error.model)}</b><br>"
        f'<span style="color:#c0392b">⚠ {html.escape(str(error.error))}</span>'
        + (f"<br><span style='opacity:.8'>{html.escape(hint)}</span>" if hint else "")
        + "</figure>"
    )


def _row_keys(result: ImageResult) -> list[int]:
    keys = {im.row for im in result} | {err.row for err in result.errors}
    keys |= set(range(len(result.rows)))
    return sorted(keys)


def result_html(result: ImageResult, max_px: int | None = None) -> str:
    max_px = max_px or result.display_max_px
    parts = ['<div class="mesh-magic-result">']
    if result.notes:
        for note in result.notes:
            parts.append(f'<div style="opacity:.75;font-size:12px">ℹ {html.escape(note)}</div>')
    if result.interrupted:
        parts.append(
            '<div style="color:#b9770e;font-weight:600">Interrupted: showing what arrived.</div>'
        )
    many_rows = len(_row_keys(result)) > 1 or len({m for _, m in result.rows}) > 1
    for key in _row_keys(result):
        images = [im for im in result if im.row == key]
        errors = [err for err in result.errors if err.row == key]
        if key < len(result.rows):
            prompt, model = result.rows[key]
        elif images:
            prompt, model = images[0].prompt, images[0].model
        else:
            prompt, model = errors[0].prompt, errors[0].model
        if many_rows:
            parts.append(
                f'<div style="{_ROW_STYLE}">{html.escape(model)}'
                f' <span style="font-weight:400;opacity:.8">— {html.escape(_short(prompt))}'
                "</span></div>"
            )
        tiles = [_image_tile(im, max_px) for im in images]
        tiles += [_error_tile(err, max_px) for err in errors]
        if not tiles:
            tiles.append(
                f'<figure style="{_TILE_STYLE}opacity:.7">not finished (interrupted)</figure>'
            )
        parts.append(f'<div style="{_GRID_STYLE}">{"".join(tiles)}</div>')
    if not len(result) and not result.errors and not result.rows:
        parts.append("<i>No images.</i>")
    parts.append("</div>")
    return "".join(parts)


def result_text(result: ImageResult) -> str:
    lines = [repr(result)]
    for im in result:
        lines.append(f"  [{im.row}.{im.index}] {im.model} {im.size} {im.mime_type} — {_short(im.prompt)}")
    for err in result.errors:
        lines.append(f"  [{err.row}] {err.model} ERROR {err.error}")
    return "\n".join(lines)


def result_metadata(result: ImageResult) -> dict[str, Any]:
    return {
        MIME_METADATA_KEY: {
            "rows": [{"prompt": p, "model": m} for p, m in result.rows],
            "images": [
                {k: v for k, v in im.metadata().items() if k != "prompt"} | {"row": im.row}
                for im in result
            ],
            "errors": [
                {"row": e.row, "model": e.model, "message": e.error.message,
                 "status": e.error.status, "request_id": e.error.request_id}
                for e in result.errors
            ],
            "request_ids": result.request_ids,
        }
    }


def render_result(result: ImageResult) -> tuple[dict[str, str], dict[str, Any]]:
    return (
        {"text/html": result_html(result), "text/plain": result_text(result)},
        result_metadata(result),
    )


def render_image(image: GeneratedImage) -> tuple[dict[str, str], dict[str, Any]]:
    from ._results import ImageResult

    return render_result(ImageResult([image]))


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
