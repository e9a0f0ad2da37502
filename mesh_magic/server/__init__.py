"""A MeshAPI-compatible server: the offline backend, a test server and a fault injector.

Three ways to use it:

* in-process, no sockets and no key: ``httpx.AsyncClient(transport=offline_transport(),
  base_url=OFFLINE_BASE_URL)`` (this is what ``base_url="offline"`` selects);
* a real loopback server: ``python -m mesh_magic.server --port 8765``, or in a test
  ``with MeshServer() as server: ...`` (``server.base_url``, ``server.api_key``);
* with faults: ``server.add_fault(Fault("status", status=429, retry_after="2"))`` or
  ``POST /_mesh/faults`` with the same fields as JSON; ``path="/v1/images/edits"`` aims a
  fault at edits (the default path is generations).

Routes: ``POST /v1/images/generations`` (validated like the real API, streaming too;
reference images in ``image`` for models with ``supports_image_reference``),
``POST /v1/images/edits`` (the SDK's ImageEditParams; edit, inpaint, outpaint, mix, reframe,
upscale and remove_background done locally with Pillow, each refused by models whose
``supports_image_<op>`` flag is false), ``GET /v1/models[?type=image]``,
``GET /v1/files/{id}.{ext}`` (url-format images, no auth), and the unauthenticated
control routes ``GET /_mesh/requests``,
``GET|POST /_mesh/faults``, ``POST /_mesh/reset``, ``GET /_mesh/stats``,
``POST /_mesh/latency``. Control requests are not recorded in the request log.

Fault kinds (``Fault.kind``): status, latency, slow_body, malformed_json, non_json,
empty_data, missing_fields, corrupt_b64, not_image, truncated_image, huge_image,
corrupt_image (a garbage IDAT, IEND intact), hollow_image (8000x9900 declared over a
10-byte IDAT), patch_item / patch_body (``patch``: JSON fields merged into each image item
/ the answer, e.g. ``{"url": "http://[::1/x.png"}`` or ``{"created": 1e20}``),
huge_body, reset, stream_break, stream_error, redirect. ``delay`` is waited before any
kind answers (for slow_body it is how long the body takes to trickle out). The request
log's ``outcome`` says whether each answer was sent in full or the client hung up first.

Heavy imports (Starlette, uvicorn, httpx, Pillow) happen on first use, so importing this
package for OFFLINE_BASE_URL or MODELS stays cheap.
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any

from ..core.constants import OFFLINE_ROOT
from ._faults import Fault
from ._models import MODELS
from ._state import RecordedRequest

if TYPE_CHECKING:
    import httpx

    from ._app import MeshApp, create_app
    from ._images import render_preview
    from ._running import MeshServer

OFFLINE_BASE_URL = OFFLINE_ROOT

__all__ = [
    "MODELS",
    "OFFLINE_BASE_URL",
    "Fault",
    "MeshApp",
    "MeshServer",
    "RecordedRequest",
    "create_app",
    "offline_transport",
    "render_preview",
]

_LAZY = {
    "create_app": "._app",
    "MeshApp": "._app",
    "MeshServer": "._running",
    "render_preview": "._images",
}

_offline_lock = threading.Lock()
_offline_app: MeshApp | None = None


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def offline_transport() -> httpx.AsyncBaseTransport:
    """An httpx transport into this process's shared offline server (no key, no sockets)."""
    import httpx

    from ._app import create_app

    global _offline_app
    with _offline_lock:
        if _offline_app is None:
            _offline_app = create_app(api_key=None, offline=True)
        app = _offline_app
    return httpx.ASGITransport(app=app)
