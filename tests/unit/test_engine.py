"""The engine: its loop never leaves work running behind the caller's back."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from mesh_magic.core.config import resolve
from mesh_magic.core.engine.loop import Engine, engine
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.core.engine.runner import run_requests
from mesh_magic.core.errors import ResponseError
from mesh_magic.core.http.client import Generation
from mesh_magic.core.request import build_requests
from tests.support.mock_api import API_BASE, MOCK_KEY


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
    """Stands in for MeshClient: one request blows up with a bug, the others take a while."""

    def __init__(self) -> None:
        self.cancelled = 0
        self.finished = 0

    async def generate(self, request: Any, on_event: Any = None, on_retry: Any = None) -> Generation:
        if request.row == 0:
            await asyncio.sleep(0.01)
            raise RuntimeError("an unexpected bug")
        try:
            await asyncio.sleep(0.3)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return Generation()


def test_an_unexpected_error_fails_its_item_and_the_siblings_finish() -> None:
    """The engine's rule: a bug in one item is that item's MeshImageError; the slower requests
    (billed once sent) are neither cancelled nor lost."""
    settings = resolve({"base_url": API_BASE, "api_key": MOCK_KEY, "concurrency": 4}, environ={})
    requests = build_requests(["a", "b", "c"], settings)
    fake = _FakeClient()
    collector = CallProgress(requests)

    result = engine().run(run_requests(requests, settings, collector, client=fake))  # type: ignore[arg-type]
    assert fake.cancelled == 0 and fake.finished == 2
    assert [item.status for item in collector.items] == ["failed", "done", "done"]
    (failure,) = result.errors
    assert isinstance(failure.error, ResponseError) and failure.row == 0
    assert "RuntimeError: an unexpected bug" in str(failure.error)
    assert failure.error.__cause__ is None and failure.error.__context__ is None
