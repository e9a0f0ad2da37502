"""The one place an `httpx.AsyncClient` is built: network or offline, limits, proxies, timeouts.

`base_url="offline"` is the bundled MeshAPI-compatible server behind an ASGI
transport (no sockets, no key); everything else goes to the network through
the injected transport (tests) or httpx's default one, honouring
HTTPS_PROXY / NO_PROXY / SSL_CERT_FILE like other clients.
"""

from __future__ import annotations

from typing import Literal

import httpx

from ..constants import DEFAULT_TIMEOUT, MAX_CONNECTIONS, MAX_KEEPALIVE, USER_AGENT

ClientKind = Literal["network", "offline"]


def offline_transport() -> httpx.AsyncBaseTransport:
    """The in-process offline backend (the bundled server's app, shared by the process)."""
    from ...server import offline_transport as server_transport

    return server_transport()


def build_http_client(
    kind: ClientKind, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """A client for `kind`; `transport` replaces the network transport (tests, proxies)."""
    offline = kind == "offline"
    return httpx.AsyncClient(
        transport=offline_transport() if offline else transport,
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE),
        timeout=httpx.Timeout(DEFAULT_TIMEOUT),
        headers={"User-Agent": USER_AGENT},
        # Environment proxies and CA bundles are for the network, not the in-process backend.
        trust_env=not offline,
        follow_redirects=False,
    )
