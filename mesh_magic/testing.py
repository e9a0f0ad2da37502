"""A pytest plugin for people who test their own notebooks and code against MeshAPI.

Installed with the package (entry point `pytest11`), it offers:

* `meshapi_server`: a MeshAPI-compatible server on loopback for the test session
  (faults, latency, request log: see `mesh_magic.server.MeshServer`);
* `meshapi_env`: points `MESHAPI_BASE_URL` / `MESHAPI_API_KEY` at it for one test, so
  notebooks run through nbclient or nbval contain only what a user would write.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import MeshServer

TEST_KEY = "rsk_test_0123456789abcdef"


@pytest.fixture(scope="session")
def meshapi_server() -> Iterator[MeshServer]:
    """A loopback MeshAPI-compatible server for the whole test session."""
    from .server import MeshServer

    with MeshServer(api_key=TEST_KEY, image_host="localhost") as server:
        yield server


@pytest.fixture
def meshapi_env(meshapi_server: MeshServer, monkeypatch: pytest.MonkeyPatch) -> MeshServer:
    """The session server, reset, with MESHAPI_BASE_URL and MESHAPI_API_KEY pointing at it."""
    meshapi_server.reset()
    monkeypatch.setenv("MESHAPI_BASE_URL", meshapi_server.base_url)
    monkeypatch.setenv("MESHAPI_API_KEY", meshapi_server.api_key or "")
    return meshapi_server
