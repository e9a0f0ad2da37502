"""Puts the key on the wire at send time, and only for URLs under the API root.

Kept in an `httpx.Auth` so that no frame of the client holds the key in a plain
string or header dict: image URLs (often on a CDN host) never see it.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ..keys import SECRETS, ApiKey


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <key>` for requests under `root`; nothing for other hosts."""

    def __init__(self, key: ApiKey | None, root: str) -> None:
        self._key = key
        self._root = httpx.URL(root.rstrip("/"))
        if key is not None:
            SECRETS.add(key.reveal())  # the key in use is always among those scrubbed

    def covers(self, url: str | httpx.URL) -> bool:
        """Same scheme, host and port as the root (as httpx normalises them), path under it."""
        target, root = httpx.URL(url), self._root
        if (target.scheme, target.host, target.port) != (root.scheme, root.host, root.port):
            return False
        return target.path == root.path or target.path.startswith(root.path.rstrip("/") + "/")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key is not None and self.covers(request.url):
            request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth({self._key!r}, {str(self._root)!r})"
