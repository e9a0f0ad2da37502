"""URLs the client deals with: the API root, loopback hosts, and URLs safe to write down."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from .constants import OFFLINE, OFFLINE_ROOT


def is_loopback(host: str) -> bool:
    if host in ("localhost",) or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def api_root(base_url: str) -> str:
    """The base URL normalised to end in /v1 (users may give it with or without)."""
    if base_url == OFFLINE:
        return OFFLINE_ROOT + "/v1"
    root = base_url.rstrip("/")
    return root if root.endswith("/v1") else root + "/v1"


def host_of(url: str) -> str:
    return urlsplit(url).hostname or ""


def netloc_of(url: str) -> str:
    return urlsplit(url).netloc


def public_url(url: str) -> str:
    """`url` without user info, query or fragment: safe to write next to an image."""
    if not url.startswith(("http://", "https://")):
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2].lower()  # keeps [v6] brackets and the port, drops user:pass
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
