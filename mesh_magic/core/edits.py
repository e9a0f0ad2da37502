"""What a call does with input images: an edit (seven operations) or a generation with references.

Call options `image` (one source, or a list: the first is edited, the rest are
reference images), `operation`, `mask`, `region` and `references` (reference
images of a generation, sent as `image`) become `ImageInputs`, checked before
anything is sent (SPEC 8): an operation that needs a prompt without one, `mix`
with a single image, `inpaint` without a mask, a mask of another size.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog import ImageModel, cheapest_with
from .errors import InvalidOptionError
from .masks import checked_mask, parse_region, region_mask
from .settings import Settings
from .sources import ImageSource, load_sources

if TYPE_CHECKING:
    from .request import ImageRequest

OPERATIONS = ("edit", "inpaint", "outpaint", "mix", "reframe", "upscale", "remove_background")
NEEDS_PROMPT = frozenset({"edit", "outpaint", "mix"})
TAKES_MASK = frozenset({"edit", "inpaint"})
TAKES_REFERENCES = frozenset({"edit", "inpaint", "mix"})
# Edits often take 60-150 s: more patience than a generation's default.
EDIT_TIMEOUT = 300.0
# Call options this module takes out of a call's options.
INPUT_OPTIONS = ("image", "operation", "mask", "region", "references")
# Typed options an edit body has (ImageEditParams); the rest belong to generations.
EDIT_FIELDS = frozenset({"n", "size", "response_format"})
# Settings a generation sends that an edit cannot take (refused when given for an edit call).
NOT_FOR_EDITS = ("quality", "output_format", "stream")


@dataclass(frozen=True)
class ImageInputs:
    """A call's input images: `sources[0]` is edited, the rest are references (or, for a
    generation, `sources` are all references)."""

    operation: str  # "generate" for a generation with references
    sources: tuple[ImageSource, ...]
    mask: ImageSource | None = None

    @property
    def is_edit(self) -> bool:
        return self.operation != "generate"


def take_inputs(options: dict[str, Any]) -> dict[str, Any]:
    """Remove the input-image options from `options` (in place) and return them."""
    return {name: options.pop(name) for name in INPUT_OPTIONS if options.get(name) is not None}


def _listed(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


def build_inputs(
    raw: Mapping[str, Any], settings: Settings, *, labels: Mapping[str, list[str | None]] | None = None
) -> ImageInputs | None:
    """`ImageInputs` for the raw options (None: a plain generation); raises InvalidOptionError."""
    if not raw:
        return None
    labels = labels or {}
    images = _listed(raw["image"]) if "image" in raw else []
    references = _listed(raw["references"]) if "references" in raw else []
    operation = str(raw.get("operation") or ("edit" if images else "generate")).strip().lower()
    if not images:
        if operation != "generate" or "mask" in raw or "region" in raw:
            raise InvalidOptionError(
                "An edit needs an image: give it with -i SRC (or edit(image, ...)); "
                "--op, --mask and --region apply to edits."
            )
        refs = load_sources(references, settings, what="reference image", labels=labels.get("references"))
        return ImageInputs("generate", tuple(refs))
    if operation not in OPERATIONS:
        raise InvalidOptionError(f"Unknown operation {operation!r}: one of {', '.join(OPERATIONS)}.")
    names = (labels.get("image") or [None] * len(images)) + (
        labels.get("references") or [None] * len(references)
    )
    sources = load_sources(images + references, settings, labels=names)
    if operation == "mix" and len(sources) < 2:
        raise InvalidOptionError("mix blends several images: give two or more (-i A -i B).")
    return ImageInputs(operation, tuple(sources), _mask(raw, operation, sources[0], settings, labels))


def _mask(
    raw: Mapping[str, Any],
    operation: str,
    image: ImageSource,
    settings: Settings,
    labels: Mapping[str, list[str | None]],
) -> ImageSource | None:
    if "mask" in raw and "region" in raw:
        raise InvalidOptionError("Give --mask or --region, not both.")
    if ("mask" in raw or "region" in raw) and operation not in TAKES_MASK:
        raise InvalidOptionError(f"A mask applies to edit and inpaint, not {operation}.")
    if "region" in raw:
        return region_mask(image, parse_region(raw["region"], image.width, image.height))
    if "mask" in raw:
        (mask,) = load_sources([raw["mask"]], settings, what="mask", labels=labels.get("mask"))
        return checked_mask(mask, image)
    if operation == "inpaint":
        raise InvalidOptionError(
            "inpaint changes only a masked area: give --mask SRC (transparent = change here) or "
            "--region X,Y,W,H."
        )
    return None


def check_prompts(prompts: list[str], inputs: ImageInputs | None) -> None:
    """An empty prompt is fine only for operations that need none."""
    if inputs is not None and inputs.is_edit and inputs.operation not in NEEDS_PROMPT:
        return
    if not prompts or any(not p for p in prompts):
        what = (
            f"{inputs.operation} needs a prompt"
            if inputs is not None and inputs.is_edit
            else ("The prompt is empty")
        )
        raise InvalidOptionError(f"{what}: write it in the cell body (or after the options on the line).")


def check_edit_settings(settings: Settings, inputs: ImageInputs, params: Mapping[str, Any]) -> None:
    """Options an edit cannot take, when given for this call; reframe needs a target shape."""
    given = sorted(s for s in NOT_FOR_EDITS if settings.sources.get(s) == "call")
    if given:
        raise InvalidOptionError(
            f"{', '.join(given)} do{'es' * (len(given) == 1)} not apply to edits (the edits "
            "endpoint takes n, size and response_format): drop it for this call."
        )
    if "seed" in params:
        raise InvalidOptionError("seed does not apply to edits (the edits endpoint takes none): drop --seed.")
    if len(inputs.sources) > 1 and inputs.operation not in TAKES_REFERENCES:
        raise InvalidOptionError(
            f"{inputs.operation} works on one image; reference images go with edit, inpaint or mix."
        )
    if inputs.operation == "reframe" and "aspect_ratio" not in params and not settings.is_set("size"):
        raise InvalidOptionError(
            "reframe needs the shape to reframe to: -p aspect_ratio=16:9 (or -s WIDTHxHEIGHT)."
        )


class CapabilityError(InvalidOptionError):
    """Refused before sending: the catalog says the model cannot do what was asked."""


_WHAT = {"reference": "take reference images", "remove_background": "remove backgrounds"}


def check_capabilities(requests: Sequence[ImageRequest], models: Sequence[ImageModel]) -> None:
    """Refuse a request whose model lacks the capability (unknown flags: send anyway),
    naming up to five models that have it, cheapest first."""
    by_id = {m.id: m for m in models}
    for request in requests:
        capability = request.operation if request.is_edit else ("reference" if request.sources else None)
        model = by_id.get(request.model)
        if capability is None or model is None or model.supports(capability) is not False:
            continue
        able = cheapest_with(list(models), capability)
        others = ", ".join(f"{m.id} ({_price(m.price)})" for m in able) or "none in the catalog"
        what = _WHAT.get(capability, capability)
        raise CapabilityError(
            f"{request.model} cannot {what} (the model list says so). Models that can: {others}."
        )


def _price(price: float | None) -> str:
    from .cost import format_usd

    if price is None:
        return "price unknown"
    return "free" if price == 0 else format_usd(price)
