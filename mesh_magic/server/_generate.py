"""Validate a generation request like the real API and build its images and answer."""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anyio

from . import _images
from ._faults import Fault
from ._models import DEFAULT_MODEL, find_model, is_image_model
from ._responses import ApiError, ValidationFailed, loads

QUALITIES = ("auto", "low", "medium", "high", "hd", "standard")
RESPONSE_FORMATS = ("url", "b64_json")
OUTPUT_FORMATS = ("png", "jpeg", "webp")
MAX_PARTIAL_IMAGES = 3
_SIZE = re.compile(r"^\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*$")
_MIN_SIDE, _MAX_SIDE = 64, 4096
_AUTO_SIZE = (1024, 1024)

# Output tokens per 1024x1024 image, roughly what the real gpt-image-1 bills.
_TOKENS_PER_MEGAPIXEL = {"low": 272, "medium": 1056, "high": 4160, "hd": 4160, "standard": 1056, "auto": 1056}


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


def _error(
    loc: list[str | int], kind: str, msg: str, value: Any, ctx: dict[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "loc": loc, "msg": msg, "input": value}
    if ctx:
        error["ctx"] = ctx
    return error


def _choices_msg(choices: tuple[str, ...]) -> str:
    quoted = [f"'{c}'" for c in choices]
    return "Input should be " + ", ".join(quoted[:-1]) + " or " + quoted[-1]


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body, or a FastAPI-shaped 422."""
    if not raw.strip():
        raise ValidationFailed([_error(["body"], "missing", "Field required", None)])
    try:
        body = loads(raw)
    except ValueError as exc:
        pos = getattr(exc, "pos", 0)
        raise ValidationFailed(
            [
                _error(
                    ["body", pos],
                    "json_invalid",
                    "JSON decode error",
                    {},
                    {"error": str(getattr(exc, "msg", exc))},
                )
            ]
        ) from None
    if not isinstance(body, dict):
        raise ValidationFailed(
            [
                _error(
                    ["body"],
                    "model_attributes_type",
                    "Input should be a valid dictionary or object to extract fields from",
                    body,
                )
            ]
        )
    return body


def _field_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    errors: list[dict[str, Any]] = []
    prompt = body.get("prompt")
    if "prompt" not in body:
        errors.append(_error(["body", "prompt"], "missing", "Field required", body))
    elif not isinstance(prompt, str):
        errors.append(_error(["body", "prompt"], "string_type", "Input should be a valid string", prompt))
    elif not prompt.strip():
        errors.append(
            _error(
                ["body", "prompt"],
                "string_too_short",
                "String should have at least 1 character",
                prompt,
                {"min_length": 1},
            )
        )
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        errors.append(_error(["body", "model"], "string_type", "Input should be a valid string", model))
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, (int, float)):
        errors.append(_error(["body", "n"], "int_type", "Input should be a valid integer", n))
    elif isinstance(n, float) and not n.is_integer():
        errors.append(
            _error(
                ["body", "n"],
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
                n,
            )
        )
    elif n < 1:
        errors.append(
            _error(
                ["body", "n"],
                "greater_than_equal",
                "Input should be greater than or equal to 1",
                n,
                {"ge": 1},
            )
        )
    elif n > 10:
        errors.append(
            _error(
                ["body", "n"], "less_than_equal", "Input should be less than or equal to 10", n, {"le": 10}
            )
        )
    size = body.get("size", "auto")
    if not isinstance(size, str):
        errors.append(_error(["body", "size"], "string_type", "Input should be a valid string", size))
    for name, choices, nullable in (
        ("quality", QUALITIES, False),
        ("response_format", RESPONSE_FORMATS, False),
        ("output_format", OUTPUT_FORMATS, True),
    ):
        value = body.get(name)
        if name not in body or (value is None and nullable) or value in choices:
            continue
        msg = _choices_msg(choices)
        errors.append(
            _error(["body", name], "enum", msg, value, {"expected": msg.removeprefix("Input should be ")})
        )
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        errors.append(_error(["body", "stream"], "bool_type", "Input should be a valid boolean", stream))
    return errors


def _parse_size(size: str) -> tuple[int, int]:
    if size.strip().lower() == "auto":
        return _AUTO_SIZE
    match = _SIZE.match(size)
    if match:
        width, height = int(match.group(1)), int(match.group(2))
        if _MIN_SIDE <= width <= _MAX_SIDE and _MIN_SIDE <= height <= _MAX_SIDE:
            return width, height
    raise ApiError(
        400,
        "invalid_size",
        f"Invalid size {size!r}: use 'auto' or WIDTHxHEIGHT with each side between "
        f"{_MIN_SIDE} and {_MAX_SIDE}, e.g. '1024x1024'.",
        {"param": "size", "value": size},
    )


def validate(body: dict[str, Any]) -> Generation:
    """The Generation a body asks for; raises the error the real API would answer."""
    errors = _field_errors(body)
    if errors:
        raise ValidationFailed(errors)
    model = body.get("model") or DEFAULT_MODEL
    entry = find_model(model)
    if entry is None:
        raise ApiError(
            404,
            "model_not_found",
            f"Model '{model}' not found. List available image models with GET /v1/models?type=image.",
            {"model": model},
        )
    if not is_image_model(entry):
        raise ApiError(
            501,
            "model_not_image_capable",
            f"Model '{model}' cannot generate images (it outputs "
            f"{', '.join(entry.get('output_modalities', []))}).",
            {"model": model},
        )
    width, height = _parse_size(body.get("size", "auto"))
    n = int(body.get("n", 1))
    max_n = int(entry.get("max_n", 10))
    if n > max_n:
        what = "one image" if max_n == 1 else f"at most {max_n} images"
        message = (
            f"model {model} generates {what} per request (n must be {'1' if max_n == 1 else f'<= {max_n}'})"
        )
        raise ApiError(
            400,
            "model_capability_not_supported",
            message,
            [{"loc": ["body", "n"], "msg": message, "type": "value_error"}],
        )
    seed = body.get("seed")
    stream = bool(body.get("stream", False))
    partial = body.get("partial_images") or 0
    if (
        stream
        and model.startswith("openai/")
        and (
            isinstance(partial, bool)
            or not isinstance(partial, int)
            or not 0 <= partial <= MAX_PARTIAL_IMAGES
        )
    ):
        raise ApiError(
            400,
            "invalid_request",
            f"partial_images must be an integer from 0 to {MAX_PARTIAL_IMAGES}",
            {"param": "partial_images", "value": partial},
        )
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
        partial_images=partial if isinstance(partial, int) else 0,
    )


def usage(gen: Generation) -> dict[str, int]:
    per_image = math.ceil(
        _TOKENS_PER_MEGAPIXEL.get(gen.quality, 1056) * gen.width * gen.height / (1024 * 1024)
    )
    input_tokens = max(1, math.ceil(len(gen.prompt) / 4))
    output_tokens = per_image * gen.n
    return {
        "images": gen.n,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
    }


def revised_prompt(gen: Generation) -> str:
    # Deterministic stand-in for a model rewriting the prompt before drawing.
    return f"{' '.join(gen.prompt.split())} — rendered as a detailed digital illustration"


class ImageMaker:
    """Renders a Generation's images and turns them into response data items."""

    def __init__(
        self, gen: Generation, *, label: str, file_base_url: str, store: Any, force_b64: bool = False
    ) -> None:
        self.gen = gen
        self.force_b64 = force_b64
        self.label = label
        self.file_base_url = file_base_url.rstrip("/")
        self.store = store

    def _mode(self) -> str:
        if self.force_b64 or self.gen.entry.get("b64_only") or self.gen.response_format == "b64_json":
            return "b64"
        return "data" if self.gen.entry.get("url_style") == "data" else "url"

    def render(self, index: int) -> bytes:
        gen = self.gen
        return _images.render_preview(
            gen.prompt,
            model=gen.model,
            seed=gen.seed,
            index=index,
            width=gen.width,
            height=gen.height,
            fmt=gen.output_format,
            label=self.label,
        )

    def _payload(self, index: int, fault: Fault | None) -> tuple[bytes, str]:
        kind = fault.kind if fault else None
        if kind == "not_image":
            return _images.not_an_image(), "png"
        if kind == "huge_image":
            return _images.decompression_bomb(), "png"
        data = self.render(index)
        if kind == "truncated_image":
            return data[: len(data) // 2], self.gen.output_format
        return data, self.gen.output_format

    def item(self, index: int, fault: Fault | None) -> dict[str, Any]:
        mode = self._mode()
        if fault is not None and fault.kind == "corrupt_b64":
            # Not base64 at all: '!' and '@' are outside its alphabet.
            junk = "!!not-base64@@" + "A" * 13
            item: dict[str, Any] = (
                {"url": f"data:image/png;base64,{junk}"} if mode == "data" else {"b64_json": junk}
            )
        else:
            data, fmt = self._payload(index, fault)
            mime = _images.MIME_TYPES[fmt]
            if mode == "b64":
                item = {"b64_json": base64.b64encode(data).decode()}
            elif mode == "data":
                item = {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}"}
            else:
                name = f"img_{secrets.token_hex(12)}.{fmt}"
                self.store.put(name, data, mime, self.gen.model)
                item = {"url": f"{self.file_base_url}/v1/files/{name}"}
        if self.gen.entry.get("revises_prompt"):
            item["revised_prompt"] = revised_prompt(self.gen)
        return item

    async def items(self, fault: Fault | None) -> list[dict[str, Any]]:
        kind = fault.kind if fault else None
        if kind == "empty_data":
            return []
        if kind == "missing_fields":
            return [{"revised_prompt": revised_prompt(self.gen)} for _ in range(self.gen.n)]
        # Rendering is CPU work: off the event loop, so other requests keep flowing.
        return await anyio.to_thread.run_sync(lambda: [self.item(i, fault) for i in range(self.gen.n)])

    def body(self, items: list[dict[str, Any]], fault: Fault | None) -> dict[str, Any]:
        if fault is not None and fault.kind == "empty_data":
            return {"created": int(time.time()), "data": []}
        return {
            "created": int(time.time()),
            "data": items,
            "usage": usage(self.gen),
            "size": self.gen.size,
            "quality": self.gen.quality,
            "output_format": self.gen.output_format,
        }


def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


async def mesh_stream(
    maker: ImageMaker, latency: float, fault: Fault | None, error_message: str
) -> AsyncIterator[bytes]:
    """MeshAPI's chunk stream: 'processing' chunks while working, the result, [DONE]."""
    processing = {"object": "image.chunk", "status": "processing", "data": []}
    yield _sse(processing)
    kind = fault.kind if fault else None
    if kind == "stream_error":
        yield _sse({"error": {"code": "upstream_error", "message": error_message}})
        return
    deadline = anyio.current_time() + latency
    while (left := deadline - anyio.current_time()) > 0:
        await anyio.sleep(min(0.1, left))
        yield _sse(processing)
    if kind == "stream_break":
        yield _sse(processing)
        return  # ends cleanly, but without the completed chunk or [DONE]
    items = await maker.items(fault)
    body = maker.body(items, fault)
    yield _sse({"object": "image.chunk", "status": "completed", **body})
    yield _sse("[DONE]")


async def openai_stream(
    maker: ImageMaker, latency: float, fault: Fault | None, error_message: str
) -> AsyncIterator[bytes]:
    """OpenAI's typed events: optional partial images, then one completed event per image.

    Like OpenAI, no [DONE] sentinel follows: the stream just ends.
    """
    gen = maker.gen
    kind = fault.kind if fault else None
    if kind == "stream_error":
        yield _sse({"type": "error", "error": {"code": "upstream_error", "message": error_message}}, "error")
        return
    steps = gen.partial_images
    pause = latency / (steps * gen.n + 1)
    for index in range(gen.n):
        for step in range(steps):
            await anyio.sleep(pause)
            render = functools.partial(
                _images.render_partial,
                gen.prompt,
                model=gen.model,
                seed=gen.seed,
                index=index,
                width=gen.width,
                height=gen.height,
                step=step,
                steps=steps,
                label=maker.label,
            )
            data = await anyio.to_thread.run_sync(render)
            yield _sse(
                {
                    "type": "image_generation.partial_image",
                    "b64_json": base64.b64encode(data).decode(),
                    "partial_image_index": step,
                    "size": gen.size,
                    "quality": gen.quality,
                    "output_format": "png",
                },
                "image_generation.partial_image",
            )
            if kind == "stream_break":
                return
        if kind == "stream_break":
            return  # no partials were asked for: the stream is simply empty
    await anyio.sleep(pause)
    items = await maker.items(fault)
    created = int(time.time())
    for item in items:
        yield _sse(
            {
                "type": "image_generation.completed",
                **item,
                "created": created,
                "usage": usage(gen),
                "size": gen.size,
                "quality": gen.quality,
                "output_format": gen.output_format,
            },
            "image_generation.completed",
        )
