"""Fixtures for the panel tests: the session pointed at the server, panels that get closed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh_magic.core import config as _config
from mesh_magic.server import MeshServer


@pytest.fixture(autouse=True)
def session(server: MeshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the core at `server` through the environment only, as a user's shell would."""
    _config.session().reset()  # forget what the `server` fixture configured in the session
    monkeypatch.setenv("MESHAPI_BASE_URL", server.base_url)
    monkeypatch.setenv("MESHAPI_API_KEY", server.api_key or "")
    monkeypatch.delenv("MESH_API_KEY", raising=False)
    monkeypatch.setenv("MESHIMG_STORE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("MESHIMG_CACHE", raising=False)
    # The panel saves to ./mesh_images by default: keep that inside the test's folder.
    monkeypatch.chdir(tmp_path)
    yield
    _config.session().reset()


@pytest.fixture
def make_panel() -> Iterator[Callable[..., Any]]:
    """Build panels and close them (cancelling anything in flight) after the test."""
    from mesh_magic.widget_panel import panel

    made: list[Any] = []

    def build(**defaults: Any) -> Any:
        made.append(panel(**defaults))
        return made[-1]

    yield build
    for item in made:
        item.close()


def _wait_for(predicate: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def wait_for() -> Callable[..., Any]:
    """`wait_for(predicate, timeout, what)`: poll until truthy, fail the test on timeout."""
    return _wait_for
