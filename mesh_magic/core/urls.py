"""URLs the client deals with: the API root, loopback hosts, and URLs safe to write down."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit, urlunsplit

from .constants import OFFLINE, OFFLINE_ROOT


def is_loopback(host: str) -> bool:
    """A literal loopback address (127.0.0.0/8, ::1) or the name `localhost` itself.

    Not `*.localhost`: such names resolve wherever the system's resolver says, and
    plain http:// with the key is allowed only where it cannot leave the machine.
    """
    if host.lower() == "localhost":
        return True
    text = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is loopback too
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


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
