"""Reference images for generations (`image`: one or a list) checked like the real API and used visibly.

Models with `supports_image_reference` take them; others answer 400
model_capability_not_supported. Each reference is decoded with the edits' rules
(data URL or bare base64, no remote URLs). The preview is then blended with the
references, so a generation "in the style of" a picture visibly borrows its colours.
"""

from __future__ import annotations

import io
from typing import Any

from ._edit_adjust import mean_of
from ._edit_inputs import Source, decode_source, invalid
from ._edit_validation import MAX_REFERENCES, refuse_capability
from ._generate import ImageMaker
from ._images import draw_label, encode
from ._validation import Generation

_SHARE = 0.35  # how much of the references shows through the generated picture


def generation_references(body: dict[str, Any], gen: Generation) -> tuple[Source, ...]:
    """The decoded `image` references of a generation body (none when it has no `image`)."""
    value = body.get("image")
    if value is None:
        return ()
    refs = value if isinstance(value, list) else [value]
    if not refs:
        return ()
    if not gen.entry.get("supports_image_reference"):
        raise refuse_capability(gen.model, "reference", ["body", "image"], "reference images")
    if len(refs) > MAX_REFERENCES:
        raise invalid(["body", "image"], f"at most {MAX_REFERENCES} reference images per request")
    sources = []
    for i, ref in enumerate(refs):
        loc: list[str | int] = ["body", "image", i] if isinstance(value, list) else ["body", "image"]
        if not isinstance(ref, (str, dict)) or (
            isinstance(ref, dict) and not isinstance(ref.get("url"), str)
        ):
            raise invalid(
                loc, "a reference image is a data:image/...;base64, URL, bare base64 or {'url': ...}"
            )
        sources.append(decode_source(ref, loc))
    return tuple(sources)


class ReferenceMaker(ImageMaker):
    """ImageMaker whose previews are blended with the generation's reference images."""

    def __init__(self, gen: Generation, references: tuple[Source, ...], **options: Any) -> None:
        super().__init__(gen, **options)
        self.references = references

    def render(self, index: int) -> bytes:
        from PIL import Image

        gen = self.gen
        preview = Image.open(io.BytesIO(super().render(index))).convert("RGB")
        size = (gen.width, gen.height)
        blended = Image.blend(preview, mean_of([r.rgb() for r in self.references], size), _SHARE)
        count = len(self.references)
        what = "1 reference" if count == 1 else f"{count} references"
        draw_label(blended, f"{self.label} · {gen.model} · with {what}", gen.prompt)
        return encode(blended, gen.output_format)


def image_maker(gen: Generation, references: tuple[Source, ...], **options: Any) -> ImageMaker:
    """The maker for a generation: previews blended with its references when it has any."""
    return ReferenceMaker(gen, references, **options) if references else ImageMaker(gen, **options)
