"""Validate an edit body (the SDK's ImageEditParams) like the real API: FastAPI 422s, then envelopes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._edit_inputs import Source, change_area, decode_source, invalid
from ._edit_sizes import output_size
from ._models import MODELS, OPERATIONS
from ._responses import ApiError, ValidationFailed
from ._validation import (
    RESPONSE_FORMATS,
    check_n,
    choices_msg,
    count_errors,
    field_error,
    model_entry,
    parse_body,
    string_errors,
)

if TYPE_CHECKING:
    from PIL import Image as PILImage

Loc = list[str | int]

EDIT_FIELDS = (
    "model",
    "image",
    "prompt",
    "operation",
    "mask",
    "reference_images",
    "n",
    "size",
    "response_format",
    "background",
    "upscale_factor",
    "quality_tier",
    "aspect_ratio",
    "resolution",
    "expand_factor",
    "mask_feather",
)
_OPTIONAL_STRINGS = ("size", "background", "upscale_factor", "quality_tier", "aspect_ratio", "resolution")
NEEDS_PROMPT = ("edit", "outpaint", "mix")
# Operations that read reference_images (mix blends them; edit and inpaint borrow their look).
USES_REFERENCES = ("edit", "inpaint", "mix")
USES_MASK = ("edit", "inpaint")
MAX_REFERENCES = 10
MAX_FEATHER = 256


@dataclass(frozen=True)
class Edit:
    """A validated edit: decoded sources, the operation and the result's size."""

    model: str
    entry: dict[str, Any]
    operation: str
    prompt: str
    image: Source
    n: int
    response_format: str
    width: int
    height: int
    quality: str = "auto"
    references: tuple[Source, ...] = ()
    change: PILImage.Image | None = None  # L, 255 where the mask says change (edit/inpaint)
    feather: int = 0
    background: str | None = None  # remove_background: a colour to put behind the subject
    note: str = ""  # how the size was chosen, e.g. "x2" for an upscale

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @property
    def sources(self) -> tuple[Source, ...]:
        return (self.image, *self.references)


def _ref_errors(value: Any, loc: Loc) -> list[dict[str, Any]]:
    """Union[str, ImageRef]: a string, or an object with a string `url`."""
    if isinstance(value, str):
        return []
    if isinstance(value, dict):
        url = value.get("url")
        if "url" not in value:
            return [field_error([*loc, "ImageRef", "url"], "missing", "Field required", value)]
        if not isinstance(url, str):
            return [
                field_error([*loc, "ImageRef", "url"], "string_type", "Input should be a valid string", url)
            ]
        return []
    return [
        field_error([*loc, "str"], "string_type", "Input should be a valid string", value),
        field_error(
            [*loc, "ImageRef"],
            "model_type",
            "Input should be a valid dictionary or instance of ImageRef",
            value,
        ),
    ]


def _image_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    if "image" not in body:
        errors.append(field_error(["body", "image"], "missing", "Field required", body))
    else:
        errors += _ref_errors(body["image"], ["body", "image"])
    if body.get("mask") is not None:
        errors += _ref_errors(body["mask"], ["body", "mask"])
    refs = body.get("reference_images")
    if refs is not None and not isinstance(refs, list):
        errors.append(
            field_error(["body", "reference_images"], "list_type", "Input should be a valid list", refs)
        )
    elif refs is not None:
        for i, ref in enumerate(refs):
            errors += _ref_errors(ref, ["body", "reference_images", i])
    return errors


def _choice_error(
    body: dict[str, Any], name: str, choices: tuple[str, ...], kind: str
) -> list[dict[str, Any]]:
    value = body.get(name)
    if value is None or value in choices:
        return []
    msg = choices_msg(choices)
    return [field_error(["body", name], kind, msg, value, {"expected": msg.removeprefix("Input should be ")})]


def _number_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = []
    expand = body.get("expand_factor")
    if expand is not None and (isinstance(expand, bool) or not isinstance(expand, (str, int, float))):
        loc: Loc = ["body", "expand_factor"]
        errors.append(field_error([*loc, "str"], "string_type", "Input should be a valid string", expand))
        errors.append(field_error([*loc, "float"], "float_type", "Input should be a valid number", expand))
    feather = body.get("mask_feather")
    if feather is not None and (isinstance(feather, bool) or not isinstance(feather, int)):
        errors.append(
            field_error(["body", "mask_feather"], "int_type", "Input should be a valid integer", feather)
        )
    if body.get("n") is not None:
        errors += count_errors(body)
    return errors


