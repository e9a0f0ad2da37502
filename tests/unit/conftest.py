"""Fixtures for the socket-free unit tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from unit_helpers import API_BASE, UNIT_KEY, make_image

from mesh_magic.core.config import resolve
from mesh_magic.core.settings import Settings


@pytest.fixture
def png() -> bytes:
    return make_image()


@pytest.fixture
def settings() -> Callable[..., Settings]:
    """Build Settings for a remote API with a key (overrides as keyword arguments)."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"base_url": API_BASE, "api_key": UNIT_KEY, "max_retries": 3}
        values.update(overrides)
        return resolve(values)

    return build
