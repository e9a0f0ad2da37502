"""The engine: its loop thread, `run` with ticks and interrupts, `submit`, and the shared clients."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import httpx
import pytest

from mesh_magic.core.engine import loop as _loop
from mesh_magic.core.engine.loop import Engine, engine
from mesh_magic.core.http.client import MeshClient
from mesh_magic.core.settings import Settings
from tests.support.mock_api import API_BASE
from tests.support.waiting import wait_until


def shut_down(created: Engine) -> None:
    """Stop a private engine's loop thread and close its loop."""
    loop, thread = created._loop, created._thread
    if loop is None or thread is None:
        return
    if thread.is_alive():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(1)
    if not loop.is_running():
        loop.close()


@pytest.fixture
def eng() -> Iterator[Engine]:
    """A private Engine (not the session's), shut down afterwards."""
    created = Engine()
    yield created
    shut_down(created)


def settle(eng: Engine) -> None:
    """Wait until the engine loop has run everything scheduled so far."""
    for _ in range(3):
        eng.submit(asyncio.sleep(0)).result(1)


# -- the loop thread -------------------------------------------------------------------------


def test_the_loop_runs_on_a_daemon_thread(eng: Engine) -> None:
    async def where() -> tuple[str, bool, bool]:
        thread = threading.current_thread()
        return thread.name, thread.daemon, eng.on_loop_thread

    assert eng.run(where()) == ("mesh-magic-engine", True, True)
    assert not eng.on_loop_thread
    assert eng.loop is eng.loop
    assert eng.loop.is_running()


def test_submit_does_not_wait(eng: Engine) -> None:
    gate = threading.Event()

    async def blocked() -> str:
        await asyncio.get_running_loop().run_in_executor(None, gate.wait)
        return "done"

    future = eng.submit(blocked())
    assert not future.done()
    gate.set()
    assert future.result(1) == "done"


def test_run_returns_the_result_and_raises_the_error(eng: Engine) -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    async def broken() -> None:
        raise ValueError("from the loop")

    assert eng.run(answer()) == 42
    with pytest.raises(ValueError, match="from the loop"):
        eng.run(broken())


def test_a_stopped_loop_is_replaced(eng: Engine) -> None:
    first = eng.loop
    client = eng.http_client("network")
    first.call_soon_threadsafe(first.stop)
    assert wait_until(lambda: not first.is_running())
    assert wait_until(lambda: eng._thread is not None and not eng._thread.is_alive())
    first.close()
    second = eng.loop
    assert second is not first and second.is_running()
    assert eng.http_client("network") is not client  # clients belong to their loop
    assert eng.run(asyncio.sleep(0, "again")) == "again"


def test_run_from_the_loop_thread_is_refused(eng: Engine) -> None:
    async def inner() -> str:
        return "never"

    captured: list[Coroutine[Any, Any, str]] = []

    async def outer() -> str:
        coro = inner()
        captured.append(coro)
        try:
            eng.run(coro)
        except RuntimeError as exc:
            return str(exc)
        return "not refused"

    message = eng.submit(outer()).result(1)
    assert message == "Engine.run called from the engine loop; await the coroutine instead"
    assert inspect.getcoroutinestate(captured[0]) == inspect.CORO_CLOSED  # no "never awaited"


# -- ticks and interrupts --------------------------------------------------------------------


def test_tick_runs_on_the_calling_thread_while_waiting(eng: Engine) -> None:
    threads: list[threading.Thread] = []
    done = asyncio.Event()

    def tick() -> None:
        threads.append(threading.current_thread())
        if len(threads) == 2:
            eng.loop.call_soon_threadsafe(done.set)

    async def slow() -> str:
        await done.wait()
        return "finished"

    assert eng.run(slow(), tick=tick) == "finished"
    assert len(threads) == 2
    assert all(t is threading.current_thread() for t in threads)


def test_no_tick_for_a_quick_call(eng: Engine) -> None:
    ticks: list[int] = []
    assert eng.run(asyncio.sleep(0, "quick"), tick=lambda: ticks.append(1)) == "quick"
    assert ticks == []


def interruptible() -> tuple[Callable[[], Coroutine[Any, Any, str]], list[str]]:
    """A coroutine factory that waits forever and records how it ended."""
    events: list[str] = []

    async def forever() -> str:
        events.append("started")
        try:
            # Never set: only a cancel ends it (the timeout is a guard against a hang).
            await asyncio.wait_for(asyncio.Event().wait(), 5)
        except asyncio.CancelledError:
            events.append("cancelled")
            raise
        return "finished"

    return forever, events


