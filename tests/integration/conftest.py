"""Fixtures for the loopback integration tests: captured display output, a leak-free shell."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from typing import Any

import pytest
from integration_helpers import Published


@pytest.fixture
def shell(shell: Any) -> Iterator[Any]:
    """The suite's shell, released after the test.

    Each InteractiveShell registers an atexit hook that resets it (with a gc.collect)
    at interpreter exit; with one shell per test that adds tens of seconds to the
    end of the run and keeps every generated image alive until then.
    """
    yield shell
    atexit.unregister(shell.atexit_operations)
    shell.user_ns.clear()
    shell.history_manager.output_hist.clear()
    shell.displayhook._, shell.displayhook.__, shell.displayhook.___ = "", "", ""


@pytest.fixture
def published(shell: Any, monkeypatch: pytest.MonkeyPatch) -> Published:
    """Capture what the shell publishes for display instead of printing it."""
    captured = Published()

    def publish(data: dict[str, Any], metadata: dict[str, Any] | None = None, **_: Any) -> None:
        captured.append((data, metadata or {}))

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    return captured
