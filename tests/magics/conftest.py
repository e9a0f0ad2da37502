"""Fixtures for the magic-layer tests."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def shell(shell: Any) -> Iterator[Any]:
    """The suite's shell, with its atexit reset unregistered after the test (see integration)."""
    yield shell
    atexit.unregister(shell.atexit_operations)
    shell.user_ns.clear()
