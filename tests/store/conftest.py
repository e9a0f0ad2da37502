"""Fixtures for the store tests: the per-test store folder and a transport that must stay unused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import NoNetwork

from mesh_magic.core.engine.loop import engine


@pytest.fixture
def store(clean_environment: Path) -> Path:
    """The test's store folder (MESHIMG_STORE_DIR, set by the suite's autouse fixture)."""
    return clean_environment


@pytest.fixture
def no_network() -> Iterator[NoNetwork]:
    """All engine traffic (except the in-process offline backend) goes to a recorder."""
    spy = NoNetwork()
    engine().set_transport(spy)
    yield spy
    engine().set_transport(None)
