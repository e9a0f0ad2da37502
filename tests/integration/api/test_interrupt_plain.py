"""Ctrl-C in plain Python (no kernel): the sync facade returns what arrived, marked interrupted."""

from __future__ import annotations

import _thread
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import mesh_magic
from mesh_magic.core.engine.progress import CallProgress
from mesh_magic.server import Fault
from tests.support.servers import FAST_MODEL, OPENAI_MODEL, OTHER_MODEL, TINY


@pytest.fixture(autouse=True)
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in a terminal or a kernel.

    A process started in the background by a non-interactive shell inherits SIGINT ignored,
    and then `_thread.interrupt_main` does nothing: these tests would wait out the server.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_when(condition: Callable[[], bool], timeout: float = 40) -> threading.Thread:
    """Ctrl-C the main thread once `condition` holds (never if it doesn't)."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                _thread.interrupt_main()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _generate_until_interrupted(prompt: str, watcher: threading.Thread, **options: Any) -> Any:
    try:
        started = time.perf_counter()
        result = mesh_magic.generate(prompt, **options)
        elapsed = time.perf_counter() - started
        watcher.join()
    except KeyboardInterrupt:  # pragma: no cover - the failure this test exists to catch
        pytest.fail("KeyboardInterrupt escaped generate()")
    return result, elapsed


def test_ctrl_c_keeps_arrived_images_and_stops_the_rest(server: Any, clean_environment: Path) -> None:
    server.add_fault(Fault(kind="latency", delay=90, model=OTHER_MODEL, times=-1))
    # The fast model's image is in the store (written before it is shown); the slow one hangs.
    watcher = _interrupt_when(
        lambda: server.in_flight == 1 and len(list(clean_environment.glob("images/*/*.png"))) == 1
    )
    result, elapsed = _generate_until_interrupted(
        "A fox and a hound", watcher, model=f"{FAST_MODEL},{OTHER_MODEL}", size=TINY, timeout=120
    )
    print(f"\ngenerate() returned {elapsed:.2f} s after it started (slow model: 90 s)")
    assert result.interrupted and elapsed < 10
    assert [im.model for im in result] == [FAST_MODEL]
    assert not result.errors
    deadline = time.monotonic() + 1
    while server.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.in_flight == 0


def test_ctrl_c_during_a_stream_keeps_its_latest_partial(
    server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 2 partials, at about 3 s and 6 s, then the image at 9 s: room for a loaded machine.
    server.latency = 9.0
    partial_seen = threading.Event()
    original = CallProgress._changed

    def changed(self: CallProgress) -> None:
        if any(item.partial for item in self.items):
            partial_seen.set()
        original(self)

    monkeypatch.setattr(CallProgress, "_changed", changed)
    watcher = _interrupt_when(partial_seen.is_set)
    result, elapsed = _generate_until_interrupted(
        "A moth at a lamp", watcher, model=OPENAI_MODEL, size=TINY, stream=True, params={"partial_images": 2}
    )
    print(f"\nstream interrupted after {elapsed:.2f} s")
    assert result.interrupted and elapsed < 8
    (kept,) = result
    assert kept.partial and kept.to_pil().size == (64, 64)
