"""Build a validated generation's images and its answer: JSON, MeshAPI chunks or OpenAI events."""

from __future__ import annotations

import base64
import functools
import json
import math
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio

from . import _images
from ._faults import Fault
from ._validation import Generation

# Output tokens per 1024x1024 image, roughly what the real gpt-image-1 bills.
_TOKENS_PER_MEGAPIXEL = {"low": 272, "medium": 1056, "high": 4160, "hd": 4160, "standard": 1056, "auto": 1056}


def usage(gen: Generation) -> dict[str, int]:
    per_image = math.ceil(
        _TOKENS_PER_MEGAPIXEL.get(gen.quality, 1056) * gen.width * gen.height / (1024 * 1024)
    )
    input_tokens = max(1, math.ceil(len(gen.prompt) / 4))
    output_tokens = per_image * gen.n
    # The SDK's ImageUsage names (prompt/completion), and OpenAI's (input/output) beside them.
    return {
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
        "total_tokens": input_tokens + output_tokens,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "images": gen.n,
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
        if kind == "corrupt_image":
            return _images.corrupt_png(), "png"
        if kind == "hollow_image":
            return _images.hollow_png(), "png"
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
        if fault is not None and fault.kind == "patch_item" and fault.patch:
            item.update(fault.patch)
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
        body = {
            "created": int(time.time()),
            "data": items,
            "usage": usage(self.gen),
            "size": self.gen.size,
            "quality": self.gen.quality,
            "output_format": self.gen.output_format,
        }
        if fault is not None and fault.kind == "patch_body" and fault.patch:
            body.update(fault.patch)
        return body


def _sse(data: Any, event: str | None = None) -> bytes:
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {text}\n\n".encode()


async def mesh_stream(
    maker: ImageMaker, latency: float, fault: Fault | None, error_message: str
) -> AsyncIterator[bytes]:
    """MeshAPI's chunk stream: 'processing' chunks while working, the result, [DONE]."""
    chunk_id = f"imgchunk_{secrets.token_hex(8)}"
    head = {"id": chunk_id, "object": "image.chunk", "model": maker.gen.model}
    processing = {**head, "created": int(time.time()), "status": "processing", "data": []}
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
    yield _sse({**head, "status": "completed", **body})
    yield _sse("[DONE]")


async def _partial_event(maker: ImageMaker, index: int, step: int) -> bytes:
    gen = maker.gen
    render = functools.partial(
        _images.render_partial,
        gen.prompt,
        model=gen.model,
        seed=gen.seed,
        index=index,
        width=gen.width,
        height=gen.height,
        step=step,
        steps=gen.partial_images,
        label=maker.label,
    )
    data = await anyio.to_thread.run_sync(render)
    event = {
        "type": "image_generation.partial_image",
        "created": int(time.time()),
        "b64_json": base64.b64encode(data).decode(),
        "partial_image_index": step,
        "size": gen.size,
        "quality": gen.quality,
        "output_format": "png",
    }
    return _sse(event, "image_generation.partial_image")


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
            yield await _partial_event(maker, index, step)
            if kind == "stream_break":
                return
        if kind == "stream_break":
            return  # no partials were asked for: the stream is simply empty
    await anyio.sleep(pause)
    items = await maker.items(fault)
    created = int(time.time())
    for item in items:
        event = {
            "type": "image_generation.completed",
            **item,
            "created": created,
            "usage": usage(gen),
            "size": gen.size,
            "quality": gen.quality,
            "output_format": gen.output_format,
        }
        if kind == "patch_body" and fault is not None and fault.patch:
            event.update(fault.patch)
        yield _sse(event, "image_generation.completed")
