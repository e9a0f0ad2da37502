"""Streaming through the Python API: a broken stream keeps what arrived, errors raise."""

from __future__ import annotations

import base64
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

import mesh_magic
from mesh_magic.core.errors import ResponseError
from mesh_magic.server import Fault
from tests.support.images import b64, make_png
from tests.support.mock_api import sse, use_mock
from tests.support.servers import FAST_MODEL, OPENAI_MODEL, TINY


def test_broken_stream_keeps_the_partial_and_reports_the_error(server: Any) -> None:
    server.add_fault(Fault(kind="stream_break", model=OPENAI_MODEL))
    result = mesh_magic.generate(
        "A bridge at night", model=OPENAI_MODEL, size=TINY, stream=True, params={"partial_images": 2}
    )
    assert len(result) == 1
    kept = result[0]
    assert kept.partial and kept.model == OPENAI_MODEL and kept.to_pil().size == (64, 64)
    assert len(result.errors) == 1
    assert "stream ended before the image arrived" in str(result.errors[0].error)
    assert not result.ok


def test_stream_error_alone_raises(server: Any) -> None:
    for model in (FAST_MODEL, OPENAI_MODEL):  # MeshAPI {"error"} and OpenAI "error" events
        server.add_fault(Fault(kind="stream_error", model=model, message="No GPUs left."))
        with pytest.raises(mesh_magic.ServerError, match="No GPUs left"):
            mesh_magic.generate("A moth", model=model, size=TINY, stream=True)


def _png(shade: int) -> str:
    return b64(make_png(32, 32, (shade, 40, 90)))


def _sse_then_break(*events: dict[str, Any]) -> Any:
    """A mock transport answering an event stream that breaks after `events`."""
    import json

    import httpx

    async def body() -> Any:
        for event in events:
            yield f"data: {json.dumps(event)}\n\n".encode()
        raise httpx.ReadError("connection reset by peer")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    return httpx.MockTransport(handler)


@pytest.fixture
def remote_api() -> None:
    mesh_magic.configure(base_url="https://api.example.test", max_retries=0)
    mesh_magic.login("rsk_concurrency_test_0000")


def test_completed_images_survive_a_later_break(remote_api: None) -> None:
    from mesh_magic.core.engine.loop import engine

    completed = {"type": "image_generation.completed", "b64_json": _png(10), "created": 1}
    engine().set_transport(_sse_then_break(completed))
    result = mesh_magic.generate("Two kites", model=OPENAI_MODEL, n=2, stream=True)
    assert len(result) == 1 and not result[0].partial and result[0].width == 32
    (failure,) = result.errors
    assert isinstance(failure.error, mesh_magic.APIConnectionError)
    assert "stream broke" in str(failure.error) and "1 of 2 images" in str(failure.error)


def test_final_chunk_then_a_break_before_done_is_a_success(remote_api: None) -> None:
    from mesh_magic.core.engine.loop import engine

    final = {"object": "image.chunk", "status": "completed", "created": 1, "data": [{"b64_json": _png(200)}]}
    engine().set_transport(
        _sse_then_break({"object": "image.chunk", "status": "processing", "data": []}, final)
    )
    result = mesh_magic.generate("A kite", model=FAST_MODEL, stream=True)
    assert len(result) == 1 and result.ok


def test_break_before_anything_keeps_the_last_partial(remote_api: None) -> None:
    from mesh_magic.core.engine.loop import engine

    partials = [
        {"type": "image_generation.partial_image", "b64_json": _png(i * 50), "partial_image_index": i}
        for i in range(2)
    ]
    engine().set_transport(_sse_then_break(*partials))
    result = mesh_magic.generate(
        "A kite at dusk", model=OPENAI_MODEL, stream=True, params={"partial_images": 2}
    )
    (kept,) = result
    assert kept.partial and kept.to_pil().getpixel((0, 0)) == (50, 40, 90)  # the last one
    assert "stream broke" in str(result.errors[0].error)


# --- odd but harmless stream fields; a stream is bounded like a plain body -------------------------


def test_stream_with_odd_partial_index_and_created_still_delivers(tmp_path: Path) -> None:
    image = base64.b64encode(make_png(24, 16, (10, 120, 200))).decode()

    def handler(request: httpx.Request) -> httpx.Response:
        body = sse(
            {"type": "image_generation.partial_image", "b64_json": image, "partial_image_index": "first"},
            {"type": "image_generation.completed", "b64_json": image, "created": "yesterday"},
        )
        return httpx.Response(
            200, content=body, headers={"content-type": "text/event-stream", "x-request-id": "req_odd"}
        )

    use_mock(handler)
    result = mesh_magic.generate("odd stream", stream=True)
    assert len(result) == 1 and not result.errors, result.errors
    assert isinstance(result[0].created, int) and result[0].path is not None


def test_stream_size_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from mesh_magic.core.http import client as _http

    monkeypatch.setattr(_http, "max_body_bytes", lambda n: 256 * 1024)
    filler = {"object": "image.chunk", "status": "processing", "data": [], "pad": "x" * 64 * 1024}
    sent = threading.Event()

    async def endless() -> Any:
        for _ in range(200):  # 12.8 MiB, far over the 256 KiB limit
            yield sse(filler)
        sent.set()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless(), headers={"content-type": "text/event-stream"})

    use_mock(handler)
    with pytest.raises(ResponseError, match="limit"):
        mesh_magic.generate("endless stream", stream=True)
    assert not sent.is_set(), "the whole stream was read"
