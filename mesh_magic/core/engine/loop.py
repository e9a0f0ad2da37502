"""The engine's event loop on a daemon thread, its sync facade, and the shared HTTP clients.

A Jupyter kernel already runs an event loop on its main thread, so the engine
keeps its own loop on a daemon thread; `Engine.run` waits on it in a way Ctrl-C
can interrupt, cancels what is in flight and keeps what already arrived. The
magic, the panel and the Python API all go through one `Engine`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx

from ..constants import CANCEL_GRACE
from ..http.client import MeshClient
from ..http.factory import ClientKind, build_http_client
from ..settings import Settings

T = TypeVar("T")


class Engine:
    """Owns the background loop thread and one `httpx.AsyncClient` per client kind."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._clients: dict[ClientKind, httpx.AsyncClient] = {}
        self._lock = threading.Lock()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._thread is None or not self._thread.is_alive():
                ready = threading.Event()
                loop = asyncio.new_event_loop()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                self._thread = threading.Thread(target=serve, name="mesh-magic-engine", daemon=True)
                self._thread.start()
                ready.wait()
                self._loop = loop
                self._clients = {}
            return self._loop

    @property
    def on_loop_thread(self) -> bool:
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule `coro` on the engine loop without waiting (the panel's way in)."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        on_interrupt: Callable[[], T] | None = None,
        tick: Callable[[], None] | None = None,
    ) -> T:
        """Run `coro` to completion from sync code; Ctrl-C cancels it.

        With `on_interrupt`, an interrupt returns what that callback builds (the
        images that arrived) instead of raising KeyboardInterrupt. `tick` runs on
        the calling thread about ten times a second: display updates belong
        there, because a kernel routes output by the thread that sends it.
        """
        if self.on_loop_thread:
            coro.close()
            raise RuntimeError("Engine.run called from the engine loop; await the coroutine instead")
        settled = threading.Event()

        async def tracked() -> T:
            try:
                return await coro
            finally:
                settled.set()

        future = self.submit(tracked())
        try:
            return self._wait(future, tick)
        except KeyboardInterrupt:
            # Cancelling the concurrent future cancels the task on the loop; the future
            # reads as done at once, so wait on the task itself: its requests close their
            # connections (the server stops working) before we report what arrived.
            if not future.cancel():
                # It finished as the interrupt came: the whole answer beats a partial one.
                return future.result(timeout=CANCEL_GRACE)
            settled.wait(CANCEL_GRACE)
            if on_interrupt is None:
                raise
            return on_interrupt()
        except BaseException:
            future.cancel()  # e.g. `tick` failed: don't leave the requests running unseen
            raise

    @staticmethod
    def _wait(future: concurrent.futures.Future[T], tick: Callable[[], None] | None) -> T:
        while True:
            try:
                # A short wait keeps the main thread responsive to SIGINT on every platform.
                return future.result(timeout=0.1)
            except concurrent.futures.TimeoutError:
                if tick is not None:
                    tick()

    def set_transport(self, transport: httpx.AsyncBaseTransport | None) -> None:
        """Route all network traffic through `transport` (tests); clients are rebuilt lazily."""
        old, self._clients = self._clients, {}
        self._transport = transport
        if self._loop is not None:
            for client in old.values():
                asyncio.run_coroutine_threadsafe(client.aclose(), self._loop)

    def http_client(self, kind: ClientKind) -> httpx.AsyncClient:
        """The shared client of `kind` (engine loop only: its connection pool lives there)."""
        client = self._clients.get(kind)
        if client is None:
            client = self._clients[kind] = build_http_client(kind, self._transport)
        return client

    def client(self, settings: Settings, **kwargs: Any) -> MeshClient:
        return MeshClient(settings, self.http_client("offline" if settings.offline else "network"), **kwargs)


_engine: Engine | None = None


def engine() -> Engine:
    global _engine
    if _engine is None:
        _engine = Engine()
    return _engine
