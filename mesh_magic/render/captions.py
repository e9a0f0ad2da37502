"""The caption under an image, in the grid and in the panel's gallery alike."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from ..core.cost import format_usd

if TYPE_CHECKING:
    from ..core.results import GeneratedImage

_PANEL_PROMPT_CHARS = 140
_REVISED_CHARS = 300


def operation_text(image: GeneratedImage) -> str:
    """What was done to make `image`: "upscale x2 of result[0]", "" for a plain generation."""
    if image.operation == "generate":
        refs = [p.label or "an image" for p in image.parents]
        return f"with reference {', '.join(refs)}" if refs else ""
    parent = image.parents[0] if image.parents else None
    detail = ""
    if image.operation == "upscale" and parent is not None and parent.size:
        width = int(parent.size.split("x")[0] or 0)
        detail = f" x{image.width / width:g}" if width else ""
    elif image.operation == "reframe" and image.params.get("aspect_ratio"):
        detail = f" to {image.params['aspect_ratio']}"
    source = f" of {parent.label}" if parent is not None and parent.label else ""
    others = len(image.parents) - 1
    with_others = f" with {others} more image{'s' * (others != 1)}" if others > 0 else ""
    return f"{image.operation.replace('_', ' ')}{detail}{source}{with_others}"


def caption_bits(image: GeneratedImage) -> list[str]:
    """Escaped facts: model (bold), size, what was done, and whether cached or a partial image."""
    bits = [f"<b>{html.escape(image.model)}</b>", html.escape(image.size)]
    if done := operation_text(image):
        bits.append(html.escape(done))
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