def interrupt() -> None:
    raise KeyboardInterrupt


def test_an_interrupt_cancels_and_returns_what_on_interrupt_builds(eng: Engine) -> None:
    forever, events = interruptible()
    result = eng.run(forever(), tick=interrupt, on_interrupt=lambda: " then ".join(events))
    assert result == "started then cancelled"  # the requests stopped before the result was built


def test_an_interrupt_without_on_interrupt_raises(eng: Engine) -> None:
    forever, events = interruptible()
    with pytest.raises(KeyboardInterrupt):
        eng.run(forever(), tick=interrupt)
    assert events == ["started", "cancelled"]
    assert eng.run(asyncio.sleep(0, "still usable")) == "still usable"


def test_an_interrupt_as_the_call_finishes_keeps_the_whole_answer(eng: Engine) -> None:
    release = asyncio.Event()
    finished = threading.Event()

    async def work() -> str:
        await release.wait()
        finished.set()
        return "whole answer"

    def tick() -> None:
        eng.loop.call_soon_threadsafe(release.set)
        assert finished.wait(1)
        settle(eng)  # the call's future is resolved by now
        raise KeyboardInterrupt

    assert eng.run(work(), tick=tick, on_interrupt=lambda: "partial") == "whole answer"


def test_a_failing_tick_cancels_the_call(eng: Engine) -> None:
    forever, events = interruptible()

    def broken_tick() -> None:
        raise RuntimeError("display broke")

    with pytest.raises(RuntimeError, match="display broke"):
        eng.run(forever(), tick=broken_tick, on_interrupt=lambda: "unused")
    assert wait_until(lambda: events == ["started", "cancelled"])


# -- transports and clients ------------------------------------------------------------------


def recording_transport(seen: list[str], tag: str) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{tag} {request.url.path}")
        return httpx.Response(200, json={"tag": tag})

    return httpx.MockTransport(handler)


def test_one_client_per_kind(eng: Engine) -> None:
    network = eng.http_client("network")
    offline = eng.http_client("offline")
    assert eng.http_client("network") is network
    assert eng.http_client("offline") is offline
    assert network is not offline
    assert network.trust_env and not offline.trust_env


def test_clients_for_settings(eng: Engine, settings: Callable[..., Settings]) -> None:
    remote = eng.client(settings())
    offline = eng.client(settings(base_url="offline", api_key=None))
    assert isinstance(remote, MeshClient) and isinstance(offline, MeshClient)
    assert remote.http is eng.http_client("network")
    assert offline.http is eng.http_client("offline")
    assert remote.root == f"{API_BASE}/v1"
    seen: list[object] = []
    with_retry = eng.client(settings(), on_retry=seen.append)
    assert with_retry._on_retry == seen.append


def test_set_transport_rebuilds_and_closes_the_clients(eng: Engine) -> None:
    seen: list[str] = []
    eng.set_transport(recording_transport(seen, "first"))

    async def get() -> str:
        response = await eng.http_client("network").get(f"{API_BASE}/v1/models")
        return str(response.json()["tag"])

    assert eng.run(get()) == "first"
    old = eng.http_client("network")
    eng.set_transport(recording_transport(seen, "second"))
    assert wait_until(lambda: old.is_closed)
    assert eng.http_client("network") is not old
    assert eng.run(get()) == "second"
    assert seen == ["first /v1/models", "second /v1/models"]


def test_set_transport_none_goes_back_to_the_default(eng: Engine) -> None:
    seen: list[str] = []
    eng.set_transport(recording_transport(seen, "mock"))
    mocked = eng.http_client("network")
    eng.set_transport(None)
    fresh = eng.http_client("network")
    assert fresh is not mocked
    assert not isinstance(fresh._transport, httpx.MockTransport)


def test_a_transport_given_at_construction_is_used() -> None:
    seen: list[str] = []
    built = Engine(transport=recording_transport(seen, "given"))
    try:

        async def get() -> int:
            response = await built.http_client("network").get(f"{API_BASE}/x")
            return response.status_code

        assert built.run(get()) == 200
        assert seen == ["given /x"]
    finally:
        shut_down(built)


def test_the_session_engine_is_one_object() -> None:
    assert engine() is engine()
    assert _loop._engine is engine()
