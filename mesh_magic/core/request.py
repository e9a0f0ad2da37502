"""Request building: one `ImageRequest` per prompt x model, its wire body, and input checks.

Everything here runs before any network call, so bad input fails fast with an
`InvalidOptionError` that says what to type instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import InvalidOptionError
from .kv import FIELD_NAME, short
from .settings import SETTINGS, WIRE_FIELDS

if TYPE_CHECKING:
    from .settings import Settings

# Model ids never hold whitespace, quotes or control characters (a stray quote from the line).
_BAD_MODEL_CHARS = re.compile(r"[\s'\"`\x00-\x1f\x7f]")
# Wire settings with their own place in `ImageRequest` rather than in `fields`.
_OWN_ATTRIBUTES = ("prompt", "model", "n", "stream")


def check_params(params: Mapping[str, Any]) -> dict[str, Any]:
    clash = sorted(set(params) & WIRE_FIELDS)
    if clash:
        flags = ", ".join(clash)
        raise InvalidOptionError(
            f"-p {flags} clashes with a built-in option: use its own flag instead "
            "(e.g. -n, -s, -q, -f, --response-format)."
        )
    for key in params:
        if not isinstance(key, str) or not FIELD_NAME.match(key):
            raise InvalidOptionError(f"params key {short(key)} is not a valid field name.")
    try:  # what httpx will do with the body: fail here, before anything is sent
        json.dumps(dict(params), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidOptionError(
            f"params cannot be sent as JSON ({type(exc).__name__}: {short(str(exc), 120)}): "
            "use strings, finite numbers, booleans, lists and dicts."
        ) from None
    return dict(params)


def _check_prompt(prompt: str) -> None:
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidOptionError(
            f"The prompt holds a character that cannot be sent as UTF-8 "
            f"({exc.object[exc.start : exc.end]!r} at position {exc.start}, a lone surrogate): "
            "remove it and run again."
        ) from None


@dataclass(frozen=True)
class ImageRequest:
    """One POST /v1/images/generations: a prompt for one model.

    The body carries the prompt, the model and only what the user set (as the
    official SDK does with `exclude_none`): `fields` holds the typed options to send
    (size, quality, ...), `params` the extra body fields; `n` is sent when it was
    set (`send_n`) or is not the API's default of 1. `row` is the position in the
    result grid (prompt x model order).
    """

    prompt: str
    model: str
    n: int = 1
    stream: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    row: int = 0
    send_n: bool = True

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": self.prompt, "model": self.model}
        if self.send_n or self.n != 1:
            body["n"] = self.n
        body.update(self.fields)
        if self.stream:
            body["stream"] = True
        body.update(self.params)
        return body

    def describe(self) -> dict[str, Any]:
        """The parameters worth recording with an image (no prompt, never a key)."""
        return {k: v for k, v in self.body().items() if k not in ("prompt", "stream")}


def request_fields(settings: Settings) -> dict[str, Any]:
    """The typed wire options the user set (call, session or environment), in table order.

    A setting left at its default is not sent: providers behind the gateway may
    reject values they do not take (dall-e-3 and `size: "auto"`, gpt-image-1 and
    `response_format`), and the server's own default is what the user expects.
    """
    return {
        s.name: getattr(settings, s.name)
        for s in SETTINGS
        if s.wire
        and s.name not in _OWN_ATTRIBUTES
        and settings.is_set(s.name)
        and getattr(settings, s.name) is not None
    }


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
                f"{short(model)} is not a model id (no spaces or quotes): e.g. -m openai/gpt-image-1; "
                "%meshimg_models lists them."
            )
    params = check_params(settings.params)
    fields = request_fields(settings)
    requests: list[ImageRequest] = []
    for prompt in cleaned:
        for model in models:
            requests.append(
                ImageRequest(
                    prompt=prompt,
                    model=model,
                    n=settings.n,
                    stream=settings.stream,
                    fields=fields,
                    params=params,
                    row=len(requests),
                    send_n=settings.is_set("n"),
                )
            )
    return requests
