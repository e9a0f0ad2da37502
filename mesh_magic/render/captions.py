"""The caption under an image, in the grid and in the panel's gallery alike."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..core.cost import format_usd

if TYPE_CHECKING:
    from ..core.results import GeneratedImage

_PANEL_PROMPT_CHARS = 140
_REVISED_CHARS = 300


def caption_bits(image: GeneratedImage) -> list[str]:
    """Escaped facts: model (bold), size, and whether it was cached or a partial image."""
    bits = [f"<b>{html.escape(image.model)}</b>", html.escape(image.size)]
    if image.cached:
        bits.append("cached")
    elif image.cost is not None:
        bits.append(format_usd(image.cost))
    if image.partial:
        bits.append("partial (stream failed)")
    return bits


def caption_html(image: GeneratedImage) -> str:
    """The grid's caption: the facts, then the revised prompt when the model changed it."""
    line = " · ".join(caption_bits(image))
    if image.revised_prompt and image.revised_prompt != image.prompt:
        revised = html.escape(image.revised_prompt[:_REVISED_CHARS])
        line += f'<br><i title="revised prompt">{revised}</i>'
    return line


def gallery_caption_html(image: GeneratedImage) -> str:
    """The panel's caption: the facts, then the (revised) prompt, cut short with a tooltip."""
    text = image.revised_prompt or image.prompt
    short = text if len(text) <= _PANEL_PROMPT_CHARS else text[: _PANEL_PROMPT_CHARS - 1] + "…"
    return (
        '<div style="font-size:11px;line-height:1.3;overflow-wrap:anywhere">'
        f"{' · '.join(caption_bits(image))}<br>"
        f'<i title="{html.escape(text)}">{html.escape(short)}</i></div>'
    )
