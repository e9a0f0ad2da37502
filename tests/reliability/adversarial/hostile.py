"""A hostile MeshAPI-compatible server on loopback: it answers whatever a scenario scripts.

The project's `MeshServer` is honest (it never echoes the key back); the key-safety
scenarios need one that does, in any field, header or stream event it likes. A
stdlib threading HTTP server is enough: real HTTP over 127.0.0.1, one script per test.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.images import b64, tagged_png

MODELS = [
    {"id": "google/imagen-4", "name": "Imagen 4", "type": "image", "is_free": True},
    {"id": "black-forest-labs/flux-schnell", "name": "FLUX schnell", "type": "image", "is_free": True},
]


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    # Declare more bytes than are sent, then close: the connection breaks mid-body.
    short_by: int = 0
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, list[tuple[str, str]]]:
        headers = list(self.headers)
        if isinstance(self.body, (dict, list)):
            data = json.dumps(self.body).encode()
            if not any(k.lower() == "content-type" for k, _ in headers):
                headers.append(("Content-Type", "application/json"))
        else:
            data = self.body.encode() if isinstance(self.body, str) else self.body
        return data, headers


def png_answer(prompt: str = "p", **item: Any) -> dict[str, Any]:
    """A 200 generation body with one PNG; `item` adds fields to its data entry."""
    return {"created": 1700000000, "data": [{"b64_json": b64(tagged_png(prompt)), **item}]}


def sse(*events: dict[str, Any] | str) -> Reply:
    """A text/event-stream reply: each event a JSON object (or raw text), then [DONE]."""
    lines = [f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n" for e in events]
    return Reply(200, "".join(lines), [("Content-Type", "text/event-stream")])


Script = Callable[[Seen], Reply | None]


class HostileServer:
    """Answers `script(request)`; None falls back to an honest answer (models, one PNG)."""

    def __init__(self) -> None:
        self.script: Script = lambda seen: None
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, self.path, dict(self.headers.items()), self.rfile.read(length))
                with outer._lock:
                    outer.requests.append(seen)
                reply = outer.script(seen) or outer.honest(seen)
                if reply.delay:
                    time.sleep(reply.delay)
                data, headers = reply.encoded()
                self.send_response(reply.status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data) + reply.short_by))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.base_url = f"http://127.0.0.1:{self.port}"
        # A short poll: shutdown() waits for it, once per test.
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.02,), daemon=True)

    def honest(self, seen: Seen) -> Reply:
        if seen.path.startswith("/v1/models"):
            return Reply(200, MODELS)
        if seen.method == "GET":  # any other GET is an image download
            return Reply(200, tagged_png("url"), [("Content-Type", "image/png")])
        return Reply(200, png_answer())

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def sent_keys(self) -> list[str]:
        """The Authorization headers the server received, in order."""
        return [s.headers.get("Authorization", "") for s in self.requests]


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    """A scripted loopback server; the test sets `hostile.script`."""
    with HostileServer() as srv:
        yield srv
