"""Validate a generation body like the real API: FastAPI-style 422s, then MeshAPI envelope errors."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ._models import DEFAULT_MODEL, find_model, is_image_model
from ._responses import ApiError, ValidationFailed, loads

QUALITIES = ("auto", "low", "medium", "high", "hd", "standard")
RESPONSE_FORMATS = ("url", "b64_json")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MAX_PARTIAL_IMAGES = 3
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
_MIN_SIDE, _MAX_SIDE = 64, 4096
_AUTO_SIZE = (1024, 1024)
_CHOICE_FIELDS = (
    ("quality", QUALITIES, False),
    ("response_format", RESPONSE_FORMATS, False),
    ("output_format", OUTPUT_FORMATS, True),
)


@dataclass(frozen=True)
class Generation:
    """A validated request: everything needed to render and answer it."""

    prompt: str
    model: str
    entry: dict[str, Any]
    n: int
    width: int
    height: int
    quality: str
    response_format: str
    output_format: str
    stream: bool
    seed: int | None
    partial_images: int

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


def field_error(
    loc: list[str | int], kind: str, msg: str, value: Any, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One entry of a FastAPI 422 `detail` list."""
    error: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        error["ctx"] = ctx
    return error


def choices_msg(choices: tuple[str, ...]) -> str:
    quoted = [f"'{c}'" for c in choices]
    return "Input should be " + ", ".join(quoted[:-1]) + " or " + quoted[-1]


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body, or a FastAPI-shaped 422."""
    if not raw.strip():
        raise ValidationFailed([field_error(["body"], "missing", "Field required", None)])
    try:
        body = loads(raw)
    except ValueError as exc:
        context = {"error": str(getattr(exc, "msg", exc))}
        error = field_error(
            ["body", getattr(exc, "pos", 0)], "json_invalid", "JSON decode error", {}, context
        )
        raise ValidationFailed([error]) from None
    if not isinstance(body, dict):
        message = "Input should be a valid dictionary or object to extract fields from"
        raise ValidationFailed([field_error(["body"], "model_attributes_type", message, body)])
    return body


def string_errors(body: dict[str, Any], name: str, *, required: bool) -> list[dict[str, Any]]:
    """A required (non-blank) or optional string field."""
    value = body.get(name)
    loc: list[str | int] = ["body", name]
    if name not in body:
        return [field_error(loc, "missing", "Field required", body)] if required else []
    if value is None and not required:
        return []
    if not isinstance(value, str):
        return [field_error(loc, "string_type", "Input should be a valid string", value)]
    if required and not value.strip():
        msg = "String should have at least 1 character"
        return [field_error(loc, "string_too_short", msg, value, {"min_length": 1})]
    return []


def count_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    """`n`: an integer from 1 to 10."""
    n = body.get("n", 1)
    loc: list[str | int] = ["body", "n"]
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        return [field_error(loc, "int_type", "Input should be a valid integer", n)]
    if isinstance(n, float) and not n.is_integer():
        msg = "Input should be a valid integer, got a number with a fractional part"
        return [field_error(loc, "int_from_float", msg, n)]
    if n < 1:
        return [
            field_error(loc, "greater_than_equal", "Input should be greater than or equal to 1", n, {"ge": 1})
        ]
    if n > 10:
        return [
            field_error(loc, "less_than_equal", "Input should be less than or equal to 10", n, {"le": 10})
        ]
    return []


def choice_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = []
    for name, choices, nullable in _CHOICE_FIELDS:
        value = body.get(name)
        if name not in body or (value is None and nullable) or value in choices:
            continue
        msg = choices_msg(choices)
        ctx = {"expected": msg.removeprefix("Input should be ")}
        errors.append(field_error(["body", name], "enum", msg, value, ctx))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        errors.append(field_error(["body", "stream"], "bool_type", "Input should be a valid boolean", stream))
    return errors


def _field_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors = string_errors(body, "prompt", required=True)
    errors += string_errors(body, "model", required=False)
    errors += count_errors(body)
    size = body.get("size", "auto")
    if not isinstance(size, str):
        errors.append(field_error(["body", "size"], "string_type", "Input should be a valid string", size))
    return errors + choice_errors(body)


def parse_size(size: str) -> tuple[int, int]:
    if size.strip().lower() == "auto":
        return _AUTO_SIZE
    match = _SIZE.match(size)
    if match:
        width, height = int(match.group(1)), int(match.group(2))
        if _MIN_SIDE <= width <= _MAX_SIDE and _MIN_SIDE <= height <= _MAX_SIDE:
            return width, height
    # The gateway's own check: a generic message, the reason in `details` (as the real one does).
    reason = f"unsupported size for this model: use 'auto' or WxH with sides {_MIN_SIDE}-{_MAX_SIDE}"
    raise ApiError(
        422,
        "validation_error",
        "Validation failed.",
        [{"loc": ["body", "size"], "msg": reason, "type": "value_error"}],
    )


def model_entry(model: str) -> dict[str, Any]:
    """The catalog entry of an image model; 404 or 501 like the real API otherwise."""
    entry = find_model(model)
    if entry is None:
        raise ApiError(
            404,
            "model_not_found",
            f"Model '{model}' not found. List available image models with GET /v1/models?type=image.",
        )
    if not is_image_model(entry):
        outputs = ", ".join(entry.get("output_modalities", []))
        raise ApiError(
            501,
            "not_implemented",
            f"Model '{model}' cannot generate images (it outputs {outputs}).",
        )
    return entry


def check_n(model: str, entry: dict[str, Any], n: int) -> None:
    max_n = int(entry.get("max_n", 10))
    if n <= max_n:
        return
    what = "one image" if max_n == 1 else f"at most {max_n} images"
    limit = "1" if max_n == 1 else f"<= {max_n}"
    message = f"model {model} generates {what} per request (n must be {limit})"
    details = [{"loc": ["body", "n"], "msg": message, "type": "value_error"}]
    raise ApiError(400, "model_capability_not_supported", message, details)


def _partial_images(body: dict[str, Any], model: str, stream: bool) -> int:
    partial = body.get("partial_images") or 0
    valid = not isinstance(partial, bool) and isinstance(partial, int) and 0 <= partial <= MAX_PARTIAL_IMAGES
    if stream and model.startswith("openai/") and not valid:
        message = f"partial_images must be an integer from 0 to {MAX_PARTIAL_IMAGES}"
        raise ApiError(
            400,
            "invalid_request",
            message,
            [{"loc": ["body", "partial_images"], "msg": message, "type": "value_error"}],
        )
    return partial if isinstance(partial, int) else 0


def validate(body: dict[str, Any]) -> Generation:
    """The Generation a body asks for; raises the error the real API would answer."""
    errors = _field_errors(body)
    if errors:
        raise ValidationFailed(errors)
    model = body.get("model") or DEFAULT_MODEL
    entry = model_entry(model)
    width, height = parse_size(body.get("size", "auto"))
    n = int(body.get("n", 1))
    check_n(model, entry, n)
    seed = body.get("seed")
    stream = bool(body.get("stream", False))
    return Generation(
        prompt=body["prompt"],
        model=model,
        entry=entry,
        n=n,
        width=width,
        height=height,
        quality=body.get("quality") or "auto",
        response_format=body.get("response_format") or "url",
        output_format=body.get("output_format") or "png",
        stream=stream,
        # Other seed types are passed through by real providers; here they just don't count.
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        partial_images=_partial_images(body, model, stream),
    )
