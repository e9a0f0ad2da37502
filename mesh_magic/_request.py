"""Request building: one `ImageRequest` per prompt x model, its wire body, and input checks.

Everything here runs before any network call, so bad input fails fast with an
`InvalidOptionError` that says what to type instead.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._errors import InvalidOptionError

if TYPE_CHECKING:
    from ._config import Settings

SIZE_ALIASES = {"square": "1024x1024", "landscape": "1536x1024", "portrait": "1024x1536"}
_SIZE_RE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
# Body fields the typed options own; -p cannot silently fight them.
_RESERVED = frozenset(
    {"prompt", "model", "n", "size", "quality", "response_format", "output_format", "stream"}
)
_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
# Model ids never hold whitespace, quotes or control characters (a stray quote from the line).
_BAD_MODEL_CHARS = re.compile(r"[\s'\"`\x00-\x1f\x7f]")


def _short(value: Any, limit: int = 60) -> str:
    """repr of user input for a message, cut so a pasted essay doesn't flood the error."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + "...'"


class _OutOfRange(ValueError):
    pass


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _OutOfRange(text)
    return value


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN / Infinity: keep the text as typed


def normalise_size(value: Any) -> str:
    text = str(value).strip().lower()
    if text in ("auto", ""):
        return "auto"
    if text in SIZE_ALIASES:
        return SIZE_ALIASES[text]
    match = _SIZE_RE.match(text)
    if not match:
        raise InvalidOptionError(
            f"size {_short(value)} is not understood: use auto, WIDTHxHEIGHT (e.g. 1024x1024), "
            "square, landscape or portrait."
        )
    width, height = int(match.group(1)), int(match.group(2))
    if not (16 <= width <= 8192 and 16 <= height <= 8192):
        raise InvalidOptionError(f"size {_short(value)} is out of range: each side must be 16-8192 px.")
    return f"{width}x{height}"


def parse_param(item: str) -> tuple[str, Any]:
    """`KEY=VALUE` from -p: VALUE is JSON when it parses, else the string as typed."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InvalidOptionError(f"-p expects KEY=VALUE (got {_short(item)}), e.g. -p seed=42.")
    if not _KEY_RE.match(key):
        raise InvalidOptionError(f"-p key {_short(key)} is not a valid field name.")
    try:
        value = json.loads(raw, parse_float=_finite, parse_constant=_not_json)
    except _OutOfRange:
        raise InvalidOptionError(f"-p {key}: {_short(raw)} is out of range for a number.") from None
    except (ValueError, RecursionError):
        value = raw
    return key, value


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    clash = sorted(set(params) & _RESERVED)
    if clash:
        flags = ", ".join(clash)
        raise InvalidOptionError(
            f"-p {flags} clashes with a built-in option: use its own flag instead "
            "(e.g. -n, -s, -q, -f, --response-format)."
        )
    for key in params:
        if not isinstance(key, str) or not _KEY_RE.match(key):
            raise InvalidOptionError(f"params key {_short(key)} is not a valid field name.")
    try:  # what httpx will do with the body: fail here, before anything is sent
        json.dumps(dict(params), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidOptionError(
            f"params cannot be sent as JSON ({type(exc).__name__}: {_short(str(exc), 120)}): "
            "use strings, finite numbers, booleans, lists and dicts."
        ) from None
    return dict(params)


def _check_prompt(prompt: str) -> None:
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidOptionError(
            f"The prompt holds a character that cannot be sent as UTF-8 "
            f"({exc.object[exc.start:exc.end]!r} at position {exc.start}, a lone surrogate): "
            "remove it and run again."
        ) from None


@dataclass(frozen=True)
class ImageRequest:
    """One POST /v1/images/generations: a prompt for one model."""

    prompt: str
    model: str
    n: int = 1
    size: str = "auto"
    quality: str = "auto"
    response_format: str = "b64_json"
    output_format: str | None = None
    stream: bool = False
    params: Mapping[str, Any] = field(default_factory=dict)
    row: int = 0  # position in the result grid (prompt x model order)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": self.prompt,
            "model": self.model,
            "n": self.n,
            "size": self.size,
            "quality": self.quality,
            "response_format": self.response_format,
        }
        if self.output_format:
            body["output_format"] = self.output_format
        if self.stream:
            body["stream"] = True
        body.update(self.params)
        return body

    def describe(self) -> dict[str, Any]:
        """The parameters worth recording with an image (no prompt, never a key)."""
        out = {k: v for k, v in self.body().items() if k not in ("prompt", "stream")}
        return out


def build_requests(prompts: list[str], settings: Settings) -> list[ImageRequest]:
    """One request per prompt x model, in grid order; raises before anything is sent."""
    cleaned = [p.strip() for p in prompts]
    if not cleaned or any(not p for p in cleaned):
        raise InvalidOptionError(
            "The prompt is empty: write it in the cell body (or after the options on the line)."
        )
    for prompt in cleaned:
        _check_prompt(prompt)
    models = settings.models
    if not models:
        raise InvalidOptionError("No model given: use -m MODEL, e.g. -m openai/gpt-image-1.")
    for model in models:
        if _BAD_MODEL_CHARS.search(model):
            raise InvalidOptionError(
                f"{_short(model)} is not a model id (no spaces or quotes): e.g. -m openai/gpt-image-1; "
                "%meshimg_models lists them."
            )
    params = check_params(settings.params)
    requests = []
    for prompt in cleaned:
        for model in models:
            requests.append(
                ImageRequest(
                    prompt=prompt,
                    model=model,
                    n=settings.n,
                    size=settings.size,
                    quality=settings.quality,
                    response_format=settings.response_format,
                    output_format=settings.output_format,
                    stream=settings.stream,
                    params=params,
                    row=len(requests),
                )
            )
    return requests
