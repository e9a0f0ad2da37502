"""Puts the key on the wire at send time, and only for URLs under the API root.

Kept in an `httpx.Auth` so that no frame of the client holds the key in a plain
string or header dict: image URLs (often on a CDN host) never see it.
"""

from __future__ import annotations

from collections.abc import Generator

import httpx

from ..keys import ApiKey


class BearerAuth(httpx.Auth):
    """`Authorization: Bearer <key>` for requests under `root`; nothing for other hosts."""

    def __init__(self, key: ApiKey | None, root: str) -> None:
        self._key = key
        self._root = root.rstrip("/")

    def covers(self, url: str) -> bool:
        return url == self._root or url.startswith(self._root + "/")

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._key is not None and self.covers(str(request.url)):
            request.headers["Authorization"] = "Bearer " + self._key.reveal()
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth({self._key!r}, {self._root!r})"
