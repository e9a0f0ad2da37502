"""A result as one self-contained HTML page (`ImageResult.to_html`, `%meshimg_history --html`).

The grid of the notebook (thumbnails as data URIs, captions) plus a table of every image's
parameters, in a page that loads nothing from anywhere: no scripts, stylesheets, fonts or
images by reference, so the file can be mailed or attached and still shows everything.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from ..core.dataset import image_row
from ..core.history import History, home_relative
from .grid import result_html
from .html import html_table

if TYPE_CHECKING:
    from ..core.results import ImageResult

# Thumbnails of a shared page: big enough to compare, small enough for hundreds in one file.
PAGE_MAX_PX = 384
_PARAMETERS = ("model", "size", "seed", "operation", "cost", "latency_s", "request_id", "revised_prompt")
_STYLE = (
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;"
    "color:#1f2328;background:#fff}"
    "@media (prefers-color-scheme:dark){body{color:#e6edf3;background:#0d1117}}"
    "table{border-collapse:collapse;font-size:12px;margin-top:8px}"
    "td,th{border:1px solid rgba(128,128,128,.35);padding:3px 6px;vertical-align:top}"
    "h1{font-size:18px}h2{font-size:15px;margin-top:28px}"
)


def render_page(result: ImageResult, *, title: str | None = None) -> str:
    """The whole page: heading, the grid, then one parameter row per image."""
    heading = title or (result.heading() if isinstance(result, History) else _default_title(result))
    max_px = min(result.display_max_px or PAGE_MAX_PX, PAGE_MAX_PX)
    rows = []
    for number, image in enumerate(result, 1):
        facts = image_row(image)
        cells = [str(number), html.escape(image.prompt)]
        cells += [html.escape("" if facts[key] is None else str(facts[key])) for key in _PARAMETERS]
        cells.append(html.escape(home_relative(image.path)) if image.path else "not stored")
        rows.append(cells)
    table = html_table(["#", "prompt", *_PARAMETERS, "file"], rows) if rows else ""
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(heading)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(heading)}</h1>"
        f'<p style="opacity:.7">{len(result)} images · made by mesh_magic on {stamp}</p>'
        f"{result_html(result, max_px)}"
        f"<h2>Parameters</h2>{table}"
        "</body></html>\n"
    )


def _default_title(result: ImageResult) -> str:
    prompts = list(dict.fromkeys(prompt for prompt, _ in result.rows))
    if len(prompts) == 1:
        return f"mesh_magic: {prompts[0][:80]}"
    return f"mesh_magic: {len(prompts)} prompts"
