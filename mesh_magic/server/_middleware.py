"""ASGI layer under every route: request ids, the request log, in-flight counts, faults."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import anyio

from ._faults import Fault
from ._models import DEFAULT_MODEL
from ._responses import (
    REQUEST_ID_KEY,
    Message,
    Receive,
    Scope,
    Send,
    error_body,
    html_error_page,
    loads,
    new_request_id,
    send_response,
)
from ._state import MeshState, RecordedRequest

GENERATIONS_PATH = "/v1/images/generations"
EDITS_PATH = "/v1/images/edits"
# Image-making routes: counted in flight, and faults can name the model they ask for.
IMAGE_PATHS = (GENERATIONS_PATH, EDITS_PATH)
FILES_PREFIX = "/v1/files/"
CONTROL_PREFIX = "/_mesh/"
FAULT_KEY = "mesh.fault"

# Kinds this layer answers by itself; the rest need a route's knowledge (images, streams).
_TRANSPORT_KINDS = frozenset({"status", "malformed_json", "non_json", "huge_body", "reset"})

_RESET_MARKER = "mesh_magic.server injected a connection reset"


class _HideExpectedErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is None:
            return True
        # A deliberate reset, or a request cut off by stop(): neither is an app bug.
        return not (_RESET_MARKER in str(exc) or isinstance(exc, asyncio.CancelledError))


_RESET_FILTER = _HideExpectedErrors()


def quiet_injected_resets() -> None:
    """Keep uvicorn from logging tracebacks for deliberate resets and cut-off requests."""
    logger = logging.getLogger("uvicorn.error")
    if _RESET_FILTER not in logger.filters:
        logger.addFilter(_RESET_FILTER)


def _reset_error() -> Exception:
    # An httpx error, so an in-process client (ASGITransport re-raises app errors)
    # sees the same exception type as one talking to uvicorn over a socket.
    import httpx

    return httpx.RemoteProtocolError(_RESET_MARKER)


def _unwrap(exc: BaseException) -> BaseException:
    # anyio task groups wrap even a single error; callers expect the error itself.
    while len(getattr(exc, "exceptions", ())) == 1:
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    return exc


class MeshMiddleware:
    def __init__(self, app: Any, state: MeshState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = new_request_id()
        scope[REQUEST_ID_KEY] = request_id
        send = _tag_request_id(send, request_id)
        path: str = scope["path"]
        if path.startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return

        body = await _read_body(receive)
        parsed = _parse_json(body)
        record = _recorded(scope, parsed)
        self.state.record(record)
        is_generation = path.rstrip("/") in IMAGE_PATHS
        fault = self.state.faults.take(path, self._model_of(path, parsed), _wants_stream(parsed))
        scope[FAULT_KEY] = fault
        if is_generation:
            self.state.enter()
        try:
            await self._run(scope, body, receive, send, fault, record)
        finally:
            if is_generation:
                self.state.leave()

    def _model_of(self, path: str, parsed: Any) -> str | None:
        if path.rstrip("/") in IMAGE_PATHS:
            model = parsed.get("model") if isinstance(parsed, dict) else None
            return model if isinstance(model, str) else DEFAULT_MODEL
        if path.startswith(FILES_PREFIX):
            item = self.state.images.get(path[len(FILES_PREFIX) :])
            return item[2] if item else None
        return None

    async def _run(
        self,
        scope: Scope,
        body: bytes,
        receive: Receive,
        send: Send,
        fault: Fault | None,
        record: RecordedRequest,
    ) -> None:
        if fault is not None and fault.kind == "reset":
            # Outside the task group below, so the error isn't wrapped in a group.
            await anyio.sleep(fault.delay)
            await _send_reset(send, scope["path"])
            raise _reset_error()
        delivered = False
        disconnected = anyio.Event()
        finished = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def tracking_send(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        async def watch(scope_to_cancel: anyio.CancelScope) -> None:
            # A client that hangs up (timeout, Ctrl-C) cancels the simulated work, as a
            # real server's would be, so in-flight counts drop promptly.
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    disconnected.set()
                    if not finished:
                        scope_to_cancel.cancel()
                    return

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(watch, group.cancel_scope)
                try:
                    await self._answer(scope, replay, tracking_send, fault)
                finally:
                    group.cancel_scope.cancel()
        except BaseException as exc:  # noqa: BLE001 - re-raised unwrapped
            raise _unwrap(exc) from None
        finally:
            record.outcome = "finished" if finished else "disconnected"

    async def _answer(self, scope: Scope, receive: Receive, send: Send, fault: Fault | None) -> None:
        if fault is None:
            await self.app(scope, receive, send)
            return
        if fault.kind != "slow_body":
            await anyio.sleep(fault.delay)
        if fault.kind in _TRANSPORT_KINDS:
            await _send_fault(send, scope, fault)
        elif fault.kind == "slow_body":
            await self.app(scope, receive, _trickle(send, fault.delay))
        else:
            await self.app(scope, receive, send)


def _tag_request_id(send: Send, request_id: str) -> Send:
    async def tagged(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", request_id.encode()))
            message = {**message, "headers": headers}
        await send(message)

    return tagged


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _parse_json(body: bytes) -> Any | None:
    if not body:
        return None
    try:
        return loads(body)
    except ValueError:
        return None


def _wants_stream(parsed: Any) -> bool:
    return isinstance(parsed, dict) and parsed.get("stream") is True


def _recorded(scope: Scope, parsed: Any) -> RecordedRequest:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return RecordedRequest(
        method=scope["method"],
        path=scope["path"],
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        json=parsed,
        time=time.time(),
        request_id=str(scope.get(REQUEST_ID_KEY, "")),
    )


def _trickle(send: Send, duration: float) -> Send:
    """A send that lets headers through at once and dribbles the body over `duration`."""
    pending: list[bytes] = []

    async def trickling(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
            return
        pending.append(message.get("body", b""))
        if message.get("more_body"):
            return
        body = b"".join(pending)
        pieces = max(1, min(20, len(body)))
        step = -(-len(body) // pieces)
        for start in range(0, len(body), step):
            await anyio.sleep(duration / pieces)
            await send({"type": "http.response.body", "body": body[start : start + step], "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return trickling


async def _send_fault(send: Send, scope: Scope, fault: Fault) -> None:
    request_id: str = scope[REQUEST_ID_KEY]
    path: str = scope["path"]
    if fault.kind == "status":
        status = fault.status or 500
        body, content_type = error_body(
            status,
            request_id,
            envelope=fault.envelope,
            code=fault.code,
            message=fault.message,
            retry_after=fault.retry_after if fault.retry_after_in != "header" else None,
        )
        in_header = fault.retry_after is not None and fault.retry_after_in != "body"
        headers = [("retry-after", fault.retry_after)] if fault.retry_after and in_header else []
        await send_response(send, status, body, content_type, headers)
    elif fault.kind == "malformed_json":
        body = b'{"created": 1700000000, "data": [{"b64_json": "iVBORw0KGgoAAAANSUhEUgAA'
        await send_response(send, 200, body, "application/json")
    elif fault.kind == "non_json":
        if fault.envelope == "html" or path.startswith(FILES_PREFIX):
            await send_response(
                send, 200, html_error_page(200).replace(b"200 Error", b"Welcome to nginx!"), "text/html"
            )
        else:
            await send_response(send, 200, b"OK", "text/plain")
    elif fault.kind == "huge_body":
        await _send_huge(send, int(fault.size_mb * 1024 * 1024))


async def _send_huge(send: Send, size: int) -> None:
    # Chunked (no Content-Length), so only counting the bytes as they arrive catches it.
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send(
        {
            "type": "http.response.body",
            "more_body": True,
            "body": b'{"created": 1700000000, "data": [{"b64_json": "',
        }
    )
    chunk = b"A" * 65536
    sent = 0
    while sent < size:
        piece = chunk[: size - sent]
        await send({"type": "http.response.body", "body": piece, "more_body": True})
        sent += len(piece)
    await send({"type": "http.response.body", "body": b'"}]}', "more_body": False})


async def _send_reset(send: Send, path: str) -> None:
    if path.startswith(FILES_PREFIX):
        content_type, part = b"image/png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 504
    else:
        content_type = b"application/json"
        part = b'{"created": 1700000000, "data": [{"b64_json": "' + b"iVBORw0KGgo" * 40
    # Promise more than is sent, so the cut is a protocol error, not a short body.
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), (b"content-length", b"4096")],
        }
    )
    await send({"type": "http.response.body", "body": part, "more_body": True})
