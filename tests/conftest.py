"""Suite-wide fixtures: a clean environment and session for every test, and the servers."""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh_magic.core import config as _config
from mesh_magic.core.engine.loop import engine

# A key-shaped sentinel: tests search every byte they produce for it.
SENTINEL_KEY = "rsk_SENTINEL_do_not_leak_7f3a9c2e51b8"
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"

_ENV_PREFIXES = ("MESHAPI_", "MESH_API_", "MESHIMG_")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No key, base URL or store leaks in from the machine or from another test."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    store = tmp_path / "store"
    monkeypatch.setenv("MESHIMG_STORE_DIR", str(store))
    _config.session().reset()
    engine().set_transport(None)
    yield store
    _config.session().reset()
    engine().set_transport(None)


@pytest.fixture
def server(meshapi_server):  # type: ignore[no-untyped-def]
    """The session's loopback MeshServer, reset, and the session config pointed at it."""
    meshapi_server.reset()
    meshapi_server.latency = 0.0
    _config.configure(base_url=meshapi_server.base_url, max_retries=3)
    _config.session().set_api_key(meshapi_server.api_key)
    yield meshapi_server
    meshapi_server.reset()
    meshapi_server.latency = 0.0


@pytest.fixture
def sentinel_server() -> Iterator[object]:
    """A separate server that only accepts SENTINEL_KEY, for key-leak checks."""
    from mesh_magic.server import MeshServer

    with MeshServer(api_key=SENTINEL_KEY, image_host="localhost") as srv:
        _config.configure(base_url=srv.base_url)
        _config.session().set_api_key(SENTINEL_KEY)
        yield srv


class TestingShell:
    """Factory of a real IPython shell whose run_cell re-raises errors (as in jupysql)."""

    @staticmethod
    def create():  # type: ignore[no-untyped-def]
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        class _Shell(InteractiveShell):
            def run_cell(self, *args, **kwargs):  # type: ignore[no-untyped-def]
                result = super().run_cell(*args, **kwargs)
                result.raise_error()
                return result

        config = Config()
        config.HistoryManager.enabled = False
        InteractiveShell.clear_instance()
        return _Shell.instance(config=config)


@pytest.fixture
def shell():  # type: ignore[no-untyped-def]
    """A real IPython shell with the extension loaded; errors re-raise from run_cell."""
    from IPython.core.interactiveshell import InteractiveShell

    ip = TestingShell.create()
    ip.run_line_magic("load_ext", "mesh_magic")
    yield ip
    # Each shell registers an atexit reset + gc; with one shell per test that piles up at exit.
    atexit.unregister(ip.atexit_operations)
    ip.user_ns.clear()
    InteractiveShell.clear_instance()
