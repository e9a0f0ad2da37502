"""MeshAPI-compatible servers for the tests: the shared one, the sentinel-key one, no network.

Also what the test server offers (models, a tiny size) and filters of the requests it saw.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from mesh_magic.core import config as _config
from mesh_magic.core.engine.loop import engine
from mesh_magic.server import MeshServer, RecordedRequest

from .sentinel import SENTINEL_KEY

GENERATIONS = "/v1/images/generations"

# Models of the test server. Tiny images keep its rendering (CPU, shared with the client)
# out of the timings.
TINY = "64x64"
FAST_MODEL = "google/imagen-4"
OTHER_MODEL = "black-forest-labs/flux-schnell"
SINGLE_IMAGE_MODEL = "openai/dall-e-3"  # max_n 1 on the test server
OPENAI_MODEL = "openai/gpt-image-1"  # streams OpenAI-style events, partials included


def free_port() -> int:
    """A loopback port that was free a moment ago (prefer --port 0 where the program has it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(meshapi_server: MeshServer) -> Iterator[MeshServer]:
    """The session's loopback MeshServer, reset, and the session config pointed at it."""
    meshapi_server.reset()
    meshapi_server.latency = 0.0
    _config.configure(base_url=meshapi_server.base_url, max_retries=3)
    _config.session().set_api_key(meshapi_server.api_key)
    yield meshapi_server
    meshapi_server.reset()
    meshapi_server.latency = 0.0


@pytest.fixture
def sentinel_server() -> Iterator[MeshServer]:
    """A separate server that only accepts SENTINEL_KEY, for key-leak checks."""
    with MeshServer(api_key=SENTINEL_KEY, image_host="localhost") as srv:
        _config.configure(base_url=srv.base_url)
        _config.session().set_api_key(SENTINEL_KEY)
        yield srv


class NoNetwork(httpx.AsyncBaseTransport):
    """Records every request the engine tries to send, and fails it like a dead network."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.attempts.append(f"{request.method} {request.url}")
        raise httpx.ConnectError("no network in this test", request=request)


@pytest.fixture
def no_network() -> Iterator[NoNetwork]:
    """All engine traffic (except the in-process offline backend) goes to a recorder."""
    spy = NoNetwork()
    engine().set_transport(spy)
    yield spy
    engine().set_transport(None)


def generations(server: Any) -> list[RecordedRequest]:
    """The generation requests a MeshServer received, in order."""
    return [r for r in server.requests if r.method == "POST" and r.path == GENERATIONS]


def generation_bodies(server: Any) -> list[dict[str, Any]]:
    """The JSON bodies of the generation requests a MeshServer received."""
    return [r.json for r in generations(server)]


def file_requests(server: Any) -> list[RecordedRequest]:
    """Downloads of url images from the server's /v1/files."""
    return [r for r in server.requests if r.path.startswith("/v1/files/")]
