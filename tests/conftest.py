"""Suite-wide fixtures: a clean environment and session for every test; the shared ones.

The shell, the servers and captured display output are defined once, in tests/support,
and registered here for every folder.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh_magic.core import config as _config
from mesh_magic.core.catalog import catalog
from mesh_magic.core.cost import ledger
from mesh_magic.core.engine.loop import engine

pytest_plugins = [
    "tests.support.outside_repo",
    "tests.support.shell",
    "tests.support.servers",
    "tests.support.published",
    "tests.support.key_places",
]

_ENV_PREFIXES = ("MESHAPI_", "MESH_API_", "MESHIMG_", "COLAB_", "MESH_TEST_COLAB_")
# keyring's "no usable backend": a test that wants a keyring selects one (file_keyring).
NO_KEYRING = "keyring.backends.fail.Keyring"


def _isolate_key_places(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Per-user config and data folders and the keyring of this test only (kernels inherit them)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", NO_KEYRING)
    if "keyring" in sys.modules:  # keyring keeps the backend it chose first: choose again
        from keyring.backends import fail

        sys.modules["keyring"].set_keyring(fail.Keyring())


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """No key, base URL, store or model list leaks in from the machine or from another test."""
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    store = tmp_path / "store"
    monkeypatch.setenv("MESHIMG_STORE_DIR", str(store))
    _isolate_key_places(monkeypatch, tmp_path)
    _config.session().reset()
    catalog().clear()  # cached per base URL: the shared server's URL is the same in every test
    ledger().clear()  # the session's spend: each test is a new session
    engine().set_transport(None)
    yield store
    _config.session().reset()
    catalog().clear()
    ledger().clear()
    engine().set_transport(None)


@pytest.fixture
def store(clean_environment: Path) -> Path:
    """The test's store folder (MESHIMG_STORE_DIR, set by the autouse fixture above)."""
    return clean_environment
