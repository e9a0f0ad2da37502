"""Regression tests for bugs found in review of the core (engine, HTTP client, store, display).

Each test failed before its fix. Over loopback (MeshServer) where the server can
produce the case, otherwise with an httpx.MockTransport or a unit call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import mesh_magic
from mesh_magic.core import config as _config
from mesh_magic.core.config import resolve
from mesh_magic.core.engine.loop import Engine, engine
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.core.engine.runner import run_requests
from mesh_magic.core.errors import InvalidOptionError, ResponseError
from mesh_magic.core.http.client import Generation
from mesh_magic.core.parsing import classify_event
from mesh_magic.core.request import build_requests
from mesh_magic.core.results import ImageResult, ItemError
from mesh_magic.render.grid import result_html
from mesh_magic.server import Fault
from tests.support.images import make_png
from tests.support.mock_api import API_BASE, MOCK_KEY, sse, use_mock
from tests.support.servers import generations

URL_MODEL = "google/imagen-4"  # url items, served from /v1/files on the loopback server
SINGLE_MODEL = "openai/dall-e-3"  # max_n = 1: n > 1 is fanned out into single requests


# --- cache: only a complete answer may answer an identical request later ------------------

def test_cache_does_not_serve_a_generation_that_partly_failed(server: Any) -> None:
    """n=2 where image 2 fails: a re-run with cache='on' must ask again, not show 1 of 2."""
    server.add_fault(Fault("not_image", path="/v1/files", times=1))
    first = mesh_magic.generate("a lighthouse", model=URL_MODEL, n=2, size="64x64",
                                response_format="url", cache="on")
    assert len(first) == 1 and len(first.errors) == 1
    again = mesh_magic.generate("a lighthouse", model=URL_MODEL, n=2, size="64x64",
                                response_format="url", cache="on")
    assert len(generations(server)) == 2, "an incomplete answer was served from the cache"
    assert len(again) == 2 and not again.errors and not any(im.cached for im in again)
    # The complete answer is what the cache keeps now.
    third = mesh_magic.generate("a lighthouse", model=URL_MODEL, n=2, size="64x64",
                                response_format="url", cache="on")
    assert len(generations(server)) == 2 and all(im.cached for im in third)
    # Every paid image, the failed call's one included, is still in the store.
    assert len(mesh_magic.history(None)) == 3


# --- fan-out of single-image models keeps the usage --------------------------------------

def test_fan_out_keeps_usage(server: Any) -> None:
    result = mesh_magic.generate("two foxes", model=SINGLE_MODEL, n=2, size="64x64")
    assert len(result) == 2
    assert result.usage.get("images") == 2, result.usage


# --- display ------------------------------------------------------------------------------

def test_error_tile_is_visible_when_display_max_px_is_0() -> None:
    """display_max_px=0 means 'full resolution'; the error tile must not collapse to 0 px."""
    error = ItemError("p", "m/x", ResponseError("boom"), row=0)
    html = result_html(ImageResult([], [error], rows=[("p", "m/x")], display_max_px=0))
    assert "width:0px" not in html and "boom" in html


# --- the engine never leaves work running behind the caller's back -----------------------

def test_run_cancels_the_work_when_tick_raises() -> None:
    """A failing display update (tick) must not leave requests running on the loop."""
    eng = Engine()
    state: dict[str, Any] = {}

    async def work() -> None:
        try:
            await asyncio.sleep(5)
            state["finished"] = True
        except asyncio.CancelledError:
            state["cancelled"] = True
            raise

    def tick() -> None:
        raise RuntimeError("display broke")

    with pytest.raises(RuntimeError, match="display broke"):
        eng.run(work(), tick=tick)
    deadline = time.monotonic() + 2
    while "cancelled" not in state and time.monotonic() < deadline:
        time.sleep(0.02)
    assert state == {"cancelled": True}


class _FakeClient:
    """Stands in for MeshClient: one request blows up with a bug, the others take long."""

    def __init__(self) -> None:
        self.cancelled = 0
        self.finished = 0

    async def generate(self, request: Any, on_event: Any = None) -> Generation:
        if request.row == 0:
            await asyncio.sleep(0.05)
            raise RuntimeError("an unexpected bug")
        try:
            await asyncio.sleep(3)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return Generation()


def test_an_unexpected_error_cancels_the_sibling_requests() -> None:
    settings = resolve({"base_url": API_BASE, "api_key": MOCK_KEY, "concurrency": 4},
                       environ={})
    requests = build_requests(["a", "b", "c"], settings)
    fake = _FakeClient()
    collector = CallProgress(requests)

    async def scenario() -> None:
        with pytest.raises(RuntimeError, match="unexpected bug"):
            await run_requests(requests, settings, collector, client=fake)  # type: ignore[arg-type]
        await asyncio.sleep(0)  # let cancellations land

    started = time.monotonic()
    engine().run(scenario())
    assert time.monotonic() - started < 2, "siblings were awaited to the end"
    assert fake.cancelled == 2 and fake.finished == 0
    assert [item.status for item in collector.items][1:] == ["cancelled", "cancelled"]


# --- odd but harmless stream fields are not crashes ----------------------------------------

def test_stream_with_odd_partial_index_and_created_still_delivers(tmp_path: Path) -> None:
    image = base64.b64encode(make_png(24, 16, (10, 120, 200))).decode()

    def handler(request: httpx.Request) -> httpx.Response:
        body = sse(
            {"type": "image_generation.partial_image", "b64_json": image,
             "partial_image_index": "first"},
            {"type": "image_generation.completed", "b64_json": image, "created": "yesterday"},
        )
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream",
                                                          "x-request-id": "req_odd"})

    use_mock(handler)
    result = mesh_magic.generate("odd stream", stream=True)
    assert len(result) == 1 and not result.errors, result.errors
    assert isinstance(result[0].created, int) and result[0].path is not None


def test_classify_event_tolerates_a_non_numeric_partial_index() -> None:
    event = classify_event("", json.dumps({"type": "image_generation.partial_image",
                                           "b64_json": "AAAA", "partial_image_index": "x"}))
    assert event.kind == "partial" and event.index == 0


# --- a stream is bounded like a plain body ---------------------------------------------------

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


def test_invalid_option_error_is_still_a_value_error() -> None:
    # Sanity: the fixes above keep option errors before any request.
    with pytest.raises(InvalidOptionError):
        mesh_magic.generate("", base_url=API_BASE)


def test_stream_error_code_never_carries_the_key() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = sse({"error": {"code": f"echo:{MOCK_KEY}", "message": "upstream said no"}})
        return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})

    use_mock(handler)
    with pytest.raises(mesh_magic.MeshImageError) as caught:
        mesh_magic.generate("echo", stream=True)
    err = caught.value
    shown = f"{err} {err.code} {err.message} {err._render_traceback_()}"
    assert MOCK_KEY not in shown and "upstream said no" in shown


@pytest.mark.parametrize(("retries", "phrase"), [(0, "not retried"), (1, "retried already")])
def test_gateway_hint_says_whether_it_was_retried(server: Any, retries: int, phrase: str) -> None:
    server.add_fault(Fault(kind="status", status=503, times=-1))
    _config.configure(max_retries=retries)
    with pytest.raises(mesh_magic.ServerError) as caught:
        mesh_magic.generate("a gate", size="128x128")
    assert phrase in caught.value.hint
    assert len(generations(server)) == retries + 1
