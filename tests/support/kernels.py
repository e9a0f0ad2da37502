"""A real ipykernel pointed at a test server and a store, with mesh_magic loaded."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def running_kernel(server: Any, store: Path) -> Iterator[tuple[Any, Any]]:
    """(KernelManager, client) of a kernel whose session uses `server` and the store `store`."""
    from jupyter_client import KernelManager

    env = dict(
        os.environ,
        MESHAPI_BASE_URL=server.base_url,
        MESHAPI_API_KEY=server.api_key,
        MESHIMG_STORE_DIR=str(store),
    )
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        reply = client.execute(
            "%load_ext mesh_magic\n%config MeshImg.display_max_px = 128", reply=True, timeout=30
        )
        assert reply["content"]["status"] == "ok"
        yield manager, client
    finally:
        client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)