def field_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Everything the body schema (extra="forbid") says is wrong, in FastAPI's shape."""
    errors = [
        field_error(["body", name], "extra_forbidden", "Extra inputs are not permitted", value)
        for name, value in body.items()
        if name not in EDIT_FIELDS
    ]
    errors += string_errors(body, "model", required=True)
    errors += _image_errors(body)
    if "prompt" in body and not isinstance(body["prompt"], str):  # `str = ""`: null is no string
        errors.append(
            field_error(["body", "prompt"], "string_type", "Input should be a valid string", body["prompt"])
        )
    if body.get("operation") is None and "operation" in body:
        errors.append(field_error(["body", "operation"], "literal_error", choices_msg(OPERATIONS), None))
    errors += _choice_error(body, "operation", OPERATIONS, "literal_error")
    errors += _choice_error(body, "response_format", RESPONSE_FORMATS, "literal_error")
    for name in _OPTIONAL_STRINGS:
        errors += string_errors(body, name, required=False)
    errors += _number_errors(body)
    if errors:
        return errors
    operation = body.get("operation", "edit")
    if operation in NEEDS_PROMPT and not (body.get("prompt") or "").strip():
        msg = f"Value error, prompt is required for the '{operation}' operation"
        return [field_error(["body", "prompt"], "value_error", msg, body.get("prompt"))]
    return []


def refuse_capability(model: str, capability: str, loc: Loc, what: str) -> ApiError:
    flag = f"supports_image_{capability}"
    able = [m["id"] for m in MODELS if m.get(flag)][:5]
    message = f"Model '{model}' does not support {what} ({flag} is false)."
    if able:
        message += f" Models that do: {', '.join(able)}."
    details = [{"loc": loc, "msg": message, "type": "value_error"}]
    return ApiError(400, "model_capability_not_supported", message, details)


def check_capability(model: str, entry: dict[str, Any], operation: str, has_references: bool) -> None:
    """400 model_capability_not_supported when the catalog flag for what is asked is false."""
    if not entry.get(f"supports_image_{operation}"):
        raise refuse_capability(model, operation, ["body", "operation"], f"the '{operation}' operation")
    if not has_references or operation == "mix":
        return
    if operation not in USES_REFERENCES:
        reason = f"reference_images are used by {', '.join(USES_REFERENCES)}, not by '{operation}'"
        raise invalid(["body", "reference_images"], reason)
    if not entry.get("supports_image_reference"):
        raise refuse_capability(model, "reference", ["body", "reference_images"], "reference images")


def _references(body: dict[str, Any], operation: str) -> tuple[Source, ...]:
    refs = body.get("reference_images") or []
    if len(refs) > MAX_REFERENCES:
        raise invalid(["body", "reference_images"], f"at most {MAX_REFERENCES} reference images per request")
    if operation == "mix" and not refs:
        raise invalid(["body", "reference_images"], "mix needs at least one reference image to blend with")
    return tuple(decode_source(ref, ["body", "reference_images", i]) for i, ref in enumerate(refs))


def _change(body: dict[str, Any], operation: str, image: Source) -> tuple[PILImage.Image | None, int]:
    feather = body.get("mask_feather") or 0
    if not 0 <= feather <= MAX_FEATHER:
        raise invalid(["body", "mask_feather"], f"mask_feather must be 0-{MAX_FEATHER} pixels")
    if body.get("mask") is None:
        if operation == "inpaint":
            reason = "inpaint needs a mask: a PNG the image's size, fully transparent where to change"
            raise invalid(["body", "mask"], reason)
        return None, feather
    mask = decode_source(body["mask"], ["body", "mask"])
    if operation not in USES_MASK:
        return None, feather  # decoded (so a bad one is refused) but unused, as providers do
    return change_area(mask, image.size), feather


def _background(body: dict[str, Any], operation: str) -> str | None:
    value: str | None = body.get("background")
    if operation != "remove_background" or value is None or value.lower() in ("transparent", "auto"):
        return None
    from PIL import ImageColor

    try:
        ImageColor.getrgb(value)
    except ValueError:
        reason = f"background must be 'transparent' or a colour like 'white' or '#ffffff', not {value!r}"
        raise invalid(["body", "background"], reason) from None
    return value


def validate_edit(raw: bytes) -> Edit:
    """The Edit a request body asks for; raises the error the real API would answer.

    Decodes images (CPU work): call it off the event loop.
    """
    body = parse_body(raw)
    errors = field_errors(body)
    if errors:
        raise ValidationFailed(errors)
    model: str = body["model"]
    operation: str = body.get("operation") or "edit"
    entry = model_entry(model)
    check_capability(model, entry, operation, bool(body.get("reference_images")))
    n = int(body.get("n") or 1)
    check_n(model, entry, n)
    image = decode_source(body["image"], ["body", "image"])
    references = _references(body, operation)
    change, feather = _change(body, operation, image)
    (width, height), note = output_size(operation, body, image.size)
    return Edit(
        model=model,
        entry=entry,
        operation=operation,
        prompt=body.get("prompt") or "",
        image=image,
        n=n,
        response_format=body.get("response_format") or "url",
        width=width,
        height=height,
        quality=body.get("quality_tier") or "auto",
        references=references,
        change=change,
        feather=feather,
        background=_background(body, operation),
        note=note,
    )
