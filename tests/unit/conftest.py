"""Fixtures for the socket-free unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mesh_magic.core.config import resolve
from mesh_magic.core.settings import Settings
from tests.support.images import make_image
from tests.support.mock_api import API_BASE, MOCK_KEY


@pytest.fixture
def png() -> bytes:
    return make_image()


@pytest.fixture
def settings() -> Callable[..., Settings]:
    """Build Settings for a remote API with a key (overrides as keyword arguments)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"base_url": API_BASE, "api_key": MOCK_KEY, "max_retries": 3}
        values.update(overrides)
        return resolve(values)

    return build
