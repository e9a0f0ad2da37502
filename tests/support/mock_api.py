"""A remote-looking MeshAPI on httpx.MockTransport: nothing leaves the process.

API_BASE is not loopback, so the client treats it as a real remote API (HTTPS, a key).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from mesh_magic.core.keys import ApiKey

from .images import b64

API_BASE = "https://api.example.test"
MOCK_KEY = "rsk_unit_0123456789abcd1a2b"


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(payload).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )


def generation_body(*images: bytes, revised: str | None = None) -> dict[str, Any]:
    data = []
    for image in images:
        item: dict[str, Any] = {"b64_json": b64(image)}
        if revised:
            item["revised_prompt"] = revised
        data.append(item)
    return {"created": 1700000000, "data": data, "usage": {"total_tokens": 10}}


def sse(*events: dict[str, Any]) -> bytes:
    """Server-sent events, one `data:` line per event."""
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)


def with_catalog(handler: Any, models: list[dict[str, Any]] | None = None) -> Any:
    """`handler` behind a model list: GET /v1/models answers `models` (default none).

    Every call reads the catalog first for its cost estimate; a mock that answers
    each URL with a generation would otherwise be asked for the model list too.
    """

    def route(request: httpx.Request) -> Any:
        if request.method == "GET" and request.url.path.endswith("/v1/models"):
            return json_response(models or [])
        return handler(request)

    return route


def use_mock(handler: Any, models: list[dict[str, Any]] | None = None) -> None:
    """Route the engine's traffic to `handler` (behind a model list, see `with_catalog`) and
    point the session at API_BASE with MOCK_KEY."""
    from mesh_magic.core import config as _config
    from mesh_magic.core.engine.loop import engine

    engine().set_transport(httpx.MockTransport(with_catalog(handler, models)))
    _config.configure(base_url=API_BASE)
    _config.session().set_api_key(MOCK_KEY)


# A key made is a key known to keys.SECRETS, scrubbed from whatever a server sends back:
# the unit tests that feed MOCK_KEY to the parsers directly rely on it, whatever runs first.
ApiKey(MOCK_KEY)
