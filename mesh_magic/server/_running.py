"""Run the app under uvicorn on loopback in a background thread (for tests and notebooks)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import uvicorn

from ._app import MeshApp, create_app
from ._faults import Fault
from ._state import RecordedRequest

_START_TIMEOUT = 10.0


class _ThreadedUvicorn(uvicorn.Server):
    # Signal handlers can only be installed from the main thread, and Ctrl-C belongs to
    # whoever owns it (pytest, the notebook kernel). uvicorn >= 0.29 already skips them
    # off the main thread; overriding both hooks covers older and newer versions alike.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:
        pass


class MeshServer:
    """A MeshAPI-compatible server on 127.0.0.1 in a daemon thread.

    ``with MeshServer() as server:`` then point a client at ``server.base_url`` with
    ``server.api_key``. ``image_host`` (e.g. "localhost") puts url-format images on a
    different host than the API, as a CDN would.
    """

    def __init__(
        self,
        *,
        api_key: str | None = "rsk_test_0123456789abcdef",
        latency: float = 0.0,
        port: int = 0,
        image_host: str | None = None,
    ) -> None:
        self._requested_port = port
        self._image_host = image_host
        # Built up front so faults, latency and the log can be set before start().
        self.app: MeshApp = create_app(api_key=api_key, latency=latency)
        self._server: _ThreadedUvicorn | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self.port = port
        self.base_url = ""

    # --- lifecycle ---

    def start(self) -> MeshServer:
        """Start serving; returns once connections are accepted."""
        if self._thread is not None:
            return self
        # proto must be explicit: asyncio only sets TCP_NODELAY on sockets whose proto
        # is IPPROTO_TCP, and with Nagle on every response stalls ~40 ms on delayed ACKs.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._requested_port))
        sock.listen(128)
        # The port must be known before the app exists: image urls embed it.
        self.port = sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        if self._image_host:
            self.app.state_log.image_base_url = f"http://{self._image_host}:{self.port}"
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            log_config=None,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = _ThreadedUvicorn(config)
        self._socket = sock
        self._thread = threading.Thread(target=self._serve, name=f"MeshServer:{self.port}", daemon=True)
        self._thread.start()
        self._wait_started()
        return self

    def _serve(self) -> None:
        assert self._server is not None and self._socket is not None
        asyncio.run(self._server.serve(sockets=[self._socket]))

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError("MeshServer failed to start (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"MeshServer did not start within {_START_TIMEOUT} s")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and wait for the thread (well under a second)."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=0.5)
            if thread.is_alive() and server is not None:
                # Still busy with slow responses: drop them rather than wait them out.
                server.force_exit = True
                thread.join(timeout=2.0)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> MeshServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"<MeshServer {self.base_url or '(not started)'} {state}>"

    # --- state shared with the app (and with the /_mesh control routes) ---

    @property
    def api_key(self) -> str | None:
        return self.app.state_log.api_key

    @property
    def latency(self) -> float:
        return self.app.state_log.latency

    @latency.setter
    def latency(self, value: float) -> None:
        self.app.state_log.latency = value

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.app.state_log.requests

    @property
    def max_in_flight(self) -> int:
        return self.app.state_log.max_in_flight

    @property
    def in_flight(self) -> int:
        return self.app.state_log.in_flight

    def add_fault(self, fault: Fault) -> None:
        self.app.add_fault(fault)

    def reset(self) -> None:
        """Clear faults, the request log and in-flight stats."""
        self.app.reset()

    def stats(self) -> dict[str, Any]:
        return self.app.state_log.stats()
