"""The IPython shell the tests drive: one factory, one fixture, one clean-up."""

from __future__ import annotations

import atexit
from collections.abc import Iterator
from typing import Any

import pytest


class TestingShell:
    """Factory of a real IPython shell whose run_cell re-raises errors (as in jupysql)."""

    __test__ = False  # a helper, not a test class

    @staticmethod
    def create() -> Any:
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config

        class _Shell(InteractiveShell):
            def run_cell(self, *args: Any, **kwargs: Any) -> Any:
                result = super().run_cell(*args, **kwargs)
                result.raise_error()
                return result

        config = Config()
        config.HistoryManager.enabled = False
        InteractiveShell.clear_instance()
        return _Shell.instance(config=config)


def release(ip: Any) -> None:
    """Drop everything a test's shell holds, so nothing piles up until interpreter exit.

    Each InteractiveShell registers an atexit hook that resets it (with a gc.collect); with
    one shell per test that adds tens of seconds to the end of the run and keeps every
    generated image alive until then (in user_ns, the output history and the displayhook).
    """
    from IPython.core.interactiveshell import InteractiveShell

    atexit.unregister(ip.atexit_operations)
    ip.user_ns.clear()
    ip.history_manager.output_hist.clear()
    ip.displayhook._, ip.displayhook.__, ip.displayhook.___ = "", "", ""
    InteractiveShell.clear_instance()


@pytest.fixture
def shell() -> Iterator[Any]:
    """A real IPython shell with the extension loaded; errors re-raise from run_cell."""
    ip = TestingShell.create()
    ip.run_line_magic("load_ext", "mesh_magic")
    yield ip
    release(ip)


@pytest.fixture
def offline_shell(shell: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The shell, with the session's base URL from the environment set to the offline backend."""
    monkeypatch.setenv("MESHAPI_BASE_URL", "offline")
    return shell


def run(ip: Any, source: str) -> Any:
    """Run a cell and return its value (the shell re-raises errors)."""
    return ip.run_cell(source).result
