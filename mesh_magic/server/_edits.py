"""Answer a validated edit: its images rendered by the edit operations, in the generations' shape."""

from __future__ import annotations

import math
from typing import Any

from ._edit_ops import render_edit
from ._edit_validation import Edit
from ._faults import Fault
from ._generate import ImageMaker, usage
from ._validation import Generation

# What a provider bills to read one input image, roughly (OpenAI counts tiles of 512 px).
_TOKENS_PER_INPUT_TILE = 85


def as_generation(edit: Edit) -> Generation:
    """The answer-side view of an edit, so the generations' ImageMaker can build the items."""
    return Generation(
        prompt=edit.prompt,
        model=edit.model,
        entry=edit.entry,
        n=edit.n,
        width=edit.width,
        height=edit.height,
        quality=edit.quality,
        response_format=edit.response_format,
        output_format="png",
        stream=False,
        seed=None,
        partial_images=0,
    )


def edit_usage(edit: Edit) -> dict[str, Any]:
    """The generations' usage, with the input images' tokens counted in."""
    counted = usage(as_generation(edit))
    tiles = sum(math.ceil(s.size[0] / 512) * math.ceil(s.size[1] / 512) for s in edit.sources)
    image_tokens = tiles * _TOKENS_PER_INPUT_TILE
    text_tokens = counted["prompt_tokens"] if edit.prompt else 0
    prompt_tokens = text_tokens + image_tokens
    return {
        **counted,
        "prompt_tokens": prompt_tokens,
        "input_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + counted["completion_tokens"],
        "input_tokens_details": {"text_tokens": text_tokens, "image_tokens": image_tokens},
    }


class EditMaker(ImageMaker):
    """ImageMaker for an edit: same items, faults and formats; the images come from the operation."""

    def __init__(self, edit: Edit, *, label: str, file_base_url: str, store: Any) -> None:
        super().__init__(as_generation(edit), label=label, file_base_url=file_base_url, store=store)
        self.edit = edit

    def render(self, index: int) -> bytes:
        return render_edit(self.edit, index, self.label)

    def item(self, index: int, fault: Fault | None) -> dict[str, Any]:
        item = super().item(index, fault)
        item.pop("revised_prompt", None)  # edits answer with the picture, not a rewritten prompt
        return item

    def body(self, items: list[dict[str, Any]], fault: Fault | None) -> dict[str, Any]:
        body = super().body(items, fault)
        if "usage" in body:
            body["usage"] = edit_usage(self.edit)
        if self.edit.operation == "remove_background":
            body["background"] = "opaque" if self.edit.background else "transparent"
        return body
