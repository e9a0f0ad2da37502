"""Request building: one `ImageRequest` per prompt x model, its wire body, and input checks.

Everything here runs before any network call, so bad input fails fast with an
`InvalidOptionError` that says what to type instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .edits import EDIT_FIELDS, EDIT_TIMEOUT, ImageInputs, check_edit_settings, check_prompts
from .errors import InvalidOptionError
from .kv import FIELD_NAME, short
from .settings import SETTINGS, WIRE_FIELDS
from .sources import ImageSource

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
    """One POST to the API: a prompt for one model, as a generation or an edit.

    The body carries the prompt, the model and only what the user set (as the
    official SDK does with `exclude_none`): `fields` holds the typed options to send
    (size, quality, ...), `params` the extra body fields; `n` is sent when it was
    set (`send_n`) or is not the API's default of 1. `row` is the position in the
    result grid (prompt x model order). An edit (`operation` not "generate") sends
    `sources[0]` as `image`, the rest as `reference_images`, and `mask`; a
    generation with `sources` sends them as its reference `image`.
    """

    prompt: str
    model: str
    n: int = 1
    stream: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    row: int = 0
    send_n: bool = True
    operation: str = "generate"
    sources: tuple[ImageSource, ...] = ()
    mask: ImageSource | None = None
    timeout: float | None = None  # this request's own (edits wait longer), else the setting's

    @property
    def is_edit(self) -> bool:
        return self.operation != "generate"

    @property
    def path(self) -> str:
        return "images/edits" if self.is_edit else "images/generations"

    def body(self) -> dict[str, Any]:
        return self._body(lambda source: source.data_url())

    def identity(self) -> dict[str, Any]:
        """The body with each image as its sha256: what the cache keys on, what sidecars record."""
        return self._body(lambda source: f"sha256:{source.sha256}")

    def _body(self, image: Callable[[ImageSource], str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model}
        if self.is_edit:
            body["image"] = image(self.sources[0])
            body["operation"] = self.operation
            if self.prompt:
                body["prompt"] = self.prompt
            if self.mask is not None:
                body["mask"] = image(self.mask)
            if len(self.sources) > 1:
                body["reference_images"] = [image(s) for s in self.sources[1:]]
        else:
            body = {"prompt": self.prompt, **body}
            if self.sources:
                refs = [image(s) for s in self.sources]
                body["image"] = refs[0] if len(refs) == 1 else refs
        if self.send_n or self.n != 1:
            body["n"] = self.n
        body.update(self.fields)
        if self.stream:
            body["stream"] = True
        body.update(self.params)
        return body

    def describe(self) -> dict[str, Any]:
        """The parameters worth recording with an image (no prompt, no image data, never a key)."""
        return {k: v for k, v in self.identity().items() if k not in ("prompt", "stream")}


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


def build_requests(
    prompts: list[str], settings: Settings, inputs: ImageInputs | None = None
) -> list[ImageRequest]:
    """One request per prompt x model, in grid order; raises before anything is sent."""
    cleaned = [p.strip() for p in prompts]
    check_prompts(cleaned, inputs)
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
    extra: dict[str, Any] = {}
    if inputs is not None:
        extra = {"operation": inputs.operation, "sources": inputs.sources, "mask": inputs.mask}
        if inputs.is_edit:
            check_edit_settings(settings, inputs, params)
            fields = {k: v for k, v in fields.items() if k in EDIT_FIELDS}
            extra["timeout"] = None if settings.is_set("timeout") else EDIT_TIMEOUT
    requests: list[ImageRequest] = []
    for prompt in cleaned:
        for model in models:
            requests.append(
                ImageRequest(
                    prompt=prompt,
                    model=model,
                    n=settings.n,
                    fields=fields,
                    params=params,
                    row=len(requests),
                    send_n=settings.is_set("n"),
                    stream=settings.stream and not (inputs is not None and inputs.is_edit),
                    **extra,
                )
            )
    return requests
