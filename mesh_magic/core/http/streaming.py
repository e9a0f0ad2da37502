"""Reading a `text/event-stream` generation: MeshAPI `image.chunk` and OpenAI `image_generation.*`.

What arrived before a failure is kept: completed images come back with the
failure beside them; with none, the failure carries the last partial image.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..errors import MeshImageError, ResponseError, ServerError
from ..keys import SECRETS
from ..parsing import (
    ParsedGeneration,
    RawItem,
    StreamEvent,
    as_timestamp,
    classify_event,
    decode_b64,
    parse_generation,
)
from .transport import Exchange

EventCallback = Callable[[StreamEvent], None]


@dataclass
class StreamOutcome:
    """What a stream delivered: a parsed answer, and the failure that cut it short (if any)."""

    parsed: ParsedGeneration
    failure: MeshImageError | None = None


@dataclass
class _StreamState:
    request_id: str | None
    scrub: Callable[[str], str]
    final: dict[str, Any] | None = None
    completed: list[RawItem] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    created: int | None = None
    partial: bytes | None = None
    failure: MeshImageError | None = None

    def feed(self, event: StreamEvent) -> bool:
        """Take one event; False once the stream is over ([DONE] or an error event)."""
        if event.kind == "done":
            return False
        if event.kind == "error":
            self.failure = self._error_event(event.payload)
            return False
        if event.kind == "final":
            self.final = event.payload
        elif event.kind == "image" and not event.b64:
            self.failure = ResponseError(
                "The stream sent a completed image without a b64_json string.", request_id=self.request_id
            )
        elif event.kind == "image":
            self.completed.append(RawItem(index=len(self.completed), b64=event.b64))
            if isinstance(event.payload.get("usage"), dict):
                self.usage = event.payload["usage"]
            self.created = as_timestamp(event.payload.get("created")) or self.created
        elif event.kind == "partial" and event.b64:
            self.partial = _try_b64(event.b64)
        return True

    def _error_event(self, payload: dict[str, Any]) -> MeshImageError:
        err = payload["error"]
        message = err.get("message") if isinstance(err, dict) else err
        code = err.get("code") if isinstance(err, dict) else None
        request_id = payload.get("request_id") or self.request_id
        return ServerError(  # servers echo input: scrub the code as well
            self.scrub(f"The stream failed: {_short(message) or 'unknown error'}"),
            code=self.scrub(_short(code)) if code else None,
            request_id=self.scrub(_short(request_id)) if request_id else None,
        )

    def outcome(self) -> StreamOutcome:
        """The answer as far as it got; raises when nothing usable arrived."""
        try:
            if self.final is not None:
                # The result is complete; a hiccup after it (no [DONE]) changes nothing.
                return StreamOutcome(parse_generation(self.final))
            if self.completed:
                parsed = ParsedGeneration(self.created, self.completed, [], self.usage, {})
                return StreamOutcome(parsed, self.failure)
            raise self.failure or ResponseError(
                "The stream ended before the image arrived.", request_id=self.request_id
            )
        except MeshImageError as exc:
            raise exc.with_context(partial_image=self.partial) from None


async def read_stream(
    response: httpx.Response, exchange: Exchange, limit: int, on_event: EventCallback | None
) -> StreamOutcome:
    """Read every event of `response` (bounded by `limit` bytes) into a `StreamOutcome`."""
    from httpx_sse import EventSource

    state = _StreamState(exchange.request_id, exchange.scrub)
    received = 0
    exchange.streaming = True
    try:
        with exchange:
            async for sse in EventSource(response).aiter_sse():
                received += len(sse.data)
                if received > limit:  # the same bound as a plain body: a stream is no way around it
                    raise ResponseError(
                        f"The stream exceeded the {limit // (1024 * 1024)} MiB limit; refusing to load it.",
                        request_id=exchange.request_id,
                    )
                name, data = sse.event, SECRETS.scrub(sse.data)
                del sse  # the raw event: no frame keeps what a server echoed
                event = classify_event(name, data)
                if not state.feed(event):
                    break
                if on_event and event.kind != "ignore":
                    on_event(event)
    except MeshImageError as exc:
        state.failure = exc
    return state.outcome()


def _short(value: Any, limit: int = 300) -> str:
    """Any JSON value as bounded text: error events carry whatever the server put in them."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _try_b64(text: str) -> bytes | None:
    try:
        return decode_b64(text)
    except ResponseError:
        return None
