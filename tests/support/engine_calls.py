"""Runs requests on the engine against a MockTransport API that records what it was sent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

from mesh_magic.core.engine.loop import engine
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.core.engine.runner import run_requests
from mesh_magic.core.request import ImageRequest
from mesh_magic.core.results import ImageResult
from mesh_magic.core.settings import Settings
from tests.support.images import make_image
from tests.support.mock_api import generation_body, json_response

Handler = Callable[[dict[str, Any]], Any]


class Api:
    """A MockTransport API: records each generation body and how many ran at once."""

    def __init__(self, handler: Handler | None = None, delay: float = 0.0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.active = 0
        self.peak = 0
        self.handler = handler or (lambda body: json_response(generation_body(*[make_image()] * body["n"])))
        self.delay = delay

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.bodies.append(body)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            outcome = self.handler(body)
            return await outcome if asyncio.iscoroutine(outcome) else outcome
        finally:
            self.active -= 1

    def install(self) -> Api:
        engine().set_transport(httpx.MockTransport(self))
        return self


def call(
    requests: list[ImageRequest], settings: Settings, **kwargs: Any
) -> tuple[ImageResult, CallProgress, list[tuple[int, str, str]]]:
    """Run the requests on the engine loop; also returns each row's (row, status, message) at every change."""
    changes: list[tuple[int, str, str]] = []

    def changed(progress: CallProgress) -> None:
        changes.extend((row, item.status, item.message) for row, item in enumerate(progress.items))

    progress = CallProgress(requests, on_change=changed)
    result = engine().run(run_requests(requests, settings, progress, **kwargs))
    return result, progress, changes


def prompts(*texts: str, model: str = "m/a", n: int = 1, **params: Any) -> list[ImageRequest]:
    return [ImageRequest(t, model, n=n, params=params, row=i) for i, t in enumerate(texts)]


def error(status: int, message: str = "failed", **extra: Any) -> httpx.Response:
    headers = {"retry-after": str(extra.pop("retry_after"))} if "retry_after" in extra else {}
    return json_response({"error": {"code": f"c{status}", "message": message, **extra}}, status, headers)
